"""The warm process and `poser-flow-run` (`flows/warm.py`), with `tests/warm_probe.py` standing
in for Prefect's engine. The flow runs of the real analysis through a warm process are in
tests/test_slots.py."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from flows.warm import SOCKET_VARIABLE, started_runs
from tests.conftest import ROOT

PROBE = "tests.warm_probe"
CLIENT = f"import sys; from flows.warm import run_flow_run; sys.exit(run_flow_run({PROBE!r}))"
RUN_ID = "0b7c9e1a-0000-4000-8000-000000000001"


def _serve(path: Path, log: Path) -> subprocess.Popen[bytes]:
    """A warm process on `path` that preloads only the standard library's json."""
    with open(log, "wb") as output:
        server = subprocess.Popen(
            [sys.executable, "-m", "flows.warm", "serve", str(path), "json"], cwd=ROOT, stdout=output, stderr=output
        )
    deadline = time.monotonic() + 60
    while not path.exists():
        assert server.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.05)
    return server


@pytest.fixture
def warm(tmp_path):
    """A warm process; yields it. It must stop cleanly on SIGTERM, removing its socket."""
    path = tmp_path / "warm.sock"
    server = _serve(path, tmp_path / "warm.log")
    yield server, path
    server.terminate()
    assert server.wait(timeout=10) == 0
    assert not path.exists()


def _client(socket_path: Path | None, *args: str, cwd: Path, **popen) -> subprocess.Popen[str]:
    environment = dict(os.environ, PROBE_VALUE="from the client", PYTHONPATH=str(ROOT), PREFECT__FLOW_RUN_ID=RUN_ID)
    environment.pop(SOCKET_VARIABLE, None)
    if socket_path is not None:
        environment[SOCKET_VARIABLE] = str(socket_path)
    return subprocess.Popen([sys.executable, "-c", CLIENT, *args], cwd=cwd, env=environment, text=True, **popen)


@pytest.mark.parametrize("exit_code", [0, 3])
def test_the_child_runs_with_the_clients_arguments_environment_folder_and_streams(warm, tmp_path, exit_code):
    server, path = warm
    client = _client(path, "report", str(exit_code), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = client.communicate(timeout=60)
    assert client.returncode == exit_code
    report = json.loads(out)
    assert report["parent"] == server.pid
    assert report["argv"] == ["report", str(exit_code)]
    assert report["cwd"] == str(tmp_path)
    assert report["value"] == "from the client"
    assert err == "probe on stderr\n"
    assert started_runs((tmp_path / "warm.log").read_text()) == {report["pid"]: RUN_ID}


@pytest.mark.parametrize("socket_name", [None, "nobody-listens.sock"])
def test_without_a_warm_process_the_client_runs_the_module_itself(tmp_path, socket_name):
    path = tmp_path / socket_name if socket_name else None
    client = _client(path, "report", "4", cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = client.communicate(timeout=60)
    assert client.returncode == 4
    report = json.loads(out)
    assert report["pid"] == client.pid
    assert report["argv"] == ["report", "4"]
    assert report["value"] == "from the client"
    assert err == "probe on stderr\n"


def _sleeping_child(path: Path, tmp_path: Path) -> tuple[subprocess.Popen[str], psutil.Process]:
    pidfile = tmp_path / "child.pid"
    client = _client(path, "sleep", str(pidfile), cwd=tmp_path)
    deadline = time.monotonic() + 60
    while not pidfile.exists() or not pidfile.read_text():
        assert client.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    return client, psutil.Process(int(pidfile.read_text()))


def _gone(process: psutil.Process) -> bool:
    """Whether `process` ended (reaped, or a zombie its parent has yet to reap)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if not process.is_running() or process.status() == psutil.STATUS_ZOMBIE:
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_to_the_client_reaches_the_child_and_the_client_ends_as_it_did(warm, tmp_path, signum):
    client, child = _sleeping_child(warm[1], tmp_path)
    client.send_signal(signum)
    # SIGINT too: Python dies of it after an uncaught KeyboardInterrupt.
    assert client.wait(timeout=30) == -signum
    assert _gone(child)


def test_the_child_is_killed_when_its_client_dies(warm, tmp_path):
    client, child = _sleeping_child(warm[1], tmp_path)
    client.kill()
    client.wait(timeout=30)
    assert _gone(child)


def test_the_children_die_with_the_warm_process(tmp_path):
    path = tmp_path / "warm.sock"
    server = _serve(path, tmp_path / "warm.log")
    client, child = _sleeping_child(path, tmp_path)
    server.kill()
    server.wait(timeout=30)
    assert _gone(child)
    assert client.wait(timeout=30) == 1


@pytest.mark.parametrize("garbage", [b"", b"not a request\n", b'{"module": "x"}\n'])
def test_a_bad_request_is_refused_and_the_next_one_served(warm, tmp_path, garbage):
    server, path = warm
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as bad:
        bad.connect(str(path))
        if garbage:
            socket.send_fds(bad, [b"R"], [0, 1, 2])
            bad.sendall(garbage)
        bad.shutdown(socket.SHUT_WR)
        assert bad.recv(100) == b""  # closed without a child
    client = _client(path, "report", "0", cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, _ = client.communicate(timeout=60)
    assert client.returncode == 0
    assert json.loads(out)["parent"] == server.pid
    assert "unreadable request" in (tmp_path / "warm.log").read_text()


def test_started_runs_reads_the_warm_process_lines():
    log = (
        "warm process 10: 96 modules imported, serving /tmp/s\n"
        "warm process: flow run 0b7c-11 started as process 4242\n"
        "some other line\n"
        "warm process: flow run 9f00-22 started as process 4343\n"
    )
    assert started_runs(log) == {4242: "0b7c-11", 4343: "9f00-22"}
