"""Per-frame series: runs of frames, and short gaps filled between known frames."""

from __future__ import annotations

from typing import Any

import numpy as np


def runs_of(mask: np.ndarray[Any, Any]) -> list[tuple[int, int]]:
    """`(start, stop)` index pairs of each run of True in a 1-D boolean array."""
    padded = np.concatenate([[False], mask, [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))


def fill_short_gaps(values: np.ndarray[Any, Any], max_gap: int) -> np.ndarray[Any, Any]:
    """Linearly interpolate NaN rows in gaps of at most `max_gap` rows between known rows."""
    filled = values.copy()
    known = ~np.isnan(values[:, 0])
    for start, stop in runs_of(~known):
        if start == 0 or stop == len(values) or stop - start > max_gap:
            continue
        weights = np.arange(1, stop - start + 1)[:, None] / (stop - start + 1)
        filled[start:stop] = values[start - 1] * (1 - weights) + values[stop] * weights
    return filled
