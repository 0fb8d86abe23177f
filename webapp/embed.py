"""The partner widget's API: a visitor on a partner's site submits a clip, confirms by email,
and follows the analysis to its results, without an account.

Endpoints under `/api/embed/<slug>/` answer only pages of the partner's allowed origins, with
CORS headers for those origins alone. A visitor's requests about their submission carry the
visitor key the submit call returned; without it an analysis id reveals nothing.

A submission names an email address but creates no account and belongs to no one until the
link mailed to that address is opened: only then does it appear under that person's analyses.
"""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, abort, current_app, g, jsonify, render_template, request, url_for
from sqlalchemy import select

from tasks.contract import AnalysisStatus
from webapp.db import db
from webapp.headers import frame_ancestors
from webapp.inputs import client_key, is_uuid, json_object
from webapp.limits import Limit, enforce
from webapp.links import public_url
from webapp.mail import send_or_abort
from webapp.models import Analysis, EmbedToken, Partner, utcnow
from webapp.orchestration import OrchestrationError, refresh_status, start_analysis
from webapp.services.accounts import email_from, user_for_email
from webapp.services.analyses import check_upload, clip_request, download_link, is_seconds, new_analysis, run_again
from webapp.services.embed_tokens import analysis_for_results_token, claim
from webapp.services.partners import SLUG, origin_allowed, parse_origin
from webapp.storage import storage
from webapp.tokens import matches, new_confirmation_token, results_token, token_hash, visitor_key

bp = Blueprint("embed", __name__, url_prefix="/api/embed")

VISITOR_HEADER = "X-Poser-Visitor"


@bp.before_request
def check_partner_origin():
    """Every `/<slug>/...` request, preflights included: the partner, and an allowed origin."""
    slug = (request.view_args or {}).get("slug")
    if slug is not None:
        g.partner, g.embed_origin = partner_for_request(slug)


@bp.after_request
def add_cors_headers(response):
    origin = g.get("embed_origin")
    if origin:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Vary"] = "Origin"
        if request.method == "OPTIONS":
            response.headers["Access-Control-Allow-Methods"] = "GET, POST"
            response.headers["Access-Control-Allow-Headers"] = f"Content-Type, {VISITOR_HEADER}"
            response.headers["Access-Control-Max-Age"] = "600"
    return response


def partner_for_request(slug: str) -> tuple[Partner, str]:
    """The partner named in the URL and the request's origin; 404 for an unknown slug, 403 for
    an origin (or, without one, a referrer) that is not on the partner's list."""
    partner = db.session.scalar(select(Partner).where(Partner.slug == slug)) if SLUG.match(slug) else None
    if partner is None:
        abort(404, "No such partner.")
    sent = request.headers.get("Origin")
    origin = parse_origin(sent) if sent else parse_origin(request.headers.get("Referer", ""), path_allowed=True)
    if not origin or not origin_allowed(partner, origin):
        abort(403, "This site is not allowed to use the Poser widget.")
    return partner, origin


@bp.get("/<slug>/config")
def config(slug: str):
    """What the widget needs to render for this partner."""
    partner = g.partner
    return jsonify(
        partner={"slug": partner.slug, "name": partner.display_name},
        max_upload_bytes=_max_upload_bytes(partner),
        max_trim_s=partner.max_trim_s,
        types=sorted(current_app.config["UPLOAD_TYPES"]),
    )


@bp.post("/<slug>/submit")
def submit(slug: str):
    """Create the visitor's analysis and an upload URL. The confirmation email goes out once
    the upload is complete."""
    partner, settings = g.partner, current_app.config
    payload = json_object()
    email = email_from(payload)
    if payload.get("trim_start_s") is None or payload.get("trim_end_s") is None:
        abort(400, f"Choose the part of the clip to analyse (at most {partner.max_trim_s:g} s).")
    clip = clip_request(payload, _max_upload_bytes(partner), partner.max_trim_s)
    hint = _skier_hint(payload.get("skier_hint"))
    client = client_key()
    window = settings["EMBED_RATE_WINDOW_S"]
    enforce(
        [
            Limit("submit-client", client, settings["EMBED_SUBMITS_PER_CLIENT"], window),
            Limit("submit-email-client", f"{email}|{client}", settings["EMBED_SUBMITS_PER_EMAIL"], window),
        ],
        "Too many clips were submitted from here; please try again in {minutes} minutes.",
    )

    # No account, and nobody's analysis, until the address's owner opens the emailed link.
    analysis = new_analysis(None, clip, partner_id=partner.id, skier_hint=hint)
    link_expiry = settings["UPLOAD_URL_TTL_S"] + settings["UPLOAD_GRACE_S"]
    db.session.add(
        EmbedToken(
            partner_id=partner.id,
            analysis_id=analysis.id,
            email=email,
            client_ip=client,
            # Replaced by the emailed token when the upload is complete.
            token_hash=token_hash(new_confirmation_token()),
            results_token_hash=token_hash(results_token(analysis.id)),
            expires_at=utcnow() + timedelta(seconds=link_expiry),
        )
    )
    db.session.commit()
    upload = storage().presign_upload(
        analysis.input_key, clip.content_type, clip.size, settings["UPLOAD_URL_TTL_S"], origin=g.embed_origin
    )
    return jsonify(analysis_id=analysis.id, visitor_key=visitor_key(analysis.id), upload=upload.as_dict()), 201


