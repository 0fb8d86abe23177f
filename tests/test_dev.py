"""`poser dev`, run from a fresh clone, brings the whole stack up; a browser signs in, uploads
a clip and sees its result, analysed by a flow run started from the slot's warm process;
Ctrl-C stops it with nothing left behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx
import psutil
import pytest

from flows.warm import started_runs
from tests.conftest import ROOT, free_port, screenshots
from tests.webutil import sign_in_with_browser

pytestmark = pytest.mark.slow


def test_the_stack_runs_an_analysis_and_stops_cleanly(tmp_path, smtp_sink, derived, browser_page):
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    web, prefect = free_port(), free_port()
    environment = os.environ.copy() | {
        # The clone's code, run with this checkout's installed packages and models.
        "PYTHONPATH": str(clone),
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "POSER_SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'web.sqlite3'}",
        "POSER_STORAGE_ROOT": str(tmp_path / "storage"),
        "POSER_MAIL_BACKEND": "smtp",
        "POSER_SMTP_PORT": str(smtp_sink.port),
    }
    for name in ("PREFECT_API_URL", "PREFECT_LOCAL_STORAGE_PATH"):
        environment.pop(name, None)
    log = open(tmp_path / "dev.log", "w")
    dev = subprocess.Popen(
        [sys.executable, "-m", "flows.cli", "dev", "--port", str(web), "--prefect-port", str(prefect)],
        cwd=clone,
        env=environment,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{web}"
    page, shot = browser_page, screenshots(browser_page)
    try:
        _wait_until(lambda: httpx.get(f"{base}/readyz", timeout=2).status_code == 200, 240, dev)
        parts = psutil.Process(dev.pid).children(recursive=True)
        assert len(parts) >= 4  # server, web app, worker, and their own children
        assert {part.cwd() for part in parts} == {str(clone)}  # every part runs the clone's code

        sign_in_with_browser(page, base, smtp_sink, "dev@example.com")
        page.set_input_files("#file", str(derived["short"]))
        page.click("#analyse")
        page.wait_for_selector("#results:not([hidden])", timeout=300_000)
        shot("dev-stack-result")
    finally:
        dev.send_signal(signal.SIGINT)
        dev.wait(timeout=120)
        log.close()
    output = (tmp_path / "dev.log").read_text()
    assert dev.returncode == 0, output[-3000:]
    assert len(started_runs(output)) == 1, output[-3000:]  # the analysis started from the warm process
    time.sleep(1)
    assert not [part for part in parts if part.is_running() and part.status() != psutil.STATUS_ZOMBIE]


def _wait_until(condition, timeout_s: float, dev: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert dev.poll() is None, "poser dev exited early"
        try:
            if condition():
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise AssertionError("timed out")
