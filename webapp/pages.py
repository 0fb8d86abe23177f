"""Server-rendered pages; they read and write through the JSON API with the session cookie."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from flask import Blueprint, current_app, redirect, render_template, request, send_from_directory, url_for

from webapp.headers import frame_ancestors
from webapp.services.accounts import current_user
from webapp.services.embed_tokens import analysis_for_results_token

bp = Blueprint("pages", __name__)


def signed_in_page(view: Callable) -> Callable:
    """Send visitors who are not signed in to the sign-in page, and back here after."""

    @wraps(view)
    def wrapped(*args, **kwargs):
        if current_user() is None:
            return redirect(url_for("pages.signin", next=request.path))
        return view(*args, **kwargs)

    return wrapped


@bp.get("/")
def index():
    return render_template("index.html", max_upload_mb=current_app.config["MAX_UPLOAD_BYTES"] // (1024 * 1024))


@bp.get("/signin")
def signin():
    return render_template("signin.html", next=safe_next(request.args.get("next")))


@bp.get("/analyses")
@signed_in_page
def analyses():
    return render_template("analyses.html")


@bp.get("/analyses/<analysis_id>")
@signed_in_page
def analysis(analysis_id: str):
    return render_template("analysis.html", api=url_for("analyses.get_analysis", analysis_id=analysis_id), owner=True)


@bp.get("/results/<token>")
def results(token: str):
    """The full results of a widget submission, for whoever holds the emailed link."""
    analysis = analysis_for_results_token(token)
    page = render_template(
        "analysis.html",
        api=url_for("embed.results", token=token),
        owner=False,
        partner_name=analysis.partner.display_name if analysis.partner else None,
    )
    return frame_ancestors(current_app.make_response(page), analysis.partner)


@bp.get("/partners")
@signed_in_page
def partners():
    """The owner's page for their partners: settings and the embed snippet."""
    return render_template("partners.html")


@bp.get("/embed/<any('widget.js', 'widget.css'):name>")
def widget(name: str):
    """The widget partners load with a script tag, and its styles."""
    assert current_app.static_folder is not None
    response = send_from_directory(Path(current_app.static_folder) / "embed", name, max_age=300)
    # Partners' pages load these from their own origin.
    response.headers["Cross-Origin-Resource-Policy"] = "cross-origin"
    return response


def safe_next(target: str | None) -> str:
    """`target` if it is a path on this site, as a browser would resolve it; `/` otherwise.

    Browsers drop tabs and line breaks from URLs and read `\\` as `/`, so `/\\evil.example`
    and `/<TAB>/evil.example` are `//evil.example`: another site. Only a path that starts with
    one `/` and holds no backslash, control or space character, and that still resolves to
    this origin, is kept.
    """
    if not target or len(target) > 2000 or not target.startswith("/") or target.startswith("//"):
        return "/"
    if "\\" in target or any(
        character.isspace() or unicodedata.category(character) in ("Cc", "Cf", "Zl", "Zp") for character in target
    ):
        return "/"
    resolved = urlsplit(urljoin("https://poser.invalid/", target))
    if (resolved.scheme, resolved.netloc) != ("https", "poser.invalid") or resolved.path.startswith("//"):
        return "/"
    return target
