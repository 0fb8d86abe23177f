"""A skier's analyses: upload a clip, start its analysis, list, read, retry and delete them."""

from __future__ import annotations

import math

from flask import Blueprint, abort, current_app, jsonify
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from tasks.comparison import compare_results, history_point
from tasks.contract import AnalysisStatus
from webapp.db import db
from webapp.inputs import is_uuid, json_object, positive_int
from webapp.limits import Limit, enforce
from webapp.models import Analysis
from webapp.orchestration import OrchestrationError, refresh_status, start_analysis
from webapp.services.accounts import current_user, login_required, signed_in_user
from webapp.services.analyses import (
    check_upload,
    clip_request,
    download_link,
    new_analysis,
    remove_analysis,
    run_again,
)
from webapp.storage import storage

bp = Blueprint("analyses", __name__, url_prefix="/api/analyses")

_MAX_PER_PAGE = 100
_MAX_PAGE = 1_000_000
# The progress chart shows at most this many of the latest analyses.
_HISTORY_LENGTH = 100


@bp.post("/create-upload")
@login_required
def create_upload():
    """Validate the clip's name, type, size and trim window; create the analysis and an upload URL."""
    config = current_app.config
    clip = clip_request(json_object(), config["MAX_UPLOAD_BYTES"], config["MAX_TRIM_S"])
    user, window = current_user(), config["UPLOAD_QUOTA_WINDOW_S"]
    enforce(
        [
            Limit("uploads-user", user.id, config["UPLOADS_PER_USER"], window),
            Limit("upload-bytes-user", user.id, config["UPLOAD_BYTES_PER_USER"], window, cost=clip.size),
        ],
        f"You have reached your upload quota ({config['UPLOADS_PER_USER']} clips or "
        f"{config['UPLOAD_BYTES_PER_USER'] / 1024**3:g} GB per {window // 3600} hours); "
        "try again in {minutes} minutes.",
    )
    analysis = new_analysis(user, clip)
    db.session.commit()
    upload = storage().presign_upload(analysis.input_key, clip.content_type, clip.size, config["UPLOAD_URL_TTL_S"])
    return jsonify(analysis=analysis.as_dict(), upload=upload.as_dict()), 201


@bp.post("/<analysis_id>/confirm-upload")
@login_required
def confirm_upload(analysis_id: str):
    """Check the clip arrived whole, record its sha256 and start the analysis."""
    analysis = _own_analysis(analysis_id)
    if analysis.status != AnalysisStatus.AWAITING_UPLOAD:
        abort(409, "This analysis has already started.")
    store = storage()
    check_upload(analysis, store)
    try:
        analysis.flow_run_id = start_analysis(analysis, store)
    except OrchestrationError:
        db.session.rollback()
        abort(503, "The analysis service is not reachable right now. Confirm again in a minute.")
    analysis.status = AnalysisStatus.QUEUED
    db.session.commit()
    return jsonify(analysis=analysis.as_dict()), 202


@bp.post("/<analysis_id>/retry")
@login_required
def retry_analysis(analysis_id: str):
    """Run a failed analysis's flow run again; it resumes after its last completed step."""
    analysis = _own_analysis(analysis_id)
    run_again(analysis)
    return jsonify(analysis=analysis.as_dict()), 202


@bp.get("")
@login_required
def list_analyses():
    """The signed-in user's analyses, newest first, `per_page` at a time."""
    page = positive_int("page", 1, _MAX_PAGE)
    per_page = min(positive_int("per_page", 20, _MAX_PAGE), _MAX_PER_PAGE)
    mine = select(Analysis).where(Analysis.user_id == signed_in_user().id)
    total = db.session.scalar(select(func.count()).select_from(mine.subquery()))
    rows = db.session.scalars(
        mine.options(selectinload(Analysis.upload), selectinload(Analysis.artifacts))
        .order_by(Analysis.created_at.desc(), Analysis.id)
        .offset((page - 1) * per_page)
        .limit(per_page)
    ).all()
    return jsonify(
        analyses=[analysis.as_dict() for analysis in rows],
        page=page,
        per_page=per_page,
        total=total,
        pages=math.ceil(total / per_page) if total else 0,
    )


