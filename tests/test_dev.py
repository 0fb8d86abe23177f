"""`poser dev` brings the whole stack up, runs an analysis from upload to result, and stops
with nothing left behind."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from tests.conftest import ROOT, free_port

pytestmark = pytest.mark.slow


def test_the_stack_runs_an_analysis_and_stops_cleanly(tmp_path, smtp_sink, derived):
    web, prefect = free_port(), free_port()
    environment = os.environ.copy() | {
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
        [str(Path(sys.executable).with_name("poser")), "dev", "--port", str(web), "--prefect-port", str(prefect)],
        cwd=ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{web}"
    try:
        _wait_until(lambda: httpx.get(f"{base}/readyz", timeout=2).status_code == 200, 240, dev)
        parts = psutil.Process(dev.pid).children(recursive=True)
        assert len(parts) >= 4  # server, web app, worker, and their own children

        with httpx.Client(base_url=base, timeout=30) as client:
            sent = len(smtp_sink.messages)
            client.post("/api/auth/request-code", json={"email": "dev@example.com"})
            code = re.search(r"\b(\d{6})\b", smtp_sink.messages[sent]["Subject"]).group(1)
            csrf = {"X-CSRF-Token": client.post("/api/auth/verify-code", json={"email": "dev@example.com", "code": code}).json()["csrf_token"]}
            clip = derived["short"].read_bytes()
            answer = client.post("/api/analyses/create-upload", headers=csrf,
                                 json={"filename": "clip.mp4", "content_type": "video/mp4", "size": len(clip)}).json()
            assert httpx.put(answer["upload"]["url"], content=clip, headers=answer["upload"]["headers"]).status_code == 200
            analysis_id = answer["analysis"]["id"]
            assert client.post(f"/api/analyses/{analysis_id}/confirm-upload", headers=csrf).status_code == 202
            _wait_until(lambda: client.get(f"/api/analyses/{analysis_id}").json()["analysis"]["status"] != "queued"
                        and client.get(f"/api/analyses/{analysis_id}").json()["analysis"]["status"] != "processing", 300, dev)
            assert client.get(f"/api/analyses/{analysis_id}").json()["analysis"]["status"] == "complete"
    finally:
        dev.send_signal(signal.SIGINT)
        dev.wait(timeout=120)
        log.close()
    assert dev.returncode == 0, (tmp_path / "dev.log").read_text()[-3000:]
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
