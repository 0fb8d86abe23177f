"""Analyses per hour through the real stack: a Prefect server, this host's slot workers
(`poser worker`'s, one pinned process worker per slot) on a process pool, and the
`analyze-video` deployment.

Once every slot's worker polls the pool, submits `--clips` analyses of the sample clips at once,
as the web app does (`run_deployment` without waiting), waits for all of them, and prints clips
per hour, frames per second for the whole host, latency from submission to Completed, and where
each run's time went:

- queue: submitted until a slot's worker claims the run (Pending): the polling delay, or
  waiting for a free slot;
- start: claimed until the flow runs (the worker launching the run's process, Python, the
  imports of the flow's module, Prefect's engine; `benchmarks/pipeline.py`'s `startup s` is
  the imports alone). With `worker.warm_start` (the default) the slot's warm process has
  imported them already and forks the run's process; `--set worker.warm_start=false` measures
  a fresh process per run;
- setup: flow running until its first step starts (config, models checked, threads bounded);
- each step (task run) by name; model loading is inside `detect-and-track` and `pose`;
- finish: last step done until Completed (summary artifact, results persisted).

CPU utilisation is the host's over the batch (`host`, neighbours included) and the runs'
processes' share of the slots' cores (`runs`); CPU s and peak RSS are each run process's own
(sampled every 0.2 s), and the slots' memory is their processes' proportional set size at its
peak, warm processes included; GPU utilisation and memory come from nvidia-smi where there is one.
`lat/stg` is a run's latency over the sum of its steps.

    .venv/bin/python benchmarks/throughput.py [--slots 2] [--clips 4] [--clip indoor_carpet_front.mp4]
        [--trim-end S] [--set worker.query_s=10 ...] [--json]

It runs unchanged on a GPU host (device auto picks CUDA).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from flows.warm import started_runs
from flows.worker import SlotWorkers
from tasks.config import load_config, parse_settings
from tasks.slots import HostResources, cpu_ids, cpu_model, plan_slots
from tests.conftest import MEDIA, analysis_job_variables, deploy_analysis, prefect_stack

POOL = "throughput"
CLIPS = ["indoor_carpet_front.mp4", "piste_followcam.mp4"]
PHASES = ["queue", "start", "setup"]
_SAMPLE_S = 0.2


@dataclass
class RunProcess:
    """What sampling saw of one flow run's process."""

    peak_rss_mb: float = 0.0
    cpu_s: float = 0.0


@dataclass
class Sampler:
    """Samples the host's CPU, each flow run process's memory and CPU time, and the GPU.

    A flow run's process is known by the run id in its environment, or, when a slot's warm
    process forked it (whose environment it shows), by the warm process's line in `log`. The
    slots' memory is the proportional set size (shared pages split between their sharers) of
    the processes in `roots` (the slots' workers and warm processes) and all they started.
    """

    log: Path
    roots: list[int] = field(default_factory=list)
    processes: dict[str, RunProcess] = field(default_factory=dict)
    slots_memory_mb: float = 0.0
    _forked: dict[int, str] = field(default_factory=dict)
    _log_read: int = 0
    gpu_util: list[float] = field(default_factory=list)
    gpu_memory_mb: float = 0.0
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        psutil.cpu_percent()
        threading.Thread(target=self._loop, daemon=True, name="sampler").start()
        if shutil.which("nvidia-smi"):
            threading.Thread(target=self._gpu_loop, daemon=True, name="gpu-sampler").start()

    def stop(self) -> float:
        """Stop sampling; returns the host's mean CPU utilisation (0-100) since `start`."""
        self._stop.set()
        return psutil.cpu_percent()

    def _loop(self) -> None:
        me = os.getuid()
        run_of: dict[int, str | None] = {}
        while not self._stop.wait(_SAMPLE_S):
            self._read_new_log_lines()
            for process in psutil.process_iter(["pid", "uids"]):
                try:
                    if process.info["uids"].real != me:
                        continue
                    if process.pid not in run_of:
                        run_of[process.pid] = process.environ().get("PREFECT__FLOW_RUN_ID")
                    run_id = run_of[process.pid] or self._forked.get(process.pid)
                    if not run_id:
                        continue
                    seen = self.processes.setdefault(run_id, RunProcess())
                    seen.peak_rss_mb = max(seen.peak_rss_mb, process.memory_info().rss / 2**20)
                    times = process.cpu_times()
                    seen.cpu_s = max(seen.cpu_s, times.user + times.system)
                except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                    continue
            self.slots_memory_mb = max(self.slots_memory_mb, self._slots_pss_mb())

    def _read_new_log_lines(self) -> None:
        """Add the warm processes' lines written since the last read (whole lines only)."""
        with open(self.log, "rb") as log:
            log.seek(self._log_read)
            text = log.read()
        complete = text[: text.rfind(b"\n") + 1]
        self._log_read += len(complete)
        self._forked |= started_runs(complete.decode(errors="replace"))

    def _slots_pss_mb(self) -> float:
        total = 0.0
        for root in self.roots:
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                tree = psutil.Process(root)
                for process in [tree, *tree.children(recursive=True)]:
                    with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                        total += process.memory_full_info().pss / 2**20
        return total

    def _gpu_loop(self) -> None:
        query = ["nvidia-smi", "--query-gpu=utilization.gpu,memory.used", "--format=csv,noheader,nounits"]
        while not self._stop.wait(1.0):
            done = subprocess.run(query, capture_output=True, text=True)
            if done.returncode == 0 and done.stdout.strip():
                utilisation, memory = done.stdout.splitlines()[0].split(",")
                self.gpu_util.append(float(utilisation))
                self.gpu_memory_mb = max(self.gpu_memory_mb, float(memory))


