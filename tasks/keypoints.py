"""A second opinion on the body: a YOLO pose model on the skier's crop, seen several ways.

The second model runs on several views of each frame's crop (test-time augmentation): as cut,
mirrored, shifted a little each way and zoomed a little in and out. One model's answers to
near-identical pictures differ by a few pixels, and those differences are what moves a score
when the same run is re-encoded; their mean moves a third as much (see "Repeatability" in
the README). The shoulders, hips, knees and ankles, the points the metrics use, are taken
from that mean where the model is confident, and from MediaPipe elsewhere; the views
themselves are kept, because how much they disagree is part of each score's interval. The
world landmarks stay MediaPipe's own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from tasks.config import PoseConfig
from tasks.landmarks import INDEX, LANDMARK_NAMES, mirrored

# COCO keypoint number of each shared point, by MediaPipe landmark name.
_COCO = {
    "left_shoulder": 5,
    "right_shoulder": 6,
    "left_hip": 11,
    "right_hip": 12,
    "left_knee": 13,
    "right_knee": 14,
    "left_ankle": 15,
    "right_ankle": 16,
}
SHARED = tuple(_COCO)
# Where the shared points are in the second model's output.
COCO_COLUMNS = np.array([_COCO[name] for name in SHARED])
SHARED_LANDMARKS = np.array([INDEX[name] for name in SHARED])
# The same points with left and right traded.
_SWAPPED = np.array(mirrored(SHARED))
# MediaPipe's foot points, moved with their ankle so that the drawn foot stays on the leg.
_FEET = {INDEX[f"{side}_ankle"]: (INDEX[f"{side}_heel"], INDEX[f"{side}_foot_index"]) for side in ("left", "right")}

# Crops in, then per crop the shared points `(len(SHARED), 2)` in crop units (0-1) and their
# confidences; NaN and 0 where nobody was found.
KeypointModel = Callable[[list[np.ndarray]], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class View:
    """One way of showing the model a crop: the crop window moved by `shift` (fractions of
    its side, x then y), its side multiplied by `scale`, and the picture mirrored or not."""

    shift: tuple[float, float] = (0.0, 0.0)
    scale: float = 1.0
    mirrored: bool = False

    def window(self, window: np.ndarray) -> np.ndarray:
        """The crop window `(cx, cy, side)` this view cuts instead of `window`."""
        centre_x, centre_y, side = window
        return np.array([centre_x + self.shift[0] * side, centre_y + self.shift[1] * side, side * self.scale])


def views_of(config: PoseConfig) -> tuple[View, ...]:
    """The views the configuration asks for (`pose.keypoint_views`), in its order."""
    return tuple(View(shift=(x, y), scale=scale, mirrored=mirrored) for x, y, scale, mirrored in config.keypoint_views)


def views_of_frame(source_index: int, view_count: int, per_frame: int) -> tuple[int, ...]:
    """The numbers of the views the second model sees in one frame.

    With `per_frame` below `view_count` the views take turns: frame `i` gets views
    `i * per_frame`, `i * per_frame + 1`, ... (modulo `view_count`), so that every view
    comes round once every `view_count / per_frame` frames (`interpolate_views` fills in
    the others). The turn follows the frame's index in the source clip, not
    in the analysed window, so a trimmed clip gives each frame the views it had untrimmed.

    Args:
        source_index: The frame's index from the start of the clip.
        view_count: How many views are configured.
        per_frame: Views per frame; 0 or at least `view_count` means all of them.

    Returns:
        View numbers in increasing order.
    """
    if per_frame <= 0 or per_frame >= view_count:
        return tuple(range(view_count))
    first = source_index * per_frame
    return tuple(sorted((first + offset) % view_count for offset in range(per_frame)))


def interpolate_views(
    xy: np.ndarray, confidence: np.ndarray, ran: np.ndarray, max_gap: int
) -> tuple[np.ndarray, np.ndarray]:
    """Each view's points in the frames it was not run on, from its runs on either side.

    With the views taking turns (`views_of_frame`), a frame's mean of only its own views
    would change with the views' own small biases from frame to frame; filled in, every
    frame averages all of them. A point and its confidence are interpolated linearly in
    frame number between the view's nearest runs, where these are at most `max_gap` frames
    apart and both found the point; elsewhere they stay NaN and 0.

    Args:
        xy: `(frames, views, points, 2)` positions, NaN where not found or not run.
        confidence: `(frames, views, points)`.
        ran: `(frames, views)` which views were run on which frames.
        max_gap: Longest span, in frames, between two runs of a view that is filled.

    Returns:
        New positions and confidences; the frames without any run are left as they are.
    """
    xy, confidence = xy.copy(), confidence.copy()
    targets = np.flatnonzero(ran.any(axis=1))
    for view in range(ran.shape[1]):
        runs = np.flatnonzero(ran[:, view])
        missing = targets[~ran[targets, view]]
        after = np.searchsorted(runs, missing)
        inside = (after > 0) & (after < len(runs))
        missing, after = missing[inside], after[inside]
        before, after = runs[after - 1], runs[after]
        close = after - before <= max_gap
        missing, before, after = missing[close], before[close], after[close]
        weight = ((missing - before) / (after - before))[:, None]
        xy[missing, view] = (1 - weight[..., None]) * xy[before, view] + weight[..., None] * xy[after, view]
        confidence[missing, view] = (1 - weight) * confidence[before, view] + weight * confidence[after, view]
        confidence[missing, view] = np.where(np.isnan(xy[missing, view, :, 0]), 0.0, confidence[missing, view])
    return xy, confidence


def unmirror(points: np.ndarray, confidence: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Points found in a mirrored crop (crop units) as they lie in the crop itself: x flipped,
    and left and right traded, since a mirrored left knee looks like a right one."""
    points = points[..., _SWAPPED, :].copy()
    points[..., 0] = 1 - points[..., 0]
    return points, confidence[..., _SWAPPED]


