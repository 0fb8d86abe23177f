"""A second opinion on the body: a YOLO pose model on the same crops as MediaPipe.

Two keypoint models err differently, so averaging them steadies the leg angles that the edge
scores are made of (see "Repeatability" in the README). Only the points both models have and
the metrics use are averaged: shoulders, hips, knees and ankles, in image coordinates. The
world landmarks stay MediaPipe's own.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from tasks.config import AnalysisConfig
from tasks.landmarks import INDEX
from tasks.models import require_model
from tasks.video import cores_but_one
from tasks.yolo import load_yolo

# COCO keypoint number of each shared point, by MediaPipe landmark name.
_COCO = {
    "left_shoulder": 5, "right_shoulder": 6, "left_hip": 11, "right_hip": 12,
    "left_knee": 13, "right_knee": 14, "left_ankle": 15, "right_ankle": 16,
}
SHARED = tuple(_COCO)
_LANDMARKS = np.array([INDEX[name] for name in SHARED])
# The same points with left and right traded.
_SWAPPED = np.array([SHARED.index(name.replace("left", "@").replace("right", "left").replace("@", "right")) for name in SHARED])

# Crops in, then per crop the shared points `(len(SHARED), 2)` in crop units (0-1) and their
# confidences; NaN and 0 where nobody was found.
KeypointModel = Callable[[list[np.ndarray]], tuple[np.ndarray, np.ndarray]]


def load_keypoint_model(model_path: Path, imgsz: int, device: str) -> KeypointModel:
    """The YOLO pose checkpoint at `model_path` as a function of a batch of RGB crops.

    In each crop the person whose box centre is nearest the crop centre is taken: crops are
    centred on the tracked skier.
    """
    predict = load_yolo(model_path, "pose", device, cores_but_one(), imgsz=imgsz)
    columns = [_COCO[name] for name in SHARED]

    def keypoints(crops: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        xy = np.full((len(crops), len(SHARED), 2), np.nan)
        confidence = np.zeros((len(crops), len(SHARED)))
        results = predict([np.ascontiguousarray(crop[..., ::-1]) for crop in crops])
        for i, (crop, result) in enumerate(zip(crops, results)):
            if result.keypoints is None or not len(result.boxes):
                continue
            size = np.array([crop.shape[1], crop.shape[0]], dtype=np.float64)
            centres = result.boxes.xywh.cpu().numpy()[:, :2] / size
            person = int(np.argmin(np.linalg.norm(centres - 0.5, axis=1)))
            xy[i] = result.keypoints.xy.cpu().numpy()[person, columns] / size
            confidence[i] = result.keypoints.conf.cpu().numpy()[person, columns]
        return xy, confidence

    return keypoints


def blend_keypoints(
    image_xy: np.ndarray, keypoints_xy: np.ndarray, confidence: np.ndarray, min_confidence: float
) -> np.ndarray:
    """MediaPipe's image landmarks with the shared points averaged with the second model's.

    Both models may label a skier seen from behind left for right, each in its own frames,
    so per frame the second model's sides are paired with MediaPipe's the way that puts the
    points closer together.

    Args:
        image_xy: `(frames, 33, 2)` MediaPipe landmarks in frame pixels, NaN without a pose.
        keypoints_xy: `(frames, len(SHARED), 2)` the second model's points in frame pixels.
        confidence: `(frames, len(SHARED))` the second model's confidence per point.
        min_confidence: Points below this keep MediaPipe's position alone.

    Returns:
        A new landmark array.
    """
    mediapipe = image_xy[:, _LANDMARKS]
    swapped, swapped_confidence = keypoints_xy[:, _SWAPPED], confidence[:, _SWAPPED]
    straight_distance = np.nansum(np.linalg.norm(keypoints_xy - mediapipe, axis=2), axis=1)
    swapped_distance = np.nansum(np.linalg.norm(swapped - mediapipe, axis=2), axis=1)
    swap = swapped_distance < straight_distance
    paired = np.where(swap[:, None, None], swapped, keypoints_xy)
    paired_confidence = np.where(swap[:, None], swapped_confidence, confidence)
    usable = (paired_confidence >= min_confidence) & ~np.isnan(paired[..., 0]) & ~np.isnan(mediapipe[..., 0])
    blended = image_xy.copy()
    blended[:, _LANDMARKS] = np.where(usable[..., None], (mediapipe + paired) / 2, mediapipe)
    return blended


def second_opinion(config: AnalysisConfig, device: str) -> KeypointModel | None:
    """The configured second keypoint model, or None when `pose.keypoint_confidence` is 0."""
    if config.pose.keypoint_confidence <= 0:
        return None
    return load_keypoint_model(require_model(config.models, "keypoints"), config.pose.keypoint_imgsz, device)
