"""Runs whose worker died, and reruns of failed runs.

The web app's retry endpoint reschedules a failed analysis's flow run as the Prefect UI does.
The full path runs on a Prefect server on PostgreSQL, as in production, with the crash
detection automation installed: a worker is killed mid-analysis, its run is marked Crashed once
its heartbeats stop, the analysis fails, and a rerun on another worker host (its own disk)
resumes from the last completed step, whose result is in the outputs' S3 bucket, and completes
the same analysis once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
import psutil
import pytest
from werkzeug.serving import make_server

from tasks.contract import task_results_key_prefix
from tests.conftest import INDOOR, ROOT, S3_BUCKET, WORKER_SECRET, free_port
from tests.test_web_analyses import create, upload
from tests.test_web_full_path import submit, wait_until_done
from tests.webutil import read_flow_run, sign_in, write_headers

POOL = "rerun-pool"
DEPLOYMENT = "analyze-video/rerun"
# The shortest heartbeat Prefect allows, so a dead run is found within about a minute.
HEARTBEAT_S, MISSED_HEARTBEATS = 30, 2


def set_flow_run_state(flow_run_id: str, state) -> None:
    from prefect import get_client

    async def set_state() -> None:
        async with get_client() as prefect:
            await prefect.set_flow_run_state(flow_run_id, state, force=True)

    asyncio.run(set_state())


def analysis_row(app, analysis_id: str):
    """The analysis as stored now, detached from any session."""
    from webapp.db import db
    from webapp.models import Analysis

    with app.app_context():
        analysis = db.session.get(Analysis, analysis_id)
        db.session.expunge(analysis)
        return analysis


# The retry endpoint, on the SQLite-backed test Prefect server (no worker runs its flow runs).


@pytest.fixture
def failed_analysis(app, client, smtp_sink, analysis_deployment):
    """A signed-in client and a confirmed analysis whose flow run failed, as the flow reports it."""
    from prefect.states import Failed

    app.config["INTERNAL_SECRET"] = WORKER_SECRET
    sign_in(client, smtp_sink)
    answer = create(client).json
    upload(client, answer)
    analysis_id = answer["analysis"]["id"]
    assert client.post(f"/api/analyses/{analysis_id}/confirm-upload", headers=write_headers(client)).status_code == 202
    set_flow_run_state(analysis_row(app, analysis_id).flow_run_id, Failed(message="Stopped."))
    report = {"status": "failed", "error": "The analysis stopped unexpectedly."}
    reported = client.put(
        f"/api/internal/analyses/{analysis_id}/status", json=report, headers={"X-Poser-Internal-Secret": WORKER_SECRET}
    )
    assert reported.json["analysis"]["status"] == "failed"
    return client, analysis_id


def test_retry_reschedules_the_same_flow_run_as_the_prefect_ui_does(app, failed_analysis):
    client, analysis_id = failed_analysis
    flow_run_id = analysis_row(app, analysis_id).flow_run_id
    response = client.post(f"/api/analyses/{analysis_id}/retry", headers=write_headers(client))
    assert response.status_code == 202
    assert (response.json["analysis"]["status"], response.json["analysis"]["error"]) == ("queued", None)
    state = read_flow_run(flow_run_id).state
    assert (state.type.value, state.name) == ("SCHEDULED", "AwaitingRetry")
    assert analysis_row(app, analysis_id).flow_run_id == flow_run_id
    assert client.get(f"/api/analyses/{analysis_id}").json["analysis"]["status"] == "queued"
    again = client.post(f"/api/analyses/{analysis_id}/retry", headers=write_headers(client))
    assert again.status_code == 409  # no longer failed


def test_only_a_failed_analysis_with_a_failed_run_can_be_retried(app, failed_analysis, smtp_sink):
    from prefect.states import Running

    from webapp.db import db
    from webapp.models import Analysis

    client, analysis_id = failed_analysis
    csrf = write_headers(client)
    waiting = create(client).json["analysis"]["id"]
    assert client.post(f"/api/analyses/{waiting}/retry", headers=csrf).status_code == 409
    with app.app_context():
        db.session.get(Analysis, waiting).status = "failed"  # failed before it had a flow run
        db.session.commit()
    assert client.post(f"/api/analyses/{waiting}/retry", headers=csrf).status_code == 409

    set_flow_run_state(analysis_row(app, analysis_id).flow_run_id, Running())
    refused = client.post(f"/api/analyses/{analysis_id}/retry", headers=csrf)
    assert refused.status_code == 409 and "cannot be run again" in refused.json["error"]["message"]
    assert client.post(f"/api/analyses/{analysis_id}/retry").status_code == 403  # no CSRF header

    stranger = client.application.test_client()
    stranger.environ_base["wsgi.url_scheme"] = "https"
    assert stranger.post(f"/api/analyses/{analysis_id}/retry").status_code == 401
    sign_in(stranger, smtp_sink, "other@example.com")
    assert stranger.post(f"/api/analyses/{analysis_id}/retry", headers=write_headers(stranger)).status_code == 404


def test_a_failure_of_the_input_itself_is_not_offered_again(app, failed_analysis):
    client, analysis_id = failed_analysis
    report = {"status": "failed", "error": "This file is a still image, not a video.", "retryable": False}
    answer = client.put(
        f"/api/internal/analyses/{analysis_id}/status", json=report, headers={"X-Poser-Internal-Secret": WORKER_SECRET}
    ).json["analysis"]
    assert answer["retryable"] is False
    refused = client.post(f"/api/analyses/{analysis_id}/retry", headers=write_headers(client))
    assert refused.status_code == 409 and "fail the same way" in refused.json["error"]["message"]


@pytest.mark.slow
@pytest.mark.parametrize("app", ["sqlite"], indirect=True)
def test_try_again_on_the_failure_panel_requeues_the_analysis(app, failed_analysis, browser_page):
    client, analysis_id = failed_analysis
    app.config["SESSION_COOKIE_SECURE"] = False
    server = make_server("127.0.0.1", free_port(), app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"
    page = browser_page
    try:
        cookie = client.get_cookie(app.config["SESSION_COOKIE_NAME"])
        page.context.add_cookies([{"name": cookie.key, "value": cookie.value, "url": base}])
        page.goto(f"{base}/analyses/{analysis_id}")
        page.wait_for_selector("#failure:not([hidden])")
        assert "stopped unexpectedly" in page.inner_text("#failure-reason")
        page.click("#retry")
        page.wait_for_selector("#progress-panel:not([hidden])")
        page.wait_for_function("() => document.getElementById('status-text').textContent.startsWith('Queued')")
        assert page.is_hidden("#failure")
    finally:
        server.shutdown()
    # Playwright's event loop holds this thread; ask Prefect from another.
    with ThreadPoolExecutor(1) as thread:
        flow_run = thread.submit(read_flow_run, analysis_row(app, analysis_id).flow_run_id).result()
    assert flow_run.state.name == "AwaitingRetry"


def test_retry_answers_503_when_prefect_is_unreachable(app, failed_analysis):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    client, analysis_id = failed_analysis
    with temporary_settings({PREFECT_API_URL: "http://127.0.0.1:9/api"}):
        response = client.post(f"/api/analyses/{analysis_id}/retry", headers=write_headers(client))
    assert response.status_code == 503 and "not reachable" in response.json["error"]["message"]
    assert analysis_row(app, analysis_id).status == "failed"


# The full path, on a Prefect server on PostgreSQL with crash detection installed.


@pytest.fixture(scope="module")
def postgres_prefect(tmp_path_factory):
    """`prefect server start` on a fresh PostgreSQL database; yields its API URL."""
    import psycopg

    admin = os.environ.get("POSER_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
    name = f"poser_prefect_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    folder = tmp_path_factory.mktemp("prefect-postgres")
    port = free_port()
    database = admin.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://") + f"/{name}"
    environment = os.environ.copy() | {
        "PREFECT_HOME": str(folder / "home"),
        "PREFECT_API_DATABASE_CONNECTION_URL": database,
        "PREFECT_SERVER_API_HOST": "127.0.0.1",
        "PREFECT_SERVER_API_PORT": str(port),
        "PREFECT_UI_ENABLED": "false",
    }
    environment.pop("PREFECT_API_URL", None)
    log = open(folder / "server.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start"],
        env=environment,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/api"
    try:
        wait_for(lambda: _healthy(url), 180, f"the Prefect server (see {folder / 'server.log'})", server)
        yield url
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
        log.close()
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture
def rerun_stack(app, postgres_prefect, s3_server):
    """The Postgres-backed Prefect server in use (this test only), with crash detection, a
    process pool with the analysis deployment, and the web app served on a real port, storing
    objects in S3."""
    from prefect import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.analyze import analyze_video
    from flows.crash_detection import CrashDetection, install

    async def create_pool() -> None:
        async with get_client() as client:
            await client.create_work_pool(WorkPoolCreate(name=POOL, type="process"))

    with temporary_settings({PREFECT_API_URL: postgres_prefect}):
        asyncio.run(create_pool())
        analyze_video.from_source(source=str(ROOT), entrypoint="flows/analyze.py:analyze_video").deploy(
            name="rerun",
            work_pool_name=POOL,
            print_next_steps=False,
            job_variables={"env": {"PREFECT_FLOWS_HEARTBEAT_FREQUENCY": str(HEARTBEAT_S)}},
        )
        install(CrashDetection(heartbeat_s=HEARTBEAT_S, missed_heartbeats=MISSED_HEARTBEATS))
        app.config.update(
            INTERNAL_SECRET=WORKER_SECRET,
            ANALYSIS_DEPLOYMENT=DEPLOYMENT,
            SESSION_COOKIE_SECURE=False,
            STORAGE_BACKEND="s3",
            S3_BUCKET=S3_BUCKET,
            S3_ENDPOINT_URL=s3_server,
        )
        server = make_server("127.0.0.1", free_port(), app, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        yield app, f"http://127.0.0.1:{server.server_port}", postgres_prefect
        server.shutdown()


def start_worker(web_url: str, api_url: str, s3_endpoint: str, folder, name: str) -> subprocess.Popen:
    """A process worker on the pool, as on a host of its own: its Prefect home, local result
    storage and temporary files in `folder / name`; only S3 is shared."""
    host = folder / name
    (host / "tmp").mkdir(parents=True)
    environment = os.environ.copy() | {
        "POSER_WEBAPP_URL": web_url,
        "POSER_INTERNAL_SECRET": WORKER_SECRET,
        "POSER_S3_ENDPOINT_URL": s3_endpoint,
        "TMPDIR": str(host / "tmp"),
        "PREFECT_API_URL": api_url,
        "PREFECT_HOME": str(host / "prefect-home"),
        "PREFECT_LOCAL_STORAGE_PATH": str(host / "results"),
        "PREFECT_WORKER_QUERY_SECONDS": "1",
        "PREFECT_WORKER_PREFETCH_SECONDS": "1",
    }
    log = open(host / "worker.log", "w")
    return subprocess.Popen(
        [sys.executable, "-m", "prefect", "worker", "start", "--pool", POOL, "--name", name, "--limit", "1"],
        env=environment,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def kill_host(worker: subprocess.Popen) -> None:
    """SIGKILL the worker and every process it started, as when its machine is lost. The flow
    run's process runs in a session of its own, so the worker's process group alone misses it."""
    processes = [psutil.Process(worker.pid), *psutil.Process(worker.pid).children(recursive=True)]
    for process in processes:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(os.getpgid(process.pid), signal.SIGKILL)
    worker.wait(timeout=30)
    wait_for(lambda: not any(_alive(process) for process in processes), 30, "the killed processes to go")


def stop_worker(worker: subprocess.Popen) -> None:
    """Stop a worker as its service manager would: SIGTERM, SIGKILL if it is still there a
    minute later (a worker backs off for up to 60 s when the Prefect API does not answer),
    then any process it left behind."""
    children = psutil.Process(worker.pid).children(recursive=True) if worker.poll() is None else []
    if worker.poll() is None:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(timeout=30)
    for child in children:
        if _alive(child):
            os.killpg(os.getpgid(child.pid), signal.SIGKILL)


def wait_for(condition, timeout_s: float, what: str, process: subprocess.Popen | None = None, every_s: float = 0.5):
    """Poll `condition` until it returns something truthy; returns it."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what}: the process exited.")
        if found := condition():
            return found
        time.sleep(every_s)
    raise TimeoutError(f"Waited {timeout_s:.0f} s for {what}.")


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _alive(process: psutil.Process) -> bool:
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def flow_run_history(flow_run_id: str) -> list[tuple[str, str]]:
    """(type, name) of every state the flow run went through, oldest first."""
    from prefect import get_client

    async def read():
        async with get_client() as prefect:
            return await prefect.read_flow_run_states(flow_run_id)

    return [(state.type.value, state.name) for state in sorted(asyncio.run(read()), key=lambda s: s.timestamp)]


