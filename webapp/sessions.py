"""Server-side sign-in sessions: the browser's cookie session and API clients' bearer tokens.

A cookie holds only a random session id and a bearer token is a random string; the database
keeps their hashes with an expiry and a revocation time. So signing out, signing out
everywhere and deleting the account end them at once, and a leaked `SECRET_KEY` alone forges
no sign-in. Bearer tokens are short-lived and renewed by exchanging them, up to an absolute
age after the sign-in that created them.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import ForeignKey, String, delete, or_, select, update
from sqlalchemy.orm import Mapped, mapped_column

from webapp.db import Model, db, execute
from webapp.models import User, UTCDateTime, utcnow

COOKIE = "cookie"
BEARER = "bearer"


class AuthSession(Model):
    """One sign-in credential: a browser session or a bearer token."""

    __tablename__ = "auth_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(10))
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    # A bearer token may be exchanged for a new one until then.
    renewable_until: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


def start(user: User, kind: str, ttl_s: int, max_age_s: int | None = None) -> tuple[AuthSession, str]:
    """A new credential for `user` and its secret (added, not committed)."""
    secret = secrets.token_urlsafe(32)
    now = utcnow()
    row = AuthSession(
        user_id=user.id,
        kind=kind,
        secret_hash=_hash(secret),
        created_at=now,
        expires_at=now + timedelta(seconds=ttl_s),
        renewable_until=now + timedelta(seconds=max_age_s or ttl_s),
    )
    db.session.add(row)
    return row, secret


def find(secret: str, kind: str) -> AuthSession | None:
    """The live credential of `kind` with this secret, or None."""
    if not secret or len(secret) > 200:
        return None
    return db.session.scalar(
        select(AuthSession).where(
            AuthSession.secret_hash == _hash(secret),
            AuthSession.kind == kind,
            AuthSession.revoked_at.is_(None),
            AuthSession.expires_at > utcnow(),
        )
    )


def renew(row: AuthSession, ttl_s: int) -> tuple[AuthSession, str] | None:
    """Exchange a live bearer token for a new one, once: the old one stops working. None when
    it was already exchanged or revoked, or may no longer be renewed."""
    now = utcnow()
    if row.renewable_until <= now:
        return None
    taken = execute(
        update(AuthSession).where(AuthSession.id == row.id, AuthSession.revoked_at.is_(None)).values(revoked_at=now)
    ).rowcount
    if taken != 1:
        db.session.rollback()
        return None
    secret = secrets.token_urlsafe(32)
    new = AuthSession(
        user_id=row.user_id,
        kind=row.kind,
        secret_hash=_hash(secret),
        created_at=now,
        expires_at=min(now + timedelta(seconds=ttl_s), row.renewable_until),
        renewable_until=row.renewable_until,
    )
    db.session.add(new)
    db.session.commit()
    return new, secret


def revoke(row: AuthSession) -> None:
    """End one credential (not committed)."""
    db.session.execute(
        update(AuthSession)
        .where(AuthSession.id == row.id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )


def revoke_all(user_id: int) -> int:
    """End every credential of a user (not committed); returns how many were live."""
    return execute(
        update(AuthSession)
        .where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    ).rowcount


def remove_ended(older_than_s: int) -> int:
    """Delete credentials that expired or were revoked more than `older_than_s` seconds ago."""
    cutoff = utcnow() - timedelta(seconds=older_than_s)
    removed = execute(
        delete(AuthSession).where(or_(AuthSession.expires_at < cutoff, AuthSession.revoked_at < cutoff))
    ).rowcount
    db.session.commit()
    return removed


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()
