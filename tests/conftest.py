"""Shared fixtures: the sample clips, bad inputs derived from them, and a Prefect server."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import make_server

ROOT = Path(__file__).resolve().parent.parent
MEDIA = ROOT.parent / "shared" / "media"
PISTE = MEDIA / "piste_followcam.mp4"
INDOOR = MEDIA / "indoor_carpet_front.mp4"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(os.environ.get("POSER_TEST_ARTIFACTS", ROOT / "test-artifacts"))

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("GLOG_minloglevel", "2")
# Tests started in the background of a script inherit SIGINT ignored, and so would the Prefect
# workers they start, which stop themselves with SIGINT on SIGTERM.
signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session")
def media() -> Path:
    if not PISTE.is_file() or not INDOOR.is_file():
        pytest.fail(f"The sample clips are missing from {MEDIA}.")
    return MEDIA


@pytest.fixture(scope="session")
def derived(tmp_path_factory: pytest.TempPathFactory, media: Path) -> dict[str, Path]:
    """Bad and unusual inputs made from the sample clips at test time."""
    from tests import clips

    folder = tmp_path_factory.mktemp("derived")
    return clips.derive_all(PISTE, INDOOR, folder)


@contextlib.contextmanager
def prefect_stack(storage: Path) -> Iterator[str]:
    """A temporary Prefect server on SQLite, with task results stored under `storage`; yields
    its API URL. (Also used by `benchmarks/throughput.py`.)"""
    from prefect.settings import PREFECT_API_URL, PREFECT_LOCAL_STORAGE_PATH, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    with temporary_settings({PREFECT_LOCAL_STORAGE_PATH: storage}), prefect_test_harness(server_startup_timeout=120):
        yield str(PREFECT_API_URL.value())


def analysis_job_variables() -> dict[str, Any]:
    """The job variables `prefect.yaml` gives the analysis deployments."""
    import yaml

    definitions = yaml.safe_load((ROOT / "prefect.yaml").read_text())["definitions"]
    return definitions["analysis_work_pool_job_variables"]


def deploy_analysis(pool: str, name: str, job_variables: dict[str, Any] | None = None) -> str:
    """Create the process work pool `pool` and deploy the analysis flow on it from this
    checkout as `name` (with `job_variables`, as `prefect.yaml` would); returns the
    deployment's full name."""
    from prefect import get_client
    from prefect.client.schemas.actions import WorkPoolCreate

    from flows.analyze import analyze_video

    async def create_pool() -> None:
        async with get_client() as client:
            await client.create_work_pool(WorkPoolCreate(name=pool, type="process"))

    asyncio.run(create_pool())
    flow = analyze_video.from_source(source=str(ROOT), entrypoint="flows/analyze.py:analyze_video")
    flow.deploy(name=name, work_pool_name=pool, job_variables=job_variables, print_next_steps=False)  # type: ignore[union-attr]  # sync: a Flow
    return f"analyze-video/{name}"


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory: pytest.TempPathFactory):
    """A temporary Prefect server on SQLite, with task results stored under a temp folder."""
    with prefect_stack(tmp_path_factory.mktemp("prefect-results")):
        yield


@pytest.fixture(scope="session")
def analyses(prefect_server, media, tmp_path_factory) -> dict[str, tuple[dict, Path]]:
    """Each sample clip analysed by the flow: its results and its output folder, by clip name."""
    from flows.analyze import analyze_video

    runs = {}
    for clip in ("piste_followcam", "indoor_carpet_front"):
        out = tmp_path_factory.mktemp(clip)
        runs[clip] = analyze_video(str(media / f"{clip}.mp4"), str(out)), out
    return runs