def s3_keys(endpoint: str, prefix: str) -> list[str]:
    import boto3

    listing = boto3.client("s3", endpoint_url=endpoint).list_objects_v2(Bucket=S3_BUCKET, Prefix=prefix + "/")
    return [item["Key"] for item in listing.get("Contents", [])]


def task_run_states(flow_run_id: str) -> dict[str, list[str]]:
    """The state name of each task run of the flow run, by task name, oldest first."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.client.schemas.sorting import TaskRunSort

    async def read():
        async with get_client() as prefect:
            return await prefect.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])),
                sort=TaskRunSort.EXPECTED_START_TIME_ASC,
            )

    states: dict[str, list[str]] = {}
    for task_run in asyncio.run(read()):
        task_name = task_run.name.rsplit("-", 1)[0]  # runs are named after their task, plus a suffix
        states.setdefault(task_name, []).append(task_run.state.name if task_run.state else "none")
    return states


@pytest.mark.slow
@pytest.mark.parametrize("app", ["sqlite"], indirect=True)
def test_a_run_whose_worker_died_crashes_and_its_rerun_on_another_host_completes_the_same_analysis(
    rerun_stack, s3_server, smtp_sink, media, tmp_path
):
    from prefect.states import Scheduled

    from webapp.db import db
    from webapp.models import Artifact

    app, web_url, api_url = rerun_stack
    first = start_worker(web_url, api_url, s3_server, tmp_path, "host-a")
    try:
        client, analysis_id = submit(app, smtp_sink, INDOOR.read_bytes())
        wait_for(lambda: analysis_row(app, analysis_id).step == "pose", 400, "the pose step", first, every_s=0.2)
        flow_run_id = analysis_row(app, analysis_id).flow_run_id
        kill_host(first)
    finally:
        stop_worker(first)
    killed_at = time.monotonic()
    assert read_flow_run(flow_run_id).state.type.value == "RUNNING"  # nothing told Prefect

    silence_s = HEARTBEAT_S * MISSED_HEARTBEATS
    crashed = wait_for(
        lambda: (run := read_flow_run(flow_run_id)).state.is_crashed() and run, silence_s + 90, "the crash"
    )
    detected_after_s = time.monotonic() - killed_at
    assert "no heartbeat" in crashed.state.message
    assert detected_after_s <= silence_s + 30

    counts = client.post("/api/internal/maintenance", headers={"X-Poser-Internal-Secret": WORKER_SECRET}).json
    assert counts["refreshed_runs"] == 1
    failed = client.get(f"/api/analyses/{analysis_id}").json["analysis"]
    assert failed["status"] == "failed" and "stopped unexpectedly" in failed["error"]

    second = start_worker(web_url, api_url, s3_server, tmp_path, "host-b")
    try:
        # What the Prefect UI's Retry sends.
        set_flow_run_state(flow_run_id, Scheduled(name="AwaitingRetry", message="Retry from the UI"))
        wait_for(
            lambda: analysis_row(app, analysis_id).status in ("processing", "complete"),
            120,
            "the rerun to start",
            second,
        )
        analysis, _ = wait_until_done(client, analysis_id, timeout_s=400)
        # The analysis is complete once published; the flow run finishes a moment later.
        wait_for(lambda: read_flow_run(flow_run_id).state.is_final(), 60, "the rerun to finish", second)
    finally:
        stop_worker(second)

    assert (analysis["status"], analysis["error"], analysis["progress"]) == ("complete", None, 100), analysis
    history = flow_run_history(flow_run_id)
    assert [name for _, name in history].count("Completed") == 1 and ("CRASHED", "Crashed") in history, history
    assert ("SCHEDULED", "AwaitingRetry") in history

    with app.app_context():
        kinds = Counter(db.session.scalars(db.select(Artifact.kind).where(Artifact.analysis_id == analysis_id)))
    assert kinds == Counter(
        ["video", "landmarks_csv", "landmarks_parquet", "turns_csv", "turns_parquet", "chart", "results_json"]
    )
    turns = client.get(f"/api/analyses/{analysis_id}/turns").json["turns"]
    assert turns and len({turn["index"] for turn in turns}) == len(turns)
    assert len(turns) == len(analysis["results"]["metrics"]["turns"])

    tasks = wait_for(
        lambda: (found := task_run_states(flow_run_id)).get("publish") == ["Completed"] and found,
        60,
        "the task runs to be recorded",
    )
    assert tasks["detect-and-track"] == ["Completed", "Cached"], tasks  # computed once, read back from S3
    assert tasks["pose"][-1] == "Completed" and "Cached" not in tasks["pose"], tasks
    # Host B downloads the clip to its own disk, so it probes that file again.
    assert tasks["fetch"] == tasks["probe"] == ["Completed", "Completed"], tasks
    # One result per step but fetch, render and export (host B's files), and both probes.
    assert len(s3_keys(s3_server, task_results_key_prefix(analysis_id))) == 8
