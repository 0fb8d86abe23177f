"""Real servers for the security tests: the web app under gunicorn (production settings, several
worker processes) on a database of its own, and the app on a thread for the browser."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import httpx
from werkzeug.serving import make_server

from tests.conftest import ROOT, free_port

ADMIN_POSTGRES = os.environ.get("POSER_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
GUNICORN = str(Path(sys.executable).with_name("gunicorn"))


@contextlib.contextmanager
def database(kind: str, folder: Path):
    """A new, empty database of `kind` (`postgres` or `sqlite`); yields its SQLAlchemy URL."""
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'web.sqlite3'}"
        return
    import psycopg

    name = f"poser_sec_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_POSTGRES, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield ADMIN_POSTGRES.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + f"/{name}"
    finally:
        with psycopg.connect(ADMIN_POSTGRES, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def production_environment(database_url: str, folder: Path, smtp_port: int, port: int, **settings: str) -> dict:
    """The environment of a production deployment on loopback: real secrets, a public URL,
    PostgreSQL or SQLite, local storage and SMTP. No development mode, no test overrides."""
    environment = {name: value for name, value in os.environ.items() if not name.startswith("POSER_")}
    return (
        environment
        | {
            "POSER_SECRET_KEY": secrets.token_urlsafe(32),
            "POSER_INTERNAL_SECRET": secrets.token_urlsafe(32),
            "POSER_PUBLIC_URL": f"http://127.0.0.1:{port}",
            "POSER_SQLALCHEMY_DATABASE_URI": database_url,
            "POSER_STORAGE_ROOT": str(folder / "storage"),
            "POSER_MAIL_BACKEND": "smtp",
            "POSER_SMTP_PORT": str(smtp_port),
            # Plain HTTP on loopback.
            "POSER_SESSION_COOKIE_SECURE": "false",
        }
        | {f"POSER_{name}": value for name, value in settings.items()}
    )


class Gunicorn:
    """gunicorn serving `webapp:create_app()` with the project's gunicorn config."""

    # Set by the tests that give it a database of its own.
    database_url: str

    def __init__(self, environment: dict, port: int, log: Path, workers: int = 4, threads: int = 4) -> None:
        self.environment, self.port, self.log = environment, port, log
        self.workers, self.threads = workers, threads
        self.base = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen | None = None

    def migrate(self) -> None:
        done = subprocess.run(
            [str(Path(sys.executable).with_name("flask")), "--app", "webapp", "db", "upgrade"],
            cwd=ROOT,
            env=self.environment,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr[-3000:]

    def start(self, timeout_s: float = 60) -> None:
        self._log_handle = open(self.log, "a")
        self.process = subprocess.Popen(
            [
                GUNICORN,
                "--config",
                "python:webapp.gunicorn_conf",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                str(self.workers),
                "--threads",
                str(self.threads),
                "--access-logfile",
                "-",
                "webapp:create_app()",
            ],
            cwd=ROOT,
            env=self.environment,
            stdout=self._log_handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()[-3000:]
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.base}/healthz", timeout=2).status_code == 200:
                    return
            time.sleep(0.3)
        raise AssertionError(f"gunicorn did not answer:\n{self.log.read_text()[-3000:]}")

    def worker_pids(self) -> list[int]:
        import psutil

        assert self.process is not None
        return [child.pid for child in psutil.Process(self.process.pid).children()]

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=30)
        self._log_handle.close()


@contextlib.contextmanager
def threaded(app):
    """The app on a real port in a thread; yields its base URL (also set as its PUBLIC_URL)."""
    port = free_port()
    app.config.update(PUBLIC_URL=f"http://127.0.0.1:{port}", SESSION_COOKIE_SECURE=False)
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()


def client_from(address: str, base: str) -> httpx.Client:
    """An HTTP client whose requests come from `address` (any 127.x.y.z: another client)."""
    return httpx.Client(base_url=base, transport=httpx.HTTPTransport(local_address=address), timeout=30)
