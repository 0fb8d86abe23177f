"""Who is signed in: the user of a request, loaded once per request from a bearer token or the
session cookie, and the checks a view makes of them.

`load_user` runs before every request (`init_app`) and sets `g.user` (None when nobody is
signed in), `g.auth_session` (the live `sessions.AuthSession`) and `g.auth_method` (`token` or
`session`). Cookie-authenticated writes need the CSRF header; bearer requests do not.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from functools import wraps
from typing import Any, ParamSpec, TypeVar

from flask import Flask, abort, current_app, g, request, session
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from webapp import sessions
from webapp.db import db
from webapp.inputs import email_address
from webapp.models import User

CSRF_HEADER = "X-CSRF-Token"
_UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}

P = ParamSpec("P")
R = TypeVar("R")


def init_app(app: Flask) -> None:
    """Load the signed-in user before every request, and offer it to every template."""
    app.before_request(load_user)
    app.context_processor(lambda: {"current_user": current_user()})


def load_user() -> None:
    """Set `g.user`, `g.auth_session` and `g.auth_method` from the request's bearer token or
    session cookie."""
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        g.auth_method = "token"
        row = sessions.find(header[7:].strip(), sessions.BEARER)
    else:
        g.auth_method = "session"
        sid = session.get("sid")
        row = sessions.find(sid, sessions.COOKIE) if isinstance(sid, str) else None
    g.auth_session = row
    g.user = db.session.get(User, row.user_id) if row is not None else None


def current_user() -> User | None:
    """The signed-in user, or None."""
    user: User | None = g.get("user")
    return user


def login_required(view: Callable[P, R]) -> Callable[P, R]:
    """401 unless signed in; cookie-authenticated writes also need the CSRF header."""

    @wraps(view)
    def wrapped(*args: P.args, **kwargs: P.kwargs) -> R:
        signed_in_user()
        return view(*args, **kwargs)

    return wrapped


def signed_in_user() -> User:
    """The signed-in user, after the CSRF check of a cookie write; 401 or 403 otherwise."""
    user = current_user()
    if user is None:
        abort(401, "Sign in first.")
    check_csrf()
    return user


def check_csrf() -> None:
    """403 for a cookie-authenticated write without the session's CSRF token."""
    if g.get("auth_method") == "session" and request.method in _UNSAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER, "")
        if not hmac.compare_digest(sent.encode(), session.get("csrf", "").encode()):
            abort(403, "Missing or wrong CSRF token.")


def issue_token(user: User) -> str:
    """A new bearer token for `user`, valid for API_TOKEN_TTL_S and renewable until
    API_TOKEN_MAX_AGE_S from now (added to the session, not committed)."""
    config = current_app.config
    _, token = sessions.start(user, sessions.BEARER, config["API_TOKEN_TTL_S"], config["API_TOKEN_MAX_AGE_S"])
    return token


def user_for_email(email: str) -> User:
    """The user with this (normalised) email, added now if there is none (not committed)."""
    user = db.session.scalar(select(User).where(User.email == email))
    if user is None:
        try:
            with db.session.begin_nested():
                user = User(email=email)
                db.session.add(user)
        except IntegrityError:  # a parallel request added the same address first
            user = db.session.scalar(select(User).where(User.email == email))
    assert user is not None
    return user


def email_from(payload: dict[str, Any]) -> str:
    """The normalised `email` of a JSON payload, or a 400 when it is not a valid address."""
    return email_address(payload.get("email") if isinstance(payload, dict) else None)
