"""A skier's analyses: upload a clip, start its analysis, list, read, retry and delete them."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import PurePosixPath

from flask import Blueprint, abort, current_app, jsonify
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from tasks.comparison import compare_results, history_point
from tasks.contract import AnalysisStatus
from webapp.auth import current_user, login_required
from webapp.db import db
from webapp.inputs import is_uuid, json_object, positive_int, text
from webapp.limits import Limit, enforce
from webapp.models import Analysis, Upload, User
from webapp.orchestration import (
    OrchestrationError,
    cancel_flow_run,
    outputs_prefix,
    refresh_status,
    reopen,
    retry_flow_run,
    start_analysis,
)
from webapp.storage import LocalStorage, S3Storage, storage

bp = Blueprint("analyses", __name__, url_prefix="/api/analyses")

_MIN_TRIM_S = 0.5
_MAX_PER_PAGE = 100
_MAX_PAGE = 1_000_000
_MAX_SECONDS = 1e6
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
        [Limit("uploads-user", user.id, config["UPLOADS_PER_USER"], window),
         Limit("upload-bytes-user", user.id, config["UPLOAD_BYTES_PER_USER"], window, cost=clip.size)],
        f"You have reached your upload quota ({config['UPLOADS_PER_USER']} clips or "
        f"{config['UPLOAD_BYTES_PER_USER'] / 1024**3:g} GB per {window // 3600} hours); "
        "try again in {minutes} minutes.",
    )
    analysis = new_analysis(user, clip)
    db.session.commit()
    upload = storage().presign_upload(analysis.input_key, clip.content_type, clip.size, config["UPLOAD_URL_TTL_S"])
    return jsonify(analysis=analysis.as_dict(), upload=upload.as_dict()), 201


@dataclass(frozen=True)
class ClipRequest:
    """A validated request to upload a clip for analysis."""

    file_name: str
    content_type: str
    extension: str
    size: int
    trim_start_s: float | None
    trim_end_s: float | None


def clip_request(payload: dict, max_bytes: int, max_trim_s: float) -> ClipRequest:
    """The clip described by `payload` (filename, content_type, size, trim), or the HTTP error
    that says what is wrong with it."""
    types = current_app.config["UPLOAD_TYPES"]
    file_name = text(payload, "filename", "the file's name", 255)
    content_type = payload.get("content_type")
    extension = types.get(content_type) if isinstance(content_type, str) else None
    if "/" in file_name or "\\" in file_name:
        abort(400, "Give the file's name (at most 255 characters) without a folder.")
    if extension is None or PurePosixPath(file_name.lower()).suffix not in set(types.values()):
        abort(415, "Upload an MP4, MOV or WebM video.")
    size = payload.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
        abort(400, "Give the file's size in bytes.")
    if size > max_bytes:
        abort(413, f"The file is too large; the limit is {max_bytes // (1024 * 1024)} MB.")
    trim_start, trim_end = _trim_window(payload, max_trim_s)
    return ClipRequest(file_name, content_type, extension, size, trim_start, trim_end)


def new_analysis(user: User | None, clip: ClipRequest, **fields) -> Analysis:
    """Add an analysis of `clip`, awaiting its upload, for `user` (not committed); a widget
    submission has no user until its visitor confirms it."""
    analysis = Analysis(user_id=user.id if user else None, trim_start_s=clip.trim_start_s, trim_end_s=clip.trim_end_s, input_key="", **fields)
    db.session.add(analysis)
    db.session.flush()
    analysis.input_key = f"uploads/{analysis.id}/input{clip.extension}"
    analysis.upload = Upload(key=analysis.input_key, file_name=clip.file_name, size=clip.size, content_type=clip.content_type)
    return analysis


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
    mine = select(Analysis).where(Analysis.user_id == current_user().id)
    total = db.session.scalar(select(func.count()).select_from(mine.subquery()))
    rows = db.session.scalars(
        mine.options(selectinload(Analysis.upload), selectinload(Analysis.artifacts))
        .order_by(Analysis.created_at.desc(), Analysis.id)
        .offset((page - 1) * per_page)
        .limit(per_page)
    ).all()
    return jsonify(
        analyses=[analysis.as_dict() for analysis in rows],
        page=page, per_page=per_page, total=total, pages=math.ceil(total / per_page) if total else 0,
    )


@bp.get("/history")
@login_required
def history():
    """The signed-in user's complete analyses, oldest first (the latest `_HISTORY_LENGTH`),
    each with its headline score and per-side means, each with its interval."""
    rows = db.session.scalars(
        select(Analysis)
        .where(Analysis.user_id == current_user().id, Analysis.status == AnalysisStatus.COMPLETE)
        .options(selectinload(Analysis.upload))
        .order_by(Analysis.created_at.desc(), Analysis.id)
        .limit(_HISTORY_LENGTH)
    ).all()
    points = []
    for analysis in reversed(rows):
        point = history_point(analysis.results)
        if point is not None:
            points.append({"id": analysis.id, "file_name": analysis.upload.file_name if analysis.upload else None,
                           "created_at": analysis.created_at.isoformat()} | point)
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
        first=_compared(first), second=_compared(second), **compare_results(first.results, second.results)
    )


def _compared(analysis: Analysis) -> dict:
    return {"id": analysis.id, "file_name": analysis.upload.file_name if analysis.upload else None,
            "created_at": analysis.created_at.isoformat()}


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


def remove_analysis(analysis: Analysis) -> None:
    """Cancel the analysis's flow run if it runs, delete its stored files and its rows (not
    committed)."""
    if analysis.flow_run_id and analysis.status in (AnalysisStatus.QUEUED, AnalysisStatus.PROCESSING):
        cancel_flow_run(analysis.flow_run_id)
    store = storage()
    store.delete_prefix(f"uploads/{analysis.id}")
    store.delete_prefix(outputs_prefix(analysis).rsplit("/", 1)[0])
    db.session.delete(analysis)


def download_link(analysis: Analysis, kind: str):
    """The answer with a short-lived link to the analysis's output of `kind`; 404 without one."""
    artifact = next((a for a in analysis.artifacts if a.kind == kind), None)
    if artifact is None:
        abort(404, "This analysis has no such output.")
    ttl = current_app.config["DOWNLOAD_URL_TTL_S"]
    return jsonify(url=storage().presign_download(artifact.key, ttl), expires_in=ttl, size=artifact.size)


