"""A pool with concurrency 1 runs analyses one after the other; deleting a queued analysis
cancels its flow run."""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import POOL
from tests.test_web_full_path import submit, wait_until_done
from tests.webutil import read_flow_run, write_headers

pytestmark = pytest.mark.slow


async def _pool_limit(limit: int | None) -> None:
    from prefect import get_client
    from prefect.client.schemas.actions import WorkPoolUpdate

    async with get_client() as client:
        await client.update_work_pool(POOL, WorkPoolUpdate(concurrency_limit=limit))


@pytest.fixture
def single_slot_pool(worker_deployment):
    asyncio.run(_pool_limit(1))
    yield
    asyncio.run(_pool_limit(None))


@pytest.mark.parametrize("app", ["sqlite"], indirect=True)
def test_queued_analyses_run_one_at_a_time_and_a_deleted_one_is_cancelled(
    single_slot_pool, served_app, worker, smtp_sink, derived
):
    app = served_app[0]
    clip = derived["short"].read_bytes()
    client, first = submit(app, smtp_sink, clip)
    _, second = submit(app, smtp_sink, clip)
    _, third = submit(app, smtp_sink, clip)
    csrf = write_headers(client)

    from webapp.db import db
    from webapp.models import Analysis

    with app.app_context():
        third_run = db.session.get(Analysis, third).flow_run_id
    assert client.delete(f"/api/analyses/{third}", headers=csrf).status_code == 204

    for analysis_id in (first, second):
        assert wait_until_done(client, analysis_id)[0]["status"] == "complete"
    with app.app_context():
        runs = [read_flow_run(db.session.get(Analysis, a).flow_run_id) for a in (first, second)]
    runs.sort(key=lambda run: run.start_time)
    assert runs[1].start_time >= runs[0].end_time  # never both running at once
    assert read_flow_run(third_run).state.type.value in ("CANCELLING", "CANCELLED")
