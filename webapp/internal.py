"""Endpoints the analysis flow reports through: progress, outcome, scores, turns and artifacts.

Authenticated by a secret the web app and the workers share. Every call is idempotent (a
retried task sends the same request again), so repeating one changes nothing.
"""

from __future__ import annotations

import posixpath

from flask import Blueprint, abort, jsonify
from sqlalchemy import select

from tasks.contract import (
    FINAL_STATUSES,
    REPORTED_STATUSES,
    AnalysisStatus,
    ArtifactKind,
    ContractError,
    ResultsReport,
    Turn,
    check_fields,
)
from webapp.db import db
from webapp.inputs import is_uuid, json_object
from webapp.models import Analysis, Artifact
from webapp.notifications import notify_outcome
from webapp.orchestration import reopen
from webapp.workers import require_worker_secret

bp = Blueprint("internal", __name__, url_prefix="/api/internal")
bp.before_request(require_worker_secret)


@bp.put("/analyses/<analysis_id>/progress")
def put_progress(analysis_id: str):
    analysis = _analysis(analysis_id)
    payload = json_object()
    progress = payload.get("progress")
    if not isinstance(progress, (int, float)) or not 0 <= progress <= 100:
        abort(400, "progress must be a percentage.")
    if analysis.status not in FINAL_STATUSES:
        analysis.status = AnalysisStatus.PROCESSING
        analysis.step = str(payload.get("step", ""))[:20] or None
        analysis.progress = max(analysis.progress, float(progress))
        db.session.commit()
    return jsonify(analysis=analysis.as_dict())


@bp.put("/analyses/<analysis_id>/status")
def put_status(analysis_id: str):
    """Record the outcome, or with `processing` the start of an attempt of the flow run.

    An attempt that starts after the analysis ended (the run retried from the web app, or
    rerun from the Prefect UI) reopens it, so its progress shows and its new outcome is
    emailed. A cancelled analysis stays cancelled.
    """
    analysis = _analysis(analysis_id)
    payload = json_object()
    status = payload.get("status")
    if not isinstance(status, str) or status not in REPORTED_STATUSES:
        abort(400, f"status must be one of {sorted(REPORTED_STATUSES)}.")
    results = payload.get("results")
    if not isinstance(results, (dict, type(None))):
        abort(400, "results must be a JSON object.")
    if results is not None:
        _check(ResultsReport, results, "results")
    if analysis.status == AnalysisStatus.CANCELLED:
        return jsonify(analysis=analysis.as_dict())
    if status == AnalysisStatus.PROCESSING:
        if analysis.status in FINAL_STATUSES:
            reopen(analysis, AnalysisStatus.PROCESSING)
        else:
            analysis.status = AnalysisStatus.PROCESSING
        db.session.commit()
        return jsonify(analysis=analysis.as_dict())
    analysis.status = AnalysisStatus(status)
    analysis.error = str(payload["error"])[:2000] if payload.get("error") else None
    analysis.retryable = payload.get("retryable") is not False if status == AnalysisStatus.FAILED else None
    if payload.get("results") is not None:
        analysis.results = payload["results"]
    if status in (AnalysisStatus.COMPLETE, AnalysisStatus.NO_SKIER_FOUND):
        analysis.progress, analysis.step = 100.0, None
    db.session.commit()
    notify_outcome(analysis)
    return jsonify(analysis=analysis.as_dict())


@bp.put("/analyses/<analysis_id>/edge-similarity")
def put_edge_similarity(analysis_id: str):
    analysis = _analysis(analysis_id)
    payload = json_object()
    for side in ("overall", "left", "right"):
        value = payload.get(side)
        if value is not None and (not isinstance(value, (int, float)) or not 0 <= value <= 100):
            abort(400, f"{side} must be a score from 0 to 100, or null.")
        setattr(analysis, f"edge_similarity_{side}", value)
    db.session.commit()
    return jsonify(analysis=analysis.as_dict())


@bp.post("/analyses/<analysis_id>/turns")
def post_turns(analysis_id: str):
    """Replace the analysis's turns with the list sent."""
    analysis = _analysis(analysis_id)
    turns = json_object().get("turns")
    if not isinstance(turns, list) or not all(isinstance(turn, dict) for turn in turns):
        abort(400, "turns must be a list of turns.")
    for number, turn in enumerate(turns):
        _check(Turn, turn, f"turns[{number}]")
    analysis.turns = turns
    db.session.commit()
    return jsonify(turns=len(turns))


@bp.post("/artifacts")
def post_artifact():
    """Record a stored output of an analysis; the same kind again replaces the record."""
    payload = json_object()
    analysis = _analysis(payload.get("analysis_id"))
    fields = {name: payload.get(name) for name in ("kind", "key", "content_type", "sha256")}
    if not all(isinstance(value, str) and value for value in fields.values()):
        abort(400, "kind, key, content_type and sha256 are required.")
    size = payload.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size < 2**63:
        abort(400, "size must be a number of bytes.")
    if not _own_key(fields["key"], analysis.id):
        abort(400, "The key must be a plain path under the analysis's own prefix.")
    for name in ("kind", "content_type", "sha256"):
        if len(fields[name]) > 100:
            abort(400, f"{name} is too long.")
    if fields["kind"] not in set(ArtifactKind):
        abort(400, f"kind must be one of {sorted(ArtifactKind)}.")
    artifact = db.session.scalar(
        select(Artifact).where(Artifact.analysis_id == analysis.id, Artifact.kind == fields["kind"])
    ) or Artifact(analysis_id=analysis.id)
    for name, value in fields.items():
        setattr(artifact, name, value)
    artifact.size = size
    db.session.add(artifact)
    db.session.commit()
    return jsonify(artifact={"kind": artifact.kind, "key": artifact.key, "size": artifact.size}), 201


def _own_key(key: str, analysis_id: str) -> bool:
    """Whether `key` is a normalised object key under `analyses/<analysis_id>/`: no `..`, `.`
    or empty segments and no backslashes, so it cannot point at another analysis's objects."""
    return (
        len(key) <= 512
        and "\\" not in key
        and posixpath.normpath(key) == key
        and not any(part in ("", ".", "..") for part in key.split("/"))
        and key.startswith(f"analyses/{analysis_id}/")
    )


def _analysis(analysis_id) -> Analysis:
    analysis = db.session.get(Analysis, analysis_id) if is_uuid(analysis_id) else None
    if analysis is None:
        abort(404, "No such analysis.")
    return analysis


def _check(model: type[ResultsReport] | type[Turn], data: dict, what: str) -> None:
    """400 when a report does not match the contract (`tasks/contract.py`), saying where."""
    try:
        check_fields(model, data)
    except ContractError as exc:
        abort(400, f"{what} do not match the results schema: {exc}")
