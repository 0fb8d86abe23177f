"""Person detection and tracking, and the choice of the skier the clip is about."""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tasks import appearance
from tasks.config import TrackingConfig
from tasks.equipment import EQUIPMENT_CLASSES, equipment_votes
from tasks.progress import ProgressCallback
from tasks.series import fill_short_gaps, runs_of
from tasks.video import VideoFrame, VideoInfo, cores_but_one, iter_frames
from tasks.yolo import load_yolo

log = logging.getLogger(__name__)

_COCO_PERSON = 0
# Track id of a detection the tracker did not (yet) assign to a track.
UNTRACKED = -1
# Two boxes overlapping this much in the same frames are taken as the same person.
_SAME_PERSON_IOU = 0.5


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
    """Person boxes of a clip: one row per detection, with its track id or `UNTRACKED`.

    Boxes are `x1, y1, x2, y2` in pixels of the upright, full-size frame; frames are
    indexed from the start of the trim window. `appearance` holds each row's clothing
    histogram (see `tasks.appearance`), when known; `equipment` the detector's ski and board
    boxes, one row each: `frame, coco_class, x1, y1, x2, y2, confidence`.
    """

    frame: np.ndarray
    track_id: np.ndarray
    boxes: np.ndarray
    confidence: np.ndarray
    frame_count: int
    fps: float
    width: int
    height: int
    appearance: np.ndarray | None = None
    stride: int = 1
    equipment: np.ndarray = field(default_factory=lambda: np.empty((0, 7)))

    def track_ids(self) -> list[int]:
        return sorted({int(t) for t in self.track_id} - {UNTRACKED})

    def detector_frames(self) -> np.ndarray:
        """The frames the detector saw: every `stride`-th and the last."""
        if not self.frame_count:
            return np.empty(0, dtype=np.int64)
        return np.unique(np.r_[np.arange(0, self.frame_count, self.stride), self.frame_count - 1])

    def table(self) -> np.ndarray:
        """One row per detection: `frame, track_id, x1, y1, x2, y2, confidence`."""
        return np.column_stack([self.frame, self.track_id, self.boxes, self.confidence]).astype(np.float64)

    @classmethod
    def from_table(
        cls,
        table: np.ndarray,
        frame_count: int,
        fps: float,
        width: int,
        height: int,
        appearance: np.ndarray | None = None,
        equipment: np.ndarray | None = None,
        stride: int = 1,
    ) -> Detections:
        """Detections from rows laid out as `table()` gives them."""
        table = table.reshape(-1, 7)
        return cls(
            frame=table[:, 0].astype(np.int64),
            track_id=table[:, 1].astype(np.int64),
            boxes=table[:, 2:6],
            confidence=table[:, 6],
            frame_count=frame_count,
            fps=fps,
            width=width,
            height=height,
            appearance=appearance,
            stride=stride,
            equipment=np.empty((0, 7)) if equipment is None else equipment.reshape(-1, 7),
        )


@dataclass(frozen=True)
class SkierTrack:
    """The target skier's box in every frame (NaN where not seen) and how it was chosen."""

    boxes: np.ndarray
    confidence: np.ndarray
    track_ids: tuple[int, ...]
    frames_per_track: dict[int, int]
    selection: str
    candidates: int
    warnings: tuple[str, ...] = ()
    equipment: dict[str, int] = field(default_factory=dict)
    detector_frames: int = 0

    def __post_init__(self) -> None:
        # Task inputs are cached by their pickle, and a strided view pickles unlike the
        # contiguous copy a retried flow run reloads: its pose step would miss its cache.
        object.__setattr__(self, "boxes", np.ascontiguousarray(self.boxes))
        object.__setattr__(self, "confidence", np.ascontiguousarray(self.confidence))

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
            "frames_per_track": {str(k): v for k, v in self.frames_per_track.items()},
            "selection": self.selection,
            "people_tracked": self.candidates,
            "frames_tracked": int(self.present.sum()),
            "frame_count": len(self.boxes),
            "tracked_fraction": round(self.tracked_fraction, 4),
            "median_box_height_px": round(float(np.median(heights)), 1) if len(heights) else None,
            "equipment": dict(self.equipment),
            "detector_frames_tracked": self.detector_frames,
        }


