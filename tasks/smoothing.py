"""Zero-lag smoothing of landmark tracks: a Kalman filter forwards, a Rauch-Tung-Striebel pass back.

Each coordinate of each landmark is an independent constant-velocity series. Measurement noise
grows as visibility falls, so occluded joints follow their neighbours in time rather than their
noisy detections. Gaps up to a limit are bridged by the smoother; longer ones split the series
and stay empty, so no motion is invented.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from tasks.config import SmoothingConfig
from tasks.frontal import on_skiers_sides
from tasks.keypoints import SHARED_LANDMARKS
from tasks.landmarks import INDEX
from tasks.pose import PoseSequence
from tasks.series import fill_short_gaps, runs_of


def smooth_pose(pose: PoseSequence, config: SmoothingConfig, camera_side: str = "auto") -> PoseSequence:
    """Smooth image and world landmarks, and the second model's views of the shared points,
    bridging gaps up to `config.max_gap_s`, after putting each frame's landmarks on the
    skier's own sides (`tasks.frontal.on_skiers_sides`).

    Args:
        pose: The pose as estimated.
        config: The smoothing settings.
        camera_side: `behind`, `front`, or `auto` (see `metrics.camera_side`).

    Returns:
        A pose of the same shape, `left_*` being the skier's own left; bridged frames get
        landmarks, visibility interpolated.
    """
    pose = drop_upside_down(on_skiers_sides(pose, camera_side))
    if not pose.detected.any():
        return pose
    reliability = np.clip(np.nan_to_num(pose.visibility, nan=0.0), config.min_visibility, 1.0)
    max_gap = round(config.max_gap_s / _frame_interval(pose.times_s))
    segments = bridged_segments(pose.detected, max_gap)

    def smoothed(values: np.ndarray, reliability: np.ndarray, acceleration: float, noise: float) -> np.ndarray:
        series = values.reshape(len(values), -1)
        reliability = np.broadcast_to(reliability, series.shape)
        result = np.full_like(series, np.nan)
        for start, stop in segments:
            span = slice(start, stop)
            result[span] = rts_smooth(series[span], pose.times_s[span], reliability[span], acceleration, noise)
        return result.reshape(values.shape)

    image = smoothed(pose.image_xy, np.repeat(reliability, 2, axis=1), config.image_acceleration, config.image_noise_px)
    world = smoothed(pose.world_xyz, np.repeat(reliability, 3, axis=1), config.world_acceleration, config.world_noise_m)
    visibility = fill_short_gaps(pose.visibility, max_gap)
    visibility[np.isnan(image[:, 0, 0])] = np.nan
    smoothed_pose = pose.with_landmarks(image, world, visibility)
    if pose.keypoint_views is None or pose.mediapipe_shared is None:
        return smoothed_pose
    # A view's point counts only where the view was confident (elsewhere it is NaN), so all
    # its measurements are trusted alike.
    shared_reliability = np.repeat(reliability[:, SHARED_LANDMARKS], 2, axis=1)
    return replace(
        smoothed_pose,
        keypoint_views=smoothed(pose.keypoint_views, np.ones(1), config.image_acceleration, config.image_noise_px),
        mediapipe_shared=smoothed(
            pose.mediapipe_shared, shared_reliability, config.image_acceleration, config.image_noise_px
        ),
    )


def drop_upside_down(pose: PoseSequence) -> PoseSequence:
    """Treat poses with the ankles above the hips as failed detections: the pose model sometimes
    flips a crouched skier seen from behind, and one such frame drags its smoothed neighbours."""
    hips = (pose.image_xy[:, INDEX["left_hip"], 1] + pose.image_xy[:, INDEX["right_hip"], 1]) / 2
    ankles = (pose.image_xy[:, INDEX["left_ankle"], 1] + pose.image_xy[:, INDEX["right_ankle"], 1]) / 2
    upside_down = ankles < hips  # image y points down
    if not upside_down.any():
        return pose
    arrays = {
        name: getattr(pose, name).copy()
        for name in ("image_xy", "world_xyz", "visibility", "keypoint_views", "mediapipe_shared")
        if getattr(pose, name) is not None
    }
    for values in arrays.values():
        values[upside_down] = np.nan
    return replace(pose, detected=pose.detected & ~upside_down, **arrays)


def bridged_segments(observed: np.ndarray, max_gap: int) -> list[tuple[int, int]]:
    """`(start, stop)` spans from an observed frame to an observed frame, split at longer gaps."""
    segments: list[tuple[int, int]] = []
    for start, stop in runs_of(observed):
        if segments and start - segments[-1][1] <= max_gap:
            segments[-1] = (segments[-1][0], stop)
        else:
            segments.append((start, stop))
    return segments


def rts_smooth(
    values: np.ndarray, times: np.ndarray, reliability: np.ndarray, acceleration: float, noise: float
) -> np.ndarray:
    """Smooth many series at once with a constant-velocity Kalman filter and an RTS pass.

    Args:
        values: `(frames, series)` measurements, NaN where missing.
        times: `(frames,)` seconds, increasing.
        reliability: `(frames, series)` in (0, 1]; measurement noise is `noise / reliability`.
        acceleration: Standard deviation of the unmodelled acceleration (units per s^2).
        noise: Measurement noise standard deviation at reliability 1 (units).

    Returns:
        `(frames, series)` smoothed positions; every frame has a value if the first and last do.
    """
    frames, count = values.shape
    observed = ~np.isnan(values)
    measurement_var = (noise / reliability) ** 2
    q = acceleration**2

    # State per series: position x0, velocity x1; covariance as p00, p01, p11.
    first = np.where(observed[0], values[0], np.nanmean(values, axis=0))
    x0, x1 = np.nan_to_num(first), np.zeros(count)
    p00 = np.where(observed[0], measurement_var[0], 1e6 * noise**2)
    p01 = np.zeros(count)
    p11 = np.full(count, (10 * noise / max(_frame_interval(times), 1e-3)) ** 2)

    filtered = np.empty((frames, 2, count))
    predicted = np.empty((frames, 2, count))
    filtered_cov = np.empty((frames, 3, count))
    predicted_cov = np.empty((frames, 3, count))
    for k in range(frames):
        if k > 0:
            dt = times[k] - times[k - 1]
            x0 = x0 + dt * x1
            p00, p01, p11 = (
                p00 + 2 * dt * p01 + dt**2 * p11 + q * dt**4 / 4,
                p01 + dt * p11 + q * dt**3 / 2,
                p11 + q * dt**2,
            )
        predicted[k] = x0, x1
        predicted_cov[k] = p00, p01, p11
        seen = observed[k]
        innovation_var = p00 + measurement_var[k]
        gain0, gain1 = p00 / innovation_var, p01 / innovation_var
        residual = np.where(seen, values[k] - x0, 0.0)
        x0 = x0 + np.where(seen, gain0 * residual, 0.0)
        x1 = x1 + np.where(seen, gain1 * residual, 0.0)
        p00, p01, p11 = (
            np.where(seen, (1 - gain0) * p00, p00),
            np.where(seen, (1 - gain0) * p01, p01),
            np.where(seen, p11 - gain1 * p01, p11),
        )
        filtered[k] = x0, x1
        filtered_cov[k] = p00, p01, p11

    smoothed = filtered.copy()
    for k in range(frames - 2, -1, -1):
        dt = times[k + 1] - times[k]
        f00, f01, f11 = filtered_cov[k]
        a, b, d = predicted_cov[k + 1]
        determinant = a * d - b * b
        # Gain C = P_filtered F^T P_predicted^-1, written out for the 2x2 case.
        m00, m01, m10, m11 = f00 + dt * f01, f01, f01 + dt * f11, f11
        c00, c01 = (m00 * d - m01 * b) / determinant, (m01 * a - m00 * b) / determinant
        c10, c11 = (m10 * d - m11 * b) / determinant, (m11 * a - m10 * b) / determinant
        delta0 = smoothed[k + 1, 0] - predicted[k + 1, 0]
        delta1 = smoothed[k + 1, 1] - predicted[k + 1, 1]
        smoothed[k, 0] = filtered[k, 0] + c00 * delta0 + c01 * delta1
        smoothed[k, 1] = filtered[k, 1] + c10 * delta0 + c11 * delta1
    positions = smoothed[:, 0].copy()
    positions[:, ~observed.any(axis=0)] = np.nan
    return positions


def _frame_interval(times: np.ndarray) -> float:
    steps = np.diff(times)
    return float(np.median(steps)) if len(steps) else 1.0
