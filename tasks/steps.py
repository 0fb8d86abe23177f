"""The pipeline steps as Prefect tasks: thin, retryable wrappers over the plain functions.

Results are persisted under an explicit cache key per step (`tasks/caching.py`: the step, its
source, the flow run, and the clip's sha256 and trim, the configuration and the other inputs
that identify the analysis), so a flow run that is retried, or rerun from the Prefect UI,
resumes after its last completed step. Where the outputs go to S3, the results go there too
(`stored_in`), so that the rerun resumes on any worker host. A step that fails unexpectedly is
tried again after 5, then 10 seconds; errors meant for the user (`PoserError`) are never retried.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, ParamSpec, Protocol, TypeVar

import numpy as np
from prefect import Task, task
from prefect.artifacts import create_markdown_artifact
from prefect.client.schemas.objects import TaskRun
from prefect.filesystems import WritableFileSystem
from prefect.states import State
from prefect.tasks import exponential_backoff

from tasks.caching import CacheKeyFn, step_key
from tasks.charts import plot_metrics
from tasks.config import AnalysisConfig
from tasks.contract import OUTPUT_FILES, ArtifactKind
from tasks.errors import PoserError
from tasks.export import (
    angle_rows,
    landmarks_table,
    summary_markdown,
    turns_table,
    write_landmarks,
    write_results,
    write_turns,
)
from tasks.findings import find_findings, findings_as_dicts
from tasks.frontal import frontal_angles
from tasks.keypoint_models import second_opinion
from tasks.models import require_model
from tasks.objects import download
from tasks.pose import PoseSequence, crop_windows, estimate_pose
from tasks.progress import stage
from tasks.render import Still, render_overlay
from tasks.reporting import WebAppClient
from tasks.smoothing import smooth_pose
from tasks.tracking import SkierHint, SkierTrack, detect_and_track, select_skier
from tasks.turns import TechniqueMetrics, analyze_turns
from tasks.video import VideoInfo, probe_video

P = ParamSpec("P")
R = TypeVar("R")


def _retry_unless_user_error(task: Task[..., Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Retry unexpected failures; a `PoserError` would fail the same way again."""
    return not isinstance(state.result(raise_on_failure=False), PoserError)


# The one retry layer: a step's requests (the web app's, S3's) are sent once each.
_RETRIES = 2


def _step(name: str, cache_key_fn: CacheKeyFn) -> Callable[[Callable[P, R]], Task[P, R]]:
    """The Prefect task of a pipeline step: its result persisted under `cache_key_fn`'s key,
    retried with backoff unless the error is the user's."""
    return task(
        name=name,
        cache_key_fn=cache_key_fn,
        retries=_RETRIES,
        retry_delay_seconds=exponential_backoff(backoff_factor=5)(_RETRIES),
        retry_condition_fn=_retry_unless_user_error,
        persist_result=True,
    )


class Resumable(Protocol):
    """A step, its result persisted where a rerun looks for it."""

    def __call__(self, step: Task[P, R], /) -> Task[P, R]: ...


def stored_in(storage: WritableFileSystem | None) -> Resumable:
    """A step with its result persisted in `storage` (Prefect's local storage when None).

    Only for steps whose results hold no path to a file they wrote: those files stay on the
    host that wrote them, and so do the results of `fetch`, `render` and `export`, which a
    rerun on another host computes again.
    """

    def resumable(step: Task[P, R], /) -> Task[P, R]:
        return step if storage is None else step.with_options(result_storage=storage)

    return resumable


@_step("probe", step_key("video_path", "trim_start_s", "trim_end_s", "config"))
def probe(video_path: str, trim_start_s: float | None, trim_end_s: float | None, config: AnalysisConfig) -> VideoInfo:
    with stage("probe", 1) as progress:
        info = probe_video(
            video_path,
            trim_start_s,
            trim_end_s,
            max_duration_s=config.video.max_duration_s,
            min_duration_s=config.video.min_duration_s,
        )
        progress(1)
    return info


@_step("detect-and-track", step_key("info", "config", "device", "hint"))
def track(info: VideoInfo, config: AnalysisConfig, device: str, hint: SkierHint | None) -> SkierTrack:
    model = require_model(config.models, "detector")
    with stage("track", info.frames_in_trim) as progress:
        detections = detect_and_track(info, config.tracking, model, device, progress)
    return select_skier(detections, config.tracking, hint, info.trim_start_s)