def detect_and_track(
    info: VideoInfo,
    config: TrackingConfig,
    model_path: Path,
    device: str,
    on_progress: ProgressCallback | None = None,
) -> Detections:
    """Run the YOLO person detector with the BoT-SORT tracker over the trim window.

    The detector sees about `config.detection_fps` frames a second; each track's box is
    interpolated in the frames between. Each person box gets its clothing histogram from the
    same frame, and the detector's ski and board boxes are kept apart from the people.

    Args:
        info: The probed clip.
        config: Detector size, confidence and tracker file.
        model_path: An Ultralytics detection checkpoint with the COCO classes.
        device: `cpu`, `cuda` or `mps`.
        on_progress: Called with the number of frames done.

    Returns:
        Every tracked person box, in full-frame pixels.
    """
    stride = detection_stride(info.fps, config.detection_fps)
    frames = iter_frames(info, max_side=config.decode_max_side, depth=config.read_ahead_frames, step=stride)
    # Taking the first frame starts decoding on its own thread, which runs ahead while the
    # detector loads.
    first = next(frames, None)
    detect = _load_detector(model_path, config, device)
    tracker = _load_tracker(config.tracker_path, stride)
    rows: list[np.ndarray] = []
    histograms: list[np.ndarray] = []
    equipment: list[np.ndarray] = []
    for batch in _batches(itertools.chain([first] if first else [], frames), config.batch_size):
        for frame, found in zip(batch, detect([frame.image for frame in batch])):
            people = found.cls == _COCO_PERSON
            scale = info.width / frame.image.shape[1]
            gear = found[~people]
            equipment.append(np.column_stack([np.full(len(gear), frame.index), gear.cls, gear.xyxy * scale, gear.conf]))
            found = found[people]
            tracks = tracker.update(found, frame.image)
            track_ids = np.full(len(found), UNTRACKED, dtype=np.float64)
            if len(tracks):
                track_ids[tracks[:, -1].astype(int)] = tracks[:, 4]
            rows.append(np.column_stack([np.full(len(found), frame.index), track_ids, found.xyxy * scale, found.conf]))
            histograms += [appearance.clothing_histogram(frame.image, box) for box in found.xyxy]
        if on_progress:
            on_progress(min(batch[-1].index + stride, info.frames_in_trim))
    table = np.concatenate(rows) if rows else np.empty((0, 7))
    found = Detections.from_table(
        table,
        info.frames_in_trim,
        info.fps,
        info.width,
        info.height,
        appearance=np.asarray(histograms).reshape(-1, appearance.HISTOGRAM_SIZE),
        equipment=np.concatenate(equipment) if equipment else None,
        stride=stride,
    )
    return fill_skipped_frames(found, stride)


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
    place to where the skier was last seen and never overlaps the skier in time. With
    `config.appearance_stitching`, clothing colours decide too: a piece that looks like the
    skier is joined wherever it starts (the camera may have panned), one that does not is
    never joined. Ski and board boxes under the skier's feet are counted as they go.

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
        return SkierTrack(empty, np.zeros(detections.frame_count), (), {}, "none", 0, ("No person was detected.",))

    primary, selection = None, "automatic"
    if hint is not None:
        primary = _track_at_hint(detections, hint, trim_start_s, config.hint_tolerance_s)
        if primary is None:
            warnings.append("The skier hint matched no tracked person; the skier was chosen automatically.")
        else:
            selection = "hint"
    if primary is None:
        scores = _track_scores(detections)
        primary = max(scores, key=lambda track_id: scores[track_id])

    rules = _StitchRules.of(detections, primary, config)
    chosen, skier_rows = _stitch(detections, primary, rules)
    boxes = empty.copy()
    confidence = np.zeros(detections.frame_count)
    rows = np.asarray(list(skier_rows.values()), dtype=np.int64)
    boxes[detections.frame[rows]] = detections.boxes[rows]
    confidence[detections.frame[rows]] = detections.confidence[rows]
    frames_per_track = {track_id: int(np.sum(detections.track_id[rows] == track_id)) for track_id in chosen}
    _follow_untracked(boxes, confidence, detections, rules)
    # Frames the detector skipped next to boxes from untracked detections or at the joint of
    # two track pieces.
    filled = fill_short_gaps(np.column_stack([boxes, confidence]), detections.stride - 1)
    boxes, confidence = filled[:, :4], filled[:, 4]
    seen = int(np.sum(~np.isnan(boxes[detections.detector_frames(), 0])))
    tracked = int(np.sum(~np.isnan(boxes[:, 0])))
    log.info(
        "Skier tracked in %d of %d frames (%.0f%%), chosen %s from %d people, track pieces %s",
        tracked,
        detections.frame_count,
        100 * tracked / max(detections.frame_count, 1),
        selection,
        len(ids),
        list(chosen),
    )
    return SkierTrack(
        boxes,
        confidence,
        tuple(chosen),
        frames_per_track,
        selection,
        len(ids),
        tuple(warnings),
        equipment=equipment_votes(detections.equipment, boxes),
        detector_frames=seen,
    )


