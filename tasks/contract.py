"""The contract between the analysis flow and the web app: what `results.json` holds, what the
flow reports to the web app's internal API, and the names both sides use.

It depends on pydantic alone, so the web app (which installs without the vision stack) and the
workers share it. `tasks/export.py` writes `Results`; the flow's client (`tasks/reporting.py`)
sends `ResultsReport` and the other reports; the web app (`webapp/internal.py`) checks every
report against these models before storing it, and reads stored results through them.

Every score comes with the low and high end of its 90% interval beside it (`<name>_low`,
`<name>_high`; see the README's "Score intervals"); a summary score that could not be computed
is null with `<name>_reason` saying why.
"""

from __future__ import annotations

import functools
import operator
import types
from collections.abc import Mapping
from enum import StrEnum
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

# The version of `results.json`: 1.1 adds the Parquet outputs.
SCHEMA_VERSION = "1.1"
SCHEMA_VERSIONS = ("1.0", "1.1")

# The header that carries the secret the workers and the web app share.
SECRET_HEADER = "X-Poser-Internal-Secret"


class AnalysisStatus(StrEnum):
    """Where an analysis stands, as the web app stores and shows it."""

    AWAITING_UPLOAD = "awaiting_upload"
    AWAITING_CONFIRMATION = "awaiting_confirmation"
    QUEUED = "queued"
    PROCESSING = "processing"
    COMPLETE = "complete"
    NO_SKIER_FOUND = "no_skier_found"
    FAILED = "failed"
    CANCELLED = "cancelled"


# The statuses an analysis ends in; a flow reports all but `cancelled`.
FINAL_STATUSES = frozenset(
    {AnalysisStatus.COMPLETE, AnalysisStatus.NO_SKIER_FOUND, AnalysisStatus.FAILED, AnalysisStatus.CANCELLED}
)
REPORTED_STATUSES = frozenset({AnalysisStatus.PROCESSING} | FINAL_STATUSES - {AnalysisStatus.CANCELLED})


class Outcome(StrEnum):
    """How an analysis that ran to its end came out (`results.json`'s `outcome`)."""

    COMPLETE = AnalysisStatus.COMPLETE.value
    NO_SKIER_FOUND = AnalysisStatus.NO_SKIER_FOUND.value


class ArtifactKind(StrEnum):
    """The outputs of an analysis, as `results.json`'s `outputs` names them and the web app
    offers them for download."""

    VIDEO = "video"
    LANDMARKS_CSV = "landmarks_csv"
    LANDMARKS_PARQUET = "landmarks_parquet"
    TURNS_CSV = "turns_csv"
    TURNS_PARQUET = "turns_parquet"
    CHART = "chart"
    RESULTS_JSON = "results_json"
    FINDING_1 = "finding_1"
    FINDING_2 = "finding_2"
    FINDING_3 = "finding_3"
    FINDING_4 = "finding_4"


# The file each output is written to, in the analysis's output folder.
OUTPUT_FILES: Mapping[ArtifactKind, str] = {
    ArtifactKind.VIDEO: "overlay.mp4",
    ArtifactKind.LANDMARKS_CSV: "landmarks.csv",
    ArtifactKind.LANDMARKS_PARQUET: "landmarks.parquet",
    ArtifactKind.TURNS_CSV: "turns.csv",
    ArtifactKind.TURNS_PARQUET: "turns.parquet",
    ArtifactKind.CHART: "metrics.png",
    ArtifactKind.RESULTS_JSON: "results.json",
    ArtifactKind.FINDING_1: "finding-1.jpg",
    ArtifactKind.FINDING_2: "finding-2.jpg",
    ArtifactKind.FINDING_3: "finding-3.jpg",
    ArtifactKind.FINDING_4: "finding-4.jpg",
}
# The kind of each output file, by name.
ARTIFACT_KINDS: Mapping[str, ArtifactKind] = {name: kind for kind, name in OUTPUT_FILES.items()}


def outputs_key_prefix(analysis_id: str) -> str:
    """The storage key under which an analysis's outputs are kept, without a trailing slash."""
    return f"analyses/{analysis_id}/outputs"


def task_results_key_prefix(analysis_id: str) -> str:
    """The storage key under which the Prefect results of an analysis's steps are kept (with
    its outputs: deleting the analysis deletes them), without a trailing slash."""
    return f"analyses/{analysis_id}/task-results"


def still_kind(rank: int) -> ArtifactKind:
    """The output kind of the still of the finding ranked `rank` (from 1)."""
    return ArtifactKind(f"finding_{rank}")


