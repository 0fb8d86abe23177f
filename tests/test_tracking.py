from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tasks import appearance
from tasks.config import load_config
from tasks.equipment import board_instead_of_skis, board_message, equipment_votes
from tasks.models import require_model
from tasks.tracking import (
    UNTRACKED,
    Detections,
    SkierHint,
    SkierTrack,
    box_iou,
    coverage_warning,
    detect_and_track,
    detection_stride,
    fill_skipped_frames,
    select_skier,
)
from tasks.video import probe_video
from tests import clips

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
    found = detections(
        {1: moving(SKIER, range(0, 40)), UNTRACKED: moving(SKIER, range(40, 45)) + moving(PASSER, range(50))}
    )
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


# Appearance, coverage and equipment.

TEAL, ORANGE, GREY = (160, 140, 20), (0, 120, 240), (128, 128, 128)  # BGR


def painted(colour, size=(100, 60)) -> np.ndarray:
    return np.full((*size, 3), colour, dtype=np.uint8)


@pytest.mark.parametrize(
    ("first", "second", "low", "high"),
    [(TEAL, TEAL, 0.99, 1.0), (TEAL, ORANGE, 0.0, 0.01), (GREY, GREY, 0.99, 1.0), (GREY, TEAL, 0.0, 0.01)],
)
def test_clothing_histograms_tell_colours_apart(first, second, low, high):
    box = np.array([0, 0, 60, 100.0])
    a, b = appearance.clothing_histogram(painted(first), box), appearance.clothing_histogram(painted(second), box)
    assert a.sum() == pytest.approx(1.0) and low <= appearance.similarity(a, b) <= high


def test_the_clothing_area_leaves_out_the_snow_around_the_person():
    image = painted(GREY, (200, 200))
    image[40:140, 70:130] = TEAL  # the torso of a person boxed at 50-150 x 0-200
    histogram = appearance.clothing_histogram(image, np.array([50, 0, 150, 200.0]))
    assert (
        appearance.similarity(histogram, appearance.clothing_histogram(painted(TEAL), np.array([0, 0, 60, 100.0])))
        > 0.9
    )


@pytest.mark.parametrize("box", [(0, 0, 0, 0), (500, 500, 600, 600), (-50, -50, -10, -10)])
def test_a_box_outside_the_image_has_no_histogram(box):
    assert np.isnan(appearance.clothing_histogram(painted(TEAL), np.array(box, dtype=float))).all()


def looks(colour_of_track: dict[int, tuple], found: Detections) -> Detections:
    """The detections with each track's clothing painted `colour_of_track[track]`."""
    box = np.array([0, 0, 60, 100.0])
    histograms = np.asarray(
        [appearance.clothing_histogram(painted(colour_of_track[int(t)]), box) for t in found.track_id]
    )
    return Detections.from_table(found.table(), found.frame_count, FPS, WIDTH, HEIGHT, appearance=histograms)


FAR = (200, 300, 400, 700)  # where a pan puts the skier: 3.3 box heights away


@pytest.mark.parametrize(
    ("colours", "appearance_on", "expected"),
    [
        ({1: TEAL, 7: TEAL}, True, (1, 7)),  # after a pan: far, but looks like the skier
        ({1: TEAL, 7: TEAL}, False, (1,)),  # position only: too far
        ({1: TEAL, 7: ORANGE}, True, (1,)),  # far and unlike
    ],
)
def test_a_piece_far_away_is_joined_when_it_looks_like_the_skier(colours, appearance_on, expected):
    found = looks(colours, detections({1: moving(SKIER, range(0, 20)), 7: moving(FAR, range(24, 50))}))
    config = CONFIG.model_copy(update={"appearance_stitching": appearance_on})
    assert select_skier(found, config).track_ids == expected


@pytest.mark.parametrize(("decoy", "expected"), [(ORANGE, (1, 9)), (TEAL, (1, 8, 9))])
def test_a_passer_by_near_the_lost_skier_is_not_joined_when_they_look_different(decoy, expected):
    beside = (1100, 400, 1300, 800)  # 1.2 box widths from the skier, while they are hidden
    found = looks(
        {1: TEAL, 8: decoy, 9: TEAL},
        detections({1: moving(SKIER, range(0, 20)), 8: moving(beside, range(21, 35)), 9: moving(SKIER, range(36, 50))}),
    )
    assert select_skier(found, CONFIG).track_ids == expected


@pytest.mark.parametrize(
    ("colour", "present"),
    [(TEAL, True), (ORANGE, False)],
)
def test_untracked_detections_must_not_look_unlike_the_skier(colour, present):
    found = looks(
        {1: TEAL, UNTRACKED: colour}, detections({1: moving(SKIER, range(0, 40)), UNTRACKED: moving(SKIER, [40])})
    )
    assert select_skier(found, CONFIG).present[40] == present


def track_with_gaps(missing: range, frames: int = 250) -> SkierTrack:
    boxes = np.tile(np.asarray(SKIER, dtype=float), (frames, 1))
    boxes[missing] = np.nan
    return SkierTrack(boxes, np.ones(frames), (1,), {1: frames}, "automatic", 1)


