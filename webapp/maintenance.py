"""Housekeeping, run on a schedule by the `maintenance` flow through the internal API."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from flask import Blueprint, current_app, jsonify
from sqlalchemy import delete, select

from tasks.contract import AnalysisStatus
from webapp import limits, sessions
from webapp.db import db, execute
from webapp.models import Analysis, EmbedToken, VerificationCode, utcnow
from webapp.notifications import notify_outcome, pending_notifications
from webapp.orchestration import RUNNING_STATUSES, apply_flow_run_state, flow_run_states
from webapp.storage import storage
from webapp.workers import require_worker_secret

bp = Blueprint("maintenance", __name__, url_prefix="/api/internal")
bp.before_request(require_worker_secret)


@bp.post("/maintenance")
def run_maintenance():
    """Expire stale uploads and embed tokens, remove orphaned objects, bring running analyses
    up to date with their flow runs (failing those whose run crashed or is gone), send
    outcome emails that could not be sent before, and drop ended sessions, old sign-in codes
    and finished rate-limit windows."""
    lost_runs, refreshed_runs = refresh_running_analyses()
    return jsonify(
        expired_uploads=expire_unconfirmed_uploads(),
        expired_embed_tokens=expire_embed_tokens(),
        orphaned_objects=remove_orphaned_objects(),
        lost_runs=lost_runs,
        refreshed_runs=refreshed_runs,
        outcomes_mailed=sum(notify_outcome(analysis) for analysis in pending_notifications()),
        ended_sessions=sessions.remove_ended(_KEEP_ENDED_S),
        old_sign_in_codes=remove_old_codes(),
        old_rate_limits=limits.remove_expired(_LONGEST_WINDOW_S),
    )


# Ended sessions and used codes stay a day, for the security log's sake; every limit window
# is at most a day long.
_KEEP_ENDED_S = 24 * 3600
_LONGEST_WINDOW_S = 24 * 3600


def remove_old_codes() -> int:
    """Delete sign-in codes that expired more than a day ago."""
    removed = execute(
        delete(VerificationCode).where(VerificationCode.expires_at < utcnow() - timedelta(seconds=_KEEP_ENDED_S))
    ).rowcount
    db.session.commit()
    return removed


def expire_unconfirmed_uploads() -> int:
    """Delete analyses still awaiting their upload after the upload link expired, with any
    partial object."""
    cutoff = utcnow() - timedelta(seconds=current_app.config["UPLOAD_URL_TTL_S"] + current_app.config["UPLOAD_GRACE_S"])
    stale = db.session.scalars(
        select(Analysis).where(Analysis.status == AnalysisStatus.AWAITING_UPLOAD, Analysis.created_at < cutoff)
    ).all()
    return _delete_with_clips(stale)


def expire_embed_tokens() -> int:
    """Delete widget submissions whose confirmation link expired unused, with their clips."""
    stale = db.session.scalars(
        select(Analysis)
        .join(EmbedToken, EmbedToken.analysis_id == Analysis.id)
        .where(EmbedToken.confirmed_at.is_(None), EmbedToken.expires_at < utcnow())
    ).all()
    return _delete_with_clips(stale)


def _delete_with_clips(analyses: Sequence[Analysis]) -> int:
    """Delete analyses that never started, with their uploaded clips; returns how many."""
    store = storage()
    for analysis in analyses:
        store.delete_prefix(f"uploads/{analysis.id}")
        db.session.delete(analysis)
    db.session.commit()
    return len(analyses)


def remove_orphaned_objects() -> int:
    """Delete stored objects of analyses that no longer exist (e.g. a delete interrupted midway)."""
    store = storage()
    stored = store.analysis_ids()
    known = set(db.session.scalars(select(Analysis.id).where(Analysis.id.in_(stored))).all()) if stored else set()
    orphans = stored - known
    for analysis_id in orphans:
        store.delete_prefix(f"uploads/{analysis_id}")
        store.delete_prefix(f"analyses/{analysis_id}")
    return len(orphans)


def refresh_running_analyses() -> tuple[int, int]:
    """Bring every queued or processing analysis up to date with its flow run's state, as
    reading it does: a run that crashed (e.g. marked so by crash detection when its worker
    died), failed or was cancelled without reporting ends its analysis. Analyses whose flow
    run Prefect no longer has are failed. Nothing changes when Prefect cannot be asked.

    Returns how many analyses were lost and how many changed status.
    """
    running = db.session.scalars(
        select(Analysis).where(Analysis.status.in_(RUNNING_STATUSES), Analysis.flow_run_id.is_not(None))
    ).all()
    states = flow_run_states([str(analysis.flow_run_id) for analysis in running]) if running else {}
    if states is None:
        return 0, 0
    lost = [analysis for analysis in running if analysis.flow_run_id not in states]
    for analysis in lost:
        analysis.status = AnalysisStatus.FAILED
        analysis.error = "The analysis was lost on our side. Please upload the clip again."
    db.session.commit()
    known = [analysis for analysis in running if analysis.flow_run_id in states]
    return len(lost), sum(apply_flow_run_state(analysis, states[str(analysis.flow_run_id)]) for analysis in known)
