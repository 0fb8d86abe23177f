"""Analyses as the blueprints share them: a clip to upload checked and recorded, its upload
sealed, a failed run started again, an analysis removed with its files, a link to an output."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from flask import Response, abort, current_app, jsonify

from tasks.contract import AnalysisStatus
from webapp.db import db
from webapp.inputs import text
from webapp.models import Analysis, Upload, User
from webapp.orchestration import OrchestrationError, cancel_flow_run, outputs_prefix, reopen, retry_flow_run
from webapp.storage import LocalStorage, S3Storage, storage

_MIN_TRIM_S = 0.5
_MAX_SECONDS = 1e6


@dataclass(frozen=True)
class ClipRequest:
    """A validated request to upload a clip for analysis."""

    file_name: str
    content_type: str
    extension: str
    size: int
    trim_start_s: float | None
    trim_end_s: float | None


def clip_request(payload: dict[str, Any], max_bytes: int, max_trim_s: float) -> ClipRequest:
    """The clip described by `payload` (filename, content_type, size, trim), or the HTTP error
    that says what is wrong with it."""
    types = current_app.config["UPLOAD_TYPES"]
    file_name = text(payload, "filename", "the file's name", 255) or ""
    content_type = payload.get("content_type")
    extension = types.get(content_type) if isinstance(content_type, str) else None
    if "/" in file_name or "\\" in file_name:
        abort(400, "Give the file's name (at most 255 characters) without a folder.")
    if extension is None or PurePosixPath(file_name.lower()).suffix not in set(types.values()):
        abort(415, "Upload an MP4, MOV or WebM video.")
    assert isinstance(content_type, str)
    size = payload.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
        abort(400, "Give the file's size in bytes.")
    if size > max_bytes:
        abort(413, f"The file is too large; the limit is {max_bytes // (1024 * 1024)} MB.")
    trim_start, trim_end = _trim_window(payload, max_trim_s)
    return ClipRequest(file_name, content_type, extension, size, trim_start, trim_end)


def new_analysis(user: User | None, clip: ClipRequest, **fields: Any) -> Analysis:
    """Add an analysis of `clip`, awaiting its upload, for `user` (not committed); a widget
    submission has no user until its visitor confirms it."""
    analysis = Analysis(
        user_id=user.id if user else None,
        trim_start_s=clip.trim_start_s,
        trim_end_s=clip.trim_end_s,
        input_key="",
        **fields,
    )
    db.session.add(analysis)
    db.session.flush()
    analysis.input_key = f"uploads/{analysis.id}/input{clip.extension}"
    analysis.upload = Upload(
        key=analysis.input_key, file_name=clip.file_name, size=clip.size, content_type=clip.content_type
    )
    return analysis


def remove_analysis(analysis: Analysis) -> None:
    """Cancel the analysis's flow run if it runs, delete its stored files and its rows (not
    committed)."""
    if analysis.flow_run_id and analysis.status in (AnalysisStatus.QUEUED, AnalysisStatus.PROCESSING):
        cancel_flow_run(analysis.flow_run_id)
    store = storage()
    store.delete_prefix(f"uploads/{analysis.id}")
    store.delete_prefix(outputs_prefix(analysis).rsplit("/", 1)[0])
    db.session.delete(analysis)


def download_link(analysis: Analysis, kind: str) -> Response:
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


def _trim_window(payload: dict[str, Any], max_length: float) -> tuple[float | None, float | None]:
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


def is_seconds(value: object) -> bool:
    """Whether `value` is a JSON number usable as seconds (finite, at most a day and a half
    in either direction; a huge integer would not even convert to a float)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value) <= _MAX_SECONDS