@pytest.mark.parametrize(
    ("missing", "trim_start_s", "warning"),
    [
        (range(0), 0.0, None),
        (range(200, 210), 0.0, None),  # 96% tracked
        (
            range(95, 150),
            0.0,
            "The skier was tracked in 78% of the clip (lost from 3.8 s to 6.0 s); scores cover only the tracked part.",
        ),
        (
            range(0, 60),
            10.0,
            "The skier was tracked in 76% of the clip (lost from 10.0 s to 12.4 s); scores cover only the tracked part.",
        ),
    ],
)
def test_low_coverage_gets_a_warning_naming_when_the_skier_was_lost(missing, trim_start_s, warning):
    assert coverage_warning(track_with_gaps(missing), FPS, trim_start_s, below=0.9) == warning


SKIS, SNOWBOARD, SURFBOARD = 30, 31, 37


@pytest.mark.parametrize(
    ("rows", "votes"),
    [
        ([(0, SKIS, 850, 760, 1080, 820, 0.5)], {"skis": 1, "snowboard": 0, "surfboard": 0}),
        ([(0, SNOWBOARD, 860, 770, 1060, 830, 0.5)], {"skis": 0, "snowboard": 1, "surfboard": 0}),
        # One vote per frame, for the most confident box.
        (
            [(0, SKIS, 850, 760, 1080, 820, 0.4), (0, SURFBOARD, 860, 770, 1060, 830, 0.6)],
            {"skis": 0, "snowboard": 0, "surfboard": 1},
        ),
        (
            [(0, SKIS, 850, 760, 1080, 820, 0.5), (1, SKIS, 850, 760, 1080, 820, 0.5)],
            {"skis": 2, "snowboard": 0, "surfboard": 0},
        ),
        ([(0, SNOWBOARD, 860, 400, 1060, 460, 0.9)], {"skis": 0, "snowboard": 0, "surfboard": 0}),  # at the head
        ([(0, SKIS, 100, 760, 300, 820, 0.9)], {"skis": 0, "snowboard": 0, "surfboard": 0}),  # beside the skier
        ([(3, SKIS, 850, 760, 1080, 820, 0.9)], {"skis": 0, "snowboard": 0, "surfboard": 0}),  # skier not seen
    ],
)
def test_equipment_under_the_skiers_feet_votes(rows, votes):
    boxes = np.tile(np.asarray(SKIER, dtype=float), (4, 1))
    boxes[3] = np.nan
    assert equipment_votes(np.asarray(rows, dtype=float), boxes) == votes


@pytest.mark.parametrize(
    ("skis", "snowboard", "surfboard", "board"),
    [
        (0, 0, 0, None),
        (40, 0, 0, None),
        (0, 40, 0, "snowboard"),
        (0, 0, 40, "surfboard"),
        (15, 40, 0, None),  # not three times the skis
        (5, 40, 0, "snowboard"),
        (0, 20, 0, None),  # in too few of the 100 frames
        (0, 30, 0, "snowboard"),
        (2, 12, 25, None),  # neither board alone is enough
    ],
)
def test_a_board_ends_the_analysis_only_when_it_clearly_outweighs_skis(skis, snowboard, surfboard, board):
    votes = {"skis": skis, "snowboard": snowboard, "surfboard": surfboard}
    assert board_instead_of_skis(votes, 100, CONFIG.board_min_fraction, CONFIG.board_over_skis) == board


@pytest.mark.parametrize(("board", "who"), [("snowboard", "a snowboarder"), ("surfboard", "a surfer")])
def test_the_board_message_says_why_there_is_no_score(board, who):
    assert board_message(board) == f"This looks like {who}, not a skier on two skis: Poser scores ski technique only."


@pytest.mark.parametrize(
    ("keyframes", "offsets"),
    [
        (((0.0, 0, 0), (1.0, 100, 50)), [(0, 0), (25, 12), (50, 25), (75, 38), (100, 50), (100, 50)]),
        (((0.0, 600, 300),), [(600, 300)] * 6),
    ],
)
def test_pan_offsets_follow_the_keyframes(keyframes, offsets):
    assert clips.pan_offsets(keyframes, 6, fps=4.0).tolist() == [list(o) for o in offsets]


@pytest.mark.slow
def test_the_skier_is_kept_through_whip_pans(media, tmp_path):
    """Two whip pans (the view moves 520 and 440 px, halved here, in a fifth and a sixth of a
    second) over the piste clip: the skier is tracked in nearly every frame, and the box is
    the skier's own, where the original clip has them, moved by the pan (it lags a little
    behind the whip pans, as the tracker's motion model does)."""
    config = load_config(overrides={"device": "cpu"})
    detector = require_model(config.models, "detector")
    seconds, scale = 3.0, 0.5
    clip, offsets = clips.panned(media / "piste_followcam.mp4", tmp_path / "pan.mp4", scale=scale, seconds=seconds)
    original = clips.remux(media / "piste_followcam.mp4", tmp_path / "original.mp4", seconds=seconds)
    truth = select_skier(detect_and_track(probe_video(original), config.tracking, detector, "cpu"), config.tracking)
    skier = select_skier(detect_and_track(probe_video(clip), config.tracking, detector, "cpu"), config.tracking)
    assert skier.tracked_fraction >= 0.98
    expected = (truth.boxes - np.column_stack([offsets, offsets])) * scale
    both = skier.present & truth.present
    overlap = [box_iou(expected[i], skier.boxes[[i]])[0] for i in np.flatnonzero(both)]
    assert both.mean() >= 0.98 and np.mean(overlap) >= 0.8 and min(overlap) >= 0.3