def coverage_warning(skier: SkierTrack, fps: float, trim_start_s: float, below: float) -> str | None:
    """A warning that the scores cover only part of the clip, when the skier was tracked in
    fewer than `below` (a fraction) of its frames; it names the longest time they were lost.

    Args:
        skier: The chosen skier's track.
        fps: Frames per second of the clip.
        trim_start_s: Start of the trim window, so times match the player's.
        below: Coverage under this fraction gets the warning.
    """
    present = skier.present
    if not len(present) or skier.tracked_fraction >= below or present.all():
        return None
    start, stop = max(runs_of(~present), key=lambda run: run[1] - run[0])
    return (
        f"The skier was tracked in {math.floor(100 * skier.tracked_fraction)}% of the clip (lost from "
        f"{trim_start_s + start / fps:.1f} s to {trim_start_s + stop / fps:.1f} s); "
        "scores cover only the tracked part."
    )


def _batches(frames: Iterator[VideoFrame], size: int) -> Iterator[list[VideoFrame]]:
    batch: list[VideoFrame] = []
    for frame in frames:
        batch.append(frame)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def detection_stride(fps: float, detection_fps: float) -> int:
    """How many frames apart the detector runs to run about `detection_fps` times a second
    (every frame when `detection_fps` is 0 or above the clip's rate)."""
    if detection_fps <= 0:
        return 1
    return max(1, round(fps / detection_fps))


def fill_skipped_frames(detections: Detections, stride: int) -> Detections:
    """Add each track's box, linearly interpolated, in the frames the detector skipped.

    Only gaps of at most `stride` frames are filled, so a track that was really lost stays
    lost; untracked detections are left as they are. Clothing histograms are interpolated
    alongside the boxes.
    """
    if stride == 1:
        return detections
    table = detections.table()
    if detections.appearance is not None:
        table = np.column_stack([table, detections.appearance])
    filled = [table]
    for track_id in detections.track_ids():
        rows = table[table[:, 1] == track_id]
        rows = rows[np.argsort(rows[:, 0])]
        for before, after in itertools.pairwise(rows):
            gap = int(after[0] - before[0])
            if 1 < gap <= stride:
                weights = np.arange(1, gap)[:, None] / gap
                filled.append(before + weights * (after - before))
    table = np.concatenate(filled)
    table = table[np.argsort(table[:, 0], kind="stable")]
    return Detections.from_table(
        table[:, :7],
        detections.frame_count,
        detections.fps,
        detections.width,
        detections.height,
        appearance=table[:, 7:] if detections.appearance is not None else None,
        equipment=detections.equipment,
        stride=detections.stride,
    )


