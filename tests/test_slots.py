"""Several analyses per host: the slot formula, each slot's cores, and the thread bounds a
slot's processes get."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from uuid import UUID

import psutil
import pytest

from flows.warm import started_runs
from flows.worker import SlotWorkers
from tasks.config import load_config
from tasks.slots import THREAD_VARIABLES, HostResources, cpu_model, plan_slots, slot_count
from tests.conftest import MEDIA, ROOT, analysis_job_variables, deploy_analysis

WORKER = load_config().worker.model_copy(
    update={
        "cores_per_slot": 1,
        "memory_per_slot_mb": 2000,
        "gpu_memory_per_slot_mb": 2000,
        "reserved_memory_mb": 2000,
        "max_slots": 0,
    }
)


@pytest.mark.parametrize(
    ("host", "changes", "expected"),
    [
        # 16 cores, plenty of memory and GPU memory: one slot a core.
        (HostResources(16, 128_000, 80_000), {}, (16, "cores")),
        # Two cores per slot.
        (HostResources(16, 128_000, 80_000), {"cores_per_slot": 2}, (8, "cores")),
        # Memory runs out first: (12000 - 2000) // 2000.
        (HostResources(16, 12_000, 80_000), {}, (5, "memory")),
        # GPU memory runs out first: 8000 // 2000.
        (HostResources(16, 128_000, 8_000), {}, (4, "gpu memory")),
        # Without a GPU its memory does not count.
        (HostResources(2, 24_000, None), {}, (2, "cores")),
        (HostResources(16, 128_000, None), {"max_slots": 3}, (3, "max_slots")),
        # Too little of everything still leaves one slot.
        (HostResources(1, 1_000, None), {"cores_per_slot": 2}, (1, "memory")),
    ],
)
def test_the_formula_takes_the_scarcest_resource(host, changes, expected):
    assert slot_count(host, WORKER.model_copy(update=changes)) == expected


@pytest.mark.parametrize(
    ("cores", "requested", "shares"),
    [
        ([0, 1], None, ((0,), (1,))),
        ([0, 1], 1, ((0, 1),)),
        ([0, 1, 2, 3, 4], 2, ((0, 1, 2), (3, 4))),
        ([4, 5, 6, 7], 2, ((4, 5), (6, 7))),
        # More slots than cores share them round-robin.
        ([0, 1], 3, ((0,), (1,), (0,))),
    ],
)
def test_each_slot_gets_its_own_cores(cores, requested, shares):
    host = HostResources(len(cores), 64_000, None)
    assert plan_slots(host, WORKER, cores, requested).cores == shares


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="CPU affinity is Linux's")
def test_a_process_on_one_core_bounds_its_thread_pools_to_it():
    script = (
        "import os, cv2, torch; from tasks.slots import bound_threads; from tasks.video import cores_but_one; "
        "print(bound_threads(), torch.get_num_threads(), cv2.getNumThreads(), cores_but_one(), "
        "os.environ['OMP_NUM_THREADS'])"
    )
    workers = SlotWorkers("unused", plan_slots(HostResources(1, 64_000, None), WORKER, [0]), WORKER)
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=workers.slot_environment(0),
        preexec_fn=lambda: os.sched_setaffinity(0, {0}),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1", "1", "1", "1", "1"]


def test_benchmarks_name_the_cpu_the_os_reports():
    model = cpu_model()
    assert model and model != "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        assert f": {model}\n" in cpuinfo.read_text()


def test_the_dry_run_prints_each_slot_and_its_worker():
    done = subprocess.run(
        [sys.executable, "-m", "flows.cli", "worker", "--pool", "cpu", "--slots", "2", "--name", "h", "--dry-run"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 4
    for slot in range(2):
        worker, warm = lines[2 * slot : 2 * slot + 2]
        assert worker.startswith(f"slot {slot}: cores ")
        assert f"--pool cpu --type process --limit 1 --name h-{slot}" in worker
        assert warm.startswith(f"slot {slot}: warm process: ")
        assert re.search(rf" -m flows\.warm serve \S+/poser-warm-\d+/slot-{slot}\.sock$", warm), warm


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2, reason="two cores")
def test_slot_workers_run_flow_runs_on_their_own_cores_from_their_warm_processes(prefect_server, tmp_path):
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL

    deployment = deploy_analysis("slots-pool", "slots", analysis_job_variables())
    cores = sorted(os.sched_getaffinity(0))[:2]
    plan = plan_slots(HostResources(2, 64_000, None), WORKER, cores)
    environment = dict(os.environ) | {"PREFECT_API_URL": str(PREFECT_API_URL.value())}
    workers = SlotWorkers("slots-pool", plan, WORKER, "pinned", environment=environment)
    # An empty file: each run stops at its first step, after saying how many cores it has.
    clip = tmp_path / "empty.mp4"
    clip.write_bytes(b"")
    with open(tmp_path / "workers.log", "wb") as log:
        workers.start(log)
        try:
            assert sorted(_wait_for_workers("slots-pool", 2)) == ["pinned-0", "pinned-1"]
            for process, share in zip(workers.processes, plan.cores):
                worker = psutil.Process(process.pid)
                assert worker.cpu_affinity() == list(share)
                assert {name: worker.environ()[name] for name in THREAD_VARIABLES} == dict.fromkeys(
                    THREAD_VARIABLES, "1"
                )
            runs = [run_deployment(deployment, parameters={"video_path": str(clip)}, timeout=0).id for _ in range(2)]
            states = _wait_for_final(runs)
        finally:
            workers.stop()
    assert states == ["FAILED", "FAILED"]
    for run in runs:
        lines = _log_lines(run, "Running on ")
        assert lines == ["Running on 1 cores"], "\n".join(lines)
    log = (tmp_path / "workers.log").read_text(errors="replace")
    assert sorted(started_runs(log).values()) == sorted(map(str, runs)), log[-3000:]


def test_a_run_started_warm_stops_when_cancelled(prefect_server, tmp_path):
    from prefect import get_client
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL
    from prefect.states import Cancelling

    deployment = deploy_analysis("warm-pool", "warm", analysis_job_variables())
    plan = plan_slots(HostResources(1, 64_000, None), WORKER, sorted(os.sched_getaffinity(0))[:1])
    environment = dict(os.environ) | {"PREFECT_API_URL": str(PREFECT_API_URL.value())}
    workers = SlotWorkers("warm-pool", plan, WORKER, "warm", environment=environment)
    log = tmp_path / "workers.log"
    with open(log, "wb") as output:
        workers.start(output)
        try:
            assert _wait_for_workers("warm-pool", 1) == ["warm-0"]
            clip = MEDIA / "indoor_carpet_front.mp4"
            run = run_deployment(
                deployment, parameters={"video_path": str(clip), "out_dir": str(tmp_path / "out")}, timeout=0
            ).id
            child = _wait_for_warm_child(log, str(run))
            assert _wait_for_final([run], timeout_s=60, of=("RUNNING",)) == ["RUNNING"]

            async def cancel() -> None:
                async with get_client() as client:
                    await client.set_flow_run_state(run, Cancelling())

            asyncio.run(cancel())
            assert _wait_for_final([run], timeout_s=120) == ["CANCELLED"]
            assert not psutil.pid_exists(child) or psutil.Process(child).status() == psutil.STATUS_ZOMBIE
        finally:
            workers.stop()


def _wait_for_warm_child(log: Path, run: str, timeout_s: float = 120) -> int:
    """The process id of flow run `run`, once a warm process says it started it."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for pid, started in started_runs(log.read_text(errors="replace")).items():
            if started == run:
                return pid
        time.sleep(0.2)
    raise AssertionError(f"no warm process started {run}:\n{log.read_text(errors='replace')[-3000:]}")