@dataclass
class Run:
    """One analysis: its clip, when it was submitted, and the times read back."""

    clip: str
    flow_run_id: str
    submitted: float
    frames: int = 0
    state: str = ""
    latency_s: float = 0.0
    phases_s: dict[str, float] = field(default_factory=dict)
    stages_s: dict[str, float] = field(default_factory=dict)
    cpu_s: float = 0.0
    peak_rss_mb: float = 0.0


def submit(deployment: str, clips: list[Path], out: Path, trim_end_s: float | None) -> list[Run]:
    """Start one flow run per clip (up to `trim_end_s` when given) without waiting, as the web
    app does."""
    from prefect.deployments import run_deployment

    runs = []
    for index, clip in enumerate(clips):
        submitted = time.time()
        flow_run = run_deployment(
            name=deployment,
            parameters={
                "video_path": str(clip),
                "out_dir": str(out / f"{index}-{clip.stem}"),
                "trim_end_s": trim_end_s,
            },
            timeout=0,
        )
        runs.append(Run(clip.name, str(flow_run.id), submitted))  # type: ignore[union-attr]
    return runs


async def _final_states(runs: list[Run]) -> bool:
    from prefect import get_client

    async with get_client() as client:
        for run in runs:
            flow_run = await client.read_flow_run(UUID(run.flow_run_id))
            run.state = flow_run.state_type.value if flow_run.state_type else ""
    return all(run.state in {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"} for run in runs)


def wait_for(runs: list[Run], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not asyncio.run(_final_states(runs)):
        if time.monotonic() > deadline:
            sys.exit(f"Runs still unfinished after {timeout_s:.0f} s: {[r.state for r in runs]}")
        time.sleep(1)


async def _read_breakdown(run: Run, process: RunProcess | None) -> None:
    """Fill in `run`'s latency, phases and stages from its states and task runs."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    async with get_client() as client:
        states = await client.read_flow_run_states(UUID(run.flow_run_id))
        tasks = await client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[UUID(run.flow_run_id)]))
        )
    at = {state.type.value: _seconds(state.timestamp) for state in states}
    run.latency_s = at["COMPLETED"] - run.submitted
    started = [task for task in tasks if task.start_time and task.end_time]
    first = min(_seconds(task.start_time) for task in started)
    last = max(_seconds(task.end_time) for task in started)
    run.phases_s = {
        "queue": at["PENDING"] - run.submitted,
        "start": at["RUNNING"] - at["PENDING"],
        "setup": first - at["RUNNING"],
        "finish": at["COMPLETED"] - last,
    }
    for task in started:
        # A task run's name is its task's and a short suffix.
        name = task.name.rsplit("-", 1)[0]
        run.stages_s[name] = run.stages_s.get(name, 0.0) + (task.end_time - task.start_time).total_seconds()  # type: ignore[operator]
    if process is not None:
        run.cpu_s, run.peak_rss_mb = process.cpu_s, process.peak_rss_mb


def _wait_for_workers(count: int, timeout_s: float) -> None:
    """Wait until `count` workers have polled the pool."""
    from prefect import get_client

    async def polled() -> int:
        async with get_client() as client:
            return len(await client.read_workers_for_work_pool(POOL))

    deadline = time.monotonic() + timeout_s
    while asyncio.run(polled()) < count:
        if time.monotonic() > deadline:
            sys.exit(f"The {count} slot workers did not poll the pool within {timeout_s:.0f} s.")
        time.sleep(0.5)


def _seconds(moment: datetime | None) -> float:
    assert moment is not None
    return moment.timestamp()


def measure(
    slots: int, clips: list[Path], settings: list[str], timeout_s: float, trim_end_s: float | None = None
) -> dict[str, Any]:
    """Run the batch through `slots` slots; returns the summary and the runs."""
    config = load_config(overrides=parse_settings(settings)).worker
    plan = plan_slots(HostResources.detect(), config, cpu_ids(), slots)
    plan_cores = len({core for share in plan.cores for core in share})
    with tempfile.TemporaryDirectory(prefix="poser-throughput-") as scratch:
        folder = Path(scratch)
        with prefect_stack(folder / "results") as api_url:
            deployment = deploy_analysis(POOL, "throughput", analysis_job_variables())
            environment = dict(os.environ) | {
                "PREFECT_API_URL": api_url,
                "PREFECT_LOCAL_STORAGE_PATH": str(folder / "results"),
                "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": "WARNING",
            }
            workers = SlotWorkers(POOL, plan, config, "throughput", environment=environment)
            sampler = Sampler(folder / "workers.log")
            with open(folder / "workers.log", "wb") as log:
                workers.start(log)
                sampler.roots = [process.pid for process in workers.processes + workers.warm_processes]
                try:
                    # As on a host in service: every slot is idle and polling when the batch comes.
                    _wait_for_workers(plan.slots, timeout_s=120)
                    time.sleep(config.query_s)
                    sampler.start()
                    began = time.time()
                    runs = submit(deployment, clips, folder / "out", trim_end_s)
                    wait_for(runs, timeout_s)
                    ended = time.time()
                    cpu_utilisation = sampler.stop()
                finally:
                    workers.stop()
            for run in runs:
                if run.state != "COMPLETED":
                    sys.exit(f"Run {run.flow_run_id} of {run.clip} ended {run.state}; see {folder / 'workers.log'}")
                asyncio.run(_read_breakdown(run, sampler.processes.get(run.flow_run_id)))
            for index, run in enumerate(runs):
                results = json.loads((folder / "out" / f"{index}-{Path(run.clip).stem}" / "results.json").read_text())
                run.frames = results["input"]["frames_in_trim"]
    wall = ended - began
    latencies = [run.latency_s for run in runs]
    stage_names = sorted({name for run in runs for name in run.stages_s}, key=_stage_order)
    return {
        "machine": _machine(),
        "slots": plan.slots,
        "cores_per_slot": plan.cores_per_slot,
        "query_s": config.query_s,
        "clips": len(runs),
        "wall_s": wall,
        "clips_per_hour": 3600 * len(runs) / wall,
        "frames_per_s": sum(run.frames for run in runs) / wall,
        "latency_p50_s": _percentile(latencies, 50),
        "latency_p95_s": _percentile(latencies, 95),
        "phases_p50_s": {name: _percentile([run.phases_s[name] for run in runs], 50) for name in [*PHASES, "finish"]},
        "stages_p50_s": {
            name: _percentile([run.stages_s[name] for run in runs if name in run.stages_s], 50) for name in stage_names
        },
        "cpu_utilisation_pct": cpu_utilisation,
        "runs_cpu_pct": 100 * sum(run.cpu_s for run in runs) / (wall * plan_cores),
        "gpu_utilisation_pct": statistics.fmean(sampler.gpu_util) if sampler.gpu_util else None,
        "gpu_memory_peak_mb": sampler.gpu_memory_mb or None,
        "peak_rss_mb_max": max(run.peak_rss_mb for run in runs),
        "slots_memory_peak_mb": sampler.slots_memory_mb,
        "runs": [asdict(run) for run in runs],
    }


_ORDER = ["fetch", "probe", "detect-and-track", "pose", "smooth", "metrics", "findings", "render", "export", "publish"]


def _stage_order(name: str) -> int:
    return _ORDER.index(name) if name in _ORDER else len(_ORDER)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _machine() -> str:
    host = HostResources.detect()
    gpu = f", GPU {host.gpu_memory_mb:.0f} MB" if host.gpu_memory_mb else ", no GPU"
    return f"{platform.node()}: {host.cores} cores ({cpu_model()}), {host.memory_mb / 1024:.0f} GB{gpu}"


def print_report(summary: dict[str, Any]) -> None:
    print(
        f"{summary['machine']}; {summary['slots']} slots x {summary['cores_per_slot']} cores, "
        f"polling every {summary['query_s']:g} s"
    )
    gpu = (
        f"  GPU {summary['gpu_utilisation_pct']:.0f}% / {summary['gpu_memory_peak_mb']:.0f} MB"
        if summary["gpu_utilisation_pct"] is not None
        else ""
    )
    print(
        f"clips {summary['clips']}  wall {summary['wall_s']:.1f} s  clips/hour {summary['clips_per_hour']:.0f}  "
        f"host frames/s {summary['frames_per_s']:.1f}  latency p50 {summary['latency_p50_s']:.1f} s  "
        f"p95 {summary['latency_p95_s']:.1f} s  CPU: host {summary['cpu_utilisation_pct']:.0f}%, "
        f"runs {summary['runs_cpu_pct']:.0f}%{gpu}"
    )
    print(
        f"memory: slots {summary['slots_memory_peak_mb']:.0f} MB at peak (PSS of the workers, warm processes "
        f"and runs), {summary['slots_memory_peak_mb'] / summary['slots']:.0f} MB a slot"
    )
    stages = list(summary["stages_p50_s"])
    columns = [*PHASES, *stages, "finish"]
    header = f"{'clip':<24} {'frames':>6} {'latency':>7} " + " ".join(f"{name[:8]:>8}" for name in columns)
    header += f" {'stages':>7} {'lat/stg':>7} {'CPU s':>6} {'RSS MB':>6}"
    print(header)
    print("-" * len(header))
    for run in summary["runs"]:
        stage_total = sum(run["stages_s"].values())
        values = [run["phases_s"].get(name, run["stages_s"].get(name, float("nan"))) for name in columns]
        print(
            f"{run['clip']:<24} {run['frames']:>6} {run['latency_s']:>7.1f} "
            + " ".join(f"{value:>8.2f}" for value in values)
            + f" {stage_total:>7.1f} {run['latency_s'] / stage_total:>7.2f} {run['cpu_s']:>6.1f} {run['peak_rss_mb']:>6.0f}"
        )
    p50 = summary["phases_p50_s"] | summary["stages_p50_s"]
    print(f"{'p50':<24} {'':>6} {summary['latency_p50_s']:>7.1f} " + " ".join(f"{p50[name]:>8.2f}" for name in columns))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--slots", type=int, default=0, help="slots [default: the host's, from the formula]")
    parser.add_argument("--clips", type=int, default=4, help="analyses in the batch")
    parser.add_argument(
        "--clip", action="append", help=f"clip(s) in --media to cycle through [default: {', '.join(CLIPS)}]"
    )
    parser.add_argument("--trim-end", type=float, help="analyse each clip's first S seconds only")
    parser.add_argument("--media", type=Path, default=MEDIA)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a config override")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds to wait for the batch")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON (the table to stderr)")
    args = parser.parse_args()
    names = args.clip or CLIPS
    clips = [args.media / names[k % len(names)] for k in range(args.clips)]
    # Prefect's deployment messages go to stderr: stdout carries the report alone.
    with contextlib.redirect_stdout(sys.stderr):
        summary = measure(args.slots, clips, args.set, args.timeout, args.trim_end)
    if args.json:
        with contextlib.redirect_stdout(sys.stderr):
            print_report(summary)
        print(json.dumps(summary, indent=2))
    else:
        print_report(summary)


if __name__ == "__main__":
    main()
