"""Security headers on every response.

Pages get a Content-Security-Policy that allows only the app's own scripts and styles (no
inline code), media, images (the stills of findings) and uploads from the app and its object
storage, and no framing; a page that partners may frame (the results page) names their sites
instead. Everything else (JSON, files) gets a policy that allows nothing. All responses say
`nosniff` and send the referrer to the app's own origin only; API answers are never cached.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, Response, current_app, g, request

from webapp.models import Partner

_PERMISSIONS = "camera=(), microphone=(), geolocation=(), payment=(), usb=()"


def init_app(app: Flask) -> None:
    app.after_request(add_security_headers)


def allow_framing_by(sources: list[str]) -> None:
    """Let this request's page be framed by `sources` (CSP source expressions) instead of no one."""
    g.frame_ancestors = sources


def frame_ancestors(response, partner: Partner | None):
    """Let a page be framed by the partner's sites only (or by no site without a partner)."""
    if partner:
        allow_framing_by(
            ["'self'", *(f"{scheme}://{domain}" for domain in partner.allowed_domains for scheme in ("https", "http"))]
        )
    return response


def add_security_headers(response: Response) -> Response:
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "same-origin")
    framing = g.get("frame_ancestors")
    ancestors = " ".join(framing) if framing else "'none'"
    if response.mimetype == "text/html":
        headers["Content-Security-Policy"] = _page_policy(ancestors)
        headers.setdefault("Permissions-Policy", _PERMISSIONS)
        if not framing:
            headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    else:
        headers.setdefault("Content-Security-Policy", f"default-src 'none'; frame-ancestors {ancestors}")
    if not framing:
        headers.setdefault("X-Frame-Options", "DENY")
    if current_app.config["PUBLIC_URL"].startswith("https://"):
        headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    if request.path.startswith("/api/"):
        headers.setdefault("Cache-Control", "no-store")
    return response


def _page_policy(ancestors: str) -> str:
    storage = " ".join(_storage_sources())
    return (
        f"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob: {storage}; "
        f"media-src 'self' blob: {storage}; connect-src 'self' {storage}; font-src 'self'; "
        f"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors {ancestors}"
    ).replace("  ", " ")


def _storage_sources() -> list[str]:
    """Origins the pages load videos from and upload to: the app's public origin (local
    storage links are built from it) and the S3 endpoint's."""
    from webapp.storage import storage

    app = current_app
    if "poser_storage_sources" not in app.extensions:
        origins = {_origin(app.config["PUBLIC_URL"])}
        origins.add(_origin(storage().presign_download("uploads/csp-probe", 60)))
        app.extensions["poser_storage_sources"] = sorted(origin for origin in origins if origin)
    return app.extensions["poser_storage_sources"]


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""
