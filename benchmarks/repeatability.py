"""Test-retest repeatability of the technique metrics, and the calibration of their intervals.

Each clip is analysed as is and as variants that show the same run and should score the same:
re-encoded at crf 16 (no visible change), stored sideways with a rotation tag, started one
frame later (a trim, no re-encode), and at half resolution. With `--extended` (implied by
`--calibrate`) also re-encoded at crf 23, at three-quarter resolution, and started two and
three frames later. Each variant is compared with the clip as is, frame by frame (matched by
time) and turn by turn (matched by apex time), and tables are printed:

- per variant: `edge diff err`, the absolute change of the per-frame left-right edge angle
  difference, mean and 90th percentile, in degrees; `lean err p90`, the same for the
  inclination; `transitions`, matched turn transitions / transitions in the original and the
  largest shift in frames; `score max |d|`, the largest change of a complete turn's edge
  similarity (0-100);
- per complete turn: its score and interval as is, its score in every variant (`*` where it
  falls outside the as-is interval), and the spread of its scores;
- the intervals' coverage: how often a variant's turn score falls inside the as-is interval,
  the intervals' half-widths, and (`--calibrate`) the `metrics.interval_scale` that makes the
  narrowest intervals covering every score of the five versions and at least 90% of the
  scores of all nine.

    .venv/bin/python benchmarks/repeatability.py [--clip NAME ...] [--extended | --calibrate]
        [--markdown] [--media ../shared/media] [--set pose.crop_padding=0.3 ...]

`--markdown` prints the tables as Markdown, as pasted in the README. `--set` overrides any
setting of `configs/default.yaml` (values are YAML), to measure a change without editing the
defaults. The variants are encoded the same way on every machine: no FFmpeg scaler (OpenCV
scales and converts colours), and x264 on one thread.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tasks.config import AnalysisConfig, load_config, parse_settings
from tasks.slots import cpu_model, run_cores
from tests.clips import reencoded

CLIPS = ("piste_followcam.mp4", "indoor_carpet_front.mp4")
COVERAGE = 0.9


@dataclass(frozen=True)
class Variant:
    """A way to present the same clip: the file to analyse and where its analysis starts."""

    name: str
    make: Callable[[Path, Path], Path]
    skip_frames: int = 0


def _same_file(source: Path, folder: Path) -> Path:
    return source


AS_IS = Variant("as is", _same_file)
VARIANTS = (
    AS_IS,
    Variant("crf 16", lambda source, folder: reencoded(source, folder / "crf16.mp4", crf=16)),
    Variant("rotation tag", lambda source, folder: reencoded(source, folder / "sideways.mp4", crf=16, sideways=True)),
    Variant("one frame later", _same_file, skip_frames=1),
    Variant("half size", lambda source, folder: reencoded(source, folder / "half.mp4", crf=16, scale=0.5)),
)
EXTENDED = (
    Variant("crf 23", lambda source, folder: reencoded(source, folder / "crf23.mp4", crf=23)),
    Variant("3/4 size", lambda source, folder: reencoded(source, folder / "three-quarters.mp4", crf=16, scale=0.75)),
    Variant("two frames later", _same_file, skip_frames=2),
    Variant("three frames later", _same_file, skip_frames=3),
)


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
    turn_lows: np.ndarray
    turn_highs: np.ndarray


def analyse(path: Path, skip_frames: int, config: AnalysisConfig) -> Outcome:
    """Run the pipeline's plain functions from probing to turn scores."""
    from tasks.device import resolve_device
    from tasks.frontal import frontal_angles
    from tasks.keypoint_models import second_opinion
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
    smoothed = smooth_pose(raw, config.smoothing, config.metrics.camera_side)
    angles = frontal_angles(smoothed, config.metrics)
    return outcome_of(smoothed, angles, analyse_turns(smoothed.times_s, angles, config.metrics), info.fps)