@bp.post("/<slug>/upload-complete")
def upload_complete(slug: str):
    """Check the clip arrived whole and email the visitor the link that starts the analysis."""
    analysis = _visitor_analysis(json_object().get("analysis_id"))
    if analysis.status != AnalysisStatus.AWAITING_UPLOAD:
        abort(409, "This clip has already been received. Check your email for the link that starts the analysis.")
    check_upload(analysis, storage())
    token = new_confirmation_token()
    embed = analysis.embed
    assert embed is not None, "a partner's analysis has its embed token from submission on"
    embed.token_hash = token_hash(token)
    embed.expires_at = utcnow() + timedelta(seconds=current_app.config["EMBED_CONFIRM_TTL_S"])
    analysis.status = AnalysisStatus.AWAITING_CONFIRMATION
    try:
        _send_confirmation(embed, token)
    except Exception:  # any mail failure: nothing changes, the widget may try again
        db.session.rollback()
        raise
    db.session.commit()
    return jsonify(status=analysis.status, email=embed.email), 202


@bp.get("/<slug>/status/<analysis_id>")
def status(slug: str, analysis_id: str):
    """Where the visitor's analysis stands."""
    analysis = _visitor_analysis(analysis_id)
    refresh_status(analysis)
    message = analysis.error
    if analysis.status == AnalysisStatus.NO_SKIER_FOUND:
        warnings = (analysis.results or {}).get("warnings") or ["We could not find a skier in enough of the clip."]
        message = warnings[-1]
    return jsonify(
        status=analysis.status,
        step=analysis.step,
        progress=analysis.progress,
        message=message,
        retryable=analysis.as_dict()["retryable"],
    )


@bp.get("/<slug>/feedback/<analysis_id>")
def feedback(slug: str, analysis_id: str):
    """The result card of a complete analysis."""
    analysis = _visitor_analysis(analysis_id)
    if analysis.status != AnalysisStatus.COMPLETE:
        abort(409, "The analysis has not finished yet.")
    return jsonify(_result_card(analysis))


@bp.post("/<slug>/retry/<analysis_id>")
def retry(slug: str, analysis_id: str):
    """Run the visitor's failed analysis again, when its input was not at fault."""
    analysis = _visitor_analysis(analysis_id)
    run_again(analysis)
    return jsonify(status=analysis.status), 202


@bp.get("/confirm")
def confirm():
    """The emailed link: start the analysis once, and say so on a page."""
    token = request.args.get("token", "")
    embed = db.session.scalar(select(EmbedToken).where(EmbedToken.token_hash == token_hash(token))) if token else None
    if embed is None or embed.analysis.status == AnalysisStatus.AWAITING_UPLOAD:
        return _confirm_page(
            404,
            "This link is not valid",
            "Check that you opened the whole link from the email, or upload your clip again.",
        )
    partner = embed.partner.display_name
    if embed.confirmed_at is not None:
        return _confirm_page(
            410,
            "This link has already been used",
            f"Your analysis started when the link was first opened. Follow it in the widget on "
            f"{partner}'s site; we email you when it is ready.",
            embed,
        )
    if embed.expires_at <= utcnow():
        return _confirm_page(410, "This link has expired", f"Upload your clip again in the widget on {partner}'s site.")
    if not claim(embed):
        return _confirm_page(410, "This link has already been used", "Your analysis has started.", embed)
    analysis = embed.analysis
    # The address's owner asked for it: from now on it is their analysis.
    analysis.user_id = user_for_email(embed.email).id
    try:
        analysis.flow_run_id = start_analysis(analysis, storage())
    except OrchestrationError:
        db.session.rollback()
        embed.confirmed_at = None
        db.session.commit()
        return _confirm_page(
            503,
            "We could not start your analysis",
            "Our analysis service is busy or unreachable. Please open the link again in a minute.",
        )
    analysis.status = AnalysisStatus.QUEUED
    db.session.commit()
    return _confirm_page(
        200,
        "Your analysis has started",
        f"You can follow it in the widget on {partner}'s site, or on your results page. We email you when it is ready.",
        embed,
    )


