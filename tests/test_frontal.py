from __future__ import annotations

import numpy as np
import pytest

from tasks.config import load_config
from tasks.frontal import detect_camera_side, frontal_angles
from tasks.landmarks import INDEX
from tasks.pose import PoseSequence

CONFIG = load_config().metrics


def skier(
    lean_deg: float, left_shin_deg: float, right_shin_deg: float, frames: int = 4, camera: str = "behind"
) -> PoseSequence:
    """Landmarks of a skier whose centre of mass leans `lean_deg` over their feet towards their
    own right, with shins tilted as given, filmed from `camera` and labelled the way MediaPipe
    does: as for a person facing the camera."""

    def towards(deg: float, length: float) -> np.ndarray:  # from behind, the skier's right is image right
        return length * np.array([np.sin(np.radians(deg)), -np.cos(np.radians(deg))])

    own = {"left": {"ankle": np.array([480.0, 800.0])}, "right": {"ankle": np.array([520.0, 800.0])}}
    for side, shin in (("left", left_shin_deg), ("right", right_shin_deg)):
        own[side]["knee"] = own[side]["ankle"] + towards(shin, 150)
    feet = (own["left"]["ankle"] + own["right"]["ankle"]) / 2
    knees = (own["left"]["knee"] + own["right"]["knee"]) / 2
    weight = CONFIG.com_trunk_weight
    trunk = (feet + towards(lean_deg, 400) - (1 - weight) * knees) / weight
    for side, offset in (("left", -1.0), ("right", 1.0)):
        own[side]["hip"] = trunk + [25 * offset, 150]
        own[side]["shoulder"] = trunk + [35 * offset, -150]

    mirror = (lambda p: p) if camera == "behind" else (lambda p: np.array([1000 - p[0], p[1]]))
    label = {"left": "right", "right": "left"} if camera == "behind" else {"left": "left", "right": "right"}
    pose = PoseSequence.empty(np.arange(frames) / 30)
    for side, joints in own.items():
        for joint, position in joints.items():
            index = INDEX[f"{label[side]}_{joint}"]
            pose.image_xy[:, index] = mirror(position)
            pose.world_xyz[:, index] = [*(mirror(position) - 500) / 1000, 0.0]
    for name, depth in (("nose", -0.1 if camera == "front" else 0.05), ("left_ear", 0.0), ("right_ear", 0.0)):
        pose.world_xyz[:, INDEX[name], 2] = depth
    pose.visibility[:] = 0.9
    pose.detected[:] = True
    return pose


@pytest.mark.parametrize("camera", ["behind", "front"])
@pytest.mark.parametrize(("lean", "left", "right"), [(20, 30, 30), (-25, -35, -20), (0, 5, -5)])
def test_angles_are_on_the_skiers_own_sides_whatever_the_camera_side(camera, lean, left, right):
    found = frontal_angles(skier(lean, left, right, camera=camera), CONFIG)
    assert found.camera_side == camera
    np.testing.assert_allclose(found.inclination_deg, lean, atol=0.5)
    np.testing.assert_allclose(found.left_edge_deg, left, atol=0.5)
    np.testing.assert_allclose(found.right_edge_deg, right, atol=0.5)
    np.testing.assert_allclose(found.edge_difference_deg, left - right, atol=0.5)


def flip_labels(pose: PoseSequence, frames: slice) -> PoseSequence:
    """The pose with left and right labels traded in `frames`, as MediaPipe does from behind."""
    for joint in ("shoulder", "hip", "knee", "ankle"):
        left, right = INDEX[f"left_{joint}"], INDEX[f"right_{joint}"]
        for array in (pose.image_xy, pose.world_xyz):
            array[frames, [left, right]] = array[frames, [right, left]]
    return pose


def test_label_flips_do_not_swap_the_legs():
    found = frontal_angles(flip_labels(skier(20, 35, 25, frames=6), slice(None, None, 2)), CONFIG)
    np.testing.assert_allclose(found.left_edge_deg, 35, atol=0.5)
    np.testing.assert_allclose(found.right_edge_deg, 25, atol=0.5)


@pytest.mark.parametrize("camera", ["behind", "front"])
def test_the_skiers_sides_are_settled_before_smoothing(camera):
    """Labels flipping every other frame must not pull the smoothed legs together."""
    from tasks.frontal import on_skiers_sides
    from tasks.smoothing import smooth_pose

    pose = flip_labels(skier(20, 35, 25, frames=30, camera=camera), slice(None, None, 2))
    sided = on_skiers_sides(pose, "auto")
    straight = skier(20, 35, 25, frames=30, camera=camera)
    own = {"behind": {"left": "right", "right": "left"}, "front": {"left": "left", "right": "right"}}[camera]
    for side in ("left", "right"):
        # The skier's own `side` knee, wherever the labels had put it.
        np.testing.assert_allclose(
            sided.image_xy[:, INDEX[f"{side}_knee"]], straight.image_xy[:, INDEX[f"{own[side]}_knee"]]
        )
    for array in (pose.image_xy, pose.world_xyz):  # the joints the skier was drawn without
        array[np.isnan(array)] = 0.0
    found = frontal_angles(smooth_pose(pose, load_config().smoothing), CONFIG)
    np.testing.assert_allclose(found.left_edge_deg, 35, atol=0.5)
    np.testing.assert_allclose(found.right_edge_deg, 25, atol=0.5)


def test_the_camera_side_can_be_set():
    config = load_config(overrides={"metrics": {"camera_side": "front"}}).metrics
    assert frontal_angles(skier(20, 30, 30, camera="behind"), config).camera_side == "front"
    assert detect_camera_side(skier(0, 0, 0, camera="front")) == "front"


def test_impossible_leans_are_dropped():
    found = frontal_angles(skier(80, 30, 30), CONFIG)
    assert np.isnan(found.inclination_deg).all() and np.isnan(found.left_edge_deg).all()


def test_frames_with_a_hidden_leg_get_no_angles():
    pose = skier(20, 30, 30)
    pose.visibility[1, INDEX["left_knee"]] = 0.05
    found = frontal_angles(pose, CONFIG)
    assert np.isnan(found.left_edge_deg[1]) and np.isnan(found.inclination_deg[1])
    assert not np.isnan(found.left_edge_deg[[0, 2, 3]]).any()


def test_parallel_shins_have_no_angle_between_them():
    found = frontal_angles(skier(20, 30, 30), CONFIG)
    np.testing.assert_allclose(found.shin_angle_deg, 0, atol=0.5)
