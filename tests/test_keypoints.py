from __future__ import annotations

import numpy as np
import pytest

from tasks.config import load_config
from tasks.keypoints import (
    SHARED,
    SHARED_LANDMARKS,
    View,
    fuse_keypoints,
    interpolate_views,
    unmirror,
    views_of,
    views_of_frame,
)
from tasks.landmarks import INDEX, LANDMARK_COUNT

NAN = np.nan


def one_frame(points: dict[str, tuple[float, float]]) -> np.ndarray:
    """A `(1, 33, 2)` MediaPipe landmark array with the named points set, the rest at 0."""
    landmarks = np.zeros((1, LANDMARK_COUNT, 2))
    for name, xy in points.items():
        landmarks[0, INDEX[name]] = xy
    return landmarks


def views(*points: dict[str, tuple[float, float]], confidence: float = 0.9):
    """The second model's points in each view of one frame, `(1, views, len(SHARED), 2)`."""
    xy = np.array([[[view.get(name, (NAN, NAN)) for name in SHARED] for view in points]])
    return xy, np.where(np.isnan(xy[..., 0]), 0.0, confidence)


LEGS = {
    "left_knee": (100.0, 200.0),
    "right_knee": (140.0, 200.0),
    "left_ankle": (100.0, 260.0),
    "right_ankle": (140.0, 260.0),
}
SWAPPED_LEGS = {
    "left_knee": (144.0, 200.0),
    "right_knee": (104.0, 200.0),
    "left_ankle": (144.0, 260.0),
    "right_ankle": (104.0, 260.0),
}


@pytest.mark.parametrize(
    ("seen", "confidence", "left_knee", "why"),
    [
        (
            ({**LEGS, "left_knee": (110.0, 200.0)},),
            0.9,
            (110.0, 200.0),
            "the second model's point replaces MediaPipe's",
        ),
        (
            ({**LEGS, "left_knee": (110.0, 200.0)}, {**LEGS, "left_knee": (114.0, 204.0)}),
            0.9,
            (112.0, 202.0),
            "the views are averaged",
        ),
        ((SWAPPED_LEGS, LEGS), 0.9, (102.0, 200.0), "a view calling the left leg right is paired by position"),
        (({**LEGS, "left_knee": (110.0, 200.0)},), 0.3, (100.0, 200.0), "unsure points keep MediaPipe's"),
        (({"right_knee": (140.0, 200.0)},), 0.9, (100.0, 200.0), "a point the second model lacks keeps MediaPipe's"),
    ],
)
def test_fuse_keypoints(seen, confidence, left_knee, why):
    xy, certainty = views(*seen, confidence=confidence)
    fused, paired = fuse_keypoints(one_frame(LEGS), xy, certainty, min_confidence=0.5)
    assert tuple(fused[0, INDEX["left_knee"]]) == pytest.approx(left_knee), why
    assert tuple(fused[0, INDEX["nose"]]) == (0.0, 0.0)
    assert paired.shape == xy.shape


def test_a_foot_moves_with_its_ankle():
    mediapipe = one_frame({**LEGS, "left_heel": (95.0, 270.0), "left_foot_index": (110.0, 275.0)})
    xy, certainty = views({**LEGS, "left_ankle": (103.0, 258.0)})
    fused, _ = fuse_keypoints(mediapipe, xy, certainty, min_confidence=0.5)
    assert tuple(fused[0, INDEX["left_heel"]]) == pytest.approx((98.0, 268.0))
    assert tuple(fused[0, INDEX["left_foot_index"]]) == pytest.approx((113.0, 273.0))


def test_frames_without_a_mediapipe_pose_stay_empty():
    xy, certainty = views(LEGS)
    fused, paired = fuse_keypoints(np.full((1, LANDMARK_COUNT, 2), NAN), xy, certainty, min_confidence=0.5)
    assert np.isnan(fused).all() and np.isnan(paired).all()


