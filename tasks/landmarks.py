"""The 33 MediaPipe pose landmarks and the bones drawn between them."""

LANDMARK_NAMES: tuple[str, ...] = (
    "nose",
    "left_eye_inner",
    "left_eye",
    "left_eye_outer",
    "right_eye_inner",
    "right_eye",
    "right_eye_outer",
    "left_ear",
    "right_ear",
    "mouth_left",
    "mouth_right",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_pinky",
    "right_pinky",
    "left_index",
    "right_index",
    "left_thumb",
    "right_thumb",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
    "left_heel",
    "right_heel",
    "left_foot_index",
    "right_foot_index",
)
LANDMARK_COUNT = len(LANDMARK_NAMES)
INDEX = {name: i for i, name in enumerate(LANDMARK_NAMES)}


def mirrored(names: tuple[str, ...]) -> list[int]:
    """For each name in `names`, the position of its twin with left and right traded."""
    return [names.index(name.replace("left", "@").replace("right", "left").replace("@", "right")) for name in names]


def _bones(*pairs: str) -> tuple[tuple[int, int], ...]:
    return tuple((INDEX[a], INDEX[b]) for a, b in (pair.split("-") for pair in pairs))


# Left and right as the landmarks are labelled (the skier's own sides once smoothed, see
# `tasks.frontal.on_skiers_sides`); the overlay colours them by the skier's own sides.
LEFT_BONES = _bones(
    "left_shoulder-left_elbow",
    "left_elbow-left_wrist",
    "left_shoulder-left_hip",
    "left_hip-left_knee",
    "left_knee-left_ankle",
    "left_ankle-left_heel",
    "left_heel-left_foot_index",
    "left_ankle-left_foot_index",
)
RIGHT_BONES = _bones(
    "right_shoulder-right_elbow",
    "right_elbow-right_wrist",
    "right_shoulder-right_hip",
    "right_hip-right_knee",
    "right_knee-right_ankle",
    "right_ankle-right_heel",
    "right_heel-right_foot_index",
    "right_ankle-right_foot_index",
)
CENTRE_BONES = _bones("left_shoulder-right_shoulder", "left_hip-right_hip")
# Joints drawn as dots: the body, not the face and fingers.
BODY_JOINTS = tuple(sorted({i for bone in LEFT_BONES + RIGHT_BONES for i in bone}))