class _Model(BaseModel):
    """A part of the contract: unknown fields are refused, so the models say all there is."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class VideoInput(_Model):
    """The analysed clip (`input`): its container and stream, after the rotation tag is
    applied, and the trim window, in seconds from the start of the clip."""

    file_name: str
    sha256: str
    size_bytes: int
    container: str
    codec: str
    width: int
    height: int
    rotation: int
    fps: float
    frame_count: int
    duration_s: float
    trim_start_s: float
    trim_end_s: float
    frames_in_trim: int


class SkierSummary(_Model):
    """How the skier was found and followed (`skier`)."""

    track_ids: list[int]
    frames_per_track: dict[str, int]
    selection: str
    people_tracked: int
    frames_tracked: int
    frame_count: int
    tracked_fraction: float
    median_box_height_px: float | None
    equipment: dict[str, int]
    detector_frames_tracked: int


class PoseCoverage(_Model):
    """In how many frames the skier has a pose (`pose`): found by the model, or bridged."""

    frames_with_pose: int
    frames_detected: int
    pose_fraction: float


class Turn(_Model):
    """One turn, as `turns.csv` and `metrics.turns` hold it (see `tasks/turns.py`).

    Frames count from the start of the analysed part, times are seconds from the start of the
    clip. The scores are null for partial turns and turns without a pose.
    """

    index: int
    direction: Literal["left", "right"]
    partial: bool
    start_frame: int
    apex_frame: int
    end_frame: int
    start_s: float
    apex_s: float
    end_s: float
    duration_s: float
    peak_inclination_deg: float
    edge_similarity: float | None
    edge_similarity_low: float | None
    edge_similarity_high: float | None
    edge_agreement_score: float | None
    edge_agreement_score_low: float | None
    edge_agreement_score_high: float | None
    edge_difference_deg: float | None
    edge_difference_deg_low: float | None
    edge_difference_deg_high: float | None
    edge_lag_ms: float | None
    edge_lag_ms_low: float | None
    edge_lag_ms_high: float | None
    edge_lag_score: float | None
    edge_lag_score_low: float | None
    edge_lag_score_high: float | None
    angulation_deg: float | None
    angulation_deg_low: float | None
    angulation_deg_high: float | None
    edged_frames: int | None
    uncertain: bool | None
    uncertain_reason: str | None


class Summary(_Model):
    """The run's summary (`metrics.summary`, see `tasks/turns.py`): over the turns scored
    precisely enough, each score with its interval, or null with the reason."""

    complete_turns: int
    uncertain_turns: int
    mean_edge_similarity: float | None
    mean_edge_similarity_low: float | None
    mean_edge_similarity_high: float | None
    mean_edge_similarity_reason: str | None = None
    overall: float | None
    overall_low: float | None
    overall_high: float | None
    overall_reason: str | None = None
    left: float | None
    left_low: float | None
    left_high: float | None
    left_reason: str | None = None
    left_mean: float | None
    left_mean_low: float | None
    left_mean_high: float | None
    left_mean_reason: str | None = None
    left_mean_turns: int
    right: float | None
    right_low: float | None
    right_high: float | None
    right_reason: str | None = None
    right_mean: float | None
    right_mean_low: float | None
    right_mean_high: float | None
    right_mean_reason: str | None = None
    right_mean_turns: int
    edge_difference_deg: float | None
    edge_difference_deg_low: float | None
    edge_difference_deg_high: float | None
    edge_difference_deg_reason: str | None = None
    angulation_deg: float | None
    angulation_deg_low: float | None
    angulation_deg_high: float | None
    angulation_deg_reason: str | None = None
    left_edge_lag_ms: float | None
    left_edge_lag_ms_low: float | None
    left_edge_lag_ms_high: float | None
    left_edge_lag_ms_reason: str | None = None
    left_angulation_deg: float | None
    left_angulation_deg_low: float | None
    left_angulation_deg_high: float | None
    left_angulation_deg_reason: str | None = None
    right_edge_lag_ms: float | None
    right_edge_lag_ms_low: float | None
    right_edge_lag_ms_high: float | None
    right_edge_lag_ms_reason: str | None = None
    right_angulation_deg: float | None
    right_angulation_deg_low: float | None
    right_angulation_deg_high: float | None
    right_angulation_deg_reason: str | None = None


class Rhythm(_Model):
    """Turns per minute and the spread of the complete turns' durations (`metrics.rhythm`),
    with intervals; null with `reason` without complete turns."""

    turns_per_minute: float | None
    duration_cv: float | None
    reason: str | None = None
    median_duration_s: float | None = None
    turns_per_minute_low: float | None = None
    turns_per_minute_high: float | None = None
    duration_spread_s: float | None = None
    duration_spread_s_low: float | None = None
    duration_spread_s_high: float | None = None


class Metrics(_Model):
    """The technique metrics of a complete analysis (`metrics`)."""

    camera_side: Literal["behind", "front"]
    plane: Literal["image"]
    turns: list[Turn]
    summary: Summary
    rhythm: Rhythm


class Reference(_Model):
    """What a finding's evidence is compared with (see `tasks/findings.py`); an open end of a
    zone is null."""

    label: str
    source: Literal["summary", "turns", "zone"]
    metric: str | None
    value: float | None
    low: float | None
    high: float | None
    turns: list[int]


class Evidence(_Model):
    """The stored metric a finding rests on, with its interval, and what it is compared with."""

    source: Literal["summary", "rhythm", "turn", "count"]
    metric: str
    value: float
    low: float
    high: float
    unit: str
    turns: list[int]
    against: Reference | None
    text: str


class Finding(_Model):
    """One ranked finding (`findings`): the sentence, its evidence, its moment and still, and
    one thing to try (`try`)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    rank: int
    key: str
    kind: Literal["issue", "strength", "note"]
    title: str
    text: str
    evidence: Evidence
    turns: list[int]
    turn: int | None
    frame: int | None
    time_s: float | None
    try_: str = Field(alias="try")
    still: str | None


