"""Absolute links to the app, built from its configured public URL.

Never from the request: its Host (or X-Forwarded-Host) header is whatever the sender wrote,
and a link in an email built from it would send the recipient to the sender's site.
"""

from __future__ import annotations

from flask import current_app, url_for


def public_url(endpoint: str, **values) -> str:
    """The absolute URL of `endpoint` under POSER_PUBLIC_URL."""
    path = url_for(endpoint, _external=False, **values)
    script_root = url_for("pages.index", _external=False).rstrip("/")
    return current_app.config["PUBLIC_URL"] + path[len(script_root) :]
