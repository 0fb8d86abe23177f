"""Warm starts: a long-lived process per analysis slot that has imported the pipeline's
libraries once and forks a ready process for each flow run.

Prefect's process worker starts a fresh Python process for every flow run, which spends
seconds importing PyTorch, OpenCV, MediaPipe and Prefect before its first step (see
deployments/README.md, "Before the first step"). `poser worker` starts a warm process beside
each slot's worker (`serve`). The analysis deployments run `poser-flow-run` (`prefect.yaml`),
which asks its slot's warm process, over the Unix socket named in `POSER_WARM_SOCKET`, for a
child that runs Prefect's engine with the flow run's arguments, environment, working folder
and standard streams, then waits for it and exits as it did. Signals sent to `poser-flow-run`
(Prefect cancelling the run) are passed on to the child; if `poser-flow-run` dies, the child
is killed, and if the warm process dies, its children die with it. Where no warm process
serves (a worker started otherwise, or `worker.warm_start: false`), `poser-flow-run` runs the
engine itself, as Prefect would.

The models are not loaded ahead: MediaPipe's landmarker and PyTorch's thread pools start
threads, which do not survive a fork. This module imports nothing beyond the standard library
until `serve` runs, so `poser-flow-run` starts in a few hundredths of a second.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import runpy
import selectors
import signal
import socket
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

SOCKET_VARIABLE = "POSER_WARM_SOCKET"
# The console script of `run_flow_run`: the analysis deployments' command (prefect.yaml).
FLOW_RUN_COMMAND = "poser-flow-run"
ENGINE_MODULE = "prefect.engine"
# What the warm process imports before it serves: everything a flow run of the analysis needs.
PRELOADED_MODULES = ("flows.analyze", "prefect.flow_engine", "prefect._internal.metrics")
_FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
_STREAMS = (0, 1, 2)
_PR_SET_PDEATHSIG = 1
_REQUEST_TIMEOUT_S = 10
_STARTED = "warm process: flow run {run} started as process {pid}"
_STARTED_PATTERN = re.compile(r"warm process: flow run (\S+) started as process (\d+)")


@dataclass(frozen=True)
class Request:
    """What a flow run's process asks the warm process to run.

    Attributes:
        module: The module run as `__main__` (Prefect's engine).
        argv: Its arguments.
        cwd: The working folder.
        environment: The whole environment (the flow run's id, Prefect's settings).
    """

    module: str
    argv: list[str]
    cwd: str
    environment: dict[str, str]

    def encode(self) -> bytes:
        return json.dumps(self.__dict__).encode() + b"\n"


def run_flow_run(module: str = ENGINE_MODULE) -> int:
    """`poser-flow-run`: run `module` (Prefect's engine) with this process's arguments in a
    child of the slot's warm process, or here when there is none; returns its exit status."""
    path = os.environ.get(SOCKET_VARIABLE)
    connection = _connect(path) if path else None
    if connection is None:
        os.execv(sys.executable, [sys.executable, "-m", module, *sys.argv[1:]])
    with connection:
        request = Request(module, sys.argv[1:], os.getcwd(), dict(os.environ))
        socket.send_fds(connection, [b"R"], list(_STREAMS))
        connection.sendall(request.encode())
        replies = connection.makefile("rb")
        child = json.loads(replies.readline())["pid"]
        for signum in _FORWARDED_SIGNALS:
            signal.signal(signum, lambda signum, frame: os.kill(child, signum))
        outcome = replies.readline()
    if not outcome:
        print("poser-flow-run: the slot's warm process stopped during the flow run", file=sys.stderr)
        return 1
    return _exit_like(json.loads(outcome)["exit_code"])


def _connect(path: str) -> socket.socket | None:
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        connection.connect(path)
    except OSError:
        connection.close()
        return None
    return connection


def _exit_like(exit_code: int) -> int:
    """Return `exit_code`, or die of the same signal when the child did (negative codes)."""
    if exit_code < 0:
        signal.signal(-exit_code, signal.SIG_DFL)
        os.kill(os.getpid(), -exit_code)
    return exit_code


def serve(path: Path, preload: tuple[str, ...] = PRELOADED_MODULES) -> Request | None:
    """Import `preload`, then fork a child for each request on the Unix socket at `path`.

    Runs until SIGTERM or SIGINT in the warm process, returning None; returns the request in
    each child, which then runs it (`run_request`).
    """
    for module in preload:
        __import__(module)
    signal.signal(signal.SIGTERM, _stop)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    path.chmod(0o600)
    listener.listen(16)
    print(f"warm process {os.getpid()}: {len(sys.modules)} modules imported, serving {path}", flush=True)
    server = _Server(listener)
    try:
        return server.loop()
    except KeyboardInterrupt:
        return None
    finally:
        if server.is_parent:
            listener.close()
            path.unlink(missing_ok=True)


def _stop(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@dataclass
class _Child:
    """A forked flow run process, the pidfd that says when it ends, and its client."""

    pid: int
    pidfd: int
    connection: socket.socket
    ended: bool = False
    client_gone: bool = False


class _Server:
    """The warm process's loop: accept requests, fork, report each child's end to its client,
    and kill a child whose client went away."""

    def __init__(self, listener: socket.socket) -> None:
        self.listener = listener
        self.selector = selectors.DefaultSelector()
        self.selector.register(listener, selectors.EVENT_READ)
        self.is_parent = True

    def loop(self) -> Request | None:
        while True:
            for key, _ in self.selector.select():
                if key.fileobj is self.listener:
                    request = self._fork_for(self.listener.accept()[0])
                    if request is not None:
                        return request
                elif key.fileobj == key.data.pidfd:
                    self._child_ended(key.data)
                else:
                    self._client_gone(key.data)

    def _fork_for(self, connection: socket.socket) -> Request | None:
        try:
            request, streams = _receive(connection)
        except (OSError, ValueError, TypeError) as error:
            print(f"warm process: unreadable request ({error})", file=sys.stderr, flush=True)
            connection.close()
            return None
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            self.is_parent = False
            self.selector.close()
            self.listener.close()
            connection.close()
            _become(request, streams)
            return request
        for fd in streams:
            os.close(fd)
        connection.sendall(json.dumps({"pid": pid}).encode() + b"\n")
        run = request.environment.get("PREFECT__FLOW_RUN_ID", "?")
        print(_STARTED.format(run=run, pid=pid), flush=True)
        child = _Child(pid, os.pidfd_open(pid), connection)
        self.selector.register(child.pidfd, selectors.EVENT_READ, child)
        self.selector.register(connection, selectors.EVENT_READ, child)
        return None

    def _child_ended(self, child: _Child) -> None:
        child.ended = True
        self.selector.unregister(child.pidfd)
        os.close(child.pidfd)
        if not child.client_gone:
            self.selector.unregister(child.connection)
        exit_code = os.waitstatus_to_exitcode(os.waitpid(child.pid, 0)[1])
        with contextlib.suppress(OSError):  # its client may have died first
            child.connection.sendall(json.dumps({"exit_code": exit_code}).encode() + b"\n")
        child.connection.close()

    def _client_gone(self, child: _Child) -> None:
        # A client sends nothing after its request: readable means it closed or died.
        if child.ended:  # reported in the same round
            return
        child.client_gone = True
        self.selector.unregister(child.connection)
        os.kill(child.pid, signal.SIGKILL)  # not reaped yet, so the pid is still the child's


def _receive(connection: socket.socket) -> tuple[Request, list[int]]:
    connection.settimeout(_REQUEST_TIMEOUT_S)  # a stuck client must not hold up the others
    _, streams, _, _ = socket.recv_fds(connection, 1, len(_STREAMS))
    try:
        if len(streams) != len(_STREAMS):
            raise ValueError(f"{len(streams)} streams passed, not {len(_STREAMS)}")
        request = Request(**json.loads(connection.makefile("rb").readline()))
    except (OSError, ValueError, TypeError):
        for fd in streams:
            os.close(fd)
        raise
    connection.settimeout(None)
    return request, streams


def _become(request: Request, streams: list[int]) -> None:
    """In a fresh child: die with the warm process, take the client's streams, environment
    and working folder, and the default signal handlers."""
    parent = os.getppid()
    if sys.platform == "linux":
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the warm process died before the line above
            os._exit(1)
    for target, fd in zip(_STREAMS, streams, strict=True):
        os.dup2(fd, target)
        os.close(fd)
    os.environ.clear()
    os.environ.update(request.environment)
    os.chdir(request.cwd)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)


def run_request(request: Request) -> None:
    """Run `request.module` as `__main__` in this child, with Prefect's settings read again
    from the request's environment."""
    if "prefect" in sys.modules:
        from prefect.context import refresh_global_settings_context

        refresh_global_settings_context()
    sys.argv = [request.module, *request.argv]
    # The preloaded modules imported the engine's module already. runpy warns that running it
    # as __main__ makes a second copy of it; harmless, since __main__ only calls into Prefect.
    warnings.filterwarnings("ignore", r".* found in sys\.modules after import of package", RuntimeWarning)
    runpy.run_module(request.module, run_name="__main__", alter_sys=True)


def started_runs(log: str) -> dict[int, str]:
    """The flow runs a warm process's output says it started: their ids by process id."""
    return {int(pid): run for run, pid in _STARTED_PATTERN.findall(log)}


def main() -> int:
    """`python -m flows.warm serve SOCKET [MODULE ...]`: a slot's warm process, preloading
    the analysis's modules or those given."""
    args = sys.argv[1:]
    if len(args) < 2 or args[0] != "serve":
        print("usage: python -m flows.warm serve SOCKET [MODULE ...]", file=sys.stderr)
        return 2
    request = serve(Path(args[1]), tuple(args[2:]) or PRELOADED_MODULES)
    if request is not None:
        run_request(request)
    return 0


if __name__ == "__main__":
    sys.exit(main())
