"""The `analyze_video` flow: a ski clip in, an overlay video and the skier's pose out."""

from __future__ import annotations

import functools
import logging
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from prefect import flow
from prefect.filesystems import WritableFileSystem
from prefect.runtime import flow_run

from tasks import steps
from tasks.config import AnalysisConfig, load_config
from tasks.contract import OUTPUT_FILES, AnalysisStatus, ArtifactKind, Outcome, still_kind
from tasks.device import resolve_device
from tasks.equipment import board_instead_of_skis, board_message, sideways_message, sideways_share
from tasks.errors import PoserError
from tasks.export import build_results
from tasks.models import require_model
from tasks.objects import is_remote, result_storage
from tasks.pose import PoseSequence
from tasks.progress import LogReporter, reporting_to
from tasks.render import Still
from tasks.reporting import FAILURE_ATTEMPTS, ReportingError, WebAppClient
from tasks.runlogs import send_to_run_logs
from tasks.slots import bound_threads
from tasks.tracking import SkierHint, SkierTrack, coverage_warning

# Named, not __name__: a deployment loads this file by its path, under another module name,
# and its lines would miss the pipeline loggers that reach the run's logs.
log = logging.getLogger("flows.analyze")


def _run_name() -> str:
    parameters = flow_run.parameters
    if parameters.get("analysis_id"):
        return f"analysis-{parameters['analysis_id']}"
    return f"analyze-{Path(parameters['video_path']).stem}"


def _report_failure(flow, flow_run, state) -> None:
    """Mark the web app's analysis failed, with a reason a user can read."""
    analysis_id = flow_run.parameters.get("analysis_id")
    if not analysis_id:
        return
    error = state.result(raise_on_failure=False)
    input_error = isinstance(error, PoserError)
    reason = (
        str(error)
        if input_error
        else ("The analysis stopped unexpectedly. Please try again; if it fails again, contact us.")
    )
    try:
        # Running the same input again cannot mend a problem with the input itself.
        WebAppClient.from_environment(analysis_id).status(
            AnalysisStatus.FAILED, error=reason, retryable=not input_error, attempts=FAILURE_ATTEMPTS
        )
    except ReportingError as exc:
        log.warning("Could not report the failure of analysis %s: %s", analysis_id, exc)


@flow(
    name="analyze-video",
    flow_run_name=_run_name,
    persist_result=True,
    on_failure=[_report_failure],
    on_crashed=[_report_failure],
)
def analyze_video(
    video_path: str,
    out_dir: str | None = None,
    trim_start_s: float | None = None,
    trim_end_s: float | None = None,
    device: str | None = None,
    config_path: str | None = None,
    config_overrides: dict[str, Any] | None = None,
    skier_hint: SkierHint | None = None,
    analysis_id: str | None = None,
    output_location: str | None = None,
) -> dict[str, Any]:
    """Track the skier, estimate and smooth their pose, find turns and score them, and write
    the overlay video, the chart and the data.

    Args:
        video_path: The clip to analyse: a file, or an `s3://` location to download first.
        out_dir: The folder the outputs are written to (`contract.OUTPUT_FILES`: the overlay
            video, the landmarks and turns as CSV and Parquet, the chart, `results.json` and a
            still of each finding's moment); a folder under the system's temporary folder when
            omitted.
        trim_start_s: Start of the analysed part, in seconds.
        trim_end_s: End of the analysed part, in seconds.
        device: `auto`, `cpu`, `cuda` or `mps`; the config's choice when omitted.
        config_path: A YAML file overriding `configs/default.yaml`.
        config_overrides: Settings that win over both files.
        skier_hint: Points at the skier when the clip shows several people.
        analysis_id: The web app's analysis this run computes: names the run, and makes it
            report progress, outputs and outcome to the web app (see `tasks/reporting.py`),
            each output under the key `contract.outputs_key_prefix(analysis_id)`.
        output_location: Where the web app's storage keeps the outputs: an `s3://` location
            to upload them to, or `out_dir` itself (the default: local storage).

    Returns:
        The content of `results.json`.
    """
    send_to_run_logs()
    bound_threads()
    web_app = WebAppClient.from_environment(analysis_id) if analysis_id else None
    if web_app is not None:
        web_app.attempt_started()
    config = load_config(config_path, config_overrides)
    resolved_device = resolve_device(device or config.device)
    second_model = ["keypoints"] if config.pose.keypoint_confidence > 0 else []
    for key in ["detector", "pose", *second_model]:
        require_model(config.models, key)
    resumable = steps.stored_in(_result_storage(output_location))
    scratch = out_dir is None
    out_dir = out_dir or str(Path(tempfile.gettempdir()) / "poser-runs" / (analysis_id or Path(video_path).stem))
    Path(out_dir).mkdir(parents=True, exist_ok=True)

    with reporting_to(LogReporter(on_percent=web_app.progress) if web_app else None):
        results = _run_steps(
            video_path, out_dir, trim_start_s, trim_end_s, config, resolved_device, skier_hint, resumable
        )
    if web_app is not None:
        resumable(steps.publish)(web_app, results, out_dir, output_location or out_dir)
        if scratch and output_location and is_remote(output_location):
            # Uploaded; a failed run keeps its files instead, for a rerun to resume from.
            shutil.rmtree(out_dir, ignore_errors=True)
    steps.summarize(results, output_location or out_dir)
    return results


