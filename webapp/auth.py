"""Sign-in with a code sent by email; session cookies for the browser, bearer tokens for API clients.

Codes: each client asking for a code for an address gets its own (a newer one from the same
client replaces it), so nobody else can replace or use up the code someone is about to type.
A code may be checked `LOGIN_CODE_MAX_TRIES` times from the client that asked for it, and as
many times from all other clients together; each check is reserved in the database before the
code is compared, so parallel guesses cannot exceed that. Every failure answers alike, whether
or not a code was pending.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from datetime import timedelta
from typing import cast

from flask import Blueprint, abort, current_app, g, jsonify, session
from sqlalchemy import Table, and_, case, or_, update

from webapp import sessions
from webapp.db import db, execute
from webapp.inputs import client_key, json_object
from webapp.limits import Limit, enforce
from webapp.mail import send_or_abort
from webapp.models import VerificationCode, utcnow
from webapp.services.accounts import (
    check_csrf,
    current_user,
    email_from,
    issue_token,
    signed_in_user,
    user_for_email,
)

bp = Blueprint("auth", __name__, url_prefix="/api/auth")
security_log = logging.getLogger("poser.security")

_CODE = re.compile(r"^[0-9]{6}$")
INVALID_CODE = "This code is not valid. Check the newest email from Poser, or request a new code."


@bp.post("/request-code")
def request_code():
    """Email a 6-digit code. Answers the same whether or not the address has an account."""
    email = email_from(json_object())
    config = current_app.config
    client = client_key()
    window = config["LOGIN_CODE_WINDOW_S"]
    enforce(
        [
            Limit("code-client", client, config["LOGIN_CODES_PER_CLIENT"], window),
            Limit("code-email-client", f"{email}|{client}", config["LOGIN_CODES_PER_EMAIL"], window),
        ],
        "Too many codes requested; try again in {minutes} minutes.",
    )

    code = f"{secrets.randbelow(10**6):06d}"
    # A newer code replaces the one this client asked for before; other clients' codes stay.
    db.session.execute(
        update(VerificationCode)
        .where(
            VerificationCode.email == email, VerificationCode.client_ip == client, VerificationCode.used_at.is_(None)
        )
        .values(used_at=utcnow())
    )
    db.session.add(
        VerificationCode(
            email=email,
            code_hash=_hash_code(email, code),
            client_ip=client,
            expires_at=utcnow() + timedelta(seconds=config["LOGIN_CODE_TTL_S"]),
        )
    )
    db.session.commit()
    minutes = config["LOGIN_CODE_TTL_S"] // 60
    send_or_abort(
        email,
        f"Your Poser sign-in code: {code}",
        f"Your sign-in code is {code}.\n\nIt works once, for {minutes} minutes. "
        "If you did not ask for it, ignore this message.",
    )
    return jsonify(status="sent"), 202


@bp.post("/verify-code")
def verify_code():
    """Sign in with the emailed code: sets the session cookie and returns a bearer token."""
    payload = json_object()
    email = email_from(payload)
    code = payload.get("code")
    code = code.strip() if isinstance(code, str) else ""
    if not _CODE.match(code):
        abort(400, "Enter the 6-digit code from the email.")
    config = current_app.config
    client = client_key()
    enforce(
        [Limit("verify-client", client, config["LOGIN_VERIFY_PER_CLIENT"], config["LOGIN_CODE_WINDOW_S"])],
        "Too many sign-in attempts from here; try again in {minutes} minutes.",
    )

    candidates = _reserve_checks(email, client)
    sent = _hash_code(email, code)
    matched = next((code_id for code_id, stored in candidates if hmac.compare_digest(stored, sent)), None)
    security_log.info(
        "sign-in code check: client=%s codes_checked=%d matched=%s", client, len(candidates), matched is not None
    )
    if matched is None or not _use(matched):
        abort(400, INVALID_CODE)

    user = user_for_email(email)
    user.last_login_at = utcnow()
    db.session.execute(update(VerificationCode).where(VerificationCode.id == matched).values(user_id=user.id))
    # The address is proven; codes other clients asked for meanwhile are of no further use.
    db.session.execute(
        update(VerificationCode)
        .where(VerificationCode.email == email, VerificationCode.used_at.is_(None))
        .values(used_at=utcnow())
    )
    _, cookie_secret = sessions.start(user, sessions.COOKIE, int(config["PERMANENT_SESSION_LIFETIME"]))
    token = issue_token(user)
    db.session.commit()

    session.clear()
    session.permanent = True
    session["sid"] = cookie_secret
    session["csrf"] = secrets.token_urlsafe(32)
    return jsonify(
        user=user.as_dict(), token=token, token_expires_in=config["API_TOKEN_TTL_S"], csrf_token=session["csrf"]
    )


def _reserve_checks(email: str, client: str) -> list[tuple[int, str]]:
    """Count one check against every live code of `email` that may still be checked from
    `client`, and return those codes `(id, code_hash)`. The UPDATE re-checks the counts under
    the row lock, so concurrent requests never get more checks than allowed."""
    limit = current_app.config["LOGIN_CODE_MAX_TRIES"]
    table = VerificationCode.__table__.c
    own = table.client_ip == client
    rows = db.session.execute(
        update(cast(Table, VerificationCode.__table__))
        .where(
            table.email == email,
            table.used_at.is_(None),
            table.expires_at > utcnow(),
            or_(and_(own, table.attempts < limit), and_(~own, table.other_attempts < limit)),
        )
        .values(
            attempts=table.attempts + case((own, 1), else_=0),
            other_attempts=table.other_attempts + case((own, 0), else_=1),
        )
        .returning(table.id, table.code_hash)
    ).all()
    db.session.commit()
    return [(row.id, row.code_hash) for row in rows]


def _use(code_id: int) -> bool:
    """Mark the code used; False when a parallel request used it first."""
    return (
        execute(
            update(VerificationCode)
            .where(VerificationCode.id == code_id, VerificationCode.used_at.is_(None))
            .values(used_at=utcnow())
        ).rowcount
        == 1
    )


@bp.post("/logout")
def logout():
    """End this session (or this bearer token). Cookie sessions need the CSRF header, so no
    other site can sign people out."""
    user = current_user()
    if user is not None:
        check_csrf()
        sessions.revoke(g.auth_session)
        db.session.commit()
    session.clear()
    return jsonify(status="signed out")


@bp.post("/logout-everywhere")
def logout_everywhere():
    """End every session and bearer token of the signed-in user, on every device."""
    user = signed_in_user()
    ended = sessions.revoke_all(user.id)
    db.session.commit()
    security_log.info("signed out everywhere: user=%s sessions=%d", user.id, ended)
    session.clear()
    return jsonify(status="signed out", sessions_ended=ended)


@bp.post("/token")
def renew_token():
    """Exchange a live bearer token for a new one; the old one stops working."""
    signed_in_user()
    if g.auth_method != "token":
        abort(400, "Send the bearer token to renew in the Authorization header.")
    renewed = sessions.renew(g.auth_session, current_app.config["API_TOKEN_TTL_S"])
    if renewed is None:
        abort(401, "This token can no longer be renewed. Sign in again.")
    row, token = renewed
    return jsonify(token=token, token_expires_in=int((row.expires_at - utcnow()).total_seconds()))


@bp.get("/me")
def me():
    user = current_user()
    if user is None:
        abort(401, "Sign in first.")
    return jsonify(user=user.as_dict(), csrf_token=session.get("csrf"))


def _hash_code(email: str, code: str) -> str:
    # Keyed with the app secret: a leaked table alone does not let anyone try all 10^6 codes.
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, f"{email}:{code}".encode(), hashlib.sha256).hexdigest()