def run_again(analysis: Analysis) -> None:
    """Reschedule a failed analysis's flow run and mark the analysis queued; the HTTP error
    that says why not otherwise."""
    if analysis.status != AnalysisStatus.FAILED or not analysis.flow_run_id:
        abort(409, "Only a failed analysis can be tried again.")
    if analysis.retryable is False:
        abort(409, "This clip cannot be analysed as it is; running it again would fail the same way.")
    try:
        rescheduled = retry_flow_run(analysis.flow_run_id)
    except OrchestrationError:
        abort(503, "The analysis service is not reachable right now. Try again in a minute.")
    if not rescheduled:
        abort(409, "This analysis cannot be run again. Upload the clip again.")
    reopen(analysis, AnalysisStatus.QUEUED)
    db.session.commit()


def check_upload(analysis: Analysis, store: LocalStorage | S3Storage) -> None:
    """Check the clip arrived whole (409 otherwise), seal it and record its sha256.

    Sealed, the clip can no longer change: the local store's upload link refuses every PUT
    once one complete upload arrived; an S3 link cannot be withdrawn, so the clip is copied
    to a key no link points to, and that copy is what is analysed.
    """
    upload = analysis.upload
    if isinstance(store, LocalStorage) and upload.status != "received":
        abort(409, "The upload has not arrived. Upload the file, then confirm.")
    size = store.size(upload.key)
    if size is None:
        abort(409, "The upload has not arrived. Upload the file, then confirm.")
    if size != upload.size:
        abort(409, f"The upload holds {size} bytes but {upload.size} were declared. Upload it again.")
    if isinstance(store, S3Storage):
        sealed = f"uploads/{analysis.id}/sealed{PurePosixPath(upload.key).suffix}"
        store.copy(upload.key, sealed)
        if store.size(sealed) != upload.size:
            abort(409, "The upload changed while it was being checked. Upload it again.")
        analysis.input_key = sealed
    upload.sha256 = store.sha256(analysis.input_key)
    upload.status = "confirmed"


def _own_analysis(analysis_id: str) -> Analysis:
    """The analysis if it belongs to the signed-in user; 404 otherwise, so ids reveal nothing."""
    analysis = db.session.get(Analysis, analysis_id) if is_uuid(analysis_id) else None
    if analysis is None or analysis.user_id != current_user().id:
        abort(404, "No such analysis.")
    return analysis


def _trim_window(payload: dict, max_length: float) -> tuple[float | None, float | None]:
    values = []
    for name in ("trim_start_s", "trim_end_s"):
        value = payload.get(name)
        if value is not None and not is_seconds(value):
            abort(400, f"{name} must be a number of seconds.")
        values.append(None if value is None else float(value))
    start, end = values
    if (start is not None and start < 0) or (end is not None and end < 0):
        abort(400, "Trim times cannot be negative.")
    if start is not None and end is not None:
        if end - start < _MIN_TRIM_S:
            abort(400, f"The trim window must be at least {_MIN_TRIM_S} s long, with its end after its start.")
        if end - start > max_length:
            abort(400, f"The trim window is longer than the {max_length:.0f} s limit.")
    return start, end


def is_seconds(value) -> bool:
    """Whether `value` is a JSON number usable as seconds (finite, at most a day and a half
    in either direction; a huge integer would not even convert to a float)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value) <= _MAX_SECONDS
