"""The overlay video: the skier's box, skeleton and the frame time, as browser-playable H.264."""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from tasks.config import RenderConfig
from tasks.files import atomic_path
from tasks.frontal import labels_match_skier
from tasks.intervals import draw_interval
from tasks.landmarks import BODY_JOINTS, CENTRE_BONES, LEFT_BONES, RIGHT_BONES
from tasks.pose import PoseSequence
from tasks.progress import ProgressCallback
from tasks.turns import TechniqueMetrics, Turn
from tasks.video import VideoInfo, i420_planes, iter_frames
from tasks.wording import score_range, turn_score

# BGR colours: the skier's own left in orange, right in blue, the box in green.
LEFT_COLOUR = (0, 140, 255)
RIGHT_COLOUR = (255, 200, 0)
CENTRE_COLOUR = (240, 240, 240)
BOX_COLOUR = (80, 220, 80)
# How long the transition marker stays on screen after each transition.
_TRANSITION_MARKER_S = 0.3
# JPEG quality of the stills.
_STILL_QUALITY = 88


@dataclass(frozen=True)
class Still:
    """A frame to save as a JPEG with the overlay drawn, as the moment of a finding.

    Attributes:
        frame: Index from the start of the analysed part.
        name: File name, in the overlay video's folder.
        caption: A line drawn in the bottom-right corner (plain ASCII).
    """

    frame: int
    name: str
    caption: str


def render_overlay(
    info: VideoInfo,
    boxes: np.ndarray,
    pose: PoseSequence,
    metrics: TechniqueMetrics,
    config: RenderConfig,
    path: Path,
    on_progress: ProgressCallback | None = None,
    stills: Sequence[Still] = (),
) -> Path:
    """Write the trim window with the overlay drawn, at the input's size, rate and orientation.

    The overlay shows the skier's box and skeleton, the frame time, the current turn's
    direction and edge similarity with the run's average so far, and a marker for a moment
    after each transition. Each of `stills` is saved beside the video from the same pass,
    with the overlay and its caption.

    The file appears at `path` only once complete. Odd frame sizes are stretched by one pixel,
    as H.264's 4:2:0 format needs even ones.

    Returns:
        `path`.
    """
    own_sides = labels_match_skier(pose.image_xy, metrics.angles.camera_side)
    rate = Fraction(info.fps).limit_denominator(1001)
    wanted: dict[int, list[Still]] = {}
    for still in stills:
        wanted.setdefault(still.frame, []).append(still)
    with (
        atomic_path(path) as partial,
        av.open(str(partial), "w", format="mp4", options={"movflags": "+faststart"}) as output,
    ):
        stream = output.add_stream("libx264", rate=rate)
        stream.width, stream.height = info.width + info.width % 2, info.height + info.height % 2
        stream.pix_fmt = "yuv420p"
        options: dict[str, object] = {"crf": str(config.crf), "preset": config.preset}
        if config.x264_params:
            options["x264-params"] = config.x264_params
        stream.options = options
        # Drawing on the decoded 4:2:0 planes leaves the rest of the picture as it came and
        # saves two colour conversions of every frame.
        for frame in iter_frames(info, pixel_format="yuv420p"):
            canvas = I420Canvas(frame.image)
            draw_overlay(canvas, boxes[frame.index], pose, frame.index, config.min_visibility, own_sides[frame.index])
            draw_time(canvas, frame.time_s, frame.index, info.frames_in_trim)
            draw_turn(canvas, metrics, frame.index, round(_TRANSITION_MARKER_S * info.fps))
            for still in wanted.get(frame.index, ()):
                save_still(frame.image, still, path.parent / still.name, (info.width, info.height))
            # The encoder copies the picture in, so the frame may share the array's memory.
            video_frame = av.VideoFrame.from_numpy_buffer(frame.image, format="yuv420p")
            video_frame.pts = frame.index
            video_frame.time_base = 1 / rate
            output.mux(stream.encode(video_frame))
            if on_progress:
                on_progress(frame.index + 1)
        output.mux(stream.encode(None))
    return path


