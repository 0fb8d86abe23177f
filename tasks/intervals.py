"""Resampling statistics behind the score intervals: block bootstrap and summary draws.

Everything here is deterministic: random draws come from generators seeded with constants,
so the same analysis gives the same intervals on every run and machine.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

# A 90% two-sided interval of a normal distribution is this many standard deviations wide on
# each side; per-turn intervals are read as such intervals when they are combined.
Z_90 = 1.6448536269514722
_SEED = 20261205


def block_length(series: np.ndarray) -> int:
    """Frames over which `series` stays correlated with itself: the first lag at which its
    autocorrelation falls below 1/e, at most a third of its length, at least 1."""
    values = series[~np.isnan(series)]
    values = values - values.mean() if len(values) else values
    count = len(values)
    if count < 4 or not np.any(values):
        return 1
    autocorrelation = np.correlate(values, values, "full")[count - 1 :] / float(values @ values)
    below = np.flatnonzero(autocorrelation < np.exp(-1))
    longest = max(1, count // 3)
    return int(min(below[0], longest)) if len(below) else longest


def block_resamples(count: int, block: int, samples: int) -> np.ndarray:
    """`(samples, count)` row indices of a moving-block bootstrap of `count` rows: each
    resample joins blocks of `block` consecutive rows, starting anywhere, cut to `count`."""
    block = max(1, min(block, count))
    blocks = -(-count // block)
    starts = np.random.default_rng(_SEED).integers(0, count - block + 1, size=(samples, blocks))
    return (starts[:, :, None] + np.arange(block)).reshape(samples, -1)[:, :count]


def small_sample_factor(blocks: float) -> float:
    """How much wider a 90% interval must be when its spread is estimated from this many
    independent blocks: Student's t over the normal quantile (1 with many blocks)."""
    # `scipy.special` is loaded with `scipy.ndimage` already; `scipy.stats.t` would cost a
    # fresh process about half a second of imports for the same quantile.
    from scipy.special import stdtrit

    degrees = max(float(blocks) - 1, 1.0)
    return float(stdtrit(degrees, 0.95) / Z_90)


def draw_interval(
    statistic: Callable[[np.ndarray], np.ndarray],
    centres: Sequence[float],
    half_widths: Sequence[float],
    samples: int,
) -> tuple[float, float]:
    """A 90% interval of `statistic` over several scores, each known to within its own 90%
    interval: scores are drawn independently from normal distributions with those intervals,
    and the 5th and 95th percentiles of the statistic over the draws are returned.

    Args:
        statistic: From `(samples, scores)` draws to `(samples,)` values.
        centres: Each score.
        half_widths: Each score's 90% half-width.
        samples: Number of draws.
    """
    sigmas = np.asarray(half_widths, dtype=np.float64) / Z_90
    rng = np.random.default_rng(_SEED)
    draws = np.asarray(centres, dtype=np.float64) + rng.standard_normal((samples, len(centres))) * sigmas
    values = statistic(draws)
    low, high = np.percentile(values, [5, 95])
    return float(low), float(high)
