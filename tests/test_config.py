from __future__ import annotations

import pytest

from tasks.config import load_config
from tasks.errors import ConfigError


def test_defaults_load_and_resolve_paths():
    config = load_config()
    assert config.device == "auto"
    assert config.tracking.tracker_path.name == "botsort.yaml" and config.tracking.tracker_path.is_file()
    assert config.models.path("detector").name == "yolov8n.pt"


def test_a_file_and_overrides_merge_over_the_defaults(tmp_path):
    override = tmp_path / "mine.yaml"
    override.write_text("tracking:\n  imgsz: 640\nrender:\n  crf: 18\n")
    config = load_config(override, {"render": {"crf": 20}, "device": "cpu"})
    assert config.tracking.imgsz == 640
    assert config.tracking.confidence == load_config().tracking.confidence
    assert (config.render.crf, config.device) == (20, "cpu")


def test_models_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("POSER_MODELS_DIR", str(tmp_path))
    assert load_config().models.path("pose") == tmp_path / "pose_landmarker_full.task"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"render": {"crf": 99}}, "render.crf"),
        ({"device": "tpu"}, "device"),
        ({"tracking": {"unknown": 1}}, "tracking.unknown"),
        ({"smoothing": {"max_gap_s": -1}}, "smoothing.max_gap_s"),
        ({"render": {"x264_params": "cabac"}}, "render.x264_params"),
        ({"tracking": {"detection_fps": -5}}, "tracking.detection_fps"),
    ],
)
def test_bad_values_are_named(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(overrides=overrides)


@pytest.mark.parametrize(
    ("content", "message"),
    [("tracking: [unclosed", "not valid YAML"), ("- a\n- b\n", "must hold a mapping")],
)
def test_bad_files_are_reported(tmp_path, content, message):
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_a_missing_file_is_reported(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "absent.yaml")


@pytest.mark.parametrize(
    ("settings", "overrides"),
    [
        (["device=cpu"], {"device": "cpu"}),
        (["pose.crop_size=512", "pose.workers=1"], {"pose": {"crop_size": 512, "workers": 1}}),
        (["pose.keypoint_views=[[0, 0, 1, false]]"], {"pose": {"keypoint_views": [[0, 0, 1, False]]}}),
        ([], {}),
    ],
)
def test_settings_on_the_command_line_become_overrides(settings, overrides):
    from tasks.config import parse_settings

    assert parse_settings(settings) == overrides
    load_config(overrides=overrides)  # and they are valid settings
