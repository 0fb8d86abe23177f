from __future__ import annotations

import re

import av
import cv2
import numpy as np
import pytest

from tasks.errors import InvalidVideoError
from tasks.video import i420_planes, iter_frames, probe_video, read_ahead


def test_probe_reads_the_sample_clips(media):
    piste = probe_video(media / "piste_followcam.mp4")
    assert (piste.width, piste.height, piste.fps, piste.frame_count) == (1920, 1080, 25.0, 151)
    assert piste.codec == "h264" and piste.rotation == 0
    assert piste.duration_s == pytest.approx(6.04, abs=0.01)
    assert (piste.trim_start_s, piste.trim_end_s, piste.frames_in_trim) == (0.0, piste.duration_s, 151)
    indoor = probe_video(media / "indoor_carpet_front.mp4")
    assert (indoor.width, indoor.height, indoor.frame_count) == (848, 480, 508)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("zero_bytes", "empty (0 bytes)"),
        ("truncated", "damaged or not a video"),
        ("truncated_faststart", "incomplete: it declares 508 frames but holds only"),
        ("image", "still image, not a video"),
        ("audio_only", "no video track"),
    ],
)
def test_probe_rejects_bad_files_with_a_clear_message(derived, name, message):
    with pytest.raises(InvalidVideoError, match=re.escape(message)):
        probe_video(derived[name])


def test_probe_rejects_a_missing_file(tmp_path):
    with pytest.raises(InvalidVideoError, match="does not exist"):
        probe_video(tmp_path / "nothing.mp4")


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        (7.0, None, "starts at 7.00 s but the video is only 6.04 s long"),
        (None, 9.5, "ends at 9.50 s but the video is only 6.04 s long"),
        (3.0, 2.0, "end must come after the trim start"),
        (-1.0, None, "cannot be negative"),
        (2.0, 2.2, "at least 0.50 s is needed"),
    ],
)
def test_trim_outside_the_clip_is_rejected(media, start, end, message):
    with pytest.raises(InvalidVideoError, match=re.escape(message)):
        probe_video(media / "piste_followcam.mp4", start, end, min_duration_s=0.5)


def test_trim_longer_than_the_limit_is_rejected(media):
    with pytest.raises(InvalidVideoError, match="limit is 5 s"):
        probe_video(media / "piste_followcam.mp4", max_duration_s=5)


def test_trim_window_selects_its_frames(media):
    info = probe_video(media / "indoor_carpet_front.mp4", 2.0, 3.0)
    frames = list(iter_frames(info))
    assert len(frames) == info.frames_in_trim == 30
    assert frames[0].index == 0 and frames[0].time_s == pytest.approx(2.0, abs=1 / 30)
    assert frames[-1].time_s < 3.0


@pytest.mark.parametrize(("step", "indices"), [(1, list(range(30))), (4, [0, 4, 8, 12, 16, 20, 24, 28, 29])])
def test_every_nth_frame_and_the_last(media, step, indices):
    info = probe_video(media / "indoor_carpet_front.mp4", 2.0, 3.0)
    every = {frame.index: frame for frame in iter_frames(info)}
    chosen = list(iter_frames(info, step=step))
    assert [frame.index for frame in chosen] == indices
    for frame in chosen:
        assert frame.time_s == every[frame.index].time_s
        np.testing.assert_array_equal(frame.image, every[frame.index].image)


def test_frames_can_be_scaled_down(media):
    info = probe_video(media / "piste_followcam.mp4", 0, 1)
    frame = next(iter_frames(info, max_side=640))
    assert frame.image.shape == (360, 640, 3)


@pytest.mark.parametrize("pixel_format", ["bgr24", "yuv420p"])
def test_rotation_tag_gives_upright_frames(derived, pixel_format):
    plain = probe_video(derived["short"])
    rotated = probe_video(derived["rotated"])
    assert rotated.rotation == 90
    assert (rotated.width, rotated.height) == (plain.width, plain.height)
    original = next(iter_frames(plain, pixel_format=pixel_format)).image.astype(float)
    upright = next(iter_frames(rotated, pixel_format=pixel_format)).image.astype(float)
    assert upright.shape == original.shape
    assert np.abs(upright - original).mean() < 4  # the same picture, up to re-encoding


def test_i420_frames_are_the_decoded_planes(media):
    info = probe_video(media / "indoor_carpet_front.mp4", 0, 0.5)
    for packed, planar in zip(iter_frames(info), iter_frames(info, pixel_format="yuv420p")):
        assert planar.image.shape == (info.height * 3 // 2, info.width)
        y, u, v = i420_planes(planar.image)
        assert (y.shape, u.shape, v.shape) == ((480, 848), (240, 424), (240, 424))
        as_bgr = cv2.cvtColor(planar.image, cv2.COLOR_YUV2BGR_I420).astype(float)
        assert np.abs(as_bgr - packed.image).mean() < 2


def test_i420_frames_of_an_odd_size_are_made_even(tmp_path):
    path = tmp_path / "odd.mov"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("png", rate=10)
        stream.width, stream.height, stream.pix_fmt = 101, 75, "rgb24"
        for i in range(5):
            frame = av.VideoFrame.from_ndarray(np.full((75, 101, 3), 40 * i, np.uint8), format="rgb24")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    frames = list(iter_frames(probe_video(path), pixel_format="yuv420p"))
    assert len(frames) == 5
    assert all(frame.image.shape == (76 * 3 // 2, 102) for frame in frames)


def test_read_ahead_keeps_order_and_stops_early():
    assert list(read_ahead(iter(range(100)), depth=3)) == list(range(100))
    reader = read_ahead(iter(range(100)), depth=3)
    assert [next(reader) for _ in range(5)] == [0, 1, 2, 3, 4]
    reader.close()  # the producer thread stops instead of blocking on a full buffer


def test_read_ahead_raises_the_producers_error():
    def failing():
        yield 1
        raise RuntimeError("decoder broke")

    reader = read_ahead(failing(), depth=2)
    assert next(reader) == 1
    with pytest.raises(RuntimeError, match="decoder broke"):
        next(reader)
