"""The `/storage/` endpoints behind local storage's signed links (`webapp/storage.py`): one
complete upload per upload link, downloads for a download link, and CORS for the page of the
origin an upload was signed for.

A local upload link carries its signature in a header (so it never reaches an access log) and
accepts one complete upload of exactly the signed size: the first to arrive whole is kept,
and every later PUT (a replay, or one after the analysis was confirmed or deleted) is refused.
"""

from __future__ import annotations

from flask import Blueprint, abort, current_app, request, send_file
from sqlalchemy import select, update

from webapp.db import db, execute
from webapp.models import Upload
from webapp.services.partners import origin_allowed
from webapp.storage import TOKEN_HEADER, LocalStorage, storage

bp = Blueprint("storage", __name__, url_prefix="/storage")


def local_storage() -> LocalStorage:
    """The local store, for the `/storage/` endpoints; 404 when objects live in S3."""
    store = storage()
    if not isinstance(store, LocalStorage):
        abort(404)
    return store


@bp.after_request
def allow_signed_origin(response):
    """CORS for a page of the origin an upload URL was signed for (the partner widget).

    The preflight cannot carry the signed header, so it is answered for the origins of the
    partner whose visitor the upload is for; the PUT itself for the origin it was signed for.
    """
    origin = request.headers.get("Origin")
    key = (request.view_args or {}).get("key")
    if not origin or key is None or request.method not in ("PUT", "OPTIONS"):
        return response
    store = storage()
    if not isinstance(store, LocalStorage):
        return response
    if request.method == "PUT":
        claims = store.claims(request.headers.get(TOKEN_HEADER, ""), key, "put", current_app.config["UPLOAD_URL_TTL_S"])
        allowed = bool(claims) and claims.get("origin") == origin
    else:
        allowed = _partner_allows(key, origin)
    if allowed:
        response.headers.update(
            {
                "Access-Control-Allow-Origin": origin,
                "Access-Control-Allow-Methods": "PUT",
                "Access-Control-Allow-Headers": f"Content-Type, {TOKEN_HEADER}",
                "Access-Control-Max-Age": "600",
                "Vary": "Origin",
            }
        )
    return response


@bp.put("/<path:key>")
def put_object(key: str):
    """Receive the one complete upload a signed link allows."""
    store = local_storage()
    claims = store.verify(request.headers.get(TOKEN_HEADER, ""), key, "put", current_app.config["UPLOAD_URL_TTL_S"])
    if request.content_type != claims["type"]:
        abort(403, "The Content-Type differs from the one the upload was signed for.")
    if request.content_length is not None and request.content_length != claims["size"]:
        abort(400, "The upload's size differs from the declared size.")
    upload = db.session.scalar(select(Upload).where(Upload.key == key))
    if upload is None:
        abort(404, "This upload link is no longer valid: its analysis was deleted or has expired.")
    if upload.status != "pending":
        abort(409, "This upload link has already been used.")
    # One byte more than signed, so that a stream of exactly the signed size reads to its end
    # (at the limit itself Werkzeug refuses every further read) and a longer one is caught.
    request.max_content_length = claims["size"] + 1
    db.session.rollback()  # no transaction held open while the bytes arrive

    def claim() -> bool:
        taken = execute(
            update(Upload).where(Upload.id == upload.id, Upload.status == "pending").values(status="received")
        ).rowcount
        db.session.commit()
        return taken == 1

    store.write(key, request.stream, claims["size"], claim)
    return "", 200


def _partner_allows(key: str, origin: str) -> bool:
    """Whether `origin` is one of the partner's sites, for an upload submitted through its widget."""
    upload = db.session.scalar(select(Upload).where(Upload.key == key))
    partner = upload.analysis.partner if upload is not None else None
    return partner is not None and origin_allowed(partner, origin)


@bp.get("/<path:key>")
def get_object(key: str):
    store = local_storage()
    store.verify(request.args.get("token", ""), key, "get", current_app.config["DOWNLOAD_URL_TTL_S"])
    path = store.path(key)
    if not path.is_file():
        abort(404, "No such object.")
    return send_file(path, as_attachment=True, download_name=path.name, conditional=True)
