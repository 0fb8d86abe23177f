"""Per-frame angles in the skier's frontal plane: inclination and the edge angle of each leg.

The frontal plane holds the hip line and the vertical. With the camera behind or in front of
the skier, as our filming tips ask, that is the image plane, and angles are measured there from
the image landmarks: from vertical, positive towards the skier's own right. The world landmarks'
depth is not used for the plane: from one camera it is the model's guess, and on the follow-cam
clip the hip line's depth flips sign from frame to frame, which would swing the plane by tens of
degrees. The 3D angle between the shins does use the world landmarks.

MediaPipe labels left and right as for a person facing the camera, and for a skier filmed from
behind it swaps them from frame to frame. So sides are not taken from its labels: the skier's
left side is the one whose hip and shoulder are on the image left when filmed from behind
(right when filmed from the front), and the camera side is detected once per clip or set in
the config. `on_skiers_sides` relabels each frame so before smoothing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import overload

import numpy as np

from tasks.config import MetricsConfig
from tasks.keypoints import SHARED, SHARED_LANDMARKS
from tasks.landmarks import INDEX, LANDMARK_NAMES, mirrored
from tasks.pose import PoseSequence

_LEG = ("hip", "knee", "ankle")


@dataclass(frozen=True)
class FrameAngles:
    """Frontal-plane angles per frame in degrees; NaN where there is no usable pose.

    Attributes:
        inclination_deg: Lean of the centre-of-mass proxy over the ankles' midpoint.
        left_edge_deg: Tilt of the left shin (knee minus ankle), the edge angle proxy.
        right_edge_deg: Tilt of the right shin.
        edge_difference_deg: Left minus right edge angle.
        shin_angle_deg: 3D angle between the two shins (0 = parallel).
        camera_side: `behind` or `front`.
        view_left_edge_deg: `(frames, views)` the left edge angle from each view of the
            second keypoint model alone; None without it.
        view_right_edge_deg: The same for the right leg.
        legs_hidden: Frames whose legs were not seen: the pose was bridged by smoothing, or
            the second model saw a hip, knee or ankle in none of its views.
        models_disagree: Frames where MediaPipe's edge angle of a leg and the second model's
            differ by more than `metrics.max_model_disagreement_deg`.
    """

    inclination_deg: np.ndarray
    left_edge_deg: np.ndarray
    right_edge_deg: np.ndarray
    edge_difference_deg: np.ndarray
    shin_angle_deg: np.ndarray
    camera_side: str
    view_left_edge_deg: np.ndarray | None = None
    view_right_edge_deg: np.ndarray | None = None
    legs_hidden: np.ndarray | None = None
    models_disagree: np.ndarray | None = None


def detect_camera_side(pose: PoseSequence) -> str:
    """`front` when the pose model puts the nose nearer the camera than the ears, else `behind`."""
    world = pose.world_xyz
    nose_depth = world[:, INDEX["nose"], 2]
    ear_depth = (world[:, INDEX["left_ear"], 2] + world[:, INDEX["right_ear"], 2]) / 2
    difference = nose_depth - ear_depth
    difference = difference[~np.isnan(difference)]
    return "front" if len(difference) and np.median(difference) < 0 else "behind"


def frontal_angles(pose: PoseSequence, config: MetricsConfig) -> FrameAngles:
    """Inclination and edge angles per frame (see the module notes for the conventions)."""
    side = detect_camera_side(pose) if config.camera_side == "auto" else config.camera_side
    # Image x points to the skier's right when filmed from behind, to their left from the front.
    towards_right = 1.0 if side == "behind" else -1.0

    def tilt(vectors: np.ndarray) -> np.ndarray:
        return np.degrees(np.arctan2(towards_right * vectors[:, 0], -vectors[:, 1]))

    def edges(image_xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        left, right = skier_legs(image_xy, pose.image_xy, side)
        return tilt(left["knee"] - left["ankle"]), tilt(right["knee"] - right["ankle"])

    image_left, image_right = skier_legs(pose.image_xy, pose.image_xy, side)
    ankles = (image_left["ankle"] + image_right["ankle"]) / 2
    inclination = tilt(centre_of_mass(pose.image_xy, config.com_trunk_weight) - ankles)
    left_edge, right_edge = edges(pose.image_xy)

    world_left, world_right = skier_legs(pose.world_xyz, pose.image_xy, side)
    left_shin, right_shin = world_left["knee"] - world_left["ankle"], world_right["knee"] - world_right["ankle"]
    cosine = np.sum(left_shin * right_shin, axis=1) / (
        np.linalg.norm(left_shin, axis=1) * np.linalg.norm(right_shin, axis=1)
    )
    shin_angle = np.degrees(np.arccos(np.clip(cosine, -1.0, 1.0)))

    angles = (inclination, left_edge, right_edge, left_edge - right_edge, shin_angle)
    leg_visibility = pose.visibility[:, [INDEX[f"{side}_{joint}"] for side in ("left", "right") for joint in _LEG]]
    failed = ~(np.abs(inclination) <= config.max_inclination_deg) | ~(
        leg_visibility.min(axis=1) >= config.min_leg_visibility
    )
    for values in angles:
        values[failed] = np.nan
    evidence = {"legs_hidden": ~pose.detected} | _second_opinion(pose, edges, config)
    return FrameAngles(*angles, camera_side=side, **evidence)


def _second_opinion(pose: PoseSequence, edges, config: MetricsConfig) -> dict[str, np.ndarray]:
    """Edge angles from each view of the second keypoint model, the frames where it saw no leg
    joint, and those where MediaPipe's legs tip differently from the chosen ones."""
    if pose.keypoint_views is None or pose.mediapipe_shared is None:
        return {}

    def with_shared(points: np.ndarray) -> np.ndarray:
        image_xy = pose.image_xy.copy()
        image_xy[:, SHARED_LANDMARKS] = points
        return image_xy

    view_edges = [edges(with_shared(pose.keypoint_views[:, view])) for view in range(pose.keypoint_views.shape[1])]
    legs = [SHARED.index(f"{side}_{joint}") for side in ("left", "right") for joint in _LEG]
    unseen = np.isnan(pose.keypoint_views[:, :, legs, 0]).all(axis=1).any(axis=1)
    mediapipe_left, mediapipe_right = edges(with_shared(pose.mediapipe_shared))
    fused_left, fused_right = edges(pose.image_xy)
    apart = np.fmax(np.abs(mediapipe_left - fused_left), np.abs(mediapipe_right - fused_right))
    return {
        "view_left_edge_deg": np.column_stack([left for left, _ in view_edges]),
        "view_right_edge_deg": np.column_stack([right for _, right in view_edges]),
        "legs_hidden": ~pose.detected | unseen,
        "models_disagree": apart > config.max_model_disagreement_deg,
    }


