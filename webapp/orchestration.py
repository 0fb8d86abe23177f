"""Starting and stopping analysis flow runs through the Prefect API."""

from __future__ import annotations

import asyncio
import logging

from flask import current_app

from webapp.db import db
from webapp.models import Analysis, AnalysisStatus
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
        "output_key_prefix": outputs_prefix(analysis),
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
    return str(flow_run.id)


def cancel_flow_run(flow_run_id: str) -> None:
    """Ask Prefect to cancel a flow run; a finished or missing run is left alone."""
    from prefect import get_client
    from prefect.states import Cancelling

    async def cancel() -> None:
        async with get_client() as client:
            flow_run = await client.read_flow_run(flow_run_id)
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
_STATE_TIMEOUT_S = 2.0


def refresh_status(analysis: Analysis) -> None:
    """Bring a queued or processing analysis up to date with its flow run's state.

    What the flow reported wins; the flow run's state fills in what it could not report
    (a crashed worker, a cancelled run). When the Prefect API is unreachable the last known
    status stands.
    """
    if not analysis.flow_run_id or analysis.status not in (AnalysisStatus.QUEUED, AnalysisStatus.PROCESSING):
        return
    state = _flow_run_state(analysis.flow_run_id)
    status = _STATUS_OF_STATE.get(state or "")
    if status is None or status == analysis.status:
        return
    if status == AnalysisStatus.QUEUED and analysis.status == AnalysisStatus.PROCESSING:
        return
    analysis.status = status
    if status == AnalysisStatus.FAILED and not analysis.error:
        analysis.error = "The analysis stopped unexpectedly. Please try again."
    db.session.commit()
    notify_outcome(analysis)


def flow_run_exists(flow_run_id: str) -> bool | None:
    """Whether Prefect knows the flow run; None when the Prefect API cannot be asked."""
    from prefect.exceptions import ObjectNotFound

    try:
        _read_flow_run(flow_run_id)
    except ObjectNotFound:
        return False
    except Exception as exc:
        log.info("Flow run %s unknown: %s", flow_run_id, exc)
        return None
    return True


def _flow_run_state(flow_run_id: str) -> str | None:
    try:
        flow_run = _read_flow_run(flow_run_id)
    except Exception as exc:
        log.info("Flow run %s state unknown: %s", flow_run_id, exc)
        return None
    return flow_run.state.type.value if flow_run.state else None


def _read_flow_run(flow_run_id: str):
    from prefect import get_client

    async def read():
        async with get_client() as client:
            return await asyncio.wait_for(client.read_flow_run(flow_run_id), _STATE_TIMEOUT_S)

    return asyncio.run(read())


def outputs_prefix(analysis: Analysis) -> str:
    return f"analyses/{analysis.id}/outputs"
