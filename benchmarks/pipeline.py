"""Pipeline speed and memory on the sample clips.

Runs each stage's plain function on each clip (and on growing windows of the longest clip,
to show that memory does not grow with length), every run in its own process so peak RSS is
its own, and prints a table. `startup s` is the import of what a flow run's process loads
before its first task (PyTorch, Prefect, matplotlib); `total s` and `e2e fps` cover the
stages, from probing the clip to the finished overlay video.

    .venv/bin/python benchmarks/pipeline.py [--device cpu] [--media ../shared/media] [--repeat 3]
        [--set pose.keypoint_views=[[0,0,1,false]] ...]

With --repeat N each clip runs N times and its fastest run is shown: on shared machines the
slower runs measure the neighbours as much as the pipeline.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tasks.slots import cpu_model, run_cores

RUNS = [
    ("piste_followcam.mp4", None),
    ("indoor_carpet_front.mp4", 4.0),
    ("indoor_carpet_front.mp4", 8.0),
    ("indoor_carpet_front.mp4", None),
]


def measure(clip: Path, seconds: float | None, device: str, settings: list[str]) -> dict:
    """Run every stage once on `clip` (its first `seconds`) and time each.

    The modules a flow run's process imports before its first task are imported first and
    timed on their own (`startup`), so that each stage is timed as it runs in a flow.
    """
    started = time.perf_counter()
    import flows.analyze  # noqa: F401

    startup = time.perf_counter() - started
    from tasks.config import load_config, parse_settings
    from tasks.device import resolve_device
    from tasks.frontal import frontal_angles
    from tasks.keypoint_models import second_opinion
    from tasks.models import require_model
    from tasks.pose import crop_windows, estimate_pose
    from tasks.render import render_overlay
    from tasks.smoothing import smooth_pose
    from tasks.tracking import detect_and_track, select_skier
    from tasks.turns import analyze_turns
    from tasks.video import probe_video

    config = load_config(overrides=parse_settings(settings))
    device = resolve_device(device)
    timings: dict[str, float] = {}

    def timed(stage, function, *args):
        started = time.perf_counter()
        result = function(*args)
        timings[stage] = time.perf_counter() - started
        return result

    info = timed("probe", probe_video, clip, None, seconds)
    detections = timed(
        "track", detect_and_track, info, config.tracking, require_model(config.models, "detector"), device
    )
    skier = select_skier(detections, config.tracking)
    windows = crop_windows(skier.boxes, info.fps, config.pose)
    keypoints = second_opinion(config, device)
    raw = timed(
        "pose", estimate_pose, info, windows, config.pose, require_model(config.models, "pose"), None, keypoints
    )
    smoothed = timed("smooth", smooth_pose, raw, config.smoothing, config.metrics.camera_side)
    metrics = timed(
        "metrics", lambda: analyze_turns(smoothed.times_s, frontal_angles(smoothed, config.metrics), config.metrics)
    )
    with tempfile.TemporaryDirectory() as out:
        timed("render", render_overlay, info, skier.boxes, smoothed, metrics, config.render, Path(out) / "overlay.mp4")
    return {
        "clip": clip.name,
        "size": f"{info.width}x{info.height}",
        "frames": info.frames_in_trim,
        "device": device,
        "startup_s": startup,
        "timings": timings,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def print_table(rows: list[dict]) -> None:
    header = (
        f"{'clip':<24} {'size':>9} {'frames':>6} {'device':>6} {'startup s':>9} {'probe s':>7} {'track fps':>9} "
        f"{'pose fps':>8} {'smooth ms':>9} {'metrics ms':>10} {'render fps':>10} {'total s':>7} {'e2e fps':>7} "
        f"{'peak MB':>7}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        t, frames = row["timings"], row["frames"]
        total = sum(t.values())
        print(
            f"{row['clip']:<24} {row['size']:>9} {frames:>6} {row['device']:>6} {row['startup_s']:>9.2f} {t['probe']:>7.2f} "
            f"{frames / t['track']:>9.1f} {frames / t['pose']:>8.1f} {1000 * t['smooth']:>9.1f} "
            f"{1000 * t['metrics']:>10.1f} "
            f"{frames / t['render']:>10.1f} {total:>7.1f} {frames / total:>7.1f} {row['peak_rss_mb']:>7.0f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--media", type=Path, default=ROOT.parent / "shared" / "media")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--repeat", type=int, default=1, help="runs per clip; the fastest is shown")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a config override")
    parser.add_argument("--one", nargs=2, metavar=("CLIP", "SECONDS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        clip, seconds = args.one
        print(json.dumps(measure(Path(clip), None if seconds == "all" else float(seconds), args.device, args.set)))
        return
    rows = []
    for name, seconds in RUNS:
        settings = [part for setting in args.set for part in ("--set", setting)]
        command = [
            sys.executable,
            __file__,
            "--device",
            args.device,
            *settings,
            "--one",
            str(args.media / name),
            str(seconds or "all"),
        ]
        runs = [run_one(command) for _ in range(max(1, args.repeat))]
        rows.append(min(runs, key=lambda row: sum(row["timings"].values())))
    print(f"machine: {run_cores()} cores, {cpu_model()}")
    print_table(rows)


def run_one(command: list[str]) -> dict:
    """One measurement in a fresh process; its error output is shown if it fails."""
    finished = subprocess.run(command, capture_output=True, text=True)
    if finished.returncode:
        sys.exit(f"{' '.join(command)} failed:\n{finished.stderr[-3000:]}")
    return json.loads(finished.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