class Frame(_Model):
    """One frame of the analysed part (`frames`); the turn and angles only with metrics."""

    index: int
    time_s: float
    skier_box: tuple[float, float, float, float] | None
    pose: bool
    pose_detected: bool
    turn_index: int | None = None
    inclination_deg: float | None = None
    left_edge_deg: float | None = None
    right_edge_deg: float | None = None


class _ResultsBase(_Model):
    """What `results.json` and the flow's report to the web app have in common."""

    schema_version: Literal["1.0", "1.1"]
    outcome: Outcome
    input: VideoInput
    device: str
    skier: SkierSummary
    pose: PoseCoverage
    metrics: Metrics | None
    findings: list[Finding]
    outputs: dict[ArtifactKind, str]
    timings_s: dict[str, float]
    warnings: list[str]


class Results(_ResultsBase):
    """`results.json`: everything an analysis found, as `tasks/export.py` writes it.

    `metrics` is null when the outcome is `no_skier_found`; its last warning says why.
    `config` is the whole configuration used (`tasks/config.py`).
    """

    config: dict[str, Any]
    frames: list[Frame]


class AngleSeries(_Model):
    """Per-frame angles as columns, every n-th frame: enough for a chart."""

    time_s: list[float | None]
    inclination_deg: list[float | None]
    left_edge_deg: list[float | None]
    right_edge_deg: list[float | None]


class ResultsReport(_ResultsBase):
    """The results as the flow reports them to the web app: `results.json` without the
    configuration and the frames, with the angles as a short series instead."""

    series: AngleSeries


class StatusReport(_Model):
    """`PUT /api/internal/analyses/<id>/status`: an attempt started (`processing`), or the
    outcome, with the results or, for a failure, the reason and whether running it again may
    succeed."""

    status: AnalysisStatus
    error: str | None = None
    results: dict[str, Any] | None = None
    retryable: bool | None = None


class ProgressReport(_Model):
    """`PUT /api/internal/analyses/<id>/progress`: the stage running and the overall percent."""

    step: str
    progress: float


class ScoresReport(_Model):
    """`PUT /api/internal/analyses/<id>/edge-similarity`: the summary scores."""

    overall: float | None
    left: float | None
    right: float | None


class TurnsReport(_Model):
    """`POST /api/internal/analyses/<id>/turns`: every turn of the analysis."""

    turns: list[dict[str, Any]]


class ArtifactReport(_Model):
    """`POST /api/internal/artifacts`: one stored output of an analysis."""

    analysis_id: str
    kind: str
    key: str
    size: int
    content_type: str
    sha256: str


class ContractError(ValueError):
    """A report does not match the contract; the message says where and how."""


def check_fields(model: type[BaseModel], data: Mapping[str, Any]) -> None:
    """Check `data` against `model`, at every level: each field must be one of the model's,
    with a value of that field's type. Fields may be missing: a report may carry part of the
    results (a failed run reports none of them), and the web app reads what is there. What the
    flow writes is checked whole (`Results.model_validate`) before it is written.

    Raises:
        ContractError: A field is unknown or its value has the wrong type; the message starts
            with where, e.g. `metrics.turns.0.direction: ...`.
    """
    try:
        partial_model(model).model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        raise ContractError(f"{where}: {error['msg']}" if where else str(error["msg"])) from None


@functools.cache
def partial_model(model: type[BaseModel]) -> type[BaseModel]:
    """`model` with every field optional at every level: a missing field is left out, a given
    one must still have the field's type (null only where the field allows it)."""
    fields: dict[str, Any] = {
        name: (_partial_annotation(field.annotation), Field(default=None, alias=field.alias))
        for name, field in model.model_fields.items()
    }
    partial: type[BaseModel] = create_model(f"Partial{model.__name__}", __config__=model.model_config, **fields)
    return partial


def _partial_annotation(annotation: Any) -> Any:
    """`annotation` with each model in it replaced by its partial model."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return partial_model(annotation)
    origin, args = get_origin(annotation), get_args(annotation)
    if not args or origin is Literal:
        return annotation
    parts = tuple(_partial_annotation(arg) for arg in args)
    if origin in (Union, types.UnionType):
        return functools.reduce(operator.or_, parts)
    return origin[parts]