@bp.get("/results/<token>")
def results(token: str):
    """Everything about an analysis, for whoever holds its results link."""
    analysis = analysis_for_results_token(token)
    refresh_status(analysis)
    return jsonify(
        analysis=analysis.as_dict() | {"results": analysis.results},
        partner={"name": analysis.partner.display_name if analysis.partner else None},
    )


@bp.get("/results/<token>/download/<kind>")
def download(token: str, kind: str):
    """A short-lived link to one of the analysis's outputs."""
    return download_link(analysis_for_results_token(token), kind)


def _visitor_analysis(analysis_id) -> Analysis:
    """The partner's analysis with this id, if the request carries its visitor key; 404 otherwise,
    the same whether the id exists or not."""
    analysis = db.session.get(Analysis, analysis_id) if is_uuid(analysis_id) else None
    sent = request.headers.get(VISITOR_HEADER, "")
    if analysis is None or analysis.partner_id != g.partner.id or not matches(visitor_key(analysis.id), sent):
        abort(404, "No such analysis.")
    return analysis


def _send_confirmation(embed: EmbedToken, token: str) -> None:
    # The file's name is the uploader's words, not the recipient's: it stays out of this email.
    partner = embed.partner.display_name
    hours = current_app.config["EMBED_CONFIRM_TTL_S"] // 3600
    size = embed.analysis.upload.size
    size_text = f"{size / 1024**2:.1f} MB" if size >= 1024**2 else f"{max(1, size // 1024)} KB"
    link = public_url("embed.confirm", token=token)
    send_or_abort(
        embed.email,
        f"Confirm and start your {partner} ski analysis",
        f"Someone, hopefully you, uploaded a video ({size_text}) with this email address on {partner}'s "
        f"site for a Poser technique analysis.\n\n"
        f"Confirm and start:\n{link}\n\nThe link works once, for {hours} hours. If you did not upload a clip, "
        "ignore this message and the clip will be deleted.",
    )


def _confirm_page(code: int, title: str, message: str, embed: EmbedToken | None = None):
    link = url_for("pages.results", token=results_token(embed.analysis_id)) if embed and embed.confirmed_at else None
    response = current_app.make_response(
        (render_template("embed_confirm.html", title=title, message=message, results_url=link), code)
    )
    return frame_ancestors(response, None)


def _result_card(analysis: Analysis) -> dict:
    video = next((a for a in analysis.artifacts if a.kind == "video"), None)
    ttl = current_app.config["DOWNLOAD_URL_TTL_S"]
    turns = analysis.turns or []
    summary = ((analysis.results or {}).get("metrics") or {}).get("summary") or {}
    return {
        "edge_similarity": analysis.as_dict()["edge_similarity"],
        "edge_similarity_note": summary.get("overall_reason"),
        "turns_analysed": sum(1 for turn in turns if not turn.get("partial")),
        "turns_found": len(turns),
        "video_url": storage().presign_download(video.key, ttl) if video else None,
        "results_url": public_url("pages.results", token=results_token(analysis.id)),
        "warnings": (analysis.results or {}).get("warnings") or [],
        "top_finding": _top_finding(analysis),
    }


def _top_finding(analysis: Analysis) -> dict | None:
    """The first-ranked finding, in brief, for the result card."""
    findings = analysis.findings
    if not findings:
        return None
    top = findings[0]
    return {key: top.get(key) for key in ("title", "text", "try", "kind", "turn", "time_s")}


def _skier_hint(value) -> dict | None:
    """A click on the skier: `{"time_s": t, "point": [x, y]}` in the video's pixels."""
    if value is None:
        return None
    point = value.get("point") if isinstance(value, dict) else None
    numbers = [
        value.get("time_s") if isinstance(value, dict) else None,
        *(point if isinstance(point, list) and len(point) == 2 else [None, None]),
    ]
    if not all(is_seconds(n) and n >= 0 for n in numbers):
        abort(400, "skier_hint must be {time_s, point: [x, y]} with non-negative numbers.")
    return {"time_s": float(numbers[0]), "point": [float(numbers[1]), float(numbers[2])]}


def _max_upload_bytes(partner: Partner) -> int:
    return min(partner.max_upload_bytes, current_app.config["MAX_UPLOAD_BYTES"])
