"""Derive test inputs from the sample clips: rotation tag, truncation, images, audio only."""

from __future__ import annotations

import struct
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
            if packet.pts is not None and packet.pts * stream.time_base >= seconds:
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
            encoded = av.VideoFrame.from_ndarray(turned, format="bgr24")
            encoded.pts = i
            dst.mux(out.encode(encoded))
        dst.mux(out.encode(None))
    return with_rotation_tag(sideways, target)


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
