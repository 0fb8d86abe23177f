"""How far the skis are tipped compared with how far the body leans in a turn (angulation).

A skier can tip the skis onto their edges in two ways: by leaning the whole body into the
turn (inclination, "banking"), or by moving the knees and hips into the turn while the upper
body stays more upright (angulation). With angulation the shins tip further than the body
leans; leaning in with the whole body, they tip about as far. Per complete turn,
`angulation_deg` is the mean, over the edged part of the turn (the same frames the edge
similarity uses), of the two shins' mean tilt minus the inclination, both measured towards
the turn's inside: positive when the skis are tipped further than the body leans.

Its 90% interval is computed as the edge similarity's is (see `tasks/edges.py`): a
moving-block bootstrap over the turn's frames widened by Student's t for the number of
blocks, plus the spread between the second keypoint model's views, combined in quadrature
and multiplied by `metrics.interval_scale`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tasks.config import MetricsConfig
from tasks.edges import edged_frames
from tasks.frontal import FrameAngles
from tasks.intervals import block_length, block_resamples, small_sample_factor


@dataclass(frozen=True)
class Angulation:
    """A turn's angulation in degrees and the ends of its 90% interval."""

    value: float
    low: float
    high: float


def estimate_angulation(
    span: slice, apex: int, direction: str, angles: FrameAngles, config: MetricsConfig
) -> Angulation | None:
    """How much further the shins tip than the body leans over the edged part of a turn.

    Args:
        span: The turn's frames.
        apex: The frame of the turn's largest lean (an index into the whole clip).
        direction: `left` or `right`, the side the turn leans to.
        angles: The per-frame angles of the clip.
        config: The metrics settings (`edged_fraction`, `bootstrap_samples`, `interval_scale`).

    Returns:
        The angulation with its interval, or None when fewer than two edged frames have a lean
        and both shin angles.
    """
    inward = 1.0 if direction == "right" else -1.0
    lean = angles.inclination_deg[span]
    leaning = edged_frames(np.abs(lean), apex - span.start, config.edged_fraction)
    gap = inward * ((angles.left_edge_deg[span] + angles.right_edge_deg[span]) / 2 - lean)
    usable = leaning & ~np.isnan(gap)
    count = int(usable.sum())
    if count < 2:
        return None
    value = float(gap[usable].mean())
    block = block_length(gap[usable])
    rows = block_resamples(len(gap), block, config.bootstrap_samples)
    picked = usable[rows]
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(picked, np.nan_to_num(gap)[rows], 0.0).sum(axis=1) / picked.sum(axis=1)
    frames_variance = float(np.nanvar(means)) * small_sample_factor(count / block) ** 2
    variance = frames_variance + _views_variance(angles, span, leaning, lean, inward)
    half_width = config.interval_scale * float(np.sqrt(variance))
    return Angulation(value, value - half_width, value + half_width)


def _views_variance(angles: FrameAngles, span: slice, leaning: np.ndarray, lean: np.ndarray, inward: float) -> float:
    """Variance of the angulation over the second keypoint model's views, each taken alone."""
    if angles.view_left_edge_deg is None or angles.view_right_edge_deg is None:
        return 0.0
    values = []
    for left, right in zip(angles.view_left_edge_deg[span].T, angles.view_right_edge_deg[span].T):
        gap = inward * ((left + right) / 2 - lean)
        usable = leaning & ~np.isnan(gap)
        if usable.sum() >= 2:
            values.append(gap[usable].mean())
    return float(np.var(values)) if len(values) > 1 else 0.0