def _run_steps(
    video_path: str,
    out_dir: str,
    trim_start_s: float | None,
    trim_end_s: float | None,
    config: AnalysisConfig,
    device: str,
    skier_hint: SkierHint | None,
    resumable: steps.Resumable,
) -> dict[str, Any]:
    """The pipeline's tasks in order; returns the exported results. The steps that write no
    file go through `resumable`, which may keep their results where any host finds them."""
    timings: dict[str, float] = {}
    timed = _stopwatch(timings)
    if is_remote(video_path):
        with timed("fetch"):
            video_path = steps.fetch(video_path, out_dir)
    with timed("probe"):
        info = resumable(steps.probe)(video_path, trim_start_s, trim_end_s, config)
    with timed("track"):
        skier = resumable(steps.track)(info, config, device, skier_hint)
    warnings = list(skier.warnings)
    results_of = functools.partial(build_results, info=info, config=config, device=device, skier=skier, timings=timings)

    def unscored(reason: str, pose: PoseSequence | None) -> dict[str, Any]:
        results = results_of(
            outcome=Outcome.NO_SKIER_FOUND,
            pose=pose,
            metrics=None,
            outputs=_outputs(ArtifactKind.RESULTS_JSON),
            warnings=[*warnings, reason],
        )
        return steps.export(results, skier, None, None, out_dir)

    unscorable = _unscorable(skier, config)
    if unscorable is not None:
        return unscored(unscorable, None)
    partial = coverage_warning(skier, info.fps, info.trim_start_s, config.tracking.coverage_warning_fraction)
    if partial is not None:
        warnings.append(partial)
    with timed("pose"):
        raw = resumable(steps.pose)(info, skier, config, device)
    with timed("smooth"):
        smoothed = resumable(steps.smooth)(raw, config)
    sideways = sideways_share(smoothed.image_xy, config.tracking.sideways_max_ratio)
    if sideways >= config.tracking.sideways_min_fraction:
        return unscored(sideways_message(sideways), smoothed)
    with timed("metrics"):
        technique = resumable(steps.metrics)(smoothed, config)
        findings = resumable(steps.findings)(smoothed, technique, config)
    # The moment of each finding is saved as a still while the overlay is drawn.
    stills = tuple(
        Still(finding["frame"], finding["still"], f"{finding['rank']}. {finding['title']}")
        for finding in findings
        if finding["still"]
    )
    with timed("render"):
        steps.render(info, skier, smoothed, technique, config, out_dir, stills)
    outputs = _outputs(
        ArtifactKind.VIDEO,
        ArtifactKind.LANDMARKS_CSV,
        ArtifactKind.LANDMARKS_PARQUET,
        ArtifactKind.TURNS_CSV,
        ArtifactKind.TURNS_PARQUET,
        ArtifactKind.CHART,
        ArtifactKind.RESULTS_JSON,
    ) | {still_kind(finding["rank"]).value: finding["still"] for finding in findings if finding["still"]}
    results = results_of(
        outcome=Outcome.COMPLETE,
        pose=smoothed,
        metrics=technique,
        outputs=outputs,
        warnings=warnings,
        findings=findings,
    )
    return steps.export(results, skier, smoothed, technique, out_dir)


def _result_storage(output_location: str | None) -> WritableFileSystem | None:
    """Where the steps' results are kept: in the outputs' bucket when those go to S3, so that
    a rerun on another host resumes; None (Prefect's local storage) otherwise."""
    return result_storage(beside=output_location) if output_location and is_remote(output_location) else None


def _outputs(*kinds: ArtifactKind) -> dict[str, str]:
    """The output files of `kinds`, by kind, as `results.json`'s `outputs` lists them."""
    return {kind.value: OUTPUT_FILES[kind] for kind in kinds}


def _unscorable(skier: SkierTrack, config: AnalysisConfig) -> str | None:
    """Why the tracked person cannot be scored (too little of them, or not on skis), or None."""
    tracking = config.tracking
    if skier.tracked_fraction < tracking.min_tracked_fraction:
        return (
            f"The skier was found in {skier.tracked_fraction:.0%} of frames; at least "
            f"{tracking.min_tracked_fraction:.0%} is needed. Film one skier, large in the frame."
        )
    board = board_instead_of_skis(
        skier.equipment, skier.detector_frames, tracking.board_min_fraction, tracking.board_over_skis
    )
    return board_message(board) if board is not None else None


def _stopwatch(timings: dict[str, float]):
    """A context manager factory recording each block's seconds under its name in `timings`."""

    @contextmanager
    def timed(name: str) -> Iterator[None]:
        started = time.perf_counter()
        yield
        timings[name] = time.perf_counter() - started

    return timed