def outcome_of(smoothed, angles, metrics, fps: float) -> Outcome:
    """The parts of an analysis that are compared, with frames numbered from the clip's start."""
    scored = [turn for turn in metrics.turns if turn.scored]
    frame = np.rint(smoothed.times_s * fps).astype(int)
    return Outcome(
        frame=frame,
        edge_difference=angles.edge_difference_deg,
        inclination=angles.inclination_deg,
        transitions=np.array([frame[turn.start_frame] for turn in metrics.turns[1:]]),
        turn_spans=np.array([(frame[turn.start_frame], frame[turn.end_frame - 1] + 1) for turn in scored]),
        turn_apex_s=np.array([turn.apex_s for turn in scored]),
        turn_scores=np.array([turn.edge_similarity for turn in scored]),
        turn_lows=np.array([turn.edge_similarity_low for turn in scored]),
        turn_highs=np.array([turn.edge_similarity_high for turn in scored]),
    )


def compare(reference: Outcome, other: Outcome) -> dict[str, float]:
    """Frame-by-frame and turn-by-turn differences of `other` from `reference`."""
    _, in_reference, in_other = np.intersect1d(reference.frame, other.frame, return_indices=True)
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
        "score_change": float(np.max(np.abs(matched_scores(reference, other) - reference.turn_scores), initial=0)),
    }


def matched_scores(reference: Outcome, other: Outcome) -> np.ndarray:
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


def coverage(outcomes: dict[str, Outcome]) -> tuple[np.ndarray, np.ndarray]:
    """For every variant's score of every as-is turn: whether it lies in the as-is interval,
    and the `interval_scale` multiple of the current one it needs to (the score's distance
    from the as-is score over the interval's reach on that side)."""
    reference = outcomes[AS_IS.name]
    inside, needed = [], []
    for name, outcome in outcomes.items():
        if name == AS_IS.name:
            continue
        scores = matched_scores(reference, outcome)
        above = scores > reference.turn_scores
        reach = np.where(above, reference.turn_highs, reference.turn_lows) - reference.turn_scores
        unclipped = np.maximum(
            reference.turn_highs - reference.turn_scores, reference.turn_scores - reference.turn_lows
        )
        reach = np.where(np.isclose(np.abs(reach), 0), unclipped, np.abs(reach))
        inside += list((scores >= reference.turn_lows) & (scores <= reference.turn_highs))
        with np.errstate(divide="ignore", invalid="ignore"):
            needed += list(np.abs(scores - reference.turn_scores) / reach)
    return np.array(inside, dtype=bool), np.array(needed)


def calibrated_scale(results: dict[str, dict[str, Outcome]], current: float) -> float:
    """The smallest `interval_scale` under which every score of the five versions in
    `VARIANTS`, and at least 90% of all the variants' scores, lie inside the as-is interval of
    their turn (intervals scale linearly with it); rounded up to a hundredth, plus a hundredth
    so that scores stored to two decimals stay inside too."""
    official = {variant.name for variant in VARIANTS}
    everything, core = [], []
    for outcomes in results.values():
        everything.append(coverage(outcomes)[1])
        core.append(coverage({name: outcome for name, outcome in outcomes.items() if name in official})[1])
    everything, core = np.concatenate(everything), np.concatenate(core)
    if not len(everything):
        return float("nan")
    needed = max(np.sort(everything)[int(np.ceil(COVERAGE * len(everything))) - 1], core.max())
    return float(np.ceil(needed * current * 100) / 100 + 0.01)


class Table:
    """Rows printed as aligned text, or as Markdown."""

    def __init__(self, headers: list[str], markdown: bool) -> None:
        self.headers, self.rows, self.markdown = headers, [], markdown

    def add(self, *cells) -> None:
        self.rows.append([str(cell) for cell in cells])

    def print(self) -> None:
        if self.markdown:
            print("| " + " | ".join(self.headers) + " |")
            print("|" + "---|" * len(self.headers))
            for row in self.rows:
                print("| " + " | ".join(row) + " |")
        else:
            widths = [max(len(cell) for cell in column) for column in zip(self.headers, *self.rows)]
            for row in [self.headers, ["-" * width for width in widths], *self.rows]:
                print("  ".join(cell.rjust(width) for cell, width in zip(row, widths)))
        print()