def save_still(image: np.ndarray, still: Still, path: Path, size: tuple[int, int]) -> Path:
    """Save a copy of the packed I420 `image` (overlay drawn) with the still's caption as a
    JPEG of `size` (width, height); it appears at `path` only once complete."""
    copy = image.copy()
    _text_block(I420Canvas(copy), [still.caption], (0, 230, 255), corner="bottom-right")
    bgr = cv2.cvtColor(copy, cv2.COLOR_YUV2BGR_I420)[: size[1], : size[0]]
    with atomic_path(path) as partial:
        if not cv2.imwrite(str(partial), bgr, [cv2.IMWRITE_JPEG_QUALITY, _STILL_QUALITY]):
            raise OSError(f"Could not write {partial}")
    return path


def draw_overlay(
    canvas: I420Canvas, box: np.ndarray, pose: PoseSequence, index: int, min_visibility: float, labels_are_own: bool
) -> None:
    """Draw the skier's box and the bones whose both joints are visible enough, in place.

    The skier's own left is orange and right blue; `labels_are_own` says whether the pose
    model's left is the skier's left in this frame.
    """
    scale = canvas.line_scale
    if not np.isnan(box[0]):
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        canvas.rectangle((x1, y1), (x2, y2), BOX_COLOUR, max(1, scale))
    points = pose.image_xy[index]
    visible = np.nan_to_num(pose.visibility[index], nan=0.0) >= min_visibility
    left, right = (LEFT_COLOUR, RIGHT_COLOUR) if labels_are_own else (RIGHT_COLOUR, LEFT_COLOUR)
    for bones, colour in ((LEFT_BONES, left), (RIGHT_BONES, right), (CENTRE_BONES, CENTRE_COLOUR)):
        for a, b in bones:
            if visible[a] and visible[b]:
                canvas.line(_pixel(points[a]), _pixel(points[b]), colour, 2 * scale)
    for joint in BODY_JOINTS:
        if visible[joint]:
            canvas.circle(_pixel(points[joint]), 2 * scale + 1, CENTRE_COLOUR)


def draw_time(canvas: I420Canvas, time_s: float, index: int, frame_count: int) -> None:
    """Write the frame time and number in the top-left corner, on a dark band."""
    scale = canvas.line_scale
    text = f"{time_s:6.2f} s   frame {index + 1}/{frame_count}"
    font_scale = 0.5 * scale
    (width, height), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, scale)
    margin = 6 * scale
    canvas.rectangle((0, 0), (width + 2 * margin, height + baseline + 2 * margin), (0, 0, 0), -1)
    canvas.text(text, (margin, margin + height), font_scale, (255, 255, 255), scale)


def draw_turn(canvas: I420Canvas, metrics: TechniqueMetrics, index: int, marker_frames: int) -> None:
    """Write the current turn and its score in the bottom-left corner; mark fresh transitions."""
    number = metrics.turn_of_frame[index]
    if number < 0:
        return
    turn = metrics.turns[number]
    score = turn_score(turn.as_dict())
    lines = [f"{turn.direction.upper()} turn {turn.index}"]
    if score.startswith("uncertain: "):
        lines += ["edge similarity uncertain", score.removeprefix("uncertain: ")]
    else:
        lines.append(score if turn.partial or not turn.scored else f"edge similarity {score}")
    finished = tuple(t for t in metrics.turns if t.end_frame <= index and t.certain)
    if finished:
        lines.append(f"run average {running_average(finished)}")
    colour = RIGHT_COLOUR if turn.direction == "right" else LEFT_COLOUR
    _text_block(canvas, lines, colour, corner="bottom-left")
    if turn.index > 0 and index - turn.start_frame < marker_frames:
        _text_block(canvas, ["TRANSITION"], (0, 230, 255), corner="top-right")


@functools.lru_cache(maxsize=64)
def running_average(turns: tuple[Turn, ...]) -> str:
    """The mean score of `turns` with its 90% interval, as shown."""
    scores = [turn.edge_similarity for turn in turns if turn.edge_similarity is not None]
    low, high = draw_interval(lambda draws: draws.mean(axis=1), scores, [turn.half_width for turn in turns], 2000)
    return score_range(float(np.mean(scores)), low, high)


