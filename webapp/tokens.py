"""Secrets of widget submissions.

The confirmation link holds a random token stored only as its hash. The visitor key (which
lets the widget read its own submission) and the results token are keyed hashes of the
analysis id: unguessable without the app's secret, and computable again whenever an email
or the widget needs them, so neither is ever stored.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from flask import current_app


def new_confirmation_token() -> str:
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """What the database keeps of a token."""
    return hashlib.sha256(token.encode()).hexdigest()


def visitor_key(analysis_id: str) -> str:
    return _keyed("poser-visitor", analysis_id)


def results_token(analysis_id: str) -> str:
    return _keyed("poser-results", analysis_id)


def matches(expected: str, sent: str) -> bool:
    return hmac.compare_digest(expected.encode(), sent.encode())


def _keyed(purpose: str, analysis_id: str) -> str:
    key = current_app.config["SECRET_KEY"].encode()
    digest = hmac.new(key, f"{purpose}:{analysis_id}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
