"""Edge similarity of one turn, its parts, and the interval within which each is known.

A turn's scores rest on a few dozen frames of two noisy leg angles, so each comes with an
interval computed from the analysis itself (see "Score intervals" in the README):

- frames: a moving-block bootstrap over the turn's frames (blocks as long as the
  left-right difference stays correlated with itself), widened by Student's t for the
  number of independent blocks, so a turn with few edged frames gets a wide interval;
- models: the spread of the scores computed from each view of the second keypoint model
  alone;
- hidden legs: the variance is divided by the share of edged frames whose legs were seen
  and on which the two keypoint models agree.

The standard deviations combine in quadrature and are multiplied by `metrics.interval_scale`,
calibrated on the sample clips so that a re-encoded, rotated, resized or trimmed copy of a
clip scores inside the interval of the original at least 90% of the time.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from tasks.config import MetricsConfig
from tasks.frontal import FrameAngles
from tasks.intervals import block_length, block_resamples, small_sample_factor

# The most of a turn's edged frames counted as unseen when widening its interval, so that a
# turn whose legs were hidden throughout gets a wide interval rather than an infinite one.
_MOST_UNSEEN = 0.9


@dataclass(frozen=True)
class EdgeScores:
    """A turn's edge similarity (0-100) and its parts, or one bound of each."""

    edge_similarity: float
    edge_agreement_score: float
    edge_difference_deg: float
    edge_lag_ms: float
    edge_lag_score: float

    @classmethod
    def from_array(cls, values: np.ndarray) -> EdgeScores:
        return cls(*(float(value) for value in values))

    def as_array(self) -> np.ndarray:
        return np.array([getattr(self, field.name) for field in fields(self)])


PARTS = tuple(field.name for field in fields(EdgeScores))
_LOWEST = np.array([0.0, 0.0, 0.0, -np.inf, 0.0])
_HIGHEST = np.array([100.0, 100.0, np.inf, np.inf, 100.0])


@dataclass(frozen=True)
class EdgeEstimate:
    """A turn's scores with their intervals, and what they rest on.

    Attributes:
        scores: The scores.
        low: The lower end of each score's interval.
        high: The upper end.
        edged_frames: Edged frames with both leg angles.
        uncertain_reason: Why the similarity's interval is wider than
            `metrics.uncertain_half_width`, in words; None when it is not.
    """

    scores: EdgeScores
    low: EdgeScores
    high: EdgeScores
    edged_frames: int
    uncertain_reason: str | None


def estimate_edges(
    span: slice, apex: int, angles: FrameAngles, frame_s: float, config: MetricsConfig
) -> EdgeEstimate | None:
    """Score the turn whose frames are `span` (apex at frame `apex`), with intervals.

    Returns:
        None when fewer than two edged frames have both leg angles.
    """
    left, right = angles.left_edge_deg[span], angles.right_edge_deg[span]
    leaning = edged_frames(np.abs(angles.inclination_deg[span]), apex - span.start, config.edged_fraction)
    edged = leaning & ~np.isnan(left) & ~np.isnan(right)
    if edged.sum() < 2:
        return None
    scores = edge_scores(left, right, edged, frame_s, config)
    block = block_length((left - right)[edged])
    resampled = edge_scores(
        left, right, edged, frame_s, config, block_resamples(len(left), block, config.bootstrap_samples)
    )
    doubt = _Doubt(
        frames=np.nanvar(resampled, axis=0) * small_sample_factor(edged.sum() / block) ** 2,
        models=_views_variance(angles, span, leaning, frame_s, config),
        **_unreliable(angles, span, leaning, edged),
    )
    half_width = config.interval_scale * np.sqrt(doubt.variance)
    centre = scores.as_array()
    low = np.clip(centre - half_width, _LOWEST, _HIGHEST)
    high = np.clip(centre + half_width, _LOWEST, _HIGHEST)
    reason = doubt.reason(int(edged.sum())) if half_width[0] > config.uncertain_half_width else None
    return EdgeEstimate(scores, EdgeScores.from_array(low), EdgeScores.from_array(high), int(edged.sum()), reason)


