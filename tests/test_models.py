from __future__ import annotations

import pytest

from tasks import models
from tasks.config import load_config
from tasks.errors import ModelMissingError


def test_a_missing_model_names_the_command_that_fixes_it(tmp_path, monkeypatch):
    monkeypatch.setenv("POSER_MODELS_DIR", str(tmp_path))
    with pytest.raises(ModelMissingError, match="Run `poser models fetch`"):
        models.require_model(load_config().models, "detector")


def test_the_pose_bundle_is_derived_offline_with_a_known_checksum(tmp_path):
    spec = next(spec for spec in models.MODELS if spec.key == "pose")
    target = tmp_path / "pose.task"
    spec.offline(target)
    assert models.file_sha256(target) in spec.sha256s


def test_fetch_keeps_valid_files_and_replaces_bad_ones(tmp_path, monkeypatch):
    monkeypatch.setenv("POSER_MODELS_DIR", str(tmp_path))
    config = load_config().models
    first = models.fetch_models(config, offline_only=True)
    assert {key: origin for key, (_, origin) in first.items()} == {
        "detector": "offline",
        "keypoints": "offline",
        "pose": "offline",
        "keypoints_onnx": "derived",
    }
    assert first["keypoints_onnx"][0].parent == config.path("keypoints").parent
    assert models.fetch_models(config, offline_only=True)["pose"][1] == "present"

    config.path("pose").write_bytes(b"corrupted")
    again = models.fetch_models(config, offline_only=True)
    assert again["pose"][1] == "offline"
    assert models.file_sha256(config.path("pose")) in next(spec for spec in models.MODELS if spec.key == "pose").sha256s


def test_a_source_with_the_wrong_checksum_is_rejected(tmp_path):
    spec = models.ModelSpec(
        key="pose",
        description="test model",
        url="http://127.0.0.1:9/none",
        sha256s=frozenset({"0" * 64}),
        offline=lambda path: path.write_bytes(b"not the model"),
    )
    with pytest.raises(RuntimeError, match="unexpected sha256"):
        models._fetch_one(spec, tmp_path / "model.bin", offline_only=False)
    assert not list(tmp_path.iterdir())  # nothing half-written is left behind
