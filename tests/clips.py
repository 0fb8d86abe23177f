"""Derive test inputs from the sample clips: rotation tag, truncation, images, audio only."""

from __future__ import annotations

import ctypes
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

# tkhd display matrix for "rotate 90 degrees clockwise to display" (as phones write portrait video).
_ROTATE_90_MATRIX = struct.pack(">9i", 0, 0x10000, 0, -0x10000, 0, 0, 0, 0, 0x40000000)


def derive_all(piste: Path, indoor: Path, folder: Path) -> dict[str, Path]:
    short = remux(indoor, folder / "short.mp4", seconds=1.0)
    return {
        "short": short,
        "rotated": stored_sideways(short, folder / "rotated.mp4"),
        "zero_bytes": _write(folder / "empty.mp4", b""),
        "truncated": _write(folder / "truncated.mp4", piste.read_bytes()[: piste.stat().st_size * 2 // 3]),
        "truncated_faststart": truncated_faststart(indoor, folder / "truncated_faststart.mp4"),
        "image": still_image(folder / "photo.mp4"),
        "audio_only": audio_only(folder / "audio.mp4"),
        "empty_scene": empty_scene(folder / "empty_scene.mp4"),
    }


def remux(source: Path, target: Path, seconds: float, faststart: bool = False) -> Path:
    """Copy the first `seconds` of the video stream without re-encoding."""
    options = {"movflags": "+faststart"} if faststart else {}
    with av.open(str(source)) as src, av.open(str(target), "w", options=options) as dst:
        stream = src.streams.video[0]
        out = dst.add_stream_from_template(stream)
        for packet in src.demux(stream):
            if packet.dts is None:
                continue
            if packet.pts is not None and stream.time_base is not None and packet.pts * stream.time_base >= seconds:
                break
            packet.stream = out
            dst.mux(packet)
    return target


def stored_sideways(source: Path, target: Path) -> Path:
    """The clip as a phone stores it: frames turned a quarter counter-clockwise, with a tag
    telling players to turn them a quarter clockwise, so it displays like `source`."""
    sideways = target.with_name("sideways.mp4")
    with av.open(str(source)) as src, av.open(str(sideways), "w") as dst:
        stream = src.streams.video[0]
        out = dst.add_stream("libx264", rate=stream.average_rate)
        out.width, out.height, out.pix_fmt = stream.height, stream.width, "yuv420p"
        out.options = {"crf": "12"}
        for i, frame in enumerate(src.decode(stream)):
            turned = np.ascontiguousarray(np.rot90(frame.to_ndarray(format="bgr24")))
            encoded = av.VideoFrame.from_ndarray(turned.astype(np.uint8, copy=False), format="bgr24")
            encoded.pts = i
            dst.mux(out.encode(encoded))
        dst.mux(out.encode(None))
    return with_rotation_tag(sideways, target)


def reencoded(source: Path, target: Path, crf: int, scale: float = 1.0, sideways: bool = False) -> Path:
    """The clip re-encoded with H.264 at `crf`, optionally scaled, or stored turned a quarter
    counter-clockwise with a tag that turns it back for display (as phones store portrait).

    Encoded the same in every process: frames stay in their decoded 4:2:0 planes unless
    scaled (then OpenCV converts and scales them; FFmpeg's scaler gave different pixels from
    run to run), x264 runs on one thread, and freshly allocated memory is filled with a fixed
    byte meanwhile (x264 reads some uninitialised bytes: the same frames gave different
    files from call to call without it).
    """
    import cv2

    with _fixed_fresh_memory():
        return _reencoded(source, target, crf, scale, sideways, cv2)


def _reencoded(source: Path, target: Path, crf: int, scale: float, sideways: bool, cv2) -> Path:
    encoded = target.with_name(f"encoded-{target.name}") if sideways else target
    with av.open(str(source)) as src, av.open(str(encoded), "w") as dst:
        stream = src.streams.video[0]
        width, height = round(stream.width * scale / 2) * 2, round(stream.height * scale / 2) * 2
        out = dst.add_stream("libx264", rate=stream.average_rate)
        out.width, out.height = (height, width) if sideways else (width, height)
        out.pix_fmt, out.options = "yuv420p", {"crf": str(crf), "threads": "1"}
        for index, frame in enumerate(src.decode(stream)):
            planes = frame.to_ndarray(format="yuv420p")
            if scale != 1.0:
                rgb = cv2.cvtColor(planes, cv2.COLOR_YUV2RGB_I420)
                planes = cv2.cvtColor(
                    cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2YUV_I420
                )
            if sideways:
                planes = _quarter_turn_i420(planes)
            picture = av.VideoFrame.from_ndarray(planes, format="yuv420p")
            picture.pts = index
            dst.mux(out.encode(picture))
        dst.mux(out.encode(None))
    return with_rotation_tag(encoded, target) if sideways else target


@contextmanager
def _fixed_fresh_memory(byte: int = 0x5A) -> Iterator[None]:
    """glibc's malloc fills what it hands out (and takes back) with `byte` meanwhile."""
    libc = ctypes.CDLL("libc.so.6")
    libc.mallopt(_M_PERTURB, byte)
    try:
        yield
    finally:
        libc.mallopt(_M_PERTURB, 0)


_M_PERTURB = -6


def _quarter_turn_i420(image: np.ndarray) -> np.ndarray:
    """A packed I420 picture turned a quarter counter-clockwise, plane by plane."""
    height, width = image.shape[0] * 2 // 3, image.shape[1]
    luma = np.rot90(image[:height])
    chroma = image[height:].reshape(2, height // 2, width // 2)
    turned = [np.rot90(plane).reshape(-1, height) for plane in chroma]
    return np.ascontiguousarray(np.concatenate([luma, *turned]))


def with_rotation_tag(source: Path, target: Path) -> Path:
    """The same file with the video track's display matrix set to a quarter turn clockwise."""
    data = bytearray(source.read_bytes())
    tkhd = data.find(b"tkhd")
    version = data[tkhd + 4]
    # Skip type, version/flags, times, track id, reserved, duration, reserved, layer/group/volume/reserved.
    offset = tkhd + 4 + 4 + (16 if version == 0 else 28) + 8 + 8
    data[offset : offset + 36] = _ROTATE_90_MATRIX
    target.write_bytes(bytes(data))
    return target


def truncated_faststart(source: Path, target: Path) -> Path:
    """A file whose index comes first (as uploads often are) and whose end is cut off."""
    full = remux(source, target.with_name("faststart_full.mp4"), seconds=30.0, faststart=True)
    data = full.read_bytes()
    return _write(target, data[: len(data) // 2])


def still_image(target: Path) -> Path:
    """A PNG photo saved under a `.mp4` name."""
    gradient = np.tile(np.linspace(0, 255, 320, dtype=np.uint8), (240, 1))
    Image.fromarray(np.dstack([gradient] * 3)).save(target, format="PNG")
    return target


def audio_only(target: Path) -> Path:
    """One second of a tone in an MP4 with no video track."""
    with av.open(str(target), "w") as dst:
        stream = dst.add_stream("aac", rate=44100)
        samples = (np.sin(np.arange(44100) * 2 * np.pi * 440 / 44100) * 0.2).astype(np.float32)
        for start in range(0, 44100, 1024):
            frame = av.AudioFrame.from_ndarray(samples[None, start : start + 1024], format="fltp", layout="mono")
            frame.sample_rate = 44100
            frame.pts = start
            dst.mux(stream.encode(frame))
        dst.mux(stream.encode(None))
    return target


def empty_scene(target: Path, seconds: float = 2.0, fps: int = 25) -> Path:
    """A drifting snow-and-sky gradient with nobody in it."""
    with av.open(str(target), "w") as dst:
        stream = dst.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 640, 360, "yuv420p"
        rows = np.linspace(0, 1, 360)[:, None]
        for i in range(int(seconds * fps)):
            sky = np.array([235, 200, 150]) * (1 - rows) + np.array([250, 250, 250]) * rows
            image = np.clip(sky[:, None, :] + np.sin(np.arange(640) / 40 + i / 5)[None, :, None] * 5, 0, 255)
            frame = av.VideoFrame.from_ndarray(np.repeat(image, 1, axis=1).astype(np.uint8), format="bgr24")
            frame.pts = i
            frame.time_base = Fraction(1, fps)
            dst.mux(stream.encode(frame))
        dst.mux(stream.encode(None))
    return target


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


# A camera pan over the 1080p piste clip: the top-left corner (seconds, x, y), in source pixels,
# of a 1280x720 window at each keyframe, in straight lines between. Four whip pans move the
# view 440 to 580 px in a sixth or a fifth of a second; the skier stays in view throughout.
WHIP_PAN = (
    (0.0, 600, 300),
    (0.6, 600, 300),
    (0.8, 80, 100),
    (1.8, 200, 160),
    (2.4, 200, 160),
    (2.56, 640, 200),
    (3.3, 640, 200),
    (3.5, 60, 120),
    (4.4, 40, 120),
    (5.2, 100, 120),
    (5.36, 560, 240),
    (6.04, 560, 240),
)
PAN_WINDOW = (1280, 720)


def pan_offsets(keyframes: tuple[tuple[float, int, int], ...], frame_count: int, fps: float) -> np.ndarray:
    """The window's top-left corner `x, y` in each frame, interpolated between `keyframes`."""
    times = np.arange(frame_count) / fps
    keys = np.asarray(keyframes, dtype=np.float64)
    corner = np.column_stack([np.interp(times, keys[:, 0], keys[:, 1]), np.interp(times, keys[:, 0], keys[:, 2])])
    return np.round(corner).astype(np.int64)


def panned(
    source: Path, target: Path, keyframes=WHIP_PAN, window=PAN_WINDOW, scale: float = 1.0, seconds: float | None = None
) -> tuple[Path, np.ndarray]:
    """The clip as a camera panning over its scene would film it: a `window` moving over each
    frame along `keyframes`, scaled by `scale`. Returns the clip and the window's corner per frame."""
    width, height = (int(round(side * scale)) // 2 * 2 for side in window)
    with av.open(str(source)) as src:
        stream = src.streams.video[0]
        frames = _frames(src, seconds)
        offsets = pan_offsets(keyframes, len(frames), float(stream.average_rate or 30))
        crops = [frame[y : y + window[1], x : x + window[0]] for frame, (x, y) in zip(frames, offsets)]
        _encode(target, crops, stream.average_rate, (width, height))
    return target, offsets


def occluded(
    source: Path,
    target: Path,
    boxes: np.ndarray,
    start: int,
    stop: int,
    decoy_hue_turn: int | None = 60,
    seconds: float | None = None,
) -> Path:
    """The clip with a grey block over the skier (`boxes`, one per frame, padded by 15%) in
    frames `start` to `stop`; with `decoy_hue_turn`, meanwhile a decoy stands beside the block:
    the skier's own picture with its hues turned by that much (OpenCV's 0-179 scale), so a
    person in other colours, 1.2 box widths away."""
    import cv2

    with av.open(str(source)) as src:
        stream = src.streams.video[0]
        frames = _frames(src, seconds)
        for index in range(start, min(stop, len(frames))):
            image = frames[index]
            x1, y1, x2, y2 = (int(round(v)) for v in boxes[index])
            pad_x, pad_y = int(0.15 * (x2 - x1)), int(0.15 * (y2 - y1))
            if decoy_hue_turn is not None:
                hsv = cv2.cvtColor(image[y1:y2, x1:x2], cv2.COLOR_BGR2HSV)
                hsv[..., 0] = (hsv[..., 0].astype(np.int64) + decoy_hue_turn) % 180
                shift = int(1.2 * (x2 - x1)) * (1 if x2 + 1.2 * (x2 - x1) < image.shape[1] else -1)
                image[y1:y2, x1 + shift : x2 + shift] = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)
            image[max(0, y1 - pad_y) : y2 + pad_y, max(0, x1 - pad_x) : x2 + pad_x] = 128
        _encode(target, frames, stream.average_rate, (frames[0].shape[1], frames[0].shape[0]))
    return target


def legs_hidden(source: Path, target: Path, boxes: np.ndarray, stretch: int) -> Path:
    """The clip with a grey block over the skier's legs (the lower half of their box, `boxes`
    one per frame, reaching a little below it) in every other run of `stretch` frames."""
    with av.open(str(source)) as src:
        stream = src.streams.video[0]
        frames = _frames(src, None)
        for index in range(0, len(frames)):
            if (index // stretch) % 2 == 0 or np.isnan(boxes[index, 0]):
                continue
            x1, y1, x2, y2 = boxes[index]
            height = y2 - y1
            top, bottom = int(y1 + 0.5 * height), int(y2 + 0.1 * height)
            frames[index][top:bottom, max(0, int(x1 - 0.1 * height)) : int(x2 + 0.1 * height)] = 128
        _encode(target, frames, stream.average_rate, (frames[0].shape[1], frames[0].shape[0]))
    return target


def _frames(container, seconds: float | None) -> list[np.ndarray]:
    stream = container.streams.video[0]
    frames = []
    for frame in container.decode(stream):
        if seconds is not None and frame.time is not None and frame.time >= seconds:
            break
        frames.append(frame.to_ndarray(format="bgr24"))
    return frames


def _encode(target: Path, images: list[np.ndarray], rate, size: tuple[int, int]) -> None:
    with av.open(str(target), "w") as dst:
        out = dst.add_stream("libx264", rate=rate)
        out.width, out.height, out.pix_fmt = size[0], size[1], "yuv420p"
        out.options = {"crf": "18", "preset": "ultrafast"}
        for i, image in enumerate(images):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="bgr24")
            if (frame.width, frame.height) != size:
                frame = frame.reformat(width=size[0], height=size[1])
            frame.pts = i
            dst.mux(out.encode(frame))
        dst.mux(out.encode(None))