def skier_legs(
    landmarks: np.ndarray, image_xy: np.ndarray, camera_side: str
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Positions of the skier's own left and right hip, knee and ankle per frame, taken from
    `landmarks` (image or world) with sides decided by where the hips are in the image."""
    keep = labels_match_skier(image_xy, camera_side)
    legs = []
    for own, other in (("left", "right"), ("right", "left")):
        legs.append(
            {
                joint: np.where(
                    keep[:, None], landmarks[:, INDEX[f"{own}_{joint}"]], landmarks[:, INDEX[f"{other}_{joint}"]]
                )
                for joint in _LEG
            }
        )
    return legs[0], legs[1]


def labels_match_skier(image_xy: np.ndarray, camera_side: str) -> np.ndarray:
    """Per frame, whether the model's `left_*` landmarks are the skier's own left side: the
    labelled-left hip and shoulder lie, together, on the image side of the skier's left."""
    left = image_xy[:, INDEX["left_hip"], 0] + image_xy[:, INDEX["left_shoulder"], 0]
    right = image_xy[:, INDEX["right_hip"], 0] + image_xy[:, INDEX["right_shoulder"], 0]
    # From behind the skier's left is on the image left; from the front it is on the image right.
    return left < right if camera_side == "behind" else ~(left < right)


def on_skiers_sides(pose: PoseSequence, camera_side: str) -> PoseSequence:
    """The pose with left and right traded in each frame whose labels are not the skier's own
    sides (`labels_match_skier`), in the landmarks and in the keypoint views alike.

    MediaPipe swaps the labels from frame to frame on a skier seen from behind (the piste
    clip: 28 times in 149 frames). Smoothed as they come, each leg's series would jump
    between the two legs, pulling them together; so sides are settled first.

    Args:
        pose: A pose as the pose step gives it.
        camera_side: `behind`, `front`, or `auto` to detect it (`detect_camera_side`).
    """
    side = detect_camera_side(pose) if camera_side == "auto" else camera_side
    trunk = [INDEX[f"{label}_{joint}"] for label in ("left", "right") for joint in ("hip", "shoulder")]
    traded = ~labels_match_skier(pose.image_xy, side) & ~np.isnan(pose.image_xy[:, trunk, 0]).any(axis=1)
    if not traded.any():
        return pose

    @overload
    def trade(values: np.ndarray, mirror: np.ndarray) -> np.ndarray: ...

    @overload
    def trade(values: None, mirror: np.ndarray) -> None: ...

    def trade(values: np.ndarray | None, mirror: np.ndarray) -> np.ndarray | None:
        if values is None:
            return None
        values = values.copy()
        values[traded] = values[traded][..., mirror, :] if values.ndim > 2 else values[traded][:, mirror]
        return values

    return replace(
        pose,
        image_xy=trade(pose.image_xy, _MIRRORED),
        world_xyz=trade(pose.world_xyz, _MIRRORED),
        visibility=trade(pose.visibility, _MIRRORED),
        keypoint_views=trade(pose.keypoint_views, _MIRRORED_SHARED),
        mediapipe_shared=trade(pose.mediapipe_shared, _MIRRORED_SHARED),
    )


_MIRRORED = np.array(mirrored(LANDMARK_NAMES))
_MIRRORED_SHARED = np.array(mirrored(SHARED))


def centre_of_mass(landmarks: np.ndarray, trunk_weight: float) -> np.ndarray:
    """A centre-of-mass proxy: the trunk centre (hips and shoulders) and the knees, weighted."""

    def middle(name: str) -> np.ndarray:
        return (landmarks[:, INDEX[f"left_{name}"]] + landmarks[:, INDEX[f"right_{name}"]]) / 2

    trunk = (middle("hip") + middle("shoulder")) / 2
    return trunk_weight * trunk + (1 - trunk_weight) * middle("knee")
