"""MediaPipe pose on a square crop that follows the tracked skier."""

from __future__ import annotations

import math
import queue
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from scipy.ndimage import gaussian_filter1d

from tasks.config import PoseConfig
from tasks.keypoints import (
    SHARED,
    SHARED_LANDMARKS,
    KeypointModel,
    View,
    fuse_keypoints,
    interpolate_views,
    unmirror,
    views_of,
    views_of_frame,
)
from tasks.landmarks import LANDMARK_COUNT
from tasks.progress import ProgressCallback
from tasks.series import fill_short_gaps, runs_of
from tasks.video import VideoInfo, iter_frames


@dataclass(frozen=True)
class PoseSequence:
    """Per-frame pose of the skier; rows of frames without a pose are NaN.

    Attributes:
        times_s: Frame times in seconds from the clip start.
        image_xy: `(frames, 33, 2)` landmark positions in frame pixels.
        world_xyz: `(frames, 33, 3)` landmark positions in metres, origin between the hips,
            x and y along the image axes (y down), z away from the camera.
        visibility: `(frames, 33)` MediaPipe's visibility, 0-1.
        detected: `(frames,)` whether the pose model found the skier in that frame.
        keypoint_views: `(frames, views, len(SHARED), 2)` the second keypoint model's
            shoulders, hips, knees and ankles in each view of the crop, in frame pixels,
            labelled as in `image_xy`; NaN where a view was not confident. None without it.
        mediapipe_shared: `(frames, len(SHARED), 2)` MediaPipe's own points of those joints,
            before they were replaced by the second model's. None without it.
    """

    times_s: np.ndarray
    image_xy: np.ndarray
    world_xyz: np.ndarray
    visibility: np.ndarray
    detected: np.ndarray
    keypoint_views: np.ndarray | None = None
    mediapipe_shared: np.ndarray | None = None

    @classmethod
    def empty(cls, times_s: np.ndarray) -> PoseSequence:
        frames = len(times_s)
        return cls(
            times_s=np.asarray(times_s, dtype=np.float64),
            image_xy=np.full((frames, LANDMARK_COUNT, 2), np.nan),
            world_xyz=np.full((frames, LANDMARK_COUNT, 3), np.nan),
            visibility=np.full((frames, LANDMARK_COUNT), np.nan),
            detected=np.zeros(frames, dtype=bool),
        )

    @property
    def has_pose(self) -> np.ndarray:
        """Frames with landmarks: detected ones, plus short gaps bridged by smoothing."""
        return ~np.isnan(self.image_xy[:, 0, 0])

    def with_landmarks(self, image_xy: np.ndarray, world_xyz: np.ndarray, visibility: np.ndarray) -> PoseSequence:
        return replace(self, image_xy=image_xy, world_xyz=world_xyz, visibility=visibility)


def crop_windows(boxes: np.ndarray, fps: float, config: PoseConfig) -> np.ndarray:
    """Square crop windows `(cx, cy, side)` per frame around the skier; NaN where none.

    Short gaps in the track are interpolated so the pose model keeps following the skier,
    and the windows are smoothed over time so the crop does not jitter with the detector.
    """
    centre_x = (boxes[:, 0] + boxes[:, 2]) / 2
    centre_y = (boxes[:, 1] + boxes[:, 3]) / 2
    side = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]) * (1 + 2 * config.crop_padding)
    windows = np.column_stack([centre_x, centre_y, side])
    windows = fill_short_gaps(windows, max(0, round(config.max_box_gap_s * fps)))
    sigma = config.crop_smoothing_s * fps / 2
    if sigma > 0:
        for start, stop in runs_of(~np.isnan(windows[:, 0])):
            windows[start:stop] = gaussian_filter1d(windows[start:stop], sigma, axis=0, mode="nearest")
    return windows