def _load_tracker(path: Path, stride: int):
    from ultralytics.trackers.bot_sort import BOTSORT
    from ultralytics.utils import YAML, IterableSimpleNamespace

    args = YAML.load(path)
    # A lost track is kept for `track_buffer` tracker updates; the file means frames of the
    # clip, and the tracker is updated only in every `stride`-th.
    args["track_buffer"] = max(1, round(args["track_buffer"] / stride))
    return BOTSORT(args=IterableSimpleNamespace(**args))


def _load_detector(model_path: Path, config: TrackingConfig, device: str):
    """A function from a batch of images to the person, ski and board boxes in each
    (Ultralytics `Boxes`). The extra classes come from the same inference, at no cost."""
    predict = load_yolo(
        model_path,
        "detect",
        device,
        config.threads or cores_but_one(),
        imgsz=config.imgsz,
        conf=config.confidence,
        classes=[_COCO_PERSON, *EQUIPMENT_CLASSES],
    )

    def detect(images: list[np.ndarray]) -> list:
        return [result.boxes.cpu().numpy() for result in predict(images)]

    return detect


def _track_scores(detections: Detections) -> dict[int, float]:
    boxes = detections.boxes
    height = (boxes[:, 3] - boxes[:, 1]) / detections.height
    centre = np.column_stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2])
    half_diagonal = np.hypot(detections.width, detections.height) / 2
    offset = np.hypot(centre[:, 0] - detections.width / 2, centre[:, 1] - detections.height / 2) / half_diagonal
    row_scores = detections.confidence * height * (1.0 - 0.5 * np.clip(offset, 0, 1))
    return {track_id: float(row_scores[detections.track_id == track_id].sum()) for track_id in detections.track_ids()}


def _track_at_hint(detections: Detections, hint: SkierHint, trim_start_s: float, tolerance_s: float) -> int | None:
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


@dataclass(frozen=True)
class _StitchRules:
    """When a piece of track continues the skier: within `max_gap` frames and `max_jump` box
    heights of them; or, looking like them (`match` or more), within `far_gap` frames anywhere;
    and never when it looks unlike them (below `min_similarity`). No appearance, no colour rules."""

    max_gap: int
    max_jump: float
    far_gap: int
    look: np.ndarray | None
    match: float
    min_similarity: float

    @classmethod
    def of(cls, detections: Detections, primary: int, config: TrackingConfig) -> _StitchRules:
        look = None
        if config.appearance_stitching and detections.appearance is not None:
            look = appearance.signature(detections.appearance[detections.track_id == primary])
        return cls(
            max_gap=_frames(config.stitch_max_gap_s, detections.fps),
            max_jump=config.stitch_max_jump,
            far_gap=_frames(config.appearance_max_gap_s, detections.fps),
            look=look,
            match=config.appearance_match,
            min_similarity=config.appearance_min,
        )

    def similarity(self, histogram: np.ndarray) -> float | None:
        """How much `histogram` looks like the skier, None when either is unknown."""
        if self.look is None:
            return None
        value = appearance.similarity(self.look, histogram)
        return None if np.isnan(value) else value


def _stitch(detections: Detections, primary: int, rules: _StitchRules) -> tuple[list[int], dict[int, int]]:
    """Join the tracks that belong to the primary one's skier, until no more fit.

    A track belongs when it continues the skier across a break, or when it is a second box
    on the skier (the detector sometimes boxes the body and the body with poles apart).

    Returns:
        The joined track ids, and for each frame the detection row of the skier's box.
    """
    skier: dict[int, int] = {}
    chosen: list[int] = []

    def take(track_id: int) -> None:
        for row in np.flatnonzero(detections.track_id == track_id):
            skier.setdefault(int(detections.frame[row]), int(row))
        chosen.append(track_id)

    take(primary)
    changed = True
    while changed:
        changed = False
        for track_id in detections.track_ids():
            if track_id not in chosen and _belongs(detections, track_id, skier, rules):
                take(track_id)
                changed = True
    return sorted(chosen), skier