@pytest.fixture(scope="session")
def piste_pose(media):
    """The piste clip's smoothed pose (with the keypoint views), its metrics and the config,
    from the pipeline's plain functions."""
    from tasks.config import load_config
    from tasks.frontal import frontal_angles
    from tasks.keypoint_models import second_opinion
    from tasks.models import require_model
    from tasks.pose import crop_windows, estimate_pose
    from tasks.smoothing import smooth_pose
    from tasks.tracking import detect_and_track, select_skier
    from tasks.turns import analyze_turns
    from tasks.video import probe_video

    config = load_config()
    info = probe_video(media / "piste_followcam.mp4")
    detections = detect_and_track(info, config.tracking, require_model(config.models, "detector"), "cpu")
    skier = select_skier(detections, config.tracking)
    raw = estimate_pose(
        info,
        crop_windows(skier.boxes, info.fps, config.pose),
        config.pose,
        require_model(config.models, "pose"),
        None,
        second_opinion(config, "cpu"),
    )
    pose = smooth_pose(raw, config.smoothing, config.metrics.camera_side)
    return pose, analyze_turns(pose.times_s, frontal_angles(pose, config.metrics), config.metrics), config


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# The SMTP sink refuses every recipient at this domain.
REFUSED_DOMAIN = "refused.example"


@pytest.fixture(scope="session")
def smtp_sink():
    """A real SMTP server on loopback that keeps every message it receives."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Message

    class Inbox(Message):
        def __init__(self) -> None:
            super().__init__()
            self.messages: list[Any] = []

        async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
            # Like a real server with no such mailbox: refuses every address at this domain.
            if address.lower().endswith("@" + REFUSED_DOMAIN):
                return "550 5.1.1 No such user here"
            envelope.rcpt_tos.append(address)
            return "250 OK"

        def handle_message(self, message) -> None:
            self.messages.append(message)

    inbox = Inbox()
    inbox.port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=inbox.port)
    controller.start()
    yield inbox
    controller.stop()


@pytest.fixture(scope="session")
def postgres_url():
    """A fresh database on the local PostgreSQL server, dropped afterwards."""
    import uuid

    import psycopg

    admin = os.environ.get("POSER_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
    name = f"poser_test_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    yield admin.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + f"/{name}"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgres"])
def app(request, tmp_path, smtp_sink):
    """The web app on a migrated database of each kind, sending mail to the SMTP sink."""
    from flask_migrate import upgrade

    from webapp import create_app

    url = f"sqlite:///{tmp_path / 'web.sqlite3'}"
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_url")
    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "test-secret",
            "SQLALCHEMY_DATABASE_URI": url,
            "MAIL_BACKEND": "smtp",
            "SMTP_PORT": smtp_sink.port,
            "STORAGE_ROOT": str(tmp_path / "storage"),
        }
    )
    with app.app_context():
        upgrade()
    yield app
    if request.param == "postgres":
        from webapp.db import db

        with app.app_context():
            db.session.remove()
            db.drop_all()
            db.session.execute(db.text("DROP TABLE IF EXISTS alembic_version"))
            db.session.commit()
            db.engine.dispose()


@pytest.fixture
def client(app):
    from tests.webutil import https_client

    return https_client(app)


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


S3_KEY, S3_SECRET, S3_BUCKET = "poser-test-key", "poser-test-secret", "poser-test"


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """A real S3 server (SeaweedFS) on loopback with a bucket; yields its endpoint URL.

    Sets the AWS credentials in the environment, where boto3 (and worker processes) read them.
    """
    import shutil
    import subprocess
    import time

    import boto3

    folder = tmp_path_factory.mktemp("seaweedfs")
    identity = {
        "name": "poser",
        "credentials": [{"accessKey": S3_KEY, "secretKey": S3_SECRET}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    }
    (folder / "s3.json").write_text(json.dumps({"identities": [identity]}))
    port = free_port()
    weed = shutil.which("weed") or str(Path(os.sys.executable).with_name("weed"))
    log = open(folder / "weed.log", "w")
    process = subprocess.Popen(
        [
            weed,
            "mini",
            f"-dir={folder / 'data'}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-s3.port={port}",
            f"-s3.config={folder / 's3.json'}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    os.environ.update(AWS_ACCESS_KEY_ID=S3_KEY, AWS_SECRET_ACCESS_KEY=S3_SECRET, AWS_DEFAULT_REGION="us-east-1")
    endpoint = f"http://127.0.0.1:{port}"
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    deadline = time.monotonic() + 60
    while True:
        try:
            client.create_bucket(Bucket=S3_BUCKET)
            break
        except Exception:
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"SeaweedFS did not start; see {folder / 'weed.log'}") from None
            time.sleep(1)
    yield endpoint
    os.killpg(process.pid, 15)
    process.wait(timeout=30)
    log.close()


@pytest.fixture(scope="session")
def analysis_deployment(prefect_server):
    """The `analyze-video` deployment registered with the test Prefect server (no worker runs it)."""
    from flows.analyze import analyze_video

    return analyze_video.to_deployment(name="analyze-video").apply()


# A Prefect process worker running analyses for a web app served on a real port.
POOL = "full-path-pool"
DEPLOYMENT = "analyze-video/full-path"
WORKER_SECRET = "internal-test-secret"


@pytest.fixture(scope="session")
def worker_deployment(prefect_server):
    """A process work pool with the analysis deployment on it, run from this checkout."""
    deploy_analysis(POOL, "full-path")


@pytest.fixture
def storage_backend():
    """Where `served_app` keeps objects; modules override it to run on S3 too."""
    return "local"


@pytest.fixture
def served_app(app, worker_deployment, storage_backend, s3_server):
    """The app on a real HTTP port, so the worker's flow can report to it, storing objects
    in a local folder or in S3."""
    port = free_port()
    app.config.update(
        INTERNAL_SECRET=WORKER_SECRET,
        ANALYSIS_DEPLOYMENT=DEPLOYMENT,
        SESSION_COOKIE_SECURE=False,
        PUBLIC_URL=f"http://127.0.0.1:{port}",
    )
    if storage_backend == "s3":
        app.config.update(STORAGE_BACKEND="s3", S3_BUCKET=S3_BUCKET, S3_ENDPOINT_URL=s3_server)
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield app, f"http://127.0.0.1:{port}"
    server.shutdown()
    delete_unfinished_runs(POOL)


def delete_unfinished_runs(pool: str) -> None:
    """Delete the flow runs on `pool` that have not finished: a test's runs end with it, so the
    next test's worker does not spend its time on a run whose web app is gone."""
    from prefect import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
        WorkPoolFilter,
        WorkPoolFilterName,
    )
    from prefect.client.schemas.objects import StateType

    unfinished = [StateType.SCHEDULED, StateType.PENDING, StateType.RUNNING, StateType.PAUSED, StateType.CANCELLING]

    async def delete() -> None:
        async with get_client() as client:
            runs = await client.read_flow_runs(
                flow_run_filter=FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=unfinished))),
                work_pool_filter=WorkPoolFilter(name=WorkPoolFilterName(any_=[pool])),
            )
            for run in runs:
                await client.delete_flow_run(run.id)

    asyncio.run(delete())


