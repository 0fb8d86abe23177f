"""Test-retest repeatability of the technique metrics on the sample clips.

Each clip is analysed as is and as variants that show the same run and should score the same:
re-encoded at crf 16 (no visible change), stored sideways with a rotation tag, started one
frame later (a trim, no re-encode), and at half resolution. Each variant is compared with the
clip as is, frame by frame (matched by time) and turn by turn (matched by apex time), and a
table is printed:

- `edge diff err`: absolute change of the per-frame left-right edge angle difference, mean and
  90th percentile, in degrees;
- `lean err p90`: the same for the inclination;
- `transitions`: matched turn transitions / transitions in the original, and the largest shift
  in frames;
- `score max |d|`: the largest change of a complete turn's edge similarity (0-100).

A second table lists each complete turn's edge similarity under every variant and its spread.

    .venv/bin/python benchmarks/repeatability.py [--media ../shared/media] [--set pose.crop_padding=0.3 ...]

`--set` overrides any setting of `configs/default.yaml` (values are YAML), to measure a change
without editing the defaults.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tasks.config import AnalysisConfig, load_config  # noqa: E402
from tests.clips import with_rotation_tag  # noqa: E402

CLIPS = ("piste_followcam.mp4", "indoor_carpet_front.mp4")


@dataclass(frozen=True)
class Variant:
    """A way to present the same clip: the file to analyse and where its analysis starts."""

    name: str
    make: Callable[[Path, Path], Path]
    skip_frames: int = 0


@dataclass(frozen=True)
class Outcome:
    """What one analysis gives that should not depend on the encoding of the clip."""

    frame: np.ndarray
    edge_difference: np.ndarray
    inclination: np.ndarray
    transitions: np.ndarray
    turn_spans: np.ndarray
    turn_apex_s: np.ndarray
    turn_scores: np.ndarray


def transcode(source: Path, target: Path, scale: float = 1.0, sideways: bool = False) -> Path:
    """Re-encode `source` with H.264 at crf 16, optionally scaled or stored turned a quarter
    counter-clockwise with a tag that turns it back for display (as phones store portrait)."""
    encoded = target.with_name(f"encoded-{target.name}") if sideways else target
    with av.open(str(source)) as src, av.open(str(encoded), "w") as dst:
        stream = src.streams.video[0]
        width, height = round(stream.width * scale / 2) * 2, round(stream.height * scale / 2) * 2
        out = dst.add_stream("libx264", rate=stream.average_rate)
        out.width, out.height = (height, width) if sideways else (width, height)
        out.pix_fmt, out.options = "yuv420p", {"crf": "16"}
        for index, frame in enumerate(src.decode(stream)):
            image = frame.to_ndarray(format="rgb24", width=width, height=height)
            if sideways:
                image = np.ascontiguousarray(np.rot90(image))
            picture = av.VideoFrame.from_ndarray(image, format="rgb24")
            picture.pts = index
            dst.mux(out.encode(picture))
        dst.mux(out.encode(None))
    return with_rotation_tag(encoded, target) if sideways else target


VARIANTS = (
    Variant("as is", lambda source, folder: source),
    Variant("crf 16", lambda source, folder: transcode(source, folder / "crf16.mp4")),
    Variant("rotation tag", lambda source, folder: transcode(source, folder / "sideways.mp4", sideways=True)),
    Variant("one frame later", lambda source, folder: source, skip_frames=1),
    Variant("half size", lambda source, folder: transcode(source, folder / "half.mp4", scale=0.5)),
)


def analyse(path: Path, skip_frames: int, config: AnalysisConfig) -> Outcome:
    """Run the pipeline's plain functions from probing to turn scores."""
    from tasks.device import resolve_device
    from tasks.frontal import frontal_angles
    from tasks.keypoints import second_opinion
    from tasks.models import require_model
    from tasks.pose import crop_windows, estimate_pose
    from tasks.smoothing import smooth_pose
    from tasks.tracking import detect_and_track, select_skier
    from tasks.turns import analyse_turns
    from tasks.video import probe_video

    fps = probe_video(path).fps
    info = probe_video(path, skip_frames / fps if skip_frames else None, None)
    device = resolve_device(config.device)
    detections = detect_and_track(info, config.tracking, require_model(config.models, "detector"), device)
    skier = select_skier(detections, config.tracking)
    windows = crop_windows(skier.boxes, info.fps, config.pose)
    raw = estimate_pose(
        info, windows, config.pose, require_model(config.models, "pose"), None, second_opinion(config, device)
    )
    smoothed = smooth_pose(raw, config.smoothing)
    angles = frontal_angles(smoothed, config.metrics)
    return outcome_of(smoothed, angles, analyse_turns(smoothed.times_s, angles, config.metrics), info.fps)


def outcome_of(smoothed, angles, metrics, fps: float) -> Outcome:
    """The parts of an analysis that are compared, with frames numbered from the clip's start."""
    scored = [turn for turn in metrics.turns if turn.edge_similarity is not None]
    frame = np.rint(smoothed.times_s * fps).astype(int)
    return Outcome(
        frame=frame,
        edge_difference=angles.edge_difference_deg,
        inclination=angles.inclination_deg,
        transitions=np.array([frame[turn.start_frame] for turn in metrics.turns[1:]]),
        turn_spans=np.array([(frame[turn.start_frame], frame[turn.end_frame - 1] + 1) for turn in scored]),
        turn_apex_s=np.array([turn.apex_s for turn in scored]),
        turn_scores=np.array([turn.edge_similarity for turn in scored]),
    )


