"""The overlay video: the skier's box, skeleton and the frame time, as browser-playable H.264."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from tasks.config import RenderConfig
from tasks.frontal import labels_match_skier
from tasks.landmarks import BODY_JOINTS, CENTRE_BONES, LEFT_BONES, RIGHT_BONES
from tasks.pose import PoseSequence
from tasks.progress import ProgressCallback
from tasks.turns import TechniqueMetrics
from tasks.video import VideoInfo, iter_frames

# BGR colours: the skier's own left in orange, right in blue, the box in green.
LEFT_COLOUR = (0, 140, 255)
RIGHT_COLOUR = (255, 200, 0)
CENTRE_COLOUR = (240, 240, 240)
BOX_COLOUR = (80, 220, 80)
# How long the transition marker stays on screen after each transition.
_TRANSITION_MARKER_S = 0.3


def render_overlay(
    info: VideoInfo,
    boxes: np.ndarray,
    pose: PoseSequence,
    metrics: TechniqueMetrics,
    config: RenderConfig,
    path: Path,
    on_progress: ProgressCallback | None = None,
) -> Path:
    """Write the trim window with the overlay drawn, at the input's size, rate and orientation.

    The overlay shows the skier's box and skeleton, the frame time, the current turn's
    direction and edge similarity with the run's average so far, and a marker for a moment
    after each transition.

    The file appears at `path` only once complete. Odd frame sizes are padded by one pixel,
    which H.264's 4:2:0 format requires.

    Returns:
        `path`.
    """
    partial = path.with_name(path.name + ".partial")
    own_sides = labels_match_skier(pose.image_xy, metrics.angles.camera_side)
    rate = Fraction(info.fps).limit_denominator(1001)
    with av.open(str(partial), "w", format="mp4", options={"movflags": "+faststart"}) as output:
        stream = output.add_stream("libx264", rate=rate)
        stream.width, stream.height = info.width + info.width % 2, info.height + info.height % 2
        stream.pix_fmt = "yuv420p"
        options = {"crf": str(config.crf), "preset": config.preset}
        if config.x264_params:
            options["x264-params"] = config.x264_params
        stream.options = options
        for frame in iter_frames(info):
            image = _pad_even(frame.image)
            draw_overlay(image, boxes[frame.index], pose, frame.index, config.min_visibility, own_sides[frame.index])
            draw_time(image, frame.time_s, frame.index, info.frames_in_trim)
            draw_turn(image, metrics, frame.index, round(_TRANSITION_MARKER_S * info.fps))
            # OpenCV's conversion to the encoder's 4:2:0 is about twice as fast as FFmpeg's swscale.
            video_frame = av.VideoFrame.from_ndarray(cv2.cvtColor(image, cv2.COLOR_BGR2YUV_I420), format="yuv420p")
            video_frame.pts = frame.index
            video_frame.time_base = 1 / rate
            output.mux(stream.encode(video_frame))
            if on_progress:
                on_progress(frame.index + 1)
        output.mux(stream.encode(None))
    partial.replace(path)
    return path


def draw_overlay(
    image: np.ndarray, box: np.ndarray, pose: PoseSequence, index: int, min_visibility: float, labels_are_own: bool
) -> None:
    """Draw the skier's box and the bones whose both joints are visible enough, in place.

    The skier's own left is orange and right blue; `labels_are_own` says whether the pose
    model's left is the skier's left in this frame.
    """
    scale = _line_scale(image)
    if not np.isnan(box[0]):
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        cv2.rectangle(image, (x1, y1), (x2, y2), BOX_COLOUR, max(1, scale), cv2.LINE_AA)
    points = pose.image_xy[index]
    visible = np.nan_to_num(pose.visibility[index], nan=0.0) >= min_visibility
    left, right = (LEFT_COLOUR, RIGHT_COLOUR) if labels_are_own else (RIGHT_COLOUR, LEFT_COLOUR)
    for bones, colour in ((LEFT_BONES, left), (RIGHT_BONES, right), (CENTRE_BONES, CENTRE_COLOUR)):
        for a, b in bones:
            if visible[a] and visible[b]:
                cv2.line(image, _pixel(points[a]), _pixel(points[b]), colour, 2 * scale, cv2.LINE_AA)
    for joint in BODY_JOINTS:
        if visible[joint]:
            cv2.circle(image, _pixel(points[joint]), 2 * scale + 1, CENTRE_COLOUR, -1, cv2.LINE_AA)


def draw_time(image: np.ndarray, time_s: float, index: int, frame_count: int) -> None:
    """Write the frame time and number in the top-left corner, on a dark band."""
    scale = _line_scale(image)
    text = f"{time_s:6.2f} s   frame {index + 1}/{frame_count}"
    font_scale = 0.5 * scale
    (width, height), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, scale)
    margin = 6 * scale
    cv2.rectangle(image, (0, 0), (width + 2 * margin, height + baseline + 2 * margin), (0, 0, 0), -1)
    cv2.putText(
        image, text, (margin, margin + height), cv2.FONT_HERSHEY_SIMPLEX, font_scale,
        (255, 255, 255), scale, cv2.LINE_AA,
    )


def draw_turn(image: np.ndarray, metrics: TechniqueMetrics, index: int, marker_frames: int) -> None:
    """Write the current turn and its score in the bottom-left corner; mark fresh transitions."""
    number = metrics.turn_of_frame[index]
    if number < 0:
        return
    turn = metrics.turns[number]
    finished = [t.edge_similarity for t in metrics.turns if t.end_frame <= index and t.edge_similarity is not None]
    score = "partial turn" if turn.partial else (
        "no score" if turn.edge_similarity is None else f"edge similarity {turn.edge_similarity:.0f}"
    )
    lines = [f"{turn.direction.upper()} turn {turn.index}", score]
    if finished:
        lines.append(f"run average {np.mean(finished):.0f}")
    colour = RIGHT_COLOUR if turn.direction == "right" else LEFT_COLOUR
    _text_block(image, lines, colour, corner="bottom-left")
    if turn.index > 0 and index - turn.start_frame < marker_frames:
        _text_block(image, ["TRANSITION"], (0, 230, 255), corner="top-right")


def _text_block(image: np.ndarray, lines: list[str], colour: tuple[int, int, int], corner: str) -> None:
    scale = _line_scale(image)
    font_scale, margin = 0.6 * scale, 8 * scale
    sizes = [cv2.getTextSize(line, cv2.FONT_HERSHEY_SIMPLEX, font_scale, scale)[0] for line in lines]
    line_height = max(h for _, h in sizes) + margin
    width = max(w for w, _ in sizes) + 2 * margin
    height = line_height * len(lines) + margin
    x0 = 0 if corner.endswith("left") else image.shape[1] - width
    y0 = image.shape[0] - height if corner.startswith("bottom") else 0
    cv2.rectangle(image, (x0, y0), (x0 + width, y0 + height), (0, 0, 0), -1)
    cv2.rectangle(image, (x0, y0), (x0 + 4 * scale, y0 + height), colour, -1)
    for i, line in enumerate(lines):
        baseline = y0 + margin + line_height * (i + 1) - margin // 2
        cv2.putText(image, line, (x0 + margin + 4 * scale, baseline - margin // 2), cv2.FONT_HERSHEY_SIMPLEX,
                    font_scale, (255, 255, 255), scale, cv2.LINE_AA)


def _line_scale(image: np.ndarray) -> int:
    return max(1, round(min(image.shape[:2]) / 540))


def _pixel(point: np.ndarray) -> tuple[int, int]:
    return int(round(point[0])), int(round(point[1]))


def _pad_even(image: np.ndarray) -> np.ndarray:
    height, width = image.shape[:2]
    if height % 2 == 0 and width % 2 == 0:
        return image
    return cv2.copyMakeBorder(image, 0, height % 2, 0, width % 2, cv2.BORDER_REPLICATE)
