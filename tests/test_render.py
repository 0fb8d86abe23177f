from __future__ import annotations

import cv2
import numpy as np
import pytest

from tasks.render import I420Canvas

GREY = (128, 128, 128)


def _canvas(height: int = 64, width: int = 96) -> tuple[np.ndarray, I420Canvas]:
    image = cv2.cvtColor(np.full((height, width, 3), GREY, np.uint8), cv2.COLOR_BGR2YUV_I420)
    return image, I420Canvas(image)


@pytest.mark.parametrize("colour", [(0, 140, 255), (255, 200, 0), (80, 220, 80), (0, 0, 0), (255, 255, 255)])
def test_shapes_come_out_in_their_bgr_colour(colour):
    image, canvas = _canvas()
    canvas.rectangle((16, 16), (47, 47), colour, -1)
    bgr = cv2.cvtColor(image, cv2.COLOR_YUV2BGR_I420).astype(int)
    np.testing.assert_allclose(bgr[20:44, 20:44], np.broadcast_to(colour, (24, 24, 3)), atol=6)
    np.testing.assert_allclose(bgr[:, 60:], np.broadcast_to(GREY, (64, 36, 3)), atol=2)  # untouched


@pytest.mark.parametrize(
    ("draw", "region"),
    [
        (lambda canvas: canvas.line((10, 32), (80, 32), (0, 140, 255), 4), (slice(30, 35), slice(10, 81))),
        (lambda canvas: canvas.circle((48, 32), 8, (255, 200, 0)), (slice(24, 41), slice(40, 57))),
        (lambda canvas: canvas.text("ABC", (10, 50), 1.0, (255, 255, 255), 2), (slice(28, 51), slice(10, 70))),
    ],
)
def test_lines_circles_and_text_land_where_they_are_drawn(draw, region):
    image, canvas = _canvas()
    draw(canvas)
    changed = np.abs(cv2.cvtColor(image, cv2.COLOR_YUV2BGR_I420).astype(int) - GREY).sum(axis=2) > 30
    assert changed[region].mean() > 0.3
    outside = changed.copy()
    # Anti-aliasing and the half-size colour planes reach a few pixels beyond the shape.
    rows, columns = region
    outside[rows.start - 5 : rows.stop + 5, columns.start - 5 : columns.stop + 5] = False
    assert not outside.any()


def test_line_scale_follows_the_shorter_side():
    sizes = [(480, 848), (1080, 1920), (1920, 1080), (2160, 3840)]
    assert [I420Canvas(np.zeros((h * 3 // 2, w), np.uint8)).line_scale for h, w in sizes] == [1, 2, 2, 4]


def test_a_still_keeps_the_frame_with_its_caption_at_the_frame_size(tmp_path):
    from tasks.render import Still, save_still

    image, _ = _canvas(64, 96)
    path = save_still(image, Still(3, "finding-1.jpg", "1. Caption"), tmp_path / "finding-1.jpg", (95, 63))
    still = cv2.imread(str(path))
    assert still.shape == (63, 95, 3)
    changed = np.abs(still.astype(int) - GREY).sum(axis=2) > 30
    assert changed[40:, 48:].any() and not changed[:20, :40].any()  # the caption sits bottom-right
    assert sorted(p.name for p in tmp_path.iterdir()) == ["finding-1.jpg"]


def test_the_overlay_shows_the_run_average_once_a_clean_turn_has_ended():
    from tasks.config import load_config
    from tasks.frontal import FrameAngles
    from tasks.render import draw_turn
    from tasks.turns import analyze_turns

    times = np.arange(150) / 30
    lean = 30 * np.sin(np.pi * times)
    nothing = np.zeros_like(lean)
    found = analyze_turns(
        times, FrameAngles(lean, 1.4 * lean, 1.4 * lean, nothing, nothing, "behind"), load_config().metrics
    )
    image, canvas = _canvas(540, 960)
    after_first = next(t for t in found.turns if t.certain).end_frame + 1
    draw_turn(canvas, found, after_first, 9)
    assert (image != _canvas(540, 960)[0]).any()