def _belongs(detections: Detections, track_id: int, skier: dict[int, int], rules: _StitchRules) -> bool:
    rows = np.flatnonzero(detections.track_id == track_id)
    shared = [row for row in rows if int(detections.frame[row]) in skier]
    if shared:
        overlap = [
            box_iou(detections.boxes[row], detections.boxes[[skier[int(detections.frame[row])]]])[0] for row in shared
        ]
        return float(np.mean(overlap)) >= _SAME_PERSON_IOU
    looks = None
    if rules.look is not None and detections.appearance is not None:
        looks = rules.similarity(appearance.signature(detections.appearance[rows]))
    if looks is not None and looks < rules.min_similarity:
        return False
    frames = detections.frame[rows]
    ends = ((rows[np.argmin(frames)], -1), (rows[np.argmax(frames)], 1))
    if any(_continues(detections, skier, row, step, rules.max_gap, rules.max_jump) for row, step in ends):
        return True
    return (
        looks is not None
        and looks >= rules.match
        and any(_continues(detections, skier, row, step, rules.far_gap, np.inf) for row, step in ends)
    )


def _continues(
    detections: Detections, skier: dict[int, int], row: int, direction: int, max_gap: int, max_jump: float
) -> bool:
    """Whether the skier was seen within `max_gap` frames of detection `row` (looking in
    `direction`), at most `max_jump` box heights away from it."""
    frame = int(detections.frame[row])
    for step in range(1, max_gap + 1):
        other = skier.get(frame + direction * step)
        if other is not None:
            return _centre_jump(detections.boxes[row], detections.boxes[other]) <= max_jump
    return False


def _follow_untracked(boxes: np.ndarray, confidence: np.ndarray, detections: Detections, rules: _StitchRules) -> None:
    """Extend the skier's track, frame by frame forwards then backwards, with detections the
    tracker left unassigned (it hides new tracks until confirmed, and loses fast movers),
    where they continue the skier's box in place and size. One that looks like the skier may
    have moved twice as far (a pan moves the camera, not the skier); one that looks unlike
    them is never taken."""
    reach: dict[int, float] = {}
    for row in np.flatnonzero(detections.track_id == UNTRACKED):
        looks = None
        if rules.look is not None and detections.appearance is not None:
            looks = rules.similarity(detections.appearance[row])
        if looks is None or looks >= rules.min_similarity:
            reach[int(row)] = rules.max_jump if looks is not None and looks >= rules.match else rules.max_jump / 2
    by_frame: dict[int, list[int]] = {}
    for row in reach:
        by_frame.setdefault(int(detections.frame[row]), []).append(row)
    frame_count = len(boxes)
    for frames, step in ((range(1, frame_count), -1), (range(frame_count - 2, -1, -1), 1)):
        for frame in frames:
            previous = boxes[frame + step]
            if not np.isnan(boxes[frame, 0]) or np.isnan(previous[0]):
                continue
            fits = [
                row
                for row in by_frame.get(frame, [])
                if _centre_jump(detections.boxes[row], previous) <= reach[row]
                and 2 / 3 <= _height(detections.boxes[row]) / _height(previous) <= 3 / 2
            ]
            if fits:
                best = min(fits, key=lambda row: _centre_jump(detections.boxes[row], previous))
                boxes[frame] = detections.boxes[best]
                confidence[frame] = detections.confidence[best]


def _frames(seconds: float, fps: float) -> int:
    return max(1, round(seconds * fps))


def _height(box: np.ndarray) -> float:
    return float(box[3] - box[1])


def _centre_jump(a: np.ndarray, b: np.ndarray) -> float:
    """Distance between box centres, in heights of the taller box."""
    distance = np.hypot((a[0] + a[2] - b[0] - b[2]) / 2, (a[1] + a[3] - b[1] - b[3]) / 2)
    return float(distance / max(a[3] - a[1], b[3] - b[1], 1e-9))