@pytest.fixture
def worker(served_app, s3_server, tmp_path):
    """A Prefect process worker polling the pool every second, stopped (and its children) after."""
    _, url = served_app
    environment = os.environ.copy() | {
        "POSER_WEBAPP_URL": url,
        "POSER_S3_ENDPOINT_URL": s3_server,
        "POSER_INTERNAL_SECRET": WORKER_SECRET,
        "PREFECT_WORKER_QUERY_SECONDS": "1",
        "PREFECT_WORKER_PREFETCH_SECONDS": "1",
    }
    from prefect.settings import PREFECT_API_URL

    environment["PREFECT_API_URL"] = PREFECT_API_URL.value()
    log = open(tmp_path / "worker.log", "w")
    process = subprocess.Popen(
        [sys.executable, "-m", "prefect", "worker", "start", "--pool", POOL, "--limit", "1"],
        env=environment,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    yield process
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=30)
    log.close()


@pytest.fixture
def browser_page():
    """A page in headless Chromium (Debian's, driven by Playwright)."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is not installed (scripts/setup.sh installs Debian's chromium).")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--autoplay-policy=no-user-gesture-required",
            ],
        )
        context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
        yield context.new_page()
        browser.close()


def screenshots(page):
    """A function that saves a full-page screenshot of `page` under ARTIFACTS by name."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return lambda name: page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
