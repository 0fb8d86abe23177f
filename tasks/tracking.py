"""Person detection and tracking, and the choice of the skier the clip is about."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tasks.config import TrackingConfig
from tasks.progress import ProgressCallback
from tasks.video import VideoInfo, iter_frames

_COCO_PERSON = 0


@dataclass(frozen=True)
class SkierHint:
    """A user's pointer to the skier: a click (`point`) or a `box` at `time_s`, in frame pixels."""

    time_s: float
    point: tuple[float, float] | None = None
    box: tuple[float, float, float, float] | None = None

    def __post_init__(self) -> None:
        if (self.point is None) == (self.box is None):
            raise ValueError("A skier hint needs exactly one of a point or a box.")


@dataclass(frozen=True)
class Detections:
    """Tracked person boxes of a clip: one row per (frame, track) pair.

    Boxes are `x1, y1, x2, y2` in pixels of the upright, full-size frame; frames are
    indexed from the start of the trim window.
    """

    frame: np.ndarray
    track_id: np.ndarray
    boxes: np.ndarray
    confidence: np.ndarray
    frame_count: int
    fps: float
    width: int
    height: int

    def track_ids(self) -> list[int]:
        return sorted({int(t) for t in self.track_id})


@dataclass(frozen=True)
class SkierTrack:
    """The target skier's box in every frame (NaN where not seen) and how it was chosen."""

    boxes: np.ndarray
    confidence: np.ndarray
    track_ids: tuple[int, ...]
    selection: str
    candidates: int
    warnings: tuple[str, ...] = field(default=())

    @property
    def present(self) -> np.ndarray:
        return ~np.isnan(self.boxes[:, 0])

    @property
    def tracked_fraction(self) -> float:
        return float(self.present.mean()) if len(self.boxes) else 0.0

    def summary(self) -> dict:
        heights = self.boxes[self.present, 3] - self.boxes[self.present, 1]
        return {
            "track_ids": list(self.track_ids),
            "selection": self.selection,
            "people_tracked": self.candidates,
            "frames_tracked": int(self.present.sum()),
            "frame_count": len(self.boxes),
            "tracked_fraction": round(self.tracked_fraction, 4),
            "median_box_height_px": round(float(np.median(heights)), 1) if len(heights) else None,
        }


def detect_and_track(
    info: VideoInfo,
    config: TrackingConfig,
    model_path: Path,
    device: str,
    on_progress: ProgressCallback | None = None,
) -> Detections:
    """Run the YOLO person detector with the BoT-SORT tracker over the trim window, frame by frame.

    Args:
        info: The probed clip.
        config: Detector size, confidence and tracker file.
        model_path: An Ultralytics detection checkpoint with the COCO person class.
        device: `cpu`, `cuda` or `mps`.
        on_progress: Called with the number of frames done.

    Returns:
        Every tracked person box, in full-frame pixels.
    """
    model = _load_detector(model_path)
    rows: list[tuple[int, int, float, float, float, float, float]] = []
    for frame in iter_frames(info, max_side=config.decode_max_side):
        result = model.track(
            frame.image,
            persist=True,
            tracker=str(config.tracker_path),
            imgsz=config.imgsz,
            conf=config.confidence,
            classes=[_COCO_PERSON],
            device=device,
            verbose=False,
        )[0]
        boxes = result.boxes
        if boxes.id is not None:
            scale = info.width / frame.image.shape[1]
            xyxy = boxes.xyxy.cpu().numpy() * scale
            for track_id, box, conf in zip(boxes.id.int().tolist(), xyxy, boxes.conf.tolist()):
                rows.append((frame.index, track_id, *box.tolist(), conf))
        if on_progress:
            on_progress(frame.index + 1)
    table = np.asarray(rows, dtype=np.float64).reshape(-1, 7)
    return Detections(
        frame=table[:, 0].astype(np.int64),
        track_id=table[:, 1].astype(np.int64),
        boxes=table[:, 2:6],
        confidence=table[:, 6],
        frame_count=info.frames_in_trim,
        fps=info.fps,
        width=info.width,
        height=info.height,
    )


def select_skier(
    detections: Detections,
    config: TrackingConfig,
    hint: SkierHint | None = None,
    trim_start_s: float = 0.0,
) -> SkierTrack:
    """Choose the skier the clip is about and join the pieces of their track.

    Without a hint, each track scores the sum over its frames of box height (relative to the
    frame) times confidence, discounted towards the frame edges: the skier a camera follows is
    large, central and present throughout, while passers-by are small or brief. Tracks that
    break (occlusion, leaving the frame) are joined when a new one starts close in time and
    place to where the skier was last seen and never overlaps the skier in time.

    Args:
        detections: All tracked person boxes.
        config: Stitching limits and the hint tolerance.
        hint: Overrides the automatic choice with the track at a click or box.
        trim_start_s: Start of the trim window, to place the hint's time.

    Returns:
        The skier's per-frame boxes. Empty (all NaN) when nobody was tracked.
    """
    warnings: list[str] = []
    ids = detections.track_ids()
    empty = np.full((detections.frame_count, 4), np.nan)
    if not ids:
        return SkierTrack(empty, np.zeros(detections.frame_count), (), "none", 0, ("No person was detected.",))

    primary, selection = None, "automatic"
    if hint is not None:
        primary = _track_at_hint(detections, hint, trim_start_s, config.hint_tolerance_s)
        if primary is None:
            warnings.append("The skier hint matched no tracked person; the skier was chosen automatically.")
        else:
            selection = "hint"
    if primary is None:
        scores = _track_scores(detections)
        primary = max(scores, key=scores.get)

    chosen = _stitch(detections, primary, config)
    boxes = empty.copy()
    confidence = np.zeros(detections.frame_count)
    rows = np.isin(detections.track_id, chosen)
    boxes[detections.frame[rows]] = detections.boxes[rows]
    confidence[detections.frame[rows]] = detections.confidence[rows]
    return SkierTrack(boxes, confidence, tuple(chosen), selection, len(ids), tuple(warnings))