def test_a_point_seen_in_a_mirrored_crop_is_mapped_back_to_its_own_side():
    xy, confidence = views({"left_knee": (0.3, 0.5), "right_knee": (0.6, 0.5)})
    back, back_confidence = unmirror(xy[0, 0], confidence[0, 0])
    assert tuple(back[SHARED.index("right_knee")]) == pytest.approx((0.7, 0.5))
    assert tuple(back[SHARED.index("left_knee")]) == pytest.approx((0.4, 0.5))
    assert back_confidence[SHARED.index("right_knee")] == 0.9


def test_the_views_follow_the_config():
    found = views_of(
        load_config(overrides={"pose": {"keypoint_views": [[0, 0, 1, False], [0.04, -0.03, 1.1, True]]}}).pose
    )
    assert found == (View(), View(shift=(0.04, -0.03), scale=1.1, mirrored=True))
    assert len(views_of(load_config().pose)) == 12


@pytest.mark.parametrize("views", [[], [[0.5, 0, 1, False]], [[0, 0, 3, False]], [[0, 0, 1]]])
def test_views_out_of_range_are_refused(views):
    from tasks.errors import ConfigError

    with pytest.raises(ConfigError, match="keypoint_views"):
        load_config(overrides={"pose": {"keypoint_views": views}})


@pytest.mark.parametrize(
    ("source_index", "view_count", "per_frame", "expected", "why"),
    [
        (7, 12, 0, tuple(range(12)), "0 means every view"),
        (7, 12, 12, tuple(range(12)), "as many as there are views means every view"),
        (7, 3, 5, (0, 1, 2), "more than there are views means every view"),
        (0, 12, 3, (0, 1, 2), "the first frame starts at the first view"),
        (1, 12, 3, (3, 4, 5), "the next frame takes the next views"),
        (3, 12, 3, (9, 10, 11), "the last turn ends at the last view"),
        (4, 12, 3, (0, 1, 2), "the turns come round"),
        (101, 12, 3, (3, 4, 5), "the turn follows the index in the source clip"),
        (2, 5, 2, (0, 4), "a view count the turns do not divide wraps within a frame"),
        (5, 12, 1, (5,), "one view a frame"),
    ],
)
def test_views_of_frame(source_index, view_count, per_frame, expected, why):
    assert views_of_frame(source_index, view_count, per_frame) == expected, why


def test_every_view_comes_round_equally_often():
    counts = np.zeros(12, dtype=int)
    for index in range(40):
        counts[list(views_of_frame(index, 12, 3))] += 1
    assert (counts == 10).all()


def one_view_series(values: list[float], confidences: list[float]):
    """View 1 of two over frames (view 0 runs on every frame); NaN values mark frames the view
    was not run on, `None` ones frames it ran on but found nothing."""
    frames = len(values)
    xy = np.full((frames, 2, 1, 2), NAN)
    confidence = np.zeros((frames, 2, 1))
    ran = np.zeros((frames, 2), dtype=bool)
    ran[:, 0] = True
    xy[:, 0] = 0.0
    for frame, (value, certainty) in enumerate(zip(values, confidences)):
        if value is None or not np.isnan(value):
            ran[frame, 1] = True
            xy[frame, 1] = NAN if value is None else value
            confidence[frame, 1] = certainty
    return xy, confidence, ran


@pytest.mark.parametrize(
    ("values", "confidences", "max_gap", "expected", "expected_confidence", "why"),
    [
        ([0.0, NAN, 4.0], [0.6, 0, 0.8], 2, [0.0, 2.0, 4.0], [0.6, 0.7, 0.8], "filled between its runs"),
        ([0.0, NAN, NAN, 6.0], [0.5, 0, 0, 0.8], 3, [0.0, 2.0, 4.0, 6.0], [0.5, 0.6, 0.7, 0.8], "in proportion"),
        ([0.0, NAN, NAN, 6.0], [0.5, 0, 0, 0.8], 2, [0.0, NAN, NAN, 6.0], [0.5, 0, 0, 0.8], "too far apart"),
        ([NAN, 2.0, NAN], [0, 0.9, 0], 2, [NAN, 2.0, NAN], [0, 0.9, 0], "nothing before or after the runs"),
        ([0.0, NAN, None], [0.6, 0, 0], 2, [0.0, NAN, NAN], [0.6, 0, 0], "a run that found nothing"),
    ],
)
def test_interpolate_views(values, confidences, max_gap, expected, expected_confidence, why):
    xy, confidence, ran = one_view_series(values, confidences)
    filled, filled_confidence = interpolate_views(xy, confidence, ran, max_gap)
    np.testing.assert_allclose(filled[:, 1, 0, 0], expected, err_msg=why)
    np.testing.assert_allclose(filled[:, 1, 0, 1], expected, err_msg=why)
    np.testing.assert_allclose(filled_confidence[:, 1, 0], expected_confidence, err_msg=why)
    np.testing.assert_array_equal(filled[:, 0], xy[:, 0])


def test_frames_without_any_run_are_not_filled():
    xy, confidence, ran = one_view_series([0.0, NAN, 4.0], [0.6, 0, 0.8])
    ran[1, 0] = False
    xy[1, 0] = NAN
    filled, _ = interpolate_views(xy, confidence, ran, 2)
    assert np.isnan(filled[1]).all()


def test_a_view_moves_and_scales_the_crop_window():
    window = np.array([500.0, 300.0, 200.0])
    assert tuple(View(shift=(0.04, -0.04)).window(window)) == pytest.approx((508.0, 292.0, 200.0))
    assert tuple(View(scale=1.12).window(window)) == pytest.approx((500.0, 300.0, 224.0))


def test_the_second_model_finds_the_skiers_legs_where_mediapipe_does(derived):
    """Both models, on the crops of the real clip, put each knee and ankle within a tenth of
    the skier's height of each other in most frames."""
    from tasks.keypoint_models import second_opinion
    from tasks.models import require_model
    from tasks.pose import crop_windows, estimate_pose
    from tasks.tracking import detect_and_track, select_skier
    from tasks.video import probe_video

    config = load_config()
    info = probe_video(derived["short"])
    skier = select_skier(
        detect_and_track(info, config.tracking, require_model(config.models, "detector"), "cpu"), config.tracking
    )
    windows = crop_windows(skier.boxes, info.fps, config.pose)
    model = require_model(config.models, "pose")
    alone = estimate_pose(info, windows, config.pose, model)
    fused = estimate_pose(info, windows, config.pose, model, None, second_opinion(config, "cpu"))

    legs = [INDEX[name] for name in ("left_knee", "right_knee", "left_ankle", "right_ankle")]
    gap = np.linalg.norm(fused.image_xy[:, legs] - alone.image_xy[:, legs], axis=2)
    height = skier.boxes[:, 3] - skier.boxes[:, 1]
    close = gap.max(axis=1) < 0.1 * height
    moved = gap.max(axis=1) > 0
    assert close[alone.detected].mean() > 0.8
    assert moved[alone.detected].mean() > 0.8
    np.testing.assert_array_equal(fused.world_xyz, alone.world_xyz)
    np.testing.assert_array_equal(fused.mediapipe_shared, alone.image_xy[:, SHARED_LANDMARKS])
    # Every view saw the legs in most frames, and the views agree within a few pixels.
    seen = ~np.isnan(fused.keypoint_views[alone.detected][..., 0])
    assert fused.keypoint_views.shape[1] == len(views_of(config.pose)) and seen.mean() > 0.8
    spread = np.nanstd(fused.keypoint_views[alone.detected], axis=1).max(axis=2)
    assert np.nanmedian(spread) < 0.03 * np.nanmedian(height)
