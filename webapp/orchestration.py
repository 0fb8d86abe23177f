"""Starting, stopping and retrying analysis flow runs through the Prefect API, and reading
their states."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from flask import current_app
from sqlalchemy import func, update

from tasks.contract import AnalysisStatus, outputs_key_prefix
from webapp.db import db, execute
from webapp.models import Analysis
from webapp.notifications import notify_outcome
from webapp.storage import LocalStorage, S3Storage

log = logging.getLogger(__name__)


class OrchestrationError(Exception):
    """The Prefect API could not be reached or refused the request."""


def start_analysis(analysis: Analysis, store: LocalStorage | S3Storage) -> str:
    """Schedule the analysis deployment for `analysis` and return the flow run's id.

    With local storage the worker reads and writes the storage folder itself; with S3 it
    downloads the clip and uploads the outputs under the analysis's prefix.
    """
    from prefect.deployments import run_deployment

    parameters = {
        "video_path": store.location(analysis.input_key),
        "out_dir": store.location(outputs_prefix(analysis)) if isinstance(store, LocalStorage) else None,
        "trim_start_s": analysis.trim_start_s,
        "trim_end_s": analysis.trim_end_s,
        "skier_hint": analysis.skier_hint,
        "analysis_id": analysis.id,
        "output_location": store.location(outputs_prefix(analysis)),
    }
    try:
        flow_run = run_deployment(
            name=current_app.config["ANALYSIS_DEPLOYMENT"],
            parameters=parameters,
            flow_run_name=f"analysis-{analysis.id}",
            # A confirm retried after a lost response gets the same run, not a second one.
            idempotency_key=f"analysis-{analysis.id}",
            timeout=0,
            tags=["embed", f"partner:{analysis.partner.slug}"] if analysis.partner else ["web"],
        )
    except Exception as exc:  # the API's many failure modes all mean "not started"
        log.warning("Could not start analysis %s: %s", analysis.id, exc)
        raise OrchestrationError(str(exc)) from exc
    return str(flow_run.id)  # type: ignore[union-attr]  # called without await: a FlowRun


def cancel_flow_run(flow_run_id: str) -> None:
    """Ask Prefect to cancel a flow run; a finished or missing run is left alone."""
    from prefect import get_client
    from prefect.states import Cancelling

    async def cancel() -> None:
        async with get_client() as client:
            flow_run = await client.read_flow_run(UUID(flow_run_id))
            if not flow_run.state or not flow_run.state.is_final():
                await client.set_flow_run_state(flow_run_id, Cancelling(), force=True)

    try:
        asyncio.run(cancel())
    except Exception as exc:
        log.warning("Could not cancel flow run %s: %s", flow_run_id, exc)


# Prefect state types and the analysis status each means, for runs that have not reported yet.
_STATUS_OF_STATE = {
    "SCHEDULED": AnalysisStatus.QUEUED,
    "PENDING": AnalysisStatus.QUEUED,
    "PAUSED": AnalysisStatus.QUEUED,
    "RUNNING": AnalysisStatus.PROCESSING,
    "CANCELLING": AnalysisStatus.CANCELLED,
    "CANCELLED": AnalysisStatus.CANCELLED,
    "FAILED": AnalysisStatus.FAILED,
    "CRASHED": AnalysisStatus.FAILED,
}
_STOPPED = "The analysis stopped unexpectedly. Please try again."
# A failed run's hook reports the reason moments after Prefect records the failure; until
# then the state alone must not end the analysis with a vaguer reason.
_FAILURE_REPORT_GRACE = timedelta(seconds=30)
_STATE_TIMEOUT_S = 2.0
_RETRY_TIMEOUT_S = 5.0
_RUNS_PER_READ = 200
_RETRYABLE_STATES = {"FAILED", "CRASHED"}
RUNNING_STATUSES = (AnalysisStatus.QUEUED, AnalysisStatus.PROCESSING)


def refresh_status(analysis: Analysis) -> None:
    """Bring a queued or processing analysis up to date with its flow run's state.

    What the flow reported wins; the flow run's state fills in what it could not report
    (a crashed worker, a cancelled run). When the Prefect API is unreachable the last known
    status stands.
    """
    if not analysis.flow_run_id or analysis.status not in RUNNING_STATUSES:
        return
    apply_flow_run_state(analysis, _flow_run_state(analysis.flow_run_id))


def apply_flow_run_state(analysis: Analysis, state: str | None) -> bool:
    """Set a queued or processing analysis's status from its flow run's state type (e.g.
    `CRASHED`), and email a widget visitor its outcome; returns whether the status changed."""
    status = _STATUS_OF_STATE.get(state or "")
    if status is None or status == analysis.status:
        return False
    if status == AnalysisStatus.QUEUED and analysis.status == AnalysisStatus.PROCESSING:
        return False
    # Compare and set: a report the flow made since this analysis was read wins.
    error = func.coalesce(Analysis.error, _STOPPED) if status == AnalysisStatus.FAILED else Analysis.error
    changed = execute(
        update(Analysis)
        .where(Analysis.id == analysis.id, Analysis.status == analysis.status)
        .values(status=status, error=error)
    ).rowcount
    db.session.commit()
    db.session.refresh(analysis)
    if changed:
        notify_outcome(analysis)
    return bool(changed)


def reopen(analysis: Analysis, status: str) -> None:
    """Take an ended analysis back to `status` (queued or processing) for another attempt of
    its flow run: the old error goes, and the new outcome will be emailed."""
    analysis.status = status
    analysis.error = None
    analysis.retryable = None
    analysis.notified_status = None


def retry_flow_run(flow_run_id: str) -> bool:
    """Reschedule a failed or crashed flow run, as the Prefect UI's Retry does.

    The run keeps its id, so its tasks' persisted results are found again and it resumes
    after its last completed step. Returns False when the run is missing or not failed or
    crashed; raises `OrchestrationError` when the Prefect API cannot be reached.
    """
    from prefect import get_client
    from prefect.client.schemas.responses import SetStateStatus
    from prefect.exceptions import ObjectNotFound
    from prefect.states import AwaitingRetry

    async def retry() -> bool:
        async with get_client() as client:
            flow_run = await client.read_flow_run(UUID(flow_run_id))
            if not flow_run.state or flow_run.state.type.value not in _RETRYABLE_STATES:
                return False
            result: Any = await client.set_flow_run_state(
                flow_run_id, AwaitingRetry(message="Retried from the web app"), force=True
            )
            return bool(result.status == SetStateStatus.ACCEPT)

    try:
        return asyncio.run(asyncio.wait_for(retry(), _RETRY_TIMEOUT_S))
    except ObjectNotFound:
        return False
    except Exception as exc:  # the API's many failure modes all mean "not rescheduled"
        log.warning("Could not retry flow run %s: %s", flow_run_id, exc)
        raise OrchestrationError(str(exc)) from exc


def flow_run_states(flow_run_ids: list[str]) -> dict[str, str | None] | None:
    """The state type of each of these flow runs that Prefect knows, by id (a missing id is
    a run Prefect no longer has); None when the Prefect API cannot be asked."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    async def read() -> dict[str, str | None]:
        states: dict[str, str | None] = {}
        async with get_client() as client:
            for start in range(0, len(flow_run_ids), _RUNS_PER_READ):
                chunk = flow_run_ids[start : start + _RUNS_PER_READ]
                runs = await client.read_flow_runs(
                    flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=chunk)), limit=len(chunk)
                )
                states |= {str(run.id): state_type(run.state) for run in runs}
        return states

    try:
        return asyncio.run(read())
    except Exception as exc:
        log.info("Flow run states unknown: %s", exc)
        return None


def _flow_run_state(flow_run_id: str) -> str | None:
    try:
        flow_run = _read_flow_run(flow_run_id)
    except Exception as exc:
        log.info("Flow run %s state unknown: %s", flow_run_id, exc)
        return None
    return state_type(flow_run.state)


def state_type(state) -> str | None:
    """The type of a flow run's Prefect state, e.g. `CRASHED`; None while unknown, or while
    a failure is too recent for the flow's own report of why to have arrived."""
    if state is None:
        return None
    if state.type.value == "FAILED" and datetime.now(UTC) - state.timestamp < _FAILURE_REPORT_GRACE:
        return None
    return state.type.value


def _read_flow_run(flow_run_id: str):
    from prefect import get_client

    async def read():
        async with get_client() as client:
            return await asyncio.wait_for(client.read_flow_run(flow_run_id), _STATE_TIMEOUT_S)

    return asyncio.run(read())


def outputs_prefix(analysis: Analysis) -> str:
    """Where the analysis's outputs are stored (`contract.outputs_key_prefix`)."""
    return outputs_key_prefix(analysis.id)
