"""Rate limits counted from the rows a request creates (sign-in codes, widget submissions)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from sqlalchemy import func, select
from werkzeug.exceptions import TooManyRequests

from webapp.db import db
from webapp.models import utcnow


def enforce_limits(model, checks: Iterable[tuple], window_s: int, message: str) -> None:
    """429 with Retry-After when, for any `(column, value, limit)` of `checks`, `model` already
    has `limit` rows with `column == value` created in the last `window_s` seconds."""
    since = utcnow() - timedelta(seconds=window_s)
    for column, value, limit in checks:
        recent = db.session.scalar(
            select(func.count()).select_from(model).where(column == value, model.created_at >= since)
        )
        if recent >= limit:
            raise TooManyRequests(message, retry_after=window_s)
