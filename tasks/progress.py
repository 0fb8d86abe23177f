"""Progress of the pipeline stages, reported to whoever is watching.

The plain pipeline functions take an `on_progress(done)` callback. The Prefect tasks build
that callback with `stage()`, from the reporter of the current context: the CLI installs one
that draws progress bars; otherwise progress goes to the run's log and to a Prefect progress
artifact, so the Prefect UI shows how far a run is.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Protocol

log = logging.getLogger(__name__)

ProgressCallback = Callable[[int], None]

# Share of the whole analysis each stage takes, in pipeline order, for one overall percentage.
STAGE_WEIGHTS = {"probe": 0.02, "track": 0.40, "pose": 0.30, "smooth": 0.02, "metrics": 0.01, "render": 0.25}


def overall_percent(stage_name: str, fraction: float) -> float:
    """Percent of the whole analysis done when `stage_name` is `fraction` done."""
    order = list(STAGE_WEIGHTS)
    before = sum(STAGE_WEIGHTS[s] for s in order[: order.index(stage_name)])
    return round(100 * (before + STAGE_WEIGHTS[stage_name] * fraction), 1)


class ProgressReporter(Protocol):
    def start(self, stage: str, total: int) -> None: ...

    def update(self, stage: str, done: int) -> None: ...

    def finish(self, stage: str) -> None: ...


class LogReporter:
    """Logs every tenth of a stage and mirrors the overall percentage into a Prefect artifact
    and, when given, to `on_percent(stage, percent)`."""

    def __init__(self, on_percent: Callable[[str, float], None] | None = None) -> None:
        self._totals: dict[str, int] = {}
        self._tenths: dict[str, int] = {}
        self._artifact_id: Any = None
        self._on_percent = on_percent

    def start(self, stage: str, total: int) -> None:
        self._totals[stage] = max(total, 1)
        self._tenths[stage] = 0
        self._publish(stage, 0)

    def update(self, stage: str, done: int) -> None:
        tenth = 10 * done // self._totals[stage]
        if tenth > self._tenths[stage]:
            self._tenths[stage] = tenth
            log.info("%s: %d/%d frames", stage, done, self._totals[stage])
            self._publish(stage, done)

    def finish(self, stage: str) -> None:
        self._publish(stage, self._totals[stage])

    def _publish(self, stage: str, done: int) -> None:
        percent = overall_percent(stage, done / self._totals[stage])
        if self._on_percent:
            self._on_percent(stage, percent)
        try:
            from prefect.artifacts import create_progress_artifact, update_progress_artifact

            if self._artifact_id is None:
                self._artifact_id = create_progress_artifact(
                    progress=percent, key="analysis-progress", description=f"Stage: {stage}"
                )
            else:
                update_progress_artifact(self._artifact_id, progress=percent, description=f"Stage: {stage}")
        except Exception as exc:  # progress must never fail an analysis
            log.debug("progress artifact not updated: %s", exc)


_reporter: ContextVar[ProgressReporter | None] = ContextVar("poser_progress_reporter", default=None)


@contextmanager
def reporting_to(reporter: ProgressReporter | None) -> Iterator[None]:
    """Send the progress of stages run inside this block to `reporter`.

    With `None`, keeps the reporter already installed (the CLI's), or starts a `LogReporter`.
    """
    token = _reporter.set(reporter or _reporter.get() or LogReporter())
    try:
        yield
    finally:
        _reporter.reset(token)


@contextmanager
def stage(name: str, total: int) -> Iterator[ProgressCallback]:
    """Report a stage of `total` steps; yields the callback to give the plain function."""
    reporter = _reporter.get() or LogReporter()
    reporter.start(name, total)
    yield lambda done: reporter.update(name, done)
    reporter.finish(name)
