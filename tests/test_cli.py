import subprocess
import sys

import pytest

from flows.cli import NATIVE_CHATTER


@pytest.mark.parametrize(
    ("line", "dropped"),
    [
        (b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n", True),
        (b"I0000 00:00:1795815275.004051   28264 task_runner.cc:85] GPU suport is not available\n", True),
        (b"W0000 00:00:1795815275.037441   28291 inference_feedback_manager.cc:114] Feedback manager\n", True),
        (b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n", True),
        (b"E0000 00:00:1795815275.037441   28291 calculator_graph.cc:887] INVALID_ARGUMENT\n", False),
        (b"F0000 00:00:1795815275.037441   28291 check failed\n", False),
        (b"Traceback (most recent call last):\n", False),
        (b"I0000 is a word here\n", False),
    ],
)
def test_native_chatter_is_recognised(line, dropped):
    assert bool(NATIVE_CHATTER.match(line)) is dropped


def test_the_filter_drops_chatter_written_to_the_descriptor_and_passes_the_rest():
    script = """
import os, sys
from flows.cli import console, native_chatter_filtered
with native_chatter_filtered():
    os.write(2, b"I0000 00:00:1795815275.004051   28264 task_runner.cc:85] chatter\\n")
    os.write(2, b"E0000 00:00:1795815275.004051   28264 graph.cc:1] a native error\\n")
    print("from Python", file=sys.stderr)
    console.print("from the console")
print("after", file=sys.stderr)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "chatter" not in done.stderr
    for kept in ("a native error", "from Python", "from the console", "after"):
        assert kept in done.stderr


@pytest.mark.parametrize(
    ("ending", "status", "printed"),
    [
        ("return", 0, ""),
        ("sys.exit(0)", 0, ""),
        ("sys.exit(2)", 2, ""),
        ("sys.exit('Stopped: a reason')", 1, "Stopped: a reason"),
        ("raise ValueError('boom')", 1, "ValueError: boom"),
    ],
)
def test_the_program_keeps_its_exit_status_and_runs_later_exit_handlers(ending, status, printed):
    script = f"""
import atexit, sys
import flows.cli as cli

def main():
    atexit.register(print, "handler ran")
    {ending}

cli.main = main
cli.run()
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == status
    assert done.stdout == "handler ran\n"
    assert printed in done.stderr


def test_the_filter_lets_go_of_a_child_process_that_outlives_it():
    script = """
import subprocess, sys
from flows.cli import native_chatter_filtered
with native_chatter_filtered():
    child = subprocess.Popen([sys.executable, "-c", "import sys, time; time.sleep(3); print('child done', file=sys.stderr)"])
print("filter closed", file=sys.stderr)
child.wait()
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stderr.index("filter closed") < done.stderr.index("child done")


def test_the_findings_follow_the_turns_table_and_json_mode_keeps_them_off_stdout(tmp_path):
    script = r"""
import io, json, sys
from pathlib import Path
from flows.cli import _print_summary
from tests.test_findings import findings_of, make_run, per_side

metrics, frames = make_run(per_side(6, {"lag": -60.0}, {}))
metrics["camera_side"] = "behind"
results = {
    "device": "cpu", "outcome": "complete", "warnings": [], "metrics": metrics,
    "findings": findings_of(metrics, frames),
    "skier": {"frames_tracked": 10, "frame_count": 10, "tracked_fraction": 1.0},
    "pose": {"frames_with_pose": 10, "pose_fraction": 1.0},
    "outputs": {"results_json": "results.json", "finding_1": "finding-1.jpg"},
}
_print_summary(results, Path("out"), "run-id", sys.stderr if sys.argv[1] == "json" else sys.stdout)
"""
    for mode in ("text", "json"):
        done = subprocess.run([sys.executable, "-c", script, mode], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        shown, hidden = (done.stdout, done.stderr) if mode == "text" else (done.stderr, done.stdout)
        assert "Findings" not in hidden and "Turns" not in hidden
        assert shown.index("Turns (times in s") < shown.index("Findings") < shown.index("Outputs in out")
        assert (
            "1. In your 3 left turns your inside (left) ski tips about 60 ms after your outside (right) ski." in shown
        )
        assert "   Try: Start each turn by tipping the inside foot" in shown
        assert "   Moment: turn " in shown and "(still: finding-1.jpg)" in shown