@bp.get("/history")
@login_required
def history():
    """The signed-in user's complete analyses, oldest first (the latest `_HISTORY_LENGTH`),
    each with its headline score and per-side means, each with its interval."""
    rows = db.session.scalars(
        select(Analysis)
        .where(Analysis.user_id == signed_in_user().id, Analysis.status == AnalysisStatus.COMPLETE)
        .options(selectinload(Analysis.upload))
        .order_by(Analysis.created_at.desc(), Analysis.id)
        .limit(_HISTORY_LENGTH)
    ).all()
    points = []
    for analysis in reversed(rows):
        point = history_point(analysis.results)
        if point is not None:
            points.append(
                {
                    "id": analysis.id,
                    "file_name": analysis.upload.file_name if analysis.upload else None,
                    "created_at": analysis.created_at.isoformat(),
                }
                | point
            )
    return jsonify(analyses=points)


@bp.get("/<analysis_id>")
@login_required
def get_analysis(analysis_id: str):
    """Status (refreshed from the flow run), progress, results summary and artifact list."""
    analysis = _own_analysis(analysis_id)
    refresh_status(analysis)
    return jsonify(analysis=analysis.as_dict() | {"results": analysis.results})


@bp.get("/<analysis_id>/edge-similarity")
@login_required
def get_edge_similarity(analysis_id: str):
    analysis = _own_analysis(analysis_id)
    summary = (analysis.results or {}).get("metrics", {}) or {}
    return jsonify(edge_similarity=analysis.as_dict()["edge_similarity"], summary=summary.get("summary"))


@bp.get("/<analysis_id>/turns")
@login_required
def get_turns(analysis_id: str):
    return jsonify(turns=_own_analysis(analysis_id).turns or [])


@bp.get("/<analysis_id>/findings")
@login_required
def get_findings(analysis_id: str):
    """The ranked findings: sentence, evidence, moment, what to try, and the still's download kind."""
    analysis = _own_analysis(analysis_id)
    if analysis.status != AnalysisStatus.COMPLETE:
        abort(409, "This analysis has no findings: it is not complete.")
    return jsonify(findings=analysis.findings)


@bp.get("/<analysis_id>/compare/<other_id>")
@login_required
def compare(analysis_id: str, other_id: str):
    """Two of the user's complete analyses side by side, from the first to the second: each
    score's change, or "no measurable change" when the intervals overlap, and the findings."""
    first, second = _own_analysis(analysis_id), _own_analysis(other_id)
    if first.id == second.id:
        abort(400, "Choose two different analyses to compare.")
    for analysis in (first, second):
        if analysis.status != AnalysisStatus.COMPLETE or not (analysis.results or {}).get("metrics"):
            abort(409, "Both analyses must be complete to compare them.")
    return jsonify(
        first=_compared(first), second=_compared(second), **compare_results(first.results or {}, second.results or {})
    )


def _compared(analysis: Analysis) -> dict:
    return {
        "id": analysis.id,
        "file_name": analysis.upload.file_name if analysis.upload else None,
        "created_at": analysis.created_at.isoformat(),
    }


@bp.get("/<analysis_id>/download/<kind>")
@login_required
def download(analysis_id: str, kind: str):
    """A short-lived link to one of the analysis's outputs."""
    return download_link(_own_analysis(analysis_id), kind)


@bp.delete("/<analysis_id>")
@login_required
def delete_analysis(analysis_id: str):
    """Cancel the analysis if it runs, delete its stored files and its rows."""
    remove_analysis(_own_analysis(analysis_id))
    db.session.commit()
    return "", 204


def _own_analysis(analysis_id: str) -> Analysis:
    """The analysis if it belongs to the signed-in user; 404 otherwise, so ids reveal nothing."""
    analysis = db.session.get(Analysis, analysis_id) if is_uuid(analysis_id) else None
    if analysis is None or analysis.user_id != signed_in_user().id:
        abort(404, "No such analysis.")
    return analysis
