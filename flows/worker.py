"""`poser worker`: one Prefect process worker per analysis slot of this host, each pinned to
its own cores (`tasks/slots.py`).

Each slot's worker runs one flow run at a time (`--limit 1`); the flow run's process inherits
the slot's cores and its thread settings. With `worker.warm_start`, each slot also has a warm
process (`flows/warm.py`) that starts its flow runs with the libraries already imported. The
slots stop together: on SIGTERM or Ctrl-C, or as soon as one of their processes exits.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from flows.warm import SOCKET_VARIABLE
from tasks.config import WorkerConfig
from tasks.slots import SlotPlan, slot_environment

ROOT = Path(__file__).resolve().parent.parent
_STOP_TIMEOUT_S = 30
# Importing the pipeline's libraries takes 3-8 s on a small machine, longer on a cold disk.
_WARM_TIMEOUT_S = 300


@dataclass
class SlotWorkers:
    """The worker processes of a host's slots.

    Attributes:
        pool: The work pool polled.
        plan: The slots and their cores.
        config: The slots' settings (polling interval).
        name: Prefix of the workers' names; each is `NAME-K` for slot K.
        healthcheck_port: With a port, slot K serves `GET /health` on port + K.
        environment: The environment the workers start from.
    """

    pool: str
    plan: SlotPlan
    config: WorkerConfig
    name: str = field(default_factory=socket.gethostname)
    healthcheck_port: int | None = None
    environment: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    warm_processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    sockets: Path = field(default_factory=lambda: Path(tempfile.gettempdir()) / f"poser-warm-{os.getpid()}")

    def command(self, slot: int) -> list[str]:
        """Slot `slot`'s worker command."""
        command = [sys.executable, "-m", "prefect", "worker", "start", "--pool", self.pool, "--type", "process"]
        command += ["--limit", "1", "--name", f"{self.name}-{slot}"]
        if self.healthcheck_port is not None:
            command.append("--with-healthcheck")
        return command

    def warm_socket(self, slot: int) -> Path:
        """Where slot `slot`'s warm process listens."""
        return self.sockets / f"slot-{slot}.sock"

    def warm_command(self, slot: int) -> list[str]:
        """Slot `slot`'s warm process command."""
        return [sys.executable, "-m", "flows.warm", "serve", str(self.warm_socket(slot))]

    def slot_environment(self, slot: int) -> dict[str, str]:
        """Slot `slot`'s environment: the thread pools bounded to its cores, the polling
        interval, its health check's port, its warm process's socket, and this Python's
        scripts first on the PATH (the deployments' `poser-flow-run`)."""
        environment = self.environment | slot_environment(self.plan.cores[slot])
        environment["PREFECT_WORKER_QUERY_SECONDS"] = f"{self.config.query_s:g}"
        scripts = str(Path(sys.executable).parent)
        environment["PATH"] = os.pathsep.join(filter(None, [scripts, environment.get("PATH")]))
        if self.config.warm_start:
            environment[SOCKET_VARIABLE] = str(self.warm_socket(slot))
        if self.healthcheck_port is not None:
            environment["PREFECT_WORKER_WEBSERVER_PORT"] = str(self.healthcheck_port + slot)
        return environment

    def start(self, output: IO[bytes] | int | None = None) -> None:
        """Start every slot's warm process, then, once they serve, every slot's worker, each
        pinned to its slot's cores (so that each slot's first run starts warm too)."""
        if self.config.warm_start:
            self.sockets.mkdir(mode=0o700, exist_ok=True)
            for slot in range(self.plan.slots):
                self.warm_processes.append(self._spawn(self.warm_command(slot), slot, output))
            self._wait_until_warm()
        for slot in range(self.plan.slots):
            self.processes.append(self._spawn(self.command(slot), slot, output))

    def _wait_until_warm(self) -> None:
        deadline = time.monotonic() + _WARM_TIMEOUT_S
        for slot, process in enumerate(self.warm_processes):
            while not self.warm_socket(slot).exists():
                if process.poll() is not None:
                    raise RuntimeError(f"Slot {slot}'s warm process exited with status {process.returncode}.")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"Slot {slot}'s warm process did not start in {_WARM_TIMEOUT_S} s.")
                time.sleep(0.1)

    def _spawn(self, command: list[str], slot: int, output: IO[bytes] | int | None) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            command,
            cwd=ROOT,
            env=self.slot_environment(slot),
            stdout=output,
            stderr=subprocess.STDOUT if output is not None else None,
            # A session of its own: a signal reaches the process and the flow runs it started.
            start_new_session=True,
            preexec_fn=_pinned_to(self.plan.cores[slot]),
        )

    def wait(self) -> int:
        """Block until a slot's worker or warm process exits; returns its exit status."""
        while True:
            for process in self.processes + self.warm_processes:
                if process.poll() is not None:
                    return process.returncode
            time.sleep(0.5)

    def stop(self) -> None:
        """Stop every slot's worker and warm process, and the flow runs they started."""
        everything = self.processes + self.warm_processes
        for process in everything:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in everything:
            try:
                process.wait(timeout=_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        self.processes.clear()
        self.warm_processes.clear()
        if self.sockets.is_dir():
            for leftover in self.sockets.glob("*.sock"):
                leftover.unlink()
            self.sockets.rmdir()


def _pinned_to(cores: Sequence[int]) -> Callable[[], None] | None:
    """What a slot's process runs before its program: pin itself to `cores` (Linux only)."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    share = set(cores)
    return lambda: os.sched_setaffinity(0, share)
