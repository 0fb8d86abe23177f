"""The analysis configuration: `configs/default.yaml`, optionally overridden, as one typed object."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tasks.errors import ConfigError

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"
DEFAULT_CONFIG_PATH = CONFIG_DIR / "default.yaml"

Device = Literal["auto", "cpu", "cuda", "mps"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelsConfig(_Section):
    dir: str
    detector: str
    pose: str
    keypoints: str

    def path(self, name: str) -> Path:
        """Absolute path of a model file named in this section (`detector` or `pose`)."""
        file = Path(getattr(self, name)).expanduser()
        if file.is_absolute():
            return file
        root = Path(os.environ.get("POSER_MODELS_DIR") or self.dir).expanduser()
        return (root / file).resolve()


class VideoConfig(_Section):
    max_duration_s: float = Field(gt=0)
    min_duration_s: float = Field(gt=0)


class TrackingConfig(_Section):
    tracker: str
    imgsz: int = Field(ge=32)
    batch_size: int = Field(ge=1, le=256)
    decode_max_side: int = Field(ge=64)
    read_ahead_frames: int = Field(ge=1)
    detection_fps: float = Field(ge=0)
    threads: int = Field(ge=0)
    confidence: float = Field(gt=0, lt=1)
    min_tracked_fraction: float = Field(ge=0, le=1)
    stitch_max_gap_s: float = Field(ge=0)
    stitch_max_jump: float = Field(gt=0)
    appearance_stitching: bool
    appearance_match: float = Field(ge=0, le=1)
    appearance_max_gap_s: float = Field(ge=0)
    appearance_min: float = Field(ge=0, le=1)
    coverage_warning_fraction: float = Field(ge=0, le=1)
    board_min_fraction: float = Field(ge=0, le=1)
    board_over_skis: float = Field(ge=1)
    sideways_max_ratio: float = Field(gt=0)
    sideways_min_fraction: float = Field(gt=0, le=1)
    hint_tolerance_s: float = Field(ge=0)

    @property
    def tracker_path(self) -> Path:
        return (CONFIG_DIR / self.tracker).resolve()


class PoseConfig(_Section):
    crop_padding: float = Field(ge=0)
    crop_size: int = Field(ge=64)
    crop_smoothing_s: float = Field(ge=0)
    max_box_gap_s: float = Field(ge=0)
    min_detection_confidence: float = Field(ge=0, le=1)
    min_presence_confidence: float = Field(ge=0, le=1)
    min_tracking_confidence: float = Field(ge=0, le=1)
    keypoint_confidence: float = Field(ge=0, le=1)
    keypoint_imgsz: int = Field(ge=32)
    keypoint_onnx: bool
    keypoint_views: tuple[
        tuple[
            Annotated[float, Field(ge=-0.25, le=0.25)],
            Annotated[float, Field(ge=-0.25, le=0.25)],
            Annotated[float, Field(gt=0.5, lt=2)],
            bool,
        ],
        ...,
    ] = Field(min_length=1)
    keypoint_views_per_frame: int = Field(ge=0)
    workers: int = Field(ge=1)
    chunk_s: float = Field(gt=0)


class SmoothingConfig(_Section):
    max_gap_s: float = Field(ge=0)
    image_acceleration: float = Field(gt=0)
    image_noise_px: float = Field(gt=0)
    world_acceleration: float = Field(gt=0)
    world_noise_m: float = Field(gt=0)
    min_visibility: float = Field(gt=0, le=1)


class MetricsConfig(_Section):
    camera_side: Literal["auto", "behind", "front"]
    com_trunk_weight: float = Field(ge=0, le=1)
    max_inclination_deg: float = Field(gt=0, le=90)
    min_leg_visibility: float = Field(ge=0, le=1)
    hysteresis_deg: float = Field(ge=0)
    min_turn_s: float = Field(ge=0)
    min_peak_deg: float = Field(ge=0)
    edged_fraction: float = Field(ge=0, le=1)
    edge_difference_scale_deg: float = Field(gt=0)
    max_lag_ms: float = Field(ge=0)
    lag_scale_ms: float = Field(gt=0)
    agreement_weight: float = Field(ge=0, le=1)
    bootstrap_samples: int = Field(ge=50, le=100_000)
    interval_scale: float = Field(gt=0)
    uncertain_half_width: float = Field(gt=0)
    max_model_disagreement_deg: float = Field(gt=0)
    summary_window: int = Field(ge=1)
    side_window: int = Field(ge=1)


class RenderConfig(_Section):
    crf: int = Field(ge=0, le=51)
    preset: Literal["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow"]
    x264_params: str = Field(default="", pattern=r"^([a-z0-9-]+=[^:=]+(:[a-z0-9-]+=[^:=]+)*)?$")
    min_visibility: float = Field(ge=0, le=1)


class WorkerConfig(_Section):
    """What one analysis slot needs of its host (`tasks/slots.py` has the formula), how often
    a slot's worker asks the pool for a run, and whether its runs start warm (`flows/warm.py`)."""

    cores_per_slot: int = Field(ge=1)
    memory_per_slot_mb: float = Field(gt=0)
    gpu_memory_per_slot_mb: float = Field(gt=0)
    reserved_memory_mb: float = Field(ge=0)
    max_slots: int = Field(ge=0)
    query_s: float = Field(gt=0)
    warm_start: bool


class AnalysisConfig(_Section):
    """Everything an analysis run needs to know, loaded from YAML."""

    models: ModelsConfig
    device: Device
    video: VideoConfig
    tracking: TrackingConfig
    pose: PoseConfig
    smoothing: SmoothingConfig
    metrics: MetricsConfig
    render: RenderConfig
    worker: WorkerConfig


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> AnalysisConfig:
    """Load the defaults, then merge an optional YAML file and a dict of overrides on top.

    Args:
        path: A YAML file with any subset of the keys in `configs/default.yaml`.
        overrides: Nested values that win over both files, e.g. `{"device": "cpu"}`.

    Returns:
        The validated configuration.

    Raises:
        ConfigError: A file is missing or malformed, or a value is out of range.
    """
    merged = _read_yaml(DEFAULT_CONFIG_PATH)
    if path is not None:
        merged = _deep_merge(merged, _read_yaml(Path(path)))
    if overrides:
        merged = _deep_merge(merged, overrides)
    try:
        return AnalysisConfig.model_validate(merged)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors())
        raise ConfigError(f"Invalid configuration: {problems}") from None


def parse_settings(settings: list[str]) -> dict[str, Any]:
    """`section.key=value` pairs (values in YAML) as nested overrides for `load_config`.

    Example:
        `parse_settings(["pose.crop_size=512"])` gives `{"pose": {"crop_size": 512}}`.
    """
    overrides: dict[str, Any] = {}
    for setting in settings:
        key, _, value = setting.partition("=")
        *sections, name = key.split(".")
        target = overrides
        for section in sections:
            target = target.setdefault(section, {})
        target[name] = yaml.safe_load(value)
    return overrides


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise ConfigError(f"Config file not found: {path}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"Config file {path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"Config file {path} must hold a mapping of settings.")
    return data


def _deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged
