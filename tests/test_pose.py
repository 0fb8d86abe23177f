from __future__ import annotations

import numpy as np
import pytest

from tasks.config import load_config
from tasks.pose import crop_windows, square_crop
from tasks.series import fill_short_gaps, runs_of

NAN = np.nan


@pytest.mark.parametrize(
    ("mask", "runs"),
    [
        ([True, True, False, True], [(0, 2), (3, 4)]),
        ([False, False], []),
        ([True], [(0, 1)]),
    ],
)
def test_runs_of(mask, runs):
    assert runs_of(np.array(mask)) == runs


@pytest.mark.parametrize(
    ("values", "max_gap", "expected"),
    [
        ([0, NAN, 4], 1, [0, 2, 4]),
        ([0, NAN, NAN, 6], 2, [0, 2, 4, 6]),
        ([0, NAN, NAN, 6], 1, [0, NAN, NAN, 6]),
        ([NAN, 1, 2, NAN], 5, [NAN, 1, 2, NAN]),
    ],
)
def test_fill_short_gaps(values, max_gap, expected):
    filled = fill_short_gaps(np.array(values, dtype=float)[:, None], max_gap)[:, 0]
    np.testing.assert_allclose(filled, expected)


def test_crop_windows_are_square_padded_and_bridge_short_gaps():
    config = load_config(overrides={"pose": {"crop_smoothing_s": 0, "crop_padding": 0.25, "max_box_gap_s": 0.2}}).pose
    boxes = np.array([[100, 100, 200, 300]] * 10, dtype=float)
    boxes[4:6] = NAN
    windows = crop_windows(boxes, 25.0, config)
    np.testing.assert_allclose(windows[0], [150, 200, 300])
    np.testing.assert_allclose(windows[4], [150, 200, 300])


def test_square_crop_maps_back_to_frame_pixels():
    image = np.zeros((100, 200, 3), np.uint8)
    image[40, 150] = 255
    crop, origin, side = square_crop(image, np.array([150, 40, 50]), 100)
    y, x = np.unravel_index(crop[..., 0].argmax(), crop.shape[:2])
    # A pixel found in the crop maps back to where it is in the frame.
    assert origin[0] + (x + 0.5) / 100 * side == pytest.approx(150.5, abs=1)
    assert origin[1] + (y + 0.5) / 100 * side == pytest.approx(40.5, abs=1)
    assert crop[:10].sum() == 0  # outside the frame is black


@pytest.fixture(scope="module")
def tracked_clip(derived):
    """A one-second clip and the crop windows around its tracked skier."""
    from tasks.models import require_model
    from tasks.tracking import detect_and_track, select_skier
    from tasks.video import probe_video

    config = load_config()
    info = probe_video(derived["short"])
    skier = select_skier(
        detect_and_track(info, config.tracking, require_model(config.models, "detector"), "cpu"), config.tracking
    )
    return info, crop_windows(skier.boxes, info.fps, config.pose)


def test_workers_take_fixed_turns_so_results_do_not_depend_on_timing(tracked_clip):
    from tasks.keypoint_models import second_opinion
    from tasks.models import require_model
    from tasks.pose import estimate_pose

    config, (info, windows) = load_config(), tracked_clip
    settings = config.pose.model_copy(update={"workers": 2, "chunk_s": 0.2})
    keypoints = second_opinion(config, "cpu")
    done: list[list[int]] = [[], []]
    runs = [
        estimate_pose(info, windows, settings, require_model(config.models, "pose"), reports.append, keypoints)
        for reports in done
    ]
    assert runs[0].detected.mean() > 0.9
    assert runs[0].keypoint_views is not None and not np.isnan(runs[0].keypoint_views).all()
    np.testing.assert_array_equal(runs[0].image_xy, runs[1].image_xy)
    np.testing.assert_array_equal(runs[0].keypoint_views, runs[1].keypoint_views)
    assert all(reports == sorted(reports) and reports[-1] == info.frames_in_trim for reports in done)


def _failing_keypoint_model(crops):
    raise RuntimeError("the keypoint model failed")


@pytest.mark.parametrize("fault", ["model", "windows", "keypoints"])
def test_a_failure_in_any_thread_stops_the_pose_step(tracked_clip, tmp_path, fault):
    from tasks.models import require_model
    from tasks.pose import estimate_pose

    config, (info, windows) = load_config(), tracked_clip
    model = require_model(config.models, "pose")
    if fault == "model":
        model = tmp_path / "broken.task"
        model.write_bytes(b"not a model")
    elif fault == "windows":
        windows = windows[:5]  # the frames after the fifth have no window row
    keypoints = _failing_keypoint_model if fault == "keypoints" else None
    with pytest.raises((RuntimeError, ValueError, IndexError)):
        estimate_pose(info, windows, config.pose.model_copy(update={"chunk_s": 0.1}), model, None, keypoints)
