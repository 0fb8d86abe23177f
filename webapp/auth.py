"""Sign-in with a code sent by email; session cookies for the browser, bearer tokens for API clients."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable
from datetime import timedelta
from functools import wraps

from flask import Blueprint, abort, current_app, g, jsonify, request, session
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import select, update

from webapp.db import db
from webapp.limits import enforce_limits
from webapp.mail import send_mail
from webapp.models import User, VerificationCode, utcnow

bp = Blueprint("auth", __name__, url_prefix="/api/auth")

_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
_UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
CSRF_HEADER = "X-CSRF-Token"


@bp.post("/request-code")
def request_code():
    """Email a 6-digit code. Answers the same whether or not the address has an account."""
    email = email_from(request.get_json(silent=True))
    config = current_app.config
    client = request.remote_addr or "unknown"
    enforce_limits(
        VerificationCode,
        [(VerificationCode.email, email, config["LOGIN_CODES_PER_EMAIL"]),
         (VerificationCode.client_ip, client, config["LOGIN_CODES_PER_CLIENT"])],
        config["LOGIN_CODE_WINDOW_S"],
        "Too many codes requested; try again in a few minutes.",
    )

    code = f"{secrets.randbelow(10**6):06d}"
    # A newer code replaces any earlier one still waiting.
    db.session.execute(
        update(VerificationCode)
        .where(VerificationCode.email == email, VerificationCode.used_at.is_(None))
        .values(used_at=utcnow())
    )
    db.session.add(
        VerificationCode(
            email=email, code_hash=_hash_code(email, code), client_ip=client,
            expires_at=utcnow() + timedelta(seconds=config["LOGIN_CODE_TTL_S"]),
        )
    )
    db.session.commit()
    minutes = config["LOGIN_CODE_TTL_S"] // 60
    send_mail(
        email,
        f"Your Poser sign-in code: {code}",
        f"Your sign-in code is {code}.\n\nIt works once, for {minutes} minutes. "
        "If you did not ask for it, ignore this message.",
    )
    return jsonify(status="sent"), 202


@bp.post("/verify-code")
def verify_code():
    """Sign in with the emailed code: sets the session cookie and returns an API token."""
    payload = request.get_json(silent=True)
    email = email_from(payload)
    code = str((payload or {}).get("code", "")).strip()
    pending = db.session.scalars(
        select(VerificationCode)
        .where(VerificationCode.email == email, VerificationCode.used_at.is_(None))
        .order_by(VerificationCode.created_at.desc())
        .limit(1)
    ).first()
    if pending is None or pending.expires_at <= utcnow():
        abort(400, "This code is invalid or has expired. Request a new one.")
    if pending.attempts >= current_app.config["LOGIN_CODE_MAX_TRIES"]:
        abort(400, "Too many wrong codes. Request a new one.")
    if not hmac.compare_digest(pending.code_hash, _hash_code(email, code)):
        pending.attempts += 1
        db.session.commit()
        left = current_app.config["LOGIN_CODE_MAX_TRIES"] - pending.attempts
        abort(400, f"Wrong code. {left} tries left." if left else "Wrong code. Request a new one.")

    user = user_for_email(email)
    user.last_login_at = pending.used_at = utcnow()
    pending.user_id = user.id
    db.session.commit()

    session.clear()
    session.permanent = True
    session["user_id"] = user.id
    session["csrf"] = secrets.token_urlsafe(32)
    return jsonify(user=user.as_dict(), token=issue_token(user), csrf_token=session["csrf"])


@bp.post("/logout")
def logout():
    session.clear()
    return jsonify(status="signed out")


@bp.get("/me")
def me():
    user = current_user()
    if user is None:
        abort(401, "Sign in first.")
    return jsonify(user=user.as_dict(), csrf_token=session.get("csrf"))


def current_user() -> User | None:
    """The signed-in user, from a bearer token or the session cookie; None if neither is valid."""
    if "current_user" not in g:
        g.current_user = _user_from_request()
    return g.current_user


def login_required(view: Callable) -> Callable:
    """401 unless signed in; cookie-authenticated writes also need the CSRF header."""

    @wraps(view)
    def wrapped(*args, **kwargs):
        if current_user() is None:
            abort(401, "Sign in first.")
        if g.auth_method == "session" and request.method in _UNSAFE_METHODS:
            sent = request.headers.get(CSRF_HEADER, "")
            if not hmac.compare_digest(sent, session.get("csrf", "")):
                abort(403, "Missing or wrong CSRF token.")
        return view(*args, **kwargs)

    return wrapped


def _user_from_request() -> User | None:
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        g.auth_method = "token"
        try:
            claims = _tokens().loads(header[7:], max_age=current_app.config["API_TOKEN_TTL_S"])
        except BadSignature:
            return None
        return db.session.get(User, claims.get("user_id"))
    g.auth_method = "session"
    user_id = session.get("user_id")
    return db.session.get(User, user_id) if user_id is not None else None


def issue_token(user: User) -> str:
    """A bearer token for API clients, valid for API_TOKEN_TTL_S."""
    return _tokens().dumps({"user_id": user.id})


def _tokens() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="poser-api-token")


def _hash_code(email: str, code: str) -> str:
    # Keyed with the app secret: a leaked table alone does not let anyone try all 10^6 codes.
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, f"{email}:{code}".encode(), hashlib.sha256).hexdigest()


def user_for_email(email: str) -> User:
    """The user with this (normalised) email, added now if there is none (not committed)."""
    user = db.session.scalar(select(User).where(User.email == email))
    if user is None:
        user = User(email=email)
        db.session.add(user)
        db.session.flush()
    return user


def email_from(payload) -> str:
    """The normalised `email` of a JSON payload, or a 400 when it is not a plausible address."""
    email = str((payload or {}).get("email", "")).strip().lower() if isinstance(payload, dict) else ""
    if len(email) > 254 or not _EMAIL.match(email):
        abort(400, "Enter a valid email address.")
    return email
