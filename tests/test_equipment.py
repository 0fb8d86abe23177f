"""A rider on one board stands sideways: the stance check on constructed and real poses."""

from __future__ import annotations

import numpy as np
import pytest

from tasks.config import load_config
from tasks.equipment import sideways_message, sideways_share
from tasks.landmarks import INDEX, LANDMARK_COUNT

CONFIG = load_config().tracking


def rider(hip_gap: float, ankle_gap: float, frames: int = 40, seed: int = 0) -> np.ndarray:
    """Image landmarks of an upright rider with a torso 100 px long whose hips and ankles lie
    `hip_gap` and `ankle_gap` torso lengths apart across the image, wobbling a little."""
    rng = np.random.default_rng(seed)
    image = np.full((frames, LANDMARK_COUNT, 2), np.nan)
    centre = 500 + 5 * rng.standard_normal(frames)
    for side, sign in (("left", -1), ("right", 1)):
        for joint, y, gap in (("shoulder", 200, 0.4), ("hip", 300, hip_gap), ("ankle", 500, ankle_gap)):
            wobble = 0.03 * 100 * rng.standard_normal(frames)
            image[:, INDEX[f"{side}_{joint}"]] = np.column_stack(
                [centre + sign * 50 * gap + wobble, np.full(frames, y)]
            )
    return image


@pytest.mark.parametrize(
    ("hip_gap", "ankle_gap", "sideways", "who"),
    [
        (0.35, 0.3, False, "a skier from behind: hips and feet side by side"),
        (0.35, 0.05, False, "a skier with the feet together"),
        (0.05, 0.4, False, "hips turned but the feet apart: still on two skis"),
        (0.05, 0.05, True, "a snowboarder from behind: hips and feet one behind the other"),
    ],
)
def test_a_sideways_stance_needs_both_hips_and_feet_lined_up(hip_gap, ankle_gap, sideways, who):
    share = sideways_share(rider(hip_gap, ankle_gap), CONFIG.sideways_max_ratio)
    assert (share >= CONFIG.sideways_min_fraction) is sideways, who


def test_frames_without_a_pose_do_not_count():
    image = np.concatenate([rider(0.35, 0.3, frames=30), rider(0.05, 0.05, frames=10)])
    image[:30] = np.nan
    assert sideways_share(image, CONFIG.sideways_max_ratio) >= CONFIG.sideways_min_fraction
    assert sideways_share(np.full((5, LANDMARK_COUNT, 2), np.nan), CONFIG.sideways_max_ratio) == 0.0


def test_the_message_says_why_there_is_no_score():
    message = sideways_message(0.83)
    assert "83%" in message and "snowboard" in message and "two skis" in message


@pytest.mark.slow
def test_the_piste_skier_stands_square_but_turned_sideways_would_not(piste_pose):
    """The real skier's landmarks, and the same with the hips and ankles of each frame drawn
    together across the image as a rider turned sideways on a board would show them."""
    pose, _, _ = piste_pose
    assert sideways_share(pose.image_xy, CONFIG.sideways_max_ratio) < 0.2

    turned = pose.image_xy.copy()
    for joint in ("hip", "ankle"):
        left, right = INDEX[f"left_{joint}"], INDEX[f"right_{joint}"]
        middle = (turned[:, left, 0] + turned[:, right, 0]) / 2
        gap = 0.1 * (turned[:, right, 0] - turned[:, left, 0])
        turned[:, left, 0], turned[:, right, 0] = middle - gap / 2, middle + gap / 2
    assert sideways_share(turned, CONFIG.sideways_max_ratio) >= CONFIG.sideways_min_fraction
