"""The whole path through real services: sign in with a mailed code, upload, a Prefect process
worker runs the analysis, the flow reports back over HTTP, the outputs download."""

from __future__ import annotations

import asyncio
import csv
import io
import os
import signal
import subprocess
import sys
import threading
import time
from urllib.parse import urlsplit

import httpx
import pytest
from werkzeug.serving import make_server

from tests.conftest import ROOT, S3_BUCKET, free_port
from tests.webutil import https_client, sign_in

pytestmark = pytest.mark.slow

POOL = "full-path-pool"
DEPLOYMENT = "analyze-video/full-path"
SECRET = "internal-test-secret"


@pytest.fixture(scope="module")
def worker_deployment(prefect_server):
    """A process work pool with the analysis deployment on it, run from this checkout."""
    from prefect import get_client
    from prefect.client.schemas.actions import WorkPoolCreate

    from flows.analyze import analyze_video

    async def create_pool() -> None:
        async with get_client() as client:
            await client.create_work_pool(WorkPoolCreate(name=POOL, type="process"))

    asyncio.run(create_pool())
    analyze_video.from_source(source=str(ROOT), entrypoint="flows/analyze.py:analyze_video").deploy(
        name="full-path", work_pool_name=POOL, print_next_steps=False
    )


@pytest.fixture(params=["local", "s3"])
def served_app(request, app, worker_deployment, s3_server):
    """The app on a real HTTP port, so the worker's flow can report to it, storing objects
    in a local folder or in S3."""
    app.config.update(INTERNAL_SECRET=SECRET, ANALYSIS_DEPLOYMENT=DEPLOYMENT, SESSION_COOKIE_SECURE=False)
    if request.param == "s3":
        app.config.update(STORAGE_BACKEND="s3", S3_BUCKET=S3_BUCKET, S3_ENDPOINT_URL=s3_server)
    port = free_port()
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield app, f"http://127.0.0.1:{port}"
    server.shutdown()


@pytest.fixture
def worker(served_app, s3_server, tmp_path):
    """A Prefect process worker polling the pool every second, stopped (and its children) after."""
    _, url = served_app
    environment = os.environ.copy() | {
        "POSER_WEBAPP_URL": url,
        "POSER_S3_ENDPOINT_URL": s3_server,
        "POSER_INTERNAL_SECRET": SECRET,
        "PREFECT_WORKER_QUERY_SECONDS": "1",
        "PREFECT_WORKER_PREFETCH_SECONDS": "1",
    }
    from prefect.settings import PREFECT_API_URL

    environment["PREFECT_API_URL"] = PREFECT_API_URL.value()
    log = open(tmp_path / "worker.log", "w")
    process = subprocess.Popen(
        [sys.executable, "-m", "prefect", "worker", "start", "--pool", POOL, "--limit", "1"],
        env=environment, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    yield process
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=30)
    log.close()


def submit(app, smtp_sink, clip: bytes):
    """Sign in, upload `clip` (to wherever the upload URL points) and confirm it; returns the
    client and the analysis id."""
    client = https_client(app)
    sign_in(client, smtp_sink, "rider@example.com")
    csrf = {"X-CSRF-Token": client.get("/api/auth/me").json["csrf_token"]}
    answer = client.post(
        "/api/analyses/create-upload", headers=csrf,
        json={"filename": "carpet.mp4", "content_type": "video/mp4", "size": len(clip)},
    ).json
    upload = answer["upload"]
    if "//localhost/" in upload["url"]:
        url = urlsplit(upload["url"])
        assert client.put(f"{url.path}?{url.query}", data=clip, headers=upload["headers"]).status_code == 200
    else:
        assert httpx.put(upload["url"], content=clip, headers=upload["headers"]).status_code == 200
    analysis_id = answer["analysis"]["id"]
    assert client.post(f"/api/analyses/{analysis_id}/confirm-upload", headers=csrf).status_code == 202
    return client, analysis_id


def wait_until_done(client, analysis_id: str, timeout_s: float = 300) -> tuple[dict, set[str]]:
    seen, deadline = set(), time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        analysis = client.get(f"/api/analyses/{analysis_id}").json["analysis"]
        seen.add(analysis["status"])
        if analysis["status"] in ("complete", "no_skier_found", "failed", "cancelled"):
            break
        time.sleep(1)
    return analysis, seen


def test_from_code_to_downloaded_results(served_app, worker, smtp_sink, derived):
    client, analysis_id = submit(served_app[0], smtp_sink, derived["short"].read_bytes())
    analysis, seen = wait_until_done(client, analysis_id)
    assert analysis["status"] == "complete", analysis
    assert "processing" in seen or "queued" in seen
    assert analysis["progress"] == 100
    assert analysis["artifacts"] == ["chart", "landmarks_csv", "results_json", "turns_csv", "video"]
    assert analysis["results"]["skier"]["tracked_fraction"] > 0.9
    assert client.get(f"/api/analyses/{analysis_id}/turns").json["turns"]

    link = client.get(f"/api/analyses/{analysis_id}/download/landmarks_csv").json
    if "//localhost/" in link["url"]:
        download = urlsplit(link["url"])
        body = client.get(f"{download.path}?{download.query}")
        status, text = body.status_code, body.get_data(as_text=True)
    else:
        body = httpx.get(link["url"])
        status, text = body.status_code, body.text
    assert status == 200 and len(text.encode()) == link["size"]
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == analysis["results"]["input"]["frames_in_trim"]
    assert client.get(f"/api/analyses/{analysis_id}/download/nothing").status_code == 404


def test_a_bad_file_ends_as_failed_with_the_reason(served_app, worker, smtp_sink, derived):
    client, analysis_id = submit(served_app[0], smtp_sink, derived["image"].read_bytes())
    analysis, _ = wait_until_done(client, analysis_id)
    assert analysis["status"] == "failed"
    assert analysis["error"] == "This file is a still image, not a video."