def _wait_for_workers(pool: str, count: int, timeout_s: float = 120) -> list[str]:
    """The names of the workers that have polled `pool`, once there are `count` of them."""
    from prefect import get_client

    async def names() -> list[str]:
        async with get_client() as client:
            return [worker.name for worker in await client.read_workers_for_work_pool(pool)]

    deadline = time.monotonic() + timeout_s
    while True:
        seen = asyncio.run(names())
        if len(seen) >= count or time.monotonic() > deadline:
            return seen
        time.sleep(1)


def _wait_for_final(
    runs: list[UUID], timeout_s: float = 300, of: tuple[str, ...] = ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")
) -> list[str]:
    """The state types of `runs` once all are in `of` (final states by default), or at the
    deadline."""
    from prefect import get_client

    async def states() -> list[str]:
        async with get_client() as client:
            flow_runs = [await client.read_flow_run(run) for run in runs]
        return [run.state_type.value if run.state_type else "" for run in flow_runs]

    deadline = time.monotonic() + timeout_s
    while True:
        seen = asyncio.run(states())
        if all(state in of for state in seen):
            return seen
        if time.monotonic() > deadline:
            return seen
        time.sleep(1)


def _log_lines(run: UUID, prefix: str, timeout_s: float = 30) -> list[str]:
    """The lines of `run`'s logs that start with `prefix`, once there are some (logs reach the
    API in batches, possibly after the run's final state)."""
    from prefect import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    async def read() -> list[str]:
        async with get_client() as client:
            logs = await client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run])))
            return [log.message for log in logs]

    deadline = time.monotonic() + timeout_s
    while True:
        lines = asyncio.run(read())
        found = [line for line in lines if line.startswith(prefix)]
        if found or time.monotonic() > deadline:
            return found or lines
        time.sleep(1)


def test_a_warm_process_that_cannot_start_stops_the_slots_before_their_workers_start(monkeypatch):
    workers = SlotWorkers("unused", plan_slots(HostResources(1, 64_000, None), WORKER, [0]), WORKER)
    monkeypatch.setattr(workers, "warm_command", lambda slot: [sys.executable, "-c", "raise SystemExit(3)"])
    with pytest.raises(RuntimeError, match="Slot 0's warm process exited with status 3"):
        workers.start(subprocess.DEVNULL)
    assert workers.processes == []
    workers.stop()
    assert not workers.sockets.exists()
