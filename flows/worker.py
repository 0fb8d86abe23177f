"""`poser worker`: one Prefect process worker per analysis slot of this host, each pinned to
its own cores (`tasks/slots.py`).

Each slot's worker runs one flow run at a time (`--limit 1`); the flow run's process inherits
the slot's cores and its thread settings. The slots stop together: on SIGTERM or Ctrl-C, or
as soon as one of them exits.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from tasks.config import WorkerConfig
from tasks.slots import SlotPlan, slot_environment

ROOT = Path(__file__).resolve().parent.parent
_STOP_TIMEOUT_S = 30


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

    def command(self, slot: int) -> list[str]:
        """Slot `slot`'s worker command."""
        command = [sys.executable, "-m", "prefect", "worker", "start", "--pool", self.pool, "--type", "process"]
        command += ["--limit", "1", "--name", f"{self.name}-{slot}"]
        if self.healthcheck_port is not None:
            command.append("--with-healthcheck")
        return command

    def slot_environment(self, slot: int) -> dict[str, str]:
        """Slot `slot`'s environment: the thread pools bounded to its cores, the polling
        interval, its health check's port."""
        environment = self.environment | slot_environment(self.plan.cores[slot])
        environment["PREFECT_WORKER_QUERY_SECONDS"] = f"{self.config.query_s:g}"
        if self.healthcheck_port is not None:
            environment["PREFECT_WORKER_WEBSERVER_PORT"] = str(self.healthcheck_port + slot)
        return environment

    def start(self, output: IO[bytes] | int | None = None) -> None:
        """Start every slot's worker, pinned to the slot's cores."""
        for slot in range(self.plan.slots):
            self.processes.append(
                subprocess.Popen(
                    self.command(slot),
                    cwd=ROOT,
                    env=self.slot_environment(slot),
                    stdout=output,
                    stderr=subprocess.STDOUT if output is not None else None,
                    # A session of its own: a signal reaches the worker and its flow runs.
                    start_new_session=True,
                    preexec_fn=_pinned_to(self.plan.cores[slot]),
                )
            )

    def wait(self) -> int:
        """Block until a slot's worker exits; returns its exit status."""
        while True:
            for process in self.processes:
                if process.poll() is not None:
                    return process.returncode
            time.sleep(0.5)

    def stop(self) -> None:
        """Stop every slot's worker and the flow runs they started."""
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        self.processes.clear()


def _pinned_to(cores: Sequence[int]) -> Callable[[], None] | None:
    """What a slot's process runs before its program: pin itself to `cores` (Linux only)."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    share = set(cores)
    return lambda: os.sched_setaffinity(0, share)
