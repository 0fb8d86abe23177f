"""Liveness and readiness for load balancers and orchestrators."""

from __future__ import annotations

import asyncio
import logging

from flask import Blueprint, jsonify
from sqlalchemy import text

from webapp.db import db
from webapp.storage import LocalStorage, storage

bp = Blueprint("health", __name__)
log = logging.getLogger(__name__)

_PREFECT_TIMEOUT_S = 2.0


@bp.get("/healthz")
def healthz():
    """The process is up and answering."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz():
    """The database, the object storage and the Prefect API are all reachable (503 otherwise)."""
    checks = {"database": _check(_database), "storage": _check(_storage), "prefect": _check(_prefect)}
    ready = all(checks.values())
    return jsonify(status="ready" if ready else "not ready", checks=checks), 200 if ready else 503


def _check(probe) -> bool:
    try:
        probe()
        return True
    except Exception as exc:  # any failure means "not ready"; the reason goes to the log
        log.warning("readiness check %s failed: %s", probe.__name__, exc)
        return False


def _database() -> None:
    db.session.execute(text("SELECT 1"))


def _storage() -> None:
    store = storage()
    if isinstance(store, LocalStorage):
        store.root.mkdir(parents=True, exist_ok=True)
        probe = store.root / ".ready"
        probe.write_bytes(b"")
        probe.unlink()
    else:
        store.check()


def _prefect() -> None:
    from prefect import get_client

    async def ping() -> None:
        async with get_client() as client:
            response = await asyncio.wait_for(client.api_healthcheck(), _PREFECT_TIMEOUT_S)
            if response is not None:
                raise RuntimeError(response)

    asyncio.run(ping())