@_step("pose", step_key("info", "config", "device"))
def pose(info: VideoInfo, skier: SkierTrack, config: AnalysisConfig, device: str) -> PoseSequence:
    model = require_model(config.models, "pose")
    windows = crop_windows(skier.boxes, info.fps, config.pose)
    keypoints = second_opinion(config, device)
    with stage("pose", info.frames_in_trim) as progress:
        return estimate_pose(info, windows, config.pose, model, progress, keypoints)


@_step("smooth", step_key("config"))
def smooth(raw: PoseSequence, config: AnalysisConfig) -> PoseSequence:
    with stage("smooth", 1) as progress:
        smoothed = smooth_pose(raw, config.smoothing, config.metrics.camera_side)
        progress(1)
    return smoothed


@_step("metrics", step_key("config"))
def metrics(smoothed: PoseSequence, config: AnalysisConfig) -> TechniqueMetrics:
    with stage("metrics", 1) as progress:
        angles = frontal_angles(smoothed, config.metrics)
        technique = analyze_turns(smoothed.times_s, angles, config.metrics)
        progress(1)
    return technique


@_step("findings", step_key("config"))
def findings(smoothed: PoseSequence, technique: TechniqueMetrics, config: AnalysisConfig) -> list[dict]:
    """The ranked findings (`tasks/findings.py`), as `results.json` holds them."""
    times = smoothed.times_s
    frame_s = float(np.median(np.diff(times))) if len(times) > 1 else 1.0
    ranked = find_findings(
        technique.as_dict(),
        angle_rows(times, technique),
        frame_s=frame_s,
        edged_fraction=config.metrics.edged_fraction,
    )
    return findings_as_dicts(ranked)


@_step("render", step_key("info", "config", "out_dir", "stills"))
def render(
    info: VideoInfo,
    skier: SkierTrack,
    smoothed: PoseSequence,
    technique: TechniqueMetrics,
    config: AnalysisConfig,
    out_dir: str,
    stills: tuple[Still, ...] = (),
) -> str:
    """Write `overlay.mp4`, and each of `stills` as a JPEG beside it, in one pass over the frames."""
    path = Path(out_dir) / OUTPUT_FILES[ArtifactKind.VIDEO]
    with stage("render", info.frames_in_trim) as progress:
        render_overlay(info, skier.boxes, smoothed, technique, config.render, path, progress, stills)
    return str(path)


@_step("export", step_key("out_dir"))
def export(
    results: dict,
    skier: SkierTrack,
    smoothed: PoseSequence | None,
    technique: TechniqueMetrics | None,
    out_dir: str,
) -> dict:
    """Write the landmarks and the turns (CSV and Parquet) and `metrics.png` (when there is a
    pose) and `results.json`; returns the results."""
    out = Path(out_dir)
    if smoothed is not None and technique is not None:
        write_landmarks(
            out / OUTPUT_FILES[ArtifactKind.LANDMARKS_CSV],
            out / OUTPUT_FILES[ArtifactKind.LANDMARKS_PARQUET],
            landmarks_table(skier, smoothed, technique),
        )
        write_turns(
            out / OUTPUT_FILES[ArtifactKind.TURNS_CSV],
            out / OUTPUT_FILES[ArtifactKind.TURNS_PARQUET],
            turns_table(technique),
        )
        plot_metrics(smoothed.times_s, technique, out / OUTPUT_FILES[ArtifactKind.CHART])
    write_results(out / OUTPUT_FILES[ArtifactKind.RESULTS_JSON], results)
    return results


@_step("fetch", step_key("location", "out_dir"))
def fetch(location: str, out_dir: str) -> str:
    """Download a remote input clip next to the outputs; returns its local path."""
    name = "input" + Path(location).suffix
    return str(download(location, Path(out_dir) / name))


@_step("publish", step_key("web_app", "out_dir", "location"))
def publish(web_app: WebAppClient, results: dict, out_dir: str, location: str) -> None:
    """Hand the outputs, turns, scores and outcome to the web app."""
    web_app.publish(results, out_dir, location)


def summarize(results: dict, outputs_at: str) -> None:
    """The run's summary for the Prefect UI: outcome, coverage, turns, where the outputs are."""
    create_markdown_artifact(
        key="analysis-summary", markdown=summary_markdown(results, outputs_at), description="Analysis summary"
    )
