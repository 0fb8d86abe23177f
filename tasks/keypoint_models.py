"""The second keypoint model (a YOLO pose checkpoint) as a function of a batch of crops.

On the CPU it runs in ONNX Runtime, from an ONNX file exported from the checkpoint; on a GPU,
and where `pose.keypoint_onnx` is off, in PyTorch through Ultralytics. Both take the person
whose box centre is nearest the crop centre (crops are centred on the tracked skier).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from tasks.config import AnalysisConfig
from tasks.keypoints import COCO_COLUMNS, SHARED, KeypointModel
from tasks.models import keypoints_onnx, require_model
from tasks.slots import run_cores
from tasks.video import cores_but_one
from tasks.yolo import load_yolo

# Ultralytics' prediction defaults, which the ONNX Runtime path reproduces: people at least
# this confident, overlapping boxes merged above this IoU, and the grey of the padding.
_MIN_BOX_CONFIDENCE = 0.25
_NMS_IOU = 0.7
_PAD_GREY = 114


def second_opinion(config: AnalysisConfig, device: str) -> KeypointModel | None:
    """The configured second keypoint model, or None when `pose.keypoint_confidence` is 0."""
    if config.pose.keypoint_confidence <= 0:
        return None
    checkpoint = require_model(config.models, "keypoints")
    if device == "cpu" and config.pose.keypoint_onnx:
        # All of the run's cores, not all but one: MediaPipe's workers finish long before the
        # keypoint model on a CPU, and its points do not depend on the thread count
        # (`tests/test_keypoint_models.py`).
        return load_onnx_keypoint_model(keypoints_onnx(checkpoint), config.pose.keypoint_imgsz, run_cores())
    return load_keypoint_model(checkpoint, config.pose.keypoint_imgsz, device)


def load_keypoint_model(model_path: Path, imgsz: int, device: str) -> KeypointModel:
    """The YOLO pose checkpoint at `model_path`, run by Ultralytics in PyTorch on `device`."""
    predict = load_yolo(model_path, "pose", device, cores_but_one(), imgsz=imgsz)

    def keypoints(crops: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        xy = np.full((len(crops), len(SHARED), 2), np.nan)
        confidence = np.zeros((len(crops), len(SHARED)))
        results = predict([np.ascontiguousarray(crop[..., ::-1]) for crop in crops])
        for i, (crop, result) in enumerate(zip(crops, results)):
            if result.keypoints is None or not len(result.boxes):
                continue
            size = np.array([crop.shape[1], crop.shape[0]], dtype=np.float64)
            person = _nearest_centre(result.boxes.xywh.cpu().numpy()[:, :2] / size)
            xy[i] = result.keypoints.xy.cpu().numpy()[person, COCO_COLUMNS] / size
            confidence[i] = result.keypoints.conf.cpu().numpy()[person, COCO_COLUMNS]
        return xy, confidence

    return keypoints


def load_onnx_keypoint_model(model_path: Path, imgsz: int, threads: int) -> KeypointModel:
    """The exported YOLO pose model at `model_path`, run by ONNX Runtime on the CPU.

    Ultralytics' pre- and post-processing (letterbox, confidence threshold, non-maximum
    suppression, scaling back and clipping to the crop) is reproduced here, so the points are
    PyTorch's to a fraction of a pixel (`tests/test_keypoint_models.py`), in a third less
    time a crop on one core: Ultralytics' own ONNX path was slower than PyTorch (see
    "Repeatability" in the README).

    With several `threads`, a batch is split into that many parts, each run on one thread,
    which made the pose step faster than one run on several threads (see "Repeatability" in
    the README); the outputs are the same (`tests/test_keypoint_models.py`).
    """
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    pool = ThreadPoolExecutor(threads, thread_name_prefix="keypoint-model") if threads > 1 else None

    def run(batch: np.ndarray) -> np.ndarray:
        if pool is None or len(batch) < 2:
            return session.run(None, {input_name: batch})[0]
        parts = np.array_split(batch, min(threads, len(batch)))
        return np.concatenate(list(pool.map(lambda part: session.run(None, {input_name: part})[0], parts)))

    def keypoints(crops: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        xy = np.full((len(crops), len(SHARED), 2), np.nan)
        confidence = np.zeros((len(crops), len(SHARED)))
        if not crops:
            return xy, confidence
        batch, scales, pads = zip(*(_letterbox(crop, imgsz) for crop in crops))
        output = run(np.stack(batch))
        for i, (crop, candidates) in enumerate(zip(crops, output)):
            people = _people(candidates.T)
            if not len(people):
                continue
            size = np.array([crop.shape[1], crop.shape[0]], dtype=np.float64)
            boxes = np.clip((people[:, :4].reshape(-1, 2, 2) - pads[i]) / scales[i], 0, size)
            person = _nearest_centre(boxes.mean(axis=1) / size)
            points = people[person, 5:].reshape(-1, 3)[COCO_COLUMNS]
            xy[i] = np.clip((points[:, :2] - pads[i]) / scales[i], 0, size) / size
            confidence[i] = points[:, 2]
        return xy, confidence

    return keypoints


def _letterbox(crop: np.ndarray, imgsz: int) -> tuple[np.ndarray, float, np.ndarray]:
    """An RGB crop as the model's `(3, imgsz, imgsz)` float input, scaled to fit and padded
    evenly with grey as Ultralytics does; with the scale and the `(x, y)` padding."""
    height, width = crop.shape[:2]
    scale = min(imgsz / height, imgsz / width)
    new_width, new_height = max(round(width * scale), 1), max(round(height * scale), 1)
    image = crop if (new_width, new_height) == (width, height) else cv2.resize(crop, (new_width, new_height))
    left, top = round((imgsz - new_width) / 2 - 0.1), round((imgsz - new_height) / 2 - 0.1)
    padded = cv2.copyMakeBorder(
        image,
        top,
        imgsz - new_height - top,
        left,
        imgsz - new_width - left,
        cv2.BORDER_CONSTANT,
        value=(_PAD_GREY,) * 3,
    )
    return padded.transpose(2, 0, 1).astype(np.float32) / 255, scale, np.array([left, top], dtype=np.float64)


def _people(candidates: np.ndarray) -> np.ndarray:
    """The model's confident, non-overlapping people, most confident first.

    Args:
        candidates: `(anchors, 5 + 3 x keypoints)` rows of box centre x, y, width, height,
            confidence, then x, y, confidence per keypoint, in input pixels.

    Returns:
        The kept rows, with each box as corners `x1, y1, x2, y2` instead.
    """
    confident = candidates[candidates[:, 4] > _MIN_BOX_CONFIDENCE].astype(np.float64)
    corners = np.concatenate([confident[:, :2] - confident[:, 2:4] / 2, confident[:, :2] + confident[:, 2:4] / 2], 1)
    boxes = [(x1, y1, x2 - x1, y2 - y1) for x1, y1, x2, y2 in corners]
    kept = np.asarray(cv2.dnn.NMSBoxes(boxes, confident[:, 4].tolist(), 0.0, _NMS_IOU), dtype=int).reshape(-1)
    return np.concatenate([corners[kept], confident[kept, 4:]], axis=1)


def _nearest_centre(centres: np.ndarray) -> int:
    """The index of the box centre (crop units) nearest the crop centre."""
    return int(np.argmin(np.linalg.norm(centres - 0.5, axis=1)))
