from __future__ import annotations

import numpy as np
import pytest

from tasks.config import load_config
from tasks.keypoints import SHARED, blend_keypoints
from tasks.landmarks import INDEX, LANDMARK_COUNT

NAN = np.nan


def one_frame(points: dict[str, tuple[float, float]]) -> np.ndarray:
    """A `(1, 33, 2)` MediaPipe landmark array with the named points set, the rest at 0."""
    landmarks = np.zeros((1, LANDMARK_COUNT, 2))
    for name, xy in points.items():
        landmarks[0, INDEX[name]] = xy
    return landmarks


def second(points: dict[str, tuple[float, float]], confidence: float = 0.9):
    xy = np.array([[points.get(name, (NAN, NAN)) for name in SHARED]])
    return xy, np.where(np.isnan(xy[..., 0]), 0.0, confidence)


LEGS = {"left_knee": (100.0, 200.0), "right_knee": (140.0, 200.0), "left_ankle": (100.0, 260.0), "right_ankle": (140.0, 260.0)}
SWAPPED_LEGS = {"left_knee": (144.0, 200.0), "right_knee": (104.0, 200.0), "left_ankle": (144.0, 260.0), "right_ankle": (104.0, 260.0)}


@pytest.mark.parametrize(
    ("other", "confidence", "left_knee", "why"),
    [
        ({**LEGS, "left_knee": (110.0, 200.0)}, 0.9, (105.0, 200.0), "agreeing labels: averaged"),
        (SWAPPED_LEGS, 0.9, (102.0, 200.0), "the other model calls the left leg right: paired by position"),
        ({**LEGS, "left_knee": (110.0, 200.0)}, 0.3, (100.0, 200.0), "unsure points keep MediaPipe's"),
        ({"right_knee": (140.0, 200.0)}, 0.9, (100.0, 200.0), "a point the other model lacks keeps MediaPipe's"),
    ],
)
def test_blend_keypoints(other, confidence, left_knee, why):
    xy, certainty = second(other, confidence)
    blended = blend_keypoints(one_frame(LEGS), xy, certainty, min_confidence=0.5)
    assert tuple(blended[0, INDEX["left_knee"]]) == pytest.approx(left_knee), why
    assert tuple(blended[0, INDEX["nose"]]) == (0.0, 0.0)


def test_frames_without_a_mediapipe_pose_stay_empty():
    xy, certainty = second(LEGS)
    blended = blend_keypoints(np.full((1, LANDMARK_COUNT, 2), NAN), xy, certainty, min_confidence=0.5)
    assert np.isnan(blended).all()


def test_the_second_model_finds_the_skiers_legs_where_mediapipe_does(derived):
    """Both models, on the crops of the real clip, put each knee and ankle within a tenth of
    the skier's height of each other in most frames."""
    from tasks.keypoints import second_opinion
    from tasks.models import require_model
    from tasks.pose import crop_windows, estimate_pose
    from tasks.tracking import detect_and_track, select_skier
    from tasks.video import probe_video

    config = load_config()
    info = probe_video(derived["short"])
    skier = select_skier(detect_and_track(info, config.tracking, require_model(config.models, "detector"), "cpu"),
                         config.tracking)
    windows = crop_windows(skier.boxes, info.fps, config.pose)
    model = require_model(config.models, "pose")
    alone = estimate_pose(info, windows, config.pose, model)
    blended = estimate_pose(info, windows, config.pose, model, None, second_opinion(config, "cpu"))

    legs = [INDEX[name] for name in ("left_knee", "right_knee", "left_ankle", "right_ankle")]
    # Averaging moves a point by half the distance between the two models.
    gap = 2 * np.linalg.norm(blended.image_xy[:, legs] - alone.image_xy[:, legs], axis=2)
    height = skier.boxes[:, 3] - skier.boxes[:, 1]
    close = gap.max(axis=1) < 0.1 * height
    moved = gap.max(axis=1) > 0
    assert close[alone.detected].mean() > 0.8
    assert moved[alone.detected].mean() > 0.8
    np.testing.assert_array_equal(blended.world_xyz, alone.world_xyz)