@dataclass(frozen=True)
class _Doubt:
    """The sources of a turn's uncertainty: the variance of each score over resampled frames
    and over the keypoint views, and the shares of its leaning frames whose legs were unseen
    or disputed by the two keypoint models."""

    frames: np.ndarray
    models: np.ndarray
    unseen: float
    disputed: float

    @property
    def variance(self) -> np.ndarray:
        """Frames and views in quadrature, over the share of leaning frames whose legs count."""
        return (self.frames + self.models) / (1 - min(self.unseen + self.disputed, _MOST_UNSEEN))

    def reason(self, edged_count: int) -> str:
        """The largest source of doubt about the similarity, in words."""
        unreliable = self.variance[0] - self.frames[0] - self.models[0]
        unseen_part = self.unseen / (self.unseen + self.disputed) if self.unseen + self.disputed else 0.0
        sources = {
            f"too few edged frames ({edged_count}) for the legs' wobble": self.frames[0],
            "the pose models disagree about the legs": self.models[0] + unreliable * (1 - unseen_part),
            f"legs hidden in {self.unseen:.0%} of the edged frames": unreliable * unseen_part,
        }
        return max(sources, key=lambda source: sources[source])


def edge_scores(
    left: np.ndarray,
    right: np.ndarray,
    edged: np.ndarray,
    frame_s: float,
    config: MetricsConfig,
    rows: np.ndarray | None = None,
):
    """Edge similarity, 0-100, from how well the two edge angles agree and how far apart in
    time they build; with `rows`, the same for each resample of the turn's frames.

    Agreement: the size of the mean left-right difference over the edged frames, scoring
    100 at 0 degrees and 0 at `edge_difference_scale_deg`. The mean keeps its sign until the
    end, so the pose's wobble averages out instead of adding up, while a leg held at another
    angle all through the turn costs its full difference. Lag: the shift (within `max_lag_ms`)
    that best aligns the two edge angle curves over the turn, positive when the right leg
    follows the left; it scores 100 up to one frame and falls to 0 at `lag_scale_ms` beyond.

    Args:
        left: The left edge angle over the turn, degrees, NaN where unknown.
        right: The right edge angle.
        edged: Frames of the edged part with both angles.
        frame_s: Seconds between frames.
        config: The metrics settings.
        rows: `(resamples, frames)` indices into the turn's frames, or None for the turn as is.

    Returns:
        The `EdgeScores` without `rows`; with them, a `(resamples, len(PARTS))` array (rows
        with fewer than two edged frames are NaN).
    """
    single = rows is None
    rows = np.arange(len(left))[None] if rows is None else rows
    picked = edged[rows]
    counts = picked.sum(axis=1)
    sums = np.where(picked, np.nan_to_num(left - right)[rows], 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        difference = np.where(counts >= 2, np.abs(sums) / counts, np.nan)
    agreement = 100 * np.clip(1 - difference / config.edge_difference_scale_deg, 0, 1)
    lag_frames = best_lags(_fill(left), _fill(right), round(config.max_lag_ms / 1000 / frame_s), rows)
    # A lag within one frame cannot be told apart from the pose's own wobble.
    beyond_a_frame_ms = np.maximum(0.0, np.abs(lag_frames) - 1) * frame_s * 1000
    lag_score = 100 * np.clip(1 - beyond_a_frame_ms / config.lag_scale_ms, 0, 1)
    similarity = config.agreement_weight * agreement + (1 - config.agreement_weight) * lag_score
    parts = np.column_stack([similarity, agreement, difference, lag_frames * frame_s * 1000, lag_score])
    parts[np.isnan(difference)] = np.nan
    return EdgeScores.from_array(parts[0]) if single else parts


def edged_frames(lean: np.ndarray, apex: int, fraction: float) -> np.ndarray:
    """Mask of the frames around `apex` leaning at least `fraction` of the lean there.

    Frames without a value (NaN) do not end the edged part; a lean below the threshold does.
    """
    mask = np.zeros(len(lean), dtype=bool)
    threshold = fraction * lean[apex]
    for step in (-1, 1):
        frame = apex
        while 0 <= frame < len(lean) and not lean[frame] < threshold:
            mask[frame] = True
            frame += step
    return mask


def best_lags(left: np.ndarray, right: np.ndarray, max_lag: int, rows: np.ndarray) -> np.ndarray:
    """Per resample of frames, the shift of `right` against `left` (frames) with the highest
    correlation; positive = right later.

    The correlation at a shift pairs each resampled frame of `left` with the frame that much
    later in `right`. The best whole-frame shift is refined to a fraction of a frame by a
    parabola through the correlations either side of it, so that the lag does not jump a
    whole frame when the pose wobbles. Ties go to the smaller shift.

    Args:
        left: The left edge angle over the turn, without gaps.
        right: The right edge angle.
        max_lag: Largest shift tried, in frames.
        rows: `(resamples, frames)` frame indices.

    Returns:
        `(resamples,)` lags in frames; 0 where no shift can be measured.
    """
    left, right = left - left.mean(), right - right.mean()
    lags = np.arange(-max_lag, max_lag + 1)
    scores = np.stack([_correlations(left, right, lag, rows) for lag in lags], axis=1)
    order = np.argsort(np.abs(lags), kind="stable")
    ranked = np.where(np.isnan(scores[:, order]), -np.inf, scores[:, order])
    best = order[np.argmax(ranked, axis=1)]
    measured = np.isfinite(ranked.max(axis=1))
    at = np.arange(len(rows))
    before = np.where(best > 0, scores[at, np.maximum(best - 1, 0)], np.nan)
    after = np.where(best < len(lags) - 1, scores[at, np.minimum(best + 1, len(lags) - 1)], np.nan)
    middle = scores[at, best]
    curvature = before - 2 * middle + after
    with np.errstate(invalid="ignore", divide="ignore"):
        step = np.where(curvature < 0, 0.5 * (before - after) / curvature, 0.0)
    refined = lags[best] + np.nan_to_num(step)
    return np.where(measured, refined, 0.0)


def _correlations(left: np.ndarray, right: np.ndarray, lag: int, rows: np.ndarray) -> np.ndarray:
    """Per resample, the correlation of `left` at the resampled frames with `right` `lag`
    frames later; NaN where fewer than three frames pair up."""
    later = rows + lag
    valid = (later >= 0) & (later < len(right))
    a = np.where(valid, left[rows], 0.0)
    b = np.where(valid, right[np.clip(later, 0, len(right) - 1)], 0.0)
    norms = np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1)) + 1e-9
    correlation = (a * b).sum(axis=1) / norms
    return np.where(valid.sum(axis=1) >= 3, correlation, np.nan)