def _text_block(canvas: I420Canvas, lines: list[str], colour: tuple[int, int, int], corner: str) -> None:
    scale = canvas.line_scale
    font_scale, margin = 0.6 * scale, 8 * scale
    sizes = [cv2.getTextSize(line, cv2.FONT_HERSHEY_SIMPLEX, font_scale, scale)[0] for line in lines]
    line_height = max(h for _, h in sizes) + margin
    width = max(w for w, _ in sizes) + 2 * margin
    height = line_height * len(lines) + margin
    x0 = 0 if corner.endswith("left") else canvas.width - width
    y0 = canvas.height - height if corner.startswith("bottom") else 0
    canvas.rectangle((x0, y0), (x0 + width, y0 + height), (0, 0, 0), -1)
    canvas.rectangle((x0, y0), (x0 + 4 * scale, y0 + height), colour, -1)
    for i, line in enumerate(lines):
        baseline = y0 + margin + line_height * (i + 1) - margin // 2
        canvas.text(line, (x0 + margin + 4 * scale, baseline - margin // 2), font_scale, (255, 255, 255), scale)


class I420Canvas:
    """OpenCV drawing on a packed I420 image (see `i420_planes`), in place, with BGR colours.

    Each shape is drawn on the luma plane at full size and on both chroma planes at half
    size, anti-aliased; coordinates are in full-size pixels.
    """

    def __init__(self, image: np.ndarray) -> None:
        self.planes = i420_planes(image)
        self.height, self.width = self.planes[0].shape

    @property
    def line_scale(self) -> int:
        """Line width unit: 1 up to 540 pixels of the shorter side, 2 at 1080, and so on."""
        return max(1, round(min(self.height, self.width) / 540))

    # OpenCV's type stubs take a colour as a sequence; each plane here takes its one number.
    def line(self, start: tuple[int, int], end: tuple[int, int], colour: tuple[int, int, int], thickness: int) -> None:
        for plane, value, shift in self._layers(colour):
            cv2.line(plane, start, end, value, _thinner(thickness, shift), cv2.LINE_AA, shift)  # type: ignore[call-overload]

    def circle(self, centre: tuple[int, int], radius: int, colour: tuple[int, int, int]) -> None:
        """A filled circle."""
        for plane, value, shift in self._layers(colour):
            cv2.circle(plane, centre, radius, value, -1, cv2.LINE_AA, shift)  # type: ignore[call-overload]

    def rectangle(
        self, corner: tuple[int, int], opposite: tuple[int, int], colour: tuple[int, int, int], thickness: int
    ) -> None:
        """A rectangle outline, or a filled one when `thickness` is negative."""
        for plane, value, shift in self._layers(colour):
            cv2.rectangle(plane, corner, opposite, value, _thinner(thickness, shift), cv2.LINE_AA, shift)  # type: ignore[call-overload]

    def text(
        self, text: str, origin: tuple[int, int], font_scale: float, colour: tuple[int, int, int], thickness: int
    ) -> None:
        for plane, value, shift in self._layers(colour):
            cv2.putText(  # type: ignore[call-overload]
                plane,
                text,
                (origin[0] >> shift, origin[1] >> shift),
                cv2.FONT_HERSHEY_SIMPLEX,
                font_scale / (1 << shift),
                value,
                _thinner(thickness, shift),
                cv2.LINE_AA,
            )

    def _layers(self, colour: tuple[int, int, int]) -> Iterator[tuple[np.ndarray, int, int]]:
        """Each plane, the colour's value in it, and the bits to shift coordinates right by."""
        return zip(self.planes, _i420_colour(colour), (0, 1, 1))


@functools.lru_cache(maxsize=32)
def _i420_colour(bgr: tuple[int, int, int]) -> tuple[int, int, int]:
    """A BGR colour's Y, U and V values, as OpenCV converts frames for the encoder."""
    y, u, v = cv2.cvtColor(np.full((2, 2, 3), bgr, np.uint8), cv2.COLOR_BGR2YUV_I420).ravel()[[0, 4, 5]]
    return int(y), int(u), int(v)


def _thinner(thickness: int, shift: int) -> int:
    return thickness if thickness < 0 else max(1, thickness >> shift)


def _pixel(point: np.ndarray) -> tuple[int, int]:
    return int(round(point[0])), int(round(point[1]))
