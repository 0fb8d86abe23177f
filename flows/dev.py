"""`poser dev`: the whole stack on one machine, on loopback.

A Prefect server, a process work pool with the analysis and maintenance deployments and one
worker slot on it (`poser worker`, with its warm process), the automation that marks runs of a
dead worker Crashed, and the web app. By default everything is embedded (Prefect on SQLite,
the web app on SQLite with local storage and mail printed to the console); the usual
environment variables point the web app at PostgreSQL, S3 and SMTP instead. Ctrl-C stops the
worker, then the web app, then the server.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from flows.crash_detection import CrashDetection
from flows.warm import FLOW_RUN_COMMAND

ROOT = Path(__file__).resolve().parent.parent
POOL = "local"
DEPLOYMENT = "analyze-video/local"
_STOP_TIMEOUT_S = 20


@dataclass
class Stack:
    """The processes of the stack, started in order and stopped in reverse."""

    prefect_port: int
    web_port: int
    environment: dict[str, str]
    processes: list[tuple[str, subprocess.Popen]] = field(default_factory=list)

    @classmethod
    def from_environment(cls, prefect_port: int, web_port: int) -> Stack:
        bin_dir = Path(sys.executable).parent
        environment = os.environ.copy() | {
            "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
            "PREFECT_API_URL": f"http://127.0.0.1:{prefect_port}/api",
            "PREFECT_SERVER_API_HOST": "127.0.0.1",
            "PREFECT_SERVER_API_PORT": str(prefect_port),
            "POSER_WEBAPP_URL": f"http://127.0.0.1:{web_port}",
            "POSER_ANALYSIS_DEPLOYMENT": DEPLOYMENT,
            # Plain HTTP on loopback: the cookie cannot be Secure there.
            "POSER_SESSION_COOKIE_SECURE": "false",
            # A laptop, not production: the web app keeps a secret key of its own in its
            # instance folder instead of refusing to start without POSER_SECRET_KEY.
            "POSER_DEV_MODE": "true",
        }
        environment.setdefault("POSER_PUBLIC_URL", f"http://127.0.0.1:{web_port}")
        # The parts' own logs are the point of running the stack in a terminal.
        environment.pop("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", None)
        environment.setdefault("POSER_INTERNAL_SECRET", secrets.token_urlsafe(32))
        environment.setdefault("DO_NOT_TRACK", "1")
        environment.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
        environment.setdefault("PREFECT_WORKER_QUERY_SECONDS", "2")
        # Flow runs of the local worker send the heartbeats the crash detection expects.
        environment.setdefault("PREFECT_FLOWS_HEARTBEAT_FREQUENCY", str(CrashDetection.from_project().heartbeat_s))
        return cls(prefect_port, web_port, environment)

    def start(self, say) -> None:
        """Start every part and wait until each answers; raises if one does not."""
        say(f"Starting the Prefect server on http://127.0.0.1:{self.prefect_port}")
        self._spawn("prefect server", ["prefect", "server", "start"])
        self._wait_for(f"http://127.0.0.1:{self.prefect_port}/api/health", "the Prefect server", 120)

        say(f"Registering the {DEPLOYMENT} deployment on the '{POOL}' work pool")
        self._run(["prefect", "work-pool", "create", POOL, "--type", "process", "--overwrite"])
        self._run(
            ["prefect", "--no-prompt", "deploy", "flows/analyze.py:analyze_video", "--name", "local", "--pool", POOL]
            + ["--job-variable", f"command={FLOW_RUN_COMMAND}"]
        )
        # prefect.yaml's maintenance deployment (hourly, and after a crashed analysis), on this pool.
        self._run(["prefect", "--no-prompt", "deploy", "--name", "maintenance", "--pool", POOL])
        self._run(["poser", "crash-detection"])
        self._run(["flask", "--app", "webapp", "db", "upgrade"])

        say(f"Starting the web app on http://127.0.0.1:{self.web_port}")
        self._spawn(
            "web app",
            [
                "gunicorn",
                "--config",
                "python:webapp.gunicorn_conf",
                "--bind",
                f"127.0.0.1:{self.web_port}",
                "--workers",
                "2",
                "--threads",
                "4",
                "--access-logfile",
                "-",
                "webapp:create_app()",
            ],
        )
        self._wait_for(f"http://127.0.0.1:{self.web_port}/healthz", "the web app", 60)
        say("Starting a worker on the pool (one slot, as `poser worker` runs them)")
        self._spawn("worker", ["poser", "worker", "--pool", POOL, "--slots", "1"])

    def wait(self) -> int:
        """Block until a part exits on its own; returns its exit status."""
        while True:
            for name, process in self.processes:
                if process.poll() is not None:
                    print(f"The {name} stopped (exit status {process.returncode}).", file=sys.stderr)
                    return process.returncode or 1
            time.sleep(0.5)

    def stop(self) -> None:
        """Stop the parts in reverse order of starting: the worker before the server."""
        for _, process in reversed(self.processes):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=_STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
        self.processes.clear()

    def _spawn(self, name: str, command: list[str]) -> None:
        # A session of its own, so a signal reaches the part and every process it started.
        process = subprocess.Popen(command, cwd=ROOT, env=self.environment, start_new_session=True)
        self.processes.append((name, process))

    def _run(self, command: list[str]) -> None:
        done = subprocess.run(command, cwd=ROOT, env=self.environment, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"`{' '.join(command)}` failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")

    def _wait_for(self, url: str, what: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if any(process.poll() is not None for _, process in self.processes):
                raise RuntimeError(f"{what} exited while starting.")
            try:
                if httpx.get(url, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"{what} did not answer at {url} within {timeout_s:.0f} s.")
