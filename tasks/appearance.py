"""What a person looks like, cheaply: a colour histogram of the clothing in their box.

The tracking step keeps one per detection, from the downscaled frames the detector sees, and
the skier's choice compares them to tell the skier from other people across breaks in a track.
"""

from __future__ import annotations

import cv2
import numpy as np

# Hue x saturation bins for coloured pixels, and value bins for the grey ones (black, grey and
# white clothing, whose hue is noise).
HUE_BINS, SATURATION_BINS, VALUE_BINS = 12, 3, 4
HISTOGRAM_SIZE = HUE_BINS * SATURATION_BINS + VALUE_BINS
# OpenCV's 8-bit HSV: hue in 0-179, saturation and value in 0-255. Below these a pixel is grey.
_MIN_SATURATION, _MIN_VALUE = 50, 40
# The clothing part of a person box, as fractions of its width and height: the torso and thighs,
# leaving out the snow beside the legs, the skis and most of the background around the head.
_CLOTHING_X = (0.2, 0.8)
_CLOTHING_Y = (0.15, 0.7)


def clothing_histogram(image: np.ndarray, box: np.ndarray) -> np.ndarray:
    """The normalised colour histogram of the clothing area of `box` in a BGR `image`.

    Args:
        image: A BGR frame.
        box: `x1, y1, x2, y2` in pixels of `image`.

    Returns:
        `HISTOGRAM_SIZE` values summing to 1, or all NaN when the area holds no pixel.
    """
    x1, y1, x2, y2 = (float(v) for v in box)
    width, height = x2 - x1, y2 - y1
    left, right = _clip(x1 + width * _CLOTHING_X[0], x1 + width * _CLOTHING_X[1], image.shape[1])
    top, bottom = _clip(y1 + height * _CLOTHING_Y[0], y1 + height * _CLOTHING_Y[1], image.shape[0])
    if right <= left or bottom <= top:
        return np.full(HISTOGRAM_SIZE, np.nan)
    hsv = cv2.cvtColor(np.ascontiguousarray(image[top:bottom, left:right]), cv2.COLOR_BGR2HSV).reshape(-1, 3)
    hue, saturation, value = (hsv[:, i].astype(np.int64) for i in range(3))
    coloured = (saturation >= _MIN_SATURATION) & (value >= _MIN_VALUE)
    colour_bin = (hue * HUE_BINS // 180) * SATURATION_BINS + (
        (saturation - _MIN_SATURATION) * SATURATION_BINS // (256 - _MIN_SATURATION)
    )
    grey_bin = HUE_BINS * SATURATION_BINS + value * VALUE_BINS // 256
    counts = np.bincount(np.where(coloured, colour_bin, grey_bin), minlength=HISTOGRAM_SIZE)
    return counts / counts.sum()


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Bhattacharyya coefficient of two normalised histograms: 1 for the same colours, 0 for
    none in common; NaN when either is unknown."""
    return float(np.sum(np.sqrt(a * b)))


def signature(histograms: np.ndarray) -> np.ndarray:
    """The mean of a track's histograms (rows), ignoring unknown ones; NaN when none is known."""
    known = histograms[~np.isnan(histograms).any(axis=1)]
    if not len(known):
        return np.full(histograms.shape[1] if histograms.ndim == 2 else HISTOGRAM_SIZE, np.nan)
    return known.mean(axis=0)


def _clip(start: float, end: float, size: int) -> tuple[int, int]:
    return max(0, int(round(start))), min(size, int(round(end)))