def estimate_pose(
    info: VideoInfo,
    windows: np.ndarray,
    config: PoseConfig,
    model_path: Path,
    on_progress: ProgressCallback | None = None,
    keypoint_model: KeypointModel | None = None,
) -> PoseSequence:
    """Run the MediaPipe Pose Landmarker in video mode on each frame's crop window, and take
    the shoulders, hips, knees and ankles from a second keypoint model when one is given.

    This thread decodes and crops; `config.workers` threads each run a landmarker on chunks
    of consecutive frames (MediaPipe releases the GIL and uses one core), chunk `k` going to
    worker `k % workers` so that results do not depend on thread timing. Within a chunk a
    landmarker tracks the pose from frame to frame; at a chunk's first frame it finds it
    again, in a crop that still centres on the skier. Crops reach their worker one by one,
    so it starts on a chunk as soon as its first frame is decoded. The second model runs on
    its own thread, on each frame's views of the crop (`tasks.keypoints.views_of_frame`), in
    batches, while this thread cuts the next ones and the landmarkers work; views a frame did
    not get are interpolated.

    Args:
        info: The probed clip.
        windows: `(frames, 3)` crop windows from `crop_windows`.
        config: Crop size, MediaPipe confidences, workers and chunk length.
        model_path: A Pose Landmarker `.task` bundle.
        on_progress: Called with the number of frames done.
        keypoint_model: The second opinion (`tasks.keypoints`), or None for MediaPipe alone.

    Returns:
        Image landmarks in frame pixels, world landmarks in metres, visibility, and the
        second model's views.
    """
    pose = PoseSequence.empty(info.trim_start_s + np.arange(info.frames_in_trim) / info.fps)
    progress = _Progress(on_progress)
    # A worker's queue holds up to a chunk, so the others get theirs while it catches up.
    queues: list[queue.Queue[Any]] = [queue.Queue(maxsize=_chunk_frames(info, config)) for _ in range(config.workers)]
    with (
        ThreadPoolExecutor(config.workers, thread_name_prefix="pose") as pool,
        ThreadPoolExecutor(1, thread_name_prefix="keypoints") as keypoint_pool,
    ):
        second = (
            _SecondOpinion(
                keypoint_model,
                keypoint_pool,
                info.frames_in_trim,
                views_of(config),
                config.keypoint_views_per_frame,
                config.crop_size,
                info.fps,
            )
            if keypoint_model
            else None
        )
        running = [pool.submit(_estimate_crops, crops, pose, config, model_path, progress) for crops in queues]
        try:
            for chunk, crop, image in _crops(info, windows, config, pose, progress):
                _put(queues[chunk % config.workers], crop, running, progress)
                if second is not None:
                    second.add(crop, image, windows[crop[0]])
            for crops in queues:
                _put(crops, None, running, progress)
        except BaseException:
            for crops in queues:
                _stop(crops)
            raise
        while wait(running, timeout=_PROGRESS_S).not_done:
            progress.report()
        for future in running:
            future.result()
        if second is not None:
            second.finish()
    progress.report()
    if second is None:
        return pose
    xy, confidence = second.filled(windows)
    fused, views = fuse_keypoints(pose.image_xy, xy, confidence, config.keypoint_confidence)
    return replace(
        pose, image_xy=fused, keypoint_views=views, mediapipe_shared=pose.image_xy[:, SHARED_LANDMARKS].copy()
    )


# One item of work: a frame's index, time, crop, crop origin in the frame, and window side.
_Crop = tuple[int, float, np.ndarray, tuple[float, float], float]
_PROGRESS_S = 0.2


class _Progress:
    """Frames done, counted by every thread and reported from the calling one."""

    def __init__(self, callback: ProgressCallback | None) -> None:
        self._callback = callback
        self._done = 0
        self._reported = 0
        self._lock = threading.Lock()

    def add(self, frames: int) -> None:
        with self._lock:
            self._done += frames

    def report(self) -> None:
        if self._callback and self._done > self._reported:
            self._reported = self._done
            self._callback(self._reported)


