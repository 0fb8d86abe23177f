from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tasks.config import load_config
from tasks.tracking import (
    UNTRACKED,
    Detections,
    SkierHint,
    box_iou,
    detection_stride,
    fill_skipped_frames,
    select_skier,
)

CONFIG = load_config().tracking
ROOT = Path(__file__).resolve().parent.parent
FPS, WIDTH, HEIGHT = 25.0, 1920, 1080


def detections(tracks: dict[int, list[tuple[int, tuple[float, float, float, float]]]], frames: int = 50) -> Detections:
    """Build detections from {track_id: [(frame, box), ...]}."""
    rows = [(f, tid, *box, 0.8) for tid, items in tracks.items() for f, box in items]
    return Detections.from_table(np.asarray(rows, dtype=np.float64), frames, FPS, WIDTH, HEIGHT)


def moving(box, frames, dx=0.0):
    x1, y1, x2, y2 = box
    return [(f, (x1 + dx * f, y1, x2 + dx * f, y2)) for f in frames]


SKIER = (860, 400, 1060, 800)  # large, central
PASSER = (100, 500, 140, 580)  # small, near the edge


def test_the_large_central_skier_wins_over_small_passers_by():
    found = detections({1: moving(SKIER, range(50)), 2: moving(PASSER, range(50), dx=5)})
    skier = select_skier(found, CONFIG)
    assert skier.track_ids == (1,) and skier.selection == "automatic"
    assert skier.tracked_fraction == 1.0 and skier.candidates == 2


def test_a_passer_by_crossing_close_does_not_take_over():
    crossing = moving((700, 420, 900, 800), range(20, 30), dx=10)
    found = detections({1: moving(SKIER, range(50)), 3: crossing})
    assert select_skier(found, CONFIG).track_ids == (1,)


def test_a_broken_track_is_joined_when_it_continues_in_place():
    found = detections({1: moving(SKIER, range(0, 20), dx=2), 7: moving(SKIER, range(24, 50), dx=2)})
    skier = select_skier(found, CONFIG)
    assert skier.track_ids == (1, 7)
    assert skier.frames_per_track == {1: 20, 7: 26}
    assert np.isnan(skier.boxes[20:24, 0]).all()


def test_a_track_far_away_is_not_joined():
    found = detections({1: moving(SKIER, range(0, 25)), 7: moving((1500, 100, 1700, 500), range(27, 50))})
    assert select_skier(found, CONFIG).track_ids == (1,)


def test_a_second_box_on_the_skier_fills_the_gaps_of_the_first():
    wide = moving((840, 400, 1080, 800), [f for f in range(50) if not 10 <= f < 17])
    tight = moving(SKIER, range(8, 20))
    skier = select_skier(detections({1: wide, 6: tight}), CONFIG)
    assert skier.track_ids == (1, 6) and skier.tracked_fraction == 1.0
    np.testing.assert_array_equal(skier.boxes[5], (840, 400, 1080, 800))  # the primary box stays


def test_untracked_detections_continue_the_skier():
    found = detections({1: moving(SKIER, range(0, 40)), UNTRACKED: moving(SKIER, range(40, 45)) + moving(PASSER, range(50))})
    skier = select_skier(found, CONFIG)
    assert skier.present[:45].all() and not skier.present[45:].any()


@pytest.mark.parametrize(
    ("hint", "expected", "selection"),
    [
        (SkierHint(1.0, point=(120, 540)), (2,), "hint"),
        (SkierHint(1.0, box=(90, 490, 150, 590)), (2,), "hint"),
        (SkierHint(1.0, point=(960, 600)), (1,), "hint"),
        (SkierHint(1.0, point=(1800, 100)), (1,), "automatic"),
    ],
)
def test_a_hint_overrides_the_choice(hint, expected, selection):
    found = detections({1: moving(SKIER, range(50)), 2: moving(PASSER, range(50))})
    skier = select_skier(found, CONFIG, hint)
    assert skier.track_ids == expected and skier.selection == selection
    assert bool(skier.warnings) == (selection == "automatic")


def test_a_hint_needs_one_pointer():
    with pytest.raises(ValueError):
        SkierHint(1.0)


def test_nobody_detected_gives_an_empty_track():
    skier = select_skier(detections({}), CONFIG)
    assert skier.tracked_fraction == 0.0 and skier.track_ids == () and skier.warnings


@pytest.mark.parametrize(
    ("box", "expected"),
    [((0, 0, 10, 10), 1.0), ((5, 0, 15, 10), 1 / 3), ((20, 20, 30, 30), 0.0)],
)
def test_box_iou(box, expected):
    assert box_iou(np.array([0, 0, 10, 10.0]), np.array([box], dtype=float))[0] == pytest.approx(expected)


@pytest.mark.parametrize(
    ("fps", "detection_fps", "stride"),
    [(30, 15, 2), (29.97, 15, 2), (60, 15, 4), (25, 15, 2), (20, 15, 1), (10, 15, 1), (30, 0, 1), (240, 30, 8)],
)
def test_detection_stride(fps, detection_fps, stride):
    assert detection_stride(fps, detection_fps) == stride


def test_skipped_frames_are_interpolated_along_each_track():
    found = detections({1: moving(SKIER, range(0, 50, 2), dx=4), 2: moving(PASSER, [0, 2, 10, 12])})
    filled = fill_skipped_frames(found, stride=2)
    skier = filled.track_id == 1
    assert filled.frame[skier].tolist() == list(range(49))
    np.testing.assert_allclose(filled.boxes[skier], np.asarray([box for _, box in moving(SKIER, range(49), dx=4)]))
    # A gap longer than the stride is a lost track, not a skipped frame.
    assert filled.frame[filled.track_id == 2].tolist() == [0, 1, 2, 10, 11, 12]
    assert np.all(np.diff(filled.frame) >= 0)


def test_untracked_detections_are_not_interpolated():
    found = detections({UNTRACKED: moving(PASSER, [0, 2, 4])})
    assert fill_skipped_frames(found, stride=2).frame.tolist() == [0, 2, 4]


@pytest.mark.slow
def test_detection_keeps_its_threads_and_leaves_torchvision_unimported(derived):
    """Ultralytics sets PyTorch's threads when it sets up the model, and its warm-up imports
    torchvision, with torch._dynamo (2 s on one core), only to use its NMS."""
    code = f"""
import sys
import torch
from ultralytics.utils import NUM_THREADS
from tasks.config import load_config
from tasks.models import require_model
from tasks.tracking import detect_and_track
from tasks.video import probe_video

config = load_config(overrides={{"tracking": {{"threads": NUM_THREADS + 1}}}})
found = detect_and_track(probe_video({str(derived["short"])!r}), config.tracking,
                         require_model(config.models, "detector"), "cpu")
assert found.track_ids(), "nobody detected"
assert torch.get_num_threads() == NUM_THREADS + 1, torch.get_num_threads()
assert "torchvision" not in sys.modules, "torchvision was imported"
"""
    finished = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert finished.returncode == 0, finished.stderr[-2000:]