def pair_views(mediapipe: np.ndarray, views: np.ndarray, confidence: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each view's points with its sides paired to MediaPipe's, per frame.

    Both models may label a skier seen from behind left for right, each in its own frames,
    so per frame and view the second model's sides are paired with MediaPipe's the way that
    puts the points closer together.

    Args:
        mediapipe: `(frames, len(SHARED), 2)` MediaPipe's shared points.
        views: `(frames, views, len(SHARED), 2)` the second model's points per view.
        confidence: `(frames, views, len(SHARED))` its confidence per point.

    Returns:
        The views' points and confidences, relabelled where that pairs them better.
    """
    swapped, swapped_confidence = views[:, :, _SWAPPED], confidence[:, :, _SWAPPED]
    reference = mediapipe[:, None]
    straight_distance = np.nansum(np.linalg.norm(views - reference, axis=3), axis=2)
    swapped_distance = np.nansum(np.linalg.norm(swapped - reference, axis=3), axis=2)
    swap = swapped_distance < straight_distance
    return (
        np.where(swap[..., None, None], swapped, views),
        np.where(swap[..., None], swapped_confidence, confidence),
    )


def fuse_keypoints(
    image_xy: np.ndarray, views_xy: np.ndarray, views_confidence: np.ndarray, min_confidence: float
) -> tuple[np.ndarray, np.ndarray]:
    """MediaPipe's image landmarks with the shared points taken from the second model.

    A shared point is the mean of the views that see it at least `min_confidence`, where
    MediaPipe has a pose; MediaPipe's own point is kept where no view does. Plain means, not
    a mix with MediaPipe: any share of MediaPipe's point made the scores less repeatable
    (see "Repeatability" in the README). Each foot moves with its ankle.

    Args:
        image_xy: `(frames, 33, 2)` MediaPipe landmarks in frame pixels, NaN without a pose.
        views_xy: `(frames, views, len(SHARED), 2)` the second model's points in frame pixels.
        views_confidence: `(frames, views, len(SHARED))` its confidence per point.
        min_confidence: Views below this do not count for a point.

    Returns:
        A new landmark array, and the views paired to its sides with NaN where a view was
        not confident (`(frames, views, len(SHARED), 2)`).
    """
    mediapipe = image_xy[:, SHARED_LANDMARKS]
    paired, confidence = pair_views(mediapipe, views_xy, views_confidence)
    seen = (confidence >= min_confidence) & ~np.isnan(paired[..., 0]) & ~np.isnan(mediapipe[:, None, :, 0])
    paired = np.where(seen[..., None], paired, np.nan)
    counted = seen.sum(axis=1)
    mean = np.nansum(paired, axis=1) / np.maximum(counted, 1)[..., None]
    shared = np.where((counted > 0)[..., None], mean, mediapipe)
    fused = image_xy.copy()
    fused[:, SHARED_LANDMARKS] = shared
    for ankle, foot in _FEET.items():
        moved = shared[:, SHARED.index(LANDMARK_NAMES[ankle])] - image_xy[:, ankle]
        fused[:, list(foot)] += moved[:, None]
    return fused, paired
