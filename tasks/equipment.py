"""What the skier stands on: the detector's ski and board boxes under them, and their stance.

Poser scores technique on two skis. The COCO detector that finds people also knows skis,
snowboards and surfboards; in each detector frame the board or skis under the skier's feet
cast one vote, and a clip whose votes clearly say "board" is not scored. In deep snow the
board is buried and rarely found, so the pose speaks too: a rider on one board stands
sideways to the direction of travel, feet one behind the other, so seen from behind or in
front both the hips and the ankles line up instead of standing side by side.
"""

from __future__ import annotations

import numpy as np

from tasks.landmarks import INDEX

# COCO class ids of the detector's equipment classes.
EQUIPMENT_CLASSES = {30: "skis", 31: "snowboard", 37: "surfboard"}
BOARDS = {"snowboard": "a snowboarder", "surfboard": "a surfer"}
# The feet's part of a person box: its lower part, reaching a little below it, where the
# skis or board are.
_FEET_FROM, _FEET_BELOW = 0.6, 0.15
# Share of an equipment box that must lie in that part to count as under the feet.
_MIN_SHARE = 0.3


def equipment_votes(equipment: np.ndarray, skier_boxes: np.ndarray) -> dict[str, int]:
    """Count the frames in which each kind of equipment is under the skier's feet.

    Each frame with an equipment box under the feet votes once, for its most confident box.

    Args:
        equipment: Rows of `frame, coco_class, x1, y1, x2, y2, confidence`.
        skier_boxes: The skier's box per frame, NaN where not seen.

    Returns:
        Votes per kind: `skis`, `snowboard` and `surfboard`.
    """
    votes = dict.fromkeys(EQUIPMENT_CLASSES.values(), 0)
    best: dict[int, tuple[float, str]] = {}
    for frame, coco_class, x1, y1, x2, y2, confidence in equipment:
        frame = int(frame)
        if frame >= len(skier_boxes) or np.isnan(skier_boxes[frame, 0]):
            continue
        if feet_share(np.array([x1, y1, x2, y2]), skier_boxes[frame]) < _MIN_SHARE:
            continue
        kind = EQUIPMENT_CLASSES[int(coco_class)]
        if frame not in best or confidence > best[frame][0]:
            best[frame] = (float(confidence), kind)
    for _, kind in best.values():
        votes[kind] += 1
    return votes


def feet_share(item: np.ndarray, person: np.ndarray) -> float:
    """Share of the `item` box's area inside the feet's part of the `person` box."""
    height = person[3] - person[1]
    feet = np.array([person[0], person[1] + _FEET_FROM * height, person[2], person[3] + _FEET_BELOW * height])
    size = np.clip(np.minimum(item[2:], feet[2:]) - np.maximum(item[:2], feet[:2]), 0, None)
    area = max(float(np.prod(item[2:] - item[:2])), 1e-9)
    return float(np.prod(size)) / area


def board_instead_of_skis(votes: dict[str, int], frames: int, min_fraction: float, over_skis: float) -> str | None:
    """The board the skier rides when the votes clearly say so, else None.

    Args:
        votes: Votes per kind, as `equipment_votes` counts them.
        frames: Detector frames in which the skier was seen.
        min_fraction: The board needs votes in at least this share of those frames...
        over_skis: ... and at least this many times the votes for skis.

    Returns:
        `snowboard` or `surfboard`, or None when the skier may be on skis.
    """
    board = max(BOARDS, key=lambda kind: votes.get(kind, 0))
    count = votes.get(board, 0)
    if count == 0 or count < min_fraction * frames or count < over_skis * votes.get("skis", 0):
        return None
    return board


def board_message(board: str) -> str:
    """The user's explanation of why a clip of someone on a `board` gets no score."""
    return f"This looks like {BOARDS[board]}, not a skier on two skis: Poser scores ski technique only."


def sideways_share(image_xy: np.ndarray, max_ratio: float) -> float:
    """Share of the frames with a pose in which the rider stands sideways to the camera: the
    hips and the ankles each less than `max_ratio` torso lengths apart across the image.

    Args:
        image_xy: `(frames, 33, 2)` image landmarks, NaN without a pose.
        max_ratio: Lateral gap, in torso lengths (mid-shoulders to mid-hips), below which a
            pair of joints counts as lined up.
    """

    def point(name: str) -> np.ndarray:
        return image_xy[:, INDEX[name]]

    def middle(joint: str) -> np.ndarray:
        return (point(f"left_{joint}") + point(f"right_{joint}")) / 2

    torso = np.linalg.norm(middle("shoulder") - middle("hip"), axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        gaps = [
            np.abs(point(f"left_{joint}")[:, 0] - point(f"right_{joint}")[:, 0]) / torso for joint in ("hip", "ankle")
        ]
    posed = ~np.isnan(gaps[0]) & ~np.isnan(gaps[1])
    if not posed.any():
        return 0.0
    return float(np.mean((gaps[0][posed] < max_ratio) & (gaps[1][posed] < max_ratio)))


def sideways_message(share: float) -> str:
    """The user's explanation of why a clip of a rider standing sideways gets no score."""
    return (
        f"The rider stands sideways with the feet one behind the other in {share:.0%} of the frames, as on a "
        "snowboard (or the camera is at the skier's side): Poser scores skiers on two skis, filmed from "
        "behind or in front."
    )
