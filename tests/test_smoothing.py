from __future__ import annotations

import numpy as np
import pytest

from tasks.config import load_config
from tasks.landmarks import INDEX
from tasks.pose import PoseSequence
from tasks.smoothing import bridged_segments, rts_smooth, smooth_pose

FPS = 30.0
TIMES = np.arange(150) / FPS
TRUTH = 100 * np.sin(2 * np.pi * 0.5 * TIMES)  # a turn rhythm of one second per side


def noisy(seed=0, sigma=4.0):
    return TRUTH + np.random.default_rng(seed).normal(0, sigma, TRUTH.shape)


def smooth(values, reliability=None):
    reliability = np.ones_like(values) if reliability is None else reliability
    return rts_smooth(values[:, None], TIMES, reliability[:, None], acceleration=400.0, noise=4.0)[:, 0]


def test_smoothing_removes_noise():
    measured = noisy()
    error_before = np.abs(measured - TRUTH).mean()
    error_after = np.abs(smooth(measured) - TRUTH).mean()
    assert error_after < error_before / 2


def test_smoothing_adds_no_lag():
    smoothed = smooth(noisy())
    lags = range(-5, 6)
    correlation = [np.corrcoef(np.roll(smoothed, lag)[10:-10], TRUTH[10:-10])[0, 1] for lag in lags]
    assert lags[int(np.argmax(correlation))] == 0


def test_gaps_are_bridged_close_to_the_truth():
    measured = noisy()
    measured[60:66] = np.nan
    smoothed = smooth(measured)
    assert not np.isnan(smoothed).any()
    assert np.abs(smoothed[60:66] - TRUTH[60:66]).max() < 10


def test_low_visibility_points_count_less():
    measured = noisy()
    measured[70] += 80  # one wild detection
    reliability = np.ones_like(measured)
    trusted = smooth(measured, reliability)
    reliability[70] = 0.1
    doubted = smooth(measured, reliability)
    assert abs(doubted[70] - TRUTH[70]) < abs(trusted[70] - TRUTH[70]) / 3


@pytest.mark.parametrize(
    ("observed", "max_gap", "segments"),
    [
        ([1, 1, 0, 1, 1], 1, [(0, 5)]),
        ([1, 1, 0, 0, 1], 1, [(0, 2), (4, 5)]),
        ([0, 1, 1, 0], 3, [(1, 3)]),
        ([0, 0], 3, []),
    ],
)
def test_bridged_segments(observed, max_gap, segments):
    assert bridged_segments(np.array(observed, dtype=bool), max_gap) == segments


def test_smooth_pose_bridges_short_gaps_only():
    config = load_config(overrides={"smoothing": {"max_gap_s": 0.2}}).smoothing
    pose = PoseSequence.empty(TIMES)
    pose.detected[:] = True
    pose.detected[40:44] = False  # 4 frames: bridged
    pose.detected[90:110] = False  # 20 frames: left empty
    pose.image_xy[pose.detected] = 500 + noisy()[pose.detected][:, None, None]
    pose.world_xyz[pose.detected] = noisy()[pose.detected][:, None, None] / 100
    pose.visibility[pose.detected] = 0.9
    smoothed = smooth_pose(pose, config)
    assert smoothed.has_pose[40:44].all()
    assert not smoothed.has_pose[90:110].any()
    assert np.isnan(smoothed.visibility[90:110]).all()
    assert np.abs(smoothed.image_xy[:40, 0, 0] - 500 - TRUTH[:40]).mean() < 3


def test_upside_down_poses_are_dropped_before_smoothing():
    config = load_config().smoothing
    pose = PoseSequence.empty(TIMES[:20])
    pose.detected[:] = True
    pose.image_xy[:] = 100.0
    pose.image_xy[:, INDEX["left_ankle"], 1] = pose.image_xy[:, INDEX["right_ankle"], 1] = 300.0
    pose.image_xy[10, INDEX["left_ankle"], 1] = pose.image_xy[10, INDEX["right_ankle"], 1] = 20.0
    pose.world_xyz[:] = 0.0
    pose.visibility[:] = 1.0
    smoothed = smooth_pose(pose, config)
    assert not smoothed.detected[10] and smoothed.has_pose[10]  # bridged from its neighbours
    assert smoothed.image_xy[10, INDEX["left_ankle"], 1] == pytest.approx(300.0, abs=1)
