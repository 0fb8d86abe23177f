"""Server-rendered pages; they read and write through the JSON API with the session cookie."""

from __future__ import annotations

from flask import Blueprint, current_app, redirect, render_template, request, url_for

from webapp.auth import current_user

bp = Blueprint("pages", __name__)


@bp.get("/")
def index():
    return render_template("index.html", max_upload_mb=current_app.config["MAX_UPLOAD_BYTES"] // (1024 * 1024))


@bp.get("/signin")
def signin():
    return render_template("signin.html", next=_safe_next(request.args.get("next")))


@bp.get("/analyses")
def analyses():
    if current_user() is None:
        return redirect(url_for("pages.signin", next=request.path))
    return render_template("analyses.html")


@bp.get("/analyses/<analysis_id>")
def analysis(analysis_id: str):
    if current_user() is None:
        return redirect(url_for("pages.signin", next=request.path))
    return render_template("analysis.html", analysis_id=analysis_id)


def _safe_next(target: str | None) -> str:
    # Only same-site paths, so the sign-in page cannot bounce users to another site.
    return target if target and target.startswith("/") and not target.startswith("//") else "/"
