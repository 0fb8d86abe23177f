from __future__ import annotations

import numpy as np
import pytest

from tasks import keypoint_models, models
from tasks.config import load_config
from tasks.errors import ModelMissingError
from tasks.models import keypoints_onnx, require_model


@pytest.mark.parametrize(
    ("height", "width", "scale", "pad", "why"),
    [
        (256, 256, 1.0, (0, 0), "a crop of the input size is used as it is"),
        (384, 384, 2 / 3, (0, 0), "a square crop is scaled down to fill the input"),
        (100, 200, 1.28, (0, 64), "a wide crop is padded above and below, evenly"),
        (200, 101, 1.28, (63, 0), "an odd remainder puts the extra pixel on the far side"),
    ],
)
def test_letterbox(height, width, scale, pad, why):
    image, got_scale, got_pad = keypoint_models._letterbox(np.full((height, width, 3), 255, np.uint8), 256)
    assert image.shape == (3, 256, 256) and image.dtype == np.float32
    assert got_scale == pytest.approx(scale), why
    assert tuple(got_pad) == pad, why
    assert image[:, pad[1] + 5, pad[0] + 5].tolist() == [1.0, 1.0, 1.0]
    if pad != (0, 0):
        assert image[:, 0, 0] == pytest.approx(114 / 255)


def candidate(box: tuple[float, float, float, float], confidence: float) -> list[float]:
    """One output row: box centre and size, confidence, then 17 keypoints at the centre."""
    return [*box, confidence, *[box[0], box[1], 0.9] * 17]


@pytest.mark.parametrize(
    ("rows", "kept", "why"),
    [
        ([], [], "nobody"),
        ([candidate((50, 50, 20, 40), 0.2)], [], "too unsure"),
        (
            [candidate((50, 50, 20, 40), 0.6), candidate((51, 50, 20, 40), 0.9)],
            [0.9],
            "two boxes on one person are one, the more confident",
        ),
        (
            [candidate((50, 50, 20, 40), 0.6), candidate((150, 50, 20, 40), 0.9)],
            [0.9, 0.6],
            "two people apart are both kept, most confident first",
        ),
    ],
)
def test_people(rows, kept, why):
    people = keypoint_models._people(np.array(rows, dtype=np.float32).reshape(-1, 56))
    assert people[:, 4].tolist() == pytest.approx(kept), why
    if kept:
        assert people[0, :4].tolist() == pytest.approx([140, 30, 160, 70] if len(kept) == 2 else [41, 30, 61, 70])


@pytest.fixture(scope="module")
def crops(media) -> list[np.ndarray]:
    """Square crops of the indoor clip's frames, as the pose step cuts them: the skier
    whole, the skier's legs only, an empty corner, and one mirrored."""
    from tasks.pose import square_crop
    from tasks.video import iter_frames, probe_video

    info = probe_video(media / "indoor_carpet_front.mp4")
    cut = []
    for frame in iter_frames(info, pixel_format="rgb24", step=60):
        height, width = frame.image.shape[:2]
        for window in ([width / 2, height / 2, height], [width / 2, height * 0.8, height / 3], [20, 20, 40]):
            cut.append(square_crop(frame.image, np.array(window, dtype=float), 384)[0])
        cut.append(np.ascontiguousarray(cut[-3][:, ::-1]))
    return cut


def test_onnx_runtime_gives_pytorchs_points(crops):
    """The exported model in ONNX Runtime finds the same people, points and confidences as
    the checkpoint in PyTorch through Ultralytics."""
    checkpoint = require_model(load_config().models, "keypoints")
    torch_model = keypoint_models.load_keypoint_model(checkpoint, 256, "cpu")
    onnx_model = keypoint_models.load_onnx_keypoint_model(keypoints_onnx(checkpoint), 256, 1)
    expected, expected_confidence = torch_model(crops)
    got, confidence = onnx_model(crops)
    found = ~np.isnan(expected[:, 0, 0])
    assert 0.3 < found.mean() < 1, "some crops show the skier and some nobody"
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    np.testing.assert_allclose(got[found], expected[found], atol=0.01 / 384)  # a hundredth of a crop pixel
    np.testing.assert_allclose(confidence, expected_confidence, atol=1e-4)


def test_onnx_runtime_points_do_not_depend_on_its_thread_count(crops):
    """A run gets as many threads as its slot has cores; the points must be the same on any."""
    path = keypoints_onnx(require_model(load_config().models, "keypoints"))
    one, one_confidence = keypoint_models.load_onnx_keypoint_model(path, 256, 1)(crops)
    three, three_confidence = keypoint_models.load_onnx_keypoint_model(path, 256, 3)(crops)
    np.testing.assert_array_equal(three, one)
    np.testing.assert_array_equal(three_confidence, one_confidence)


def test_the_onnx_file_is_made_once_and_named_by_the_checkpoint(tmp_path):
    checkpoint = tmp_path / "yolo11n-pose.pt"
    checkpoint.write_bytes(require_model(load_config().models, "keypoints").read_bytes())
    made = keypoints_onnx(checkpoint)
    assert made.parent == tmp_path and made.suffix == ".onnx" and made.stat().st_size > 1_000_000
    first = made.stat().st_mtime_ns
    assert keypoints_onnx(checkpoint) == made and made.stat().st_mtime_ns == first, "an existing export is reused"
    checkpoint.write_bytes(checkpoint.read_bytes() + b"\0")
    assert keypoints_onnx(checkpoint) != made, "a changed checkpoint gets its own export"
    assert len(list(tmp_path.iterdir())) == 3, "nothing else is left beside them"


def test_an_onnx_file_that_cannot_be_written_names_the_fix(tmp_path):
    checkpoint = tmp_path / "yolo11n-pose.pt"
    checkpoint.write_bytes(require_model(load_config().models, "keypoints").read_bytes())
    # A folder where the file should go (file permissions do not stop root, who runs CI).
    models._onnx_path(checkpoint).mkdir()
    with pytest.raises(ModelMissingError, match="poser models fetch"):
        keypoints_onnx(checkpoint)