def _load_detector(model_path: Path):
    # Ultralytics otherwise probes the network, may pip-install packages and writes settings
    # to the home folder; all three must stay off on workers without internet.
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_AUTOINSTALL", "False")
    os.environ.setdefault("YOLO_VERBOSE", "False")
    from ultralytics import YOLO

    return YOLO(str(model_path), task="detect")


def _track_scores(detections: Detections) -> dict[int, float]:
    boxes = detections.boxes
    height = (boxes[:, 3] - boxes[:, 1]) / detections.height
    centre = np.column_stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2])
    half_diagonal = np.hypot(detections.width, detections.height) / 2
    offset = np.hypot(centre[:, 0] - detections.width / 2, centre[:, 1] - detections.height / 2) / half_diagonal
    row_scores = detections.confidence * height * (1.0 - 0.5 * np.clip(offset, 0, 1))
    return {
        track_id: float(row_scores[detections.track_id == track_id].sum())
        for track_id in detections.track_ids()
    }


def _track_at_hint(
    detections: Detections, hint: SkierHint, trim_start_s: float, tolerance_s: float
) -> int | None:
    frame = round((hint.time_s - trim_start_s) * detections.fps)
    near = np.abs(detections.frame - frame) <= max(0, round(tolerance_s * detections.fps))
    if not near.any():
        return None
    boxes = detections.boxes[near]
    time_distance = np.abs(detections.frame[near] - frame)
    if hint.point is not None:
        x, y = hint.point
        matches = (boxes[:, 0] <= x) & (x <= boxes[:, 2]) & (boxes[:, 1] <= y) & (y <= boxes[:, 3])
        # Among boxes holding the click, the smallest is the most specific.
        preference = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    else:
        overlap = box_iou(np.asarray(hint.box, dtype=np.float64), boxes)
        matches = overlap > 0
        preference = -overlap
    if not matches.any():
        return None
    best = next(i for i in np.lexsort((preference, time_distance)) if matches[i])
    return int(detections.track_id[near][best])


def box_iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Intersection over union of one `x1, y1, x2, y2` box with each row of `boxes`."""
    top_left = np.maximum(box[:2], boxes[:, :2])
    bottom_right = np.minimum(box[2:], boxes[:, 2:])
    intersection = np.prod(np.clip(bottom_right - top_left, 0, None), axis=1)
    area = np.prod(box[2:] - box[:2])
    areas = np.prod(boxes[:, 2:] - boxes[:, :2], axis=1)
    return intersection / np.maximum(area + areas - intersection, 1e-9)


def _stitch(detections: Detections, primary: int, config: TrackingConfig) -> list[int]:
    """Join tracks that continue the primary one across breaks, until no more fit."""
    max_gap = max(1, round(config.stitch_max_gap_s * detections.fps))
    skier: dict[int, np.ndarray] = {}
    chosen: list[int] = []

    def take(track_id: int) -> None:
        rows = detections.track_id == track_id
        skier.update(zip(detections.frame[rows].tolist(), detections.boxes[rows]))
        chosen.append(track_id)

    take(primary)
    changed = True
    while changed:
        changed = False
        for track_id in detections.track_ids():
            rows = np.flatnonzero(detections.track_id == track_id)
            frames = detections.frame[rows]
            if track_id in chosen or any(f in skier for f in frames.tolist()):
                continue
            first, last = rows[np.argmin(frames)], rows[np.argmax(frames)]
            if _continues(skier, detections.frame[first], detections.boxes[first], -1, max_gap, config.stitch_max_jump) or _continues(
                skier, detections.frame[last], detections.boxes[last], 1, max_gap, config.stitch_max_jump
            ):
                take(track_id)
                changed = True
    return sorted(chosen)


def _continues(
    skier: dict[int, np.ndarray], frame: int, box: np.ndarray, direction: int, max_gap: int, max_jump: float
) -> bool:
    """Whether the skier was seen within `max_gap` frames of `frame` (looking in `direction`),
    at most `max_jump` box heights away from `box`."""
    for step in range(1, max_gap + 1):
        other = skier.get(int(frame) + direction * step)
        if other is not None:
            return _centre_jump(box, other) <= max_jump
    return False


def _centre_jump(a: np.ndarray, b: np.ndarray) -> float:
    """Distance between box centres, in heights of the taller box."""
    distance = np.hypot((a[0] + a[2] - b[0] - b[2]) / 2, (a[1] + a[3] - b[1] - b[3]) / 2)
    return float(distance / max(a[3] - a[1], b[3] - b[1], 1e-9))
