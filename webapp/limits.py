"""Rate limits and quotas, counted atomically in the database.

Each limit is a fixed-window counter row, bumped with one `INSERT ... ON CONFLICT DO UPDATE
... RETURNING` (PostgreSQL and SQLite alike). The database serialises the bumps of one row,
so the count is right however many gunicorn workers and web hosts take requests at once.
A request over any of its limits is refused with 429 and nothing is counted for it.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import BigInteger, String, case, delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, mapped_column
from werkzeug.exceptions import TooManyRequests

from webapp.db import Model, db, execute
from webapp.models import UTCDateTime, utcnow


class RateLimitCounter(Model):
    """Requests counted in the current window of one limit for one key."""

    __tablename__ = "rate_limits"

    # `<limit name>:<sha256 of the key>`: no addresses or emails in this table.
    bucket: Mapped[str] = mapped_column(String(100), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    count: Mapped[int] = mapped_column(BigInteger)


@dataclass(frozen=True)
class Limit:
    """At most `limit` (cost units) per `window_s` seconds for `key` under the name `name`."""

    name: str
    key: str | int
    limit: int
    window_s: int
    cost: int = 1

    @property
    def bucket(self) -> str:
        digest = hashlib.sha256(str(self.key).encode()).hexdigest()[:40]
        return f"{self.name}:{digest}"


def enforce(limits: Iterable[Limit], message: str) -> None:
    """Count this request against every limit, or refuse it with 429 and Retry-After.

    Commits the session (the counts must hold whatever the request does next). `message`
    may contain `{minutes}`, the wait before a retry can succeed.
    """
    now = utcnow()
    wait_s = 0.0
    # One order for every request, so concurrent ones never wait on each other's rows in a cycle.
    for limit in sorted(limits, key=lambda item: item.bucket):
        count, window_start = _bump(limit, now)
        if count > limit.limit:
            wait_s = max(wait_s, (window_start + timedelta(seconds=limit.window_s) - now).total_seconds())
    if wait_s:
        db.session.rollback()
        retry_after = max(1, math.ceil(wait_s))
        raise TooManyRequests(message.format(minutes=max(1, math.ceil(retry_after / 60))), retry_after=retry_after)
    db.session.commit()


def _bump(limit: Limit, now: datetime) -> tuple[int, datetime]:
    table = RateLimitCounter.__table__
    expired = table.c.window_start <= now - timedelta(seconds=limit.window_s)
    dialect = postgresql if db.session.get_bind().dialect.name == "postgresql" else sqlite
    statement = (
        dialect.insert(table)
        .values(bucket=limit.bucket, window_start=now, count=limit.cost)
        .on_conflict_do_update(
            index_elements=[table.c.bucket],
            set_={
                "count": case((expired, limit.cost), else_=table.c.count + limit.cost),
                "window_start": case((expired, now), else_=table.c.window_start),
            },
        )
        .returning(table.c.count, table.c.window_start)
    )
    count, window_start = db.session.execute(statement).one()
    started = UTCDateTime().process_result_value(window_start, None)
    assert started is not None
    return count, started


def remove_expired(older_than_s: int) -> int:
    """Delete counters whose window started more than `older_than_s` seconds ago."""
    removed = execute(
        delete(RateLimitCounter).where(RateLimitCounter.window_start < utcnow() - timedelta(seconds=older_than_s))
    ).rowcount
    db.session.commit()
    return removed