def _views_variance(
    angles: FrameAngles, span: slice, leaning: np.ndarray, frame_s: float, config: MetricsConfig
) -> np.ndarray:
    """Variance of each score over the second keypoint model's views, each scored alone."""
    if angles.view_left_edge_deg is None or angles.view_right_edge_deg is None:
        return np.zeros(len(PARTS))
    scored = []
    for left, right in zip(angles.view_left_edge_deg[span].T, angles.view_right_edge_deg[span].T):
        edged = leaning & ~np.isnan(left) & ~np.isnan(right)
        if edged.sum() >= 2:
            scored.append(edge_scores(left, right, edged, frame_s, config).as_array())
    return np.var(scored, axis=0) if len(scored) > 1 else np.zeros(len(PARTS))


def _unreliable(angles: FrameAngles, span: slice, leaning: np.ndarray, edged: np.ndarray) -> dict[str, float]:
    """Shares of the leaning frames whose legs were unseen (no angles, bridged, or missed by
    the second model) and of those on which the two keypoint models disagree."""
    count = max(int(leaning.sum()), 1)
    hidden = ~edged | _flag(angles.legs_hidden, span, len(edged))
    disputed = ~hidden & _flag(angles.models_disagree, span, len(edged))
    return {"unseen": float((leaning & hidden).sum() / count), "disputed": float((leaning & disputed).sum() / count)}


def _flag(values: np.ndarray | None, span: slice, length: int) -> np.ndarray:
    return np.zeros(length, dtype=bool) if values is None else values[span]


def _fill(values: np.ndarray) -> np.ndarray:
    valid = ~np.isnan(values)
    if not valid.any():
        return np.zeros(len(values))
    return np.interp(np.arange(len(values)), np.flatnonzero(valid), values[valid])