def compare(reference: Outcome, other: Outcome) -> dict[str, float]:
    """Frame-by-frame and turn-by-turn differences of `other` from `reference`."""
    shared, in_reference, in_other = np.intersect1d(reference.frame, other.frame, return_indices=True)
    edge_error = np.abs(reference.edge_difference[in_reference] - other.edge_difference[in_other])
    lean_error = np.abs(reference.inclination[in_reference] - other.inclination[in_other])
    edge_error, lean_error = edge_error[~np.isnan(edge_error)], lean_error[~np.isnan(lean_error)]
    shifts = [np.min(np.abs(other.transitions - t)) for t in reference.transitions if len(other.transitions)]
    matched = [shift for shift in shifts if shift <= 3]
    return {
        "edge_mean": float(np.mean(edge_error)) if len(edge_error) else np.nan,
        "edge_p90": float(np.percentile(edge_error, 90)) if len(edge_error) else np.nan,
        "lean_p90": float(np.percentile(lean_error, 90)) if len(lean_error) else np.nan,
        "transitions_matched": len(matched),
        "transitions": len(reference.transitions),
        "transitions_extra": len(other.transitions) - len(matched),
        "transition_shift": max(matched, default=0),
        "score_change": float(np.max(np.abs(_matched_scores(reference, other) - reference.turn_scores), initial=0)),
    }


def _matched_scores(reference: Outcome, other: Outcome) -> np.ndarray:
    """`other`'s score of each of `reference`'s scored turns: the scored turn covering most of
    it, if that covers more than half. A turn scored in one analysis and not in the other
    counts as its whole score lost (0)."""
    scores = np.zeros(len(reference.turn_spans))
    for i, (start, end) in enumerate(reference.turn_spans):
        if len(other.turn_spans):
            overlap = np.minimum(end, other.turn_spans[:, 1]) - np.maximum(start, other.turn_spans[:, 0])
            best = int(np.argmax(overlap))
            if overlap[best] > (end - start) / 2:
                scores[i] = other.turn_scores[best]
    return scores


def print_tables(results: dict[str, dict[str, Outcome]]) -> None:
    header = (
        f"{'clip':<24} {'variant':<16} {'edge diff err mean':>18} {'p90':>5} {'lean err p90':>12} "
        f"{'transitions':>11} {'extra':>5} {'max shift':>9} {'score max |d|':>13}"
    )
    print(header)
    print("-" * len(header))
    for clip, outcomes in results.items():
        reference = outcomes[VARIANTS[0].name]
        for name, outcome in list(outcomes.items())[1:]:
            row = compare(reference, outcome)
            print(
                f"{clip:<24} {name:<16} {row['edge_mean']:>18.2f} {row['edge_p90']:>5.2f} {row['lean_p90']:>12.2f} "
                f"{row['transitions_matched']:>5}/{row['transitions']:<5} {row['transitions_extra']:>5} "
                f"{row['transition_shift']:>9} {row['score_change']:>13.1f}"
            )
    print()
    names = [variant.name for variant in VARIANTS]
    header = f"{'clip':<24} {'apex s':>6} " + " ".join(f"{name:>15}" for name in names) + f" {'spread':>6}"
    print(header)
    print("-" * len(header))
    for clip, outcomes in results.items():
        reference = outcomes[names[0]]
        table = np.array([_matched_scores(reference, outcomes[name]) for name in names])
        for turn, apex in enumerate(reference.turn_apex_s):
            scores = table[:, turn]
            print(
                f"{clip:<24} {apex:>6.2f} " + " ".join(f"{score:>15.1f}" for score in scores)
                + f" {scores.max() - scores.min():>6.1f}"
            )


def parse_overrides(settings: list[str]) -> dict:
    """`section.key=value` pairs (values in YAML) as nested config overrides."""
    overrides: dict = {}
    for setting in settings:
        key, _, value = setting.partition("=")
        *sections, name = key.split(".")
        target = overrides
        for section in sections:
            target = target.setdefault(section, {})
        target[name] = yaml.safe_load(value)
    return overrides


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--media", type=Path, default=ROOT.parent / "shared" / "media")
    parser.add_argument("--clip", action="append", help="a clip name in --media (default: all samples)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a config override")
    args = parser.parse_args()
    config = load_config(overrides=parse_overrides(args.set))
    results: dict[str, dict[str, Outcome]] = {}
    with tempfile.TemporaryDirectory() as folder:
        for clip in args.clip or CLIPS:
            results[clip] = {}
            for variant in VARIANTS:
                path = variant.make(args.media / clip, Path(folder))
                results[clip][variant.name] = analyse(path, variant.skip_frames, config)
                print(f"{clip}: {variant.name} done", file=sys.stderr)
    print_tables(results)


if __name__ == "__main__":
    main()