def print_tables(
    results: dict[str, dict[str, Outcome]], config: AnalysisConfig, markdown: bool, calibrate: bool
) -> None:
    errors = Table(
        [
            "clip",
            "variant",
            "edge diff err mean",
            "p90",
            "lean err p90",
            "transitions",
            "extra",
            "max shift",
            "score max abs d",
        ],
        markdown,
    )
    for clip, outcomes in results.items():
        reference = outcomes[AS_IS.name]
        for name, outcome in list(outcomes.items())[1:]:
            row = compare(reference, outcome)
            errors.add(
                clip,
                name,
                f"{row['edge_mean']:.2f}",
                f"{row['edge_p90']:.2f}",
                f"{row['lean_p90']:.2f}",
                f"{row['transitions_matched']}/{row['transitions']}",
                row["transitions_extra"],
                row["transition_shift"],
                f"{row['score_change']:.1f}",
            )
    errors.print()

    names = list(next(iter(results.values())))
    turns = Table(["clip", "apex s", "as is (interval)", *names[1:], "spread"], markdown)
    for clip, outcomes in results.items():
        reference = outcomes[AS_IS.name]
        table = np.array([matched_scores(reference, outcomes[name]) for name in names])
        if not len(reference.turn_apex_s):
            turns.add(clip, "-", "no complete turn", *["-"] * (len(names) - 1), "-")
        for turn, apex in enumerate(reference.turn_apex_s):
            low, high = reference.turn_lows[turn], reference.turn_highs[turn]
            cells = [f"{score:.1f}" + ("" if low <= score <= high else "*") for score in table[1:, turn]]
            turns.add(
                clip,
                f"{apex:.2f}",
                f"{table[0, turn]:.1f} ({low:.1f}-{high:.1f})",
                *cells,
                f"{np.ptp(table[:, turn]):.1f}",
            )
    turns.print()

    intervals = Table(["clip", "variant scores inside the as-is interval", "half-width mean", "max"], markdown)
    for clip, outcomes in results.items():
        inside, _ = coverage(outcomes)
        reference = outcomes[AS_IS.name]
        half = (reference.turn_highs - reference.turn_lows) / 2
        if len(inside):
            intervals.add(
                clip, f"{inside.sum()}/{len(inside)} ({inside.mean():.0%})", f"{half.mean():.1f}", f"{half.max():.1f}"
            )
        else:
            intervals.add(clip, "no complete turn", "-", "-")
    intervals.print()
    scale = config.metrics.interval_scale
    print(f"metrics.interval_scale {scale:g}; machine: {machine()}")
    if calibrate:
        print(
            f"calibrated interval_scale (narrowest with every score of the five versions and {COVERAGE:.0%} "
            f"of all variant scores inside): {calibrated_scale(results, scale):.2f}"
        )


def machine() -> str:
    """The cores and CPU this ran on, in words."""
    return f"{run_cores()} cores, {cpu_model()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--media", type=Path, default=ROOT.parent / "shared" / "media")
    parser.add_argument("--clip", action="append", help="a clip name in --media (default: all samples)")
    parser.add_argument("--extended", action="store_true", help="also the four extra variants")
    parser.add_argument("--calibrate", action="store_true", help="extended, and print the calibrated interval scale")
    parser.add_argument("--markdown", action="store_true", help="print the tables as Markdown")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a config override")
    args = parser.parse_args()
    config = load_config(overrides=parse_settings(args.set))
    variants = VARIANTS + (EXTENDED if args.extended or args.calibrate else ())
    results: dict[str, dict[str, Outcome]] = {}
    with tempfile.TemporaryDirectory() as folder:
        for clip in args.clip or CLIPS:
            results[clip] = {}
            for variant in variants:
                path = variant.make(args.media / clip, Path(folder))
                results[clip][variant.name] = analyse(path, variant.skip_frames, config)
                print(f"{clip}: {variant.name} done", file=sys.stderr)
    print_tables(results, config, args.markdown, args.calibrate)


if __name__ == "__main__":
    main()