class _SecondOpinion:
    """Runs the second keypoint model on each frame's views of the crops (`views_of_frame`),
    in batches on `pool`, one batch at a time while the next is cut; holds its points in
    frame pixels, `(frames, views, len(SHARED), 2)`, and their confidences, NaN and 0 for
    the views a frame did not get. Batches are the same whatever the timing, and so are the
    points."""

    _BATCH = 8

    def __init__(
        self,
        model: KeypointModel,
        pool: ThreadPoolExecutor,
        frames: int,
        views: tuple[View, ...],
        per_frame: int,
        crop_size: int,
        fps: float,
    ) -> None:
        self._model = model
        self._pool = pool
        self._running: Future | None = None
        self._views = views
        self._per_frame = per_frame
        self._crop_size = crop_size
        self._fps = fps
        self._batch: list[tuple[int, int, np.ndarray, tuple[float, float], float]] = []
        self.xy = np.full((frames, len(views), len(SHARED), 2), np.nan)
        self.confidence = np.zeros((frames, len(views), len(SHARED)))
        self.ran = np.zeros((frames, len(views)), dtype=bool)

    def add(self, crop: _Crop, image: np.ndarray, window: np.ndarray) -> None:
        index, time_s, plain, origin, side = crop
        source_index = round(time_s * self._fps)
        for number in views_of_frame(source_index, len(self._views), self._per_frame):
            view = self._views[number]
            if view.scale == 1 and view.shift == (0, 0):
                cut, cut_origin, cut_side = plain, origin, side
            else:
                cut, cut_origin, cut_side = square_crop(image, view.window(window), self._crop_size)
            if view.mirrored:
                cut = np.ascontiguousarray(cut[:, ::-1])
            self._batch.append((index, number, cut, cut_origin, cut_side))
            self.ran[index, number] = True
        if len(self._batch) >= self._BATCH:
            self.flush()

    def flush(self) -> None:
        """Start the model on the views cut so far, once the batch before them is done."""
        if not self._batch:
            return
        self._wait()
        self._running = self._pool.submit(self._run, self._batch)
        self._batch = []

    def finish(self) -> None:
        """Run the views cut so far and wait until every batch is done."""
        self.flush()
        self._wait()

    def _wait(self) -> None:
        """Wait for the batch in progress, raising its error."""
        if self._running is not None:
            self._running.result()
            self._running = None

    def _run(self, batch: list[tuple[int, int, np.ndarray, tuple[float, float], float]]) -> None:
        xy, confidence = self._model([cut for _, _, cut, _, _ in batch])
        for (index, number, _, origin, side), points, certainty in zip(batch, xy, confidence):
            if self._views[number].mirrored:
                points, certainty = unmirror(points, certainty)
            self.xy[index, number] = np.asarray(origin) + points * side
            self.confidence[index, number] = certainty

    def filled(self, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The points and confidences with the views each frame did not get interpolated
        (`interpolate_views`) across one turn of the views. They are interpolated relative
        to the frames' crop windows, which follow the skier across the picture."""
        if not 0 < self._per_frame < len(self._views):  # every frame ran every view
            return self.xy, self.confidence
        turn = math.ceil(len(self._views) / self._per_frame)
        corner = windows[:, None, None, :2] - windows[:, None, None, 2:] / 2
        side = windows[:, None, None, 2:]
        xy, confidence = interpolate_views((self.xy - corner) / side, self.confidence, self.ran, turn)
        return corner + xy * side, confidence


def _chunk_frames(info: VideoInfo, config: PoseConfig) -> int:
    return max(1, round(config.chunk_s * info.fps))


def _crops(
    info: VideoInfo, windows: np.ndarray, config: PoseConfig, pose: PoseSequence, progress: _Progress
) -> Iterator[tuple[int, _Crop, np.ndarray]]:
    """The crop of each frame with a window, the number of its chunk and the whole frame:
    chunks hold `config.chunk_s` seconds of consecutive frames, and a frame without a window
    ends one."""
    size = _chunk_frames(info, config)
    chunk, in_chunk = 0, 0
    for frame in iter_frames(info, pixel_format="rgb24"):
        pose.times_s[frame.index] = frame.time_s
        window = windows[frame.index]
        if np.isnan(window[0]):
            progress.add(1)
            chunk, in_chunk = chunk + (in_chunk > 0), 0
            continue
        crop, origin, side = square_crop(frame.image, window, config.crop_size)
        yield chunk, (frame.index, frame.time_s, crop, origin, side), frame.image
        in_chunk += 1
        if in_chunk == size:
            chunk, in_chunk = chunk + 1, 0


def _estimate_crops(
    crops: queue.Queue, pose: PoseSequence, config: PoseConfig, model_path: Path, progress: _Progress
) -> None:
    """Run one landmarker on the crops of its queue until it hands out None; each worker
    writes only the rows of its own frames."""
    import mediapipe as mp

    last_timestamp_ms = -1
    with _landmarker(model_path, config) as landmarker:
        while (item := crops.get()) is not None:
            index, time_s, crop, origin, side = item
            # Video mode needs strictly increasing timestamps; real ones keep its tracking honest.
            timestamp_ms = max(round(time_s * 1000), last_timestamp_ms + 1)
            last_timestamp_ms = timestamp_ms
            result = landmarker.detect_for_video(mp.Image(image_format=mp.ImageFormat.SRGB, data=crop), timestamp_ms)
            if result.pose_landmarks:
                _store(pose, index, result, origin, side)
            progress.add(1)


def _landmarker(model_path: Path, config: PoseConfig):
    from mediapipe.tasks.python import BaseOptions, vision

    options = vision.PoseLandmarkerOptions(
        base_options=BaseOptions(model_asset_path=str(model_path)),
        running_mode=vision.RunningMode.VIDEO,
        num_poses=1,
        min_pose_detection_confidence=config.min_detection_confidence,
        min_pose_presence_confidence=config.min_presence_confidence,
        min_tracking_confidence=config.min_tracking_confidence,
    )
    return vision.PoseLandmarker.create_from_options(options)


def _stop(crops: queue.Queue) -> None:
    """Drop a worker's queued crops and tell it to stop."""
    while True:
        try:
            crops.get_nowait()
        except queue.Empty:
            break
    crops.put_nowait(None)


def _put(crops: queue.Queue, item, running: list[Future], progress: _Progress) -> None:
    """Queue `item` once its worker has room, reporting progress meanwhile; re-raise a
    worker's error instead of waiting for it forever."""
    while True:
        for future in running:
            error = future.exception() if future.done() else None
            if error is not None:
                raise error
        try:
            crops.put(item, timeout=_PROGRESS_S)
            return
        except queue.Full:
            progress.report()


def square_crop(image: np.ndarray, window: np.ndarray, size: int) -> tuple[np.ndarray, tuple[float, float], float]:
    """Cut a `size`-pixel square showing `window = (cx, cy, side)`, black beyond the frame.

    Returns:
        The crop, the frame position of its top-left corner, and the window side in frame pixels.
    """
    centre_x, centre_y, side = (float(v) for v in window)
    left, top = centre_x - side / 2, centre_y - side / 2
    scale = size / side
    transform = np.array([[scale, 0, -left * scale], [0, scale, -top * scale]], dtype=np.float64)
    crop = cv2.warpAffine(image, transform, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    return crop, (left, top), side


def _store(pose: PoseSequence, index: int, result, origin: tuple[float, float], side: float) -> None:
    image = result.pose_landmarks[0]
    world = result.pose_world_landmarks[0]
    pose.image_xy[index] = [(origin[0] + lm.x * side, origin[1] + lm.y * side) for lm in image]
    pose.world_xyz[index] = [(lm.x, lm.y, lm.z) for lm in world]
    pose.visibility[index] = [lm.visibility for lm in image]
    pose.detected[index] = True
