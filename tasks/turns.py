"""Turns from the inclination signal, their edge similarity, and the run's summary and rhythm."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np

from tasks.config import MetricsConfig
from tasks.frontal import FrameAngles


@dataclass(frozen=True)
class Turn:
    """One turn, from a transition (the centre of mass crossing over the feet) to the next.

    Frames are indexed from the start of the analysed part; `end_frame` is the first frame of
    the next turn. Edge-similarity fields are None for partial turns and turns without pose.
    """

    index: int
    direction: str
    partial: bool
    start_frame: int
    apex_frame: int
    end_frame: int
    start_s: float
    apex_s: float
    end_s: float
    duration_s: float
    peak_inclination_deg: float
    edge_similarity: float | None = None
    edge_agreement_score: float | None = None
    edge_difference_deg: float | None = None
    edge_lag_ms: float | None = None
    edge_lag_score: float | None = None

    def as_dict(self) -> dict:
        return {key: _rounded(value) for key, value in asdict(self).items()}


@dataclass(frozen=True)
class TechniqueMetrics:
    """Everything the metrics step found: per-frame angles, turns, summary and rhythm."""

    angles: FrameAngles
    turns: tuple[Turn, ...]
    turn_of_frame: np.ndarray
    summary: dict
    rhythm: dict

    def as_dict(self) -> dict:
        return {
            "camera_side": self.angles.camera_side,
            "plane": "image",
            "turns": [turn.as_dict() for turn in self.turns],
            "summary": self.summary,
            "rhythm": self.rhythm,
        }


def analyse_turns(times: np.ndarray, angles: FrameAngles, config: MetricsConfig) -> TechniqueMetrics:
    """Segment the run into turns, score each complete turn, and summarise."""
    turns = segment_turns(times, angles.inclination_deg, config)
    turns = tuple(turn if turn.partial else score_turn(turn, times, angles, config) for turn in turns)
    turn_of_frame = np.full(len(times), -1)
    for turn in turns:
        turn_of_frame[turn.start_frame : turn.end_frame] = turn.index
    return TechniqueMetrics(angles, turns, turn_of_frame, summarize(turns, config), rhythm(turns))


def find_transitions(inclination: np.ndarray, hysteresis_deg: float) -> list[int]:
    """Frames where the lean changes side, counted once it reaches `hysteresis_deg` on the new side.

    The transition is placed at the first frame on the new side. Frames without a value
    (NaN) neither start nor end a side.
    """
    transitions: list[int] = []
    side = 0
    crossed_at: int | None = None
    for frame, value in enumerate(inclination):
        if np.isnan(value):
            continue
        sign = 1 if value > 0 else -1
        if side == 0:
            side = sign if abs(value) >= hysteresis_deg else 0
        elif sign == side:
            crossed_at = None
        else:
            crossed_at = frame if crossed_at is None else crossed_at
            if abs(value) >= hysteresis_deg:
                transitions.append(crossed_at)
                side, crossed_at = sign, None
    return transitions


def segment_turns(times: np.ndarray, inclination: np.ndarray, config: MetricsConfig) -> tuple[Turn, ...]:
    """Turns between transitions; too short or too shallow complete turns merge into their neighbours."""
    transitions = find_transitions(inclination, config.hysteresis_deg)
    while True:
        turns = _turns_between(times, inclination, transitions)
        weak = [
            turn for turn in turns
            if not turn.partial
            and (turn.duration_s < config.min_turn_s or abs(turn.peak_inclination_deg) < config.min_peak_deg)
        ]
        if not weak:
            return turns
        weakest = min(weak, key=lambda turn: abs(turn.peak_inclination_deg))
        transitions = [frame for frame in transitions if frame not in (weakest.start_frame, weakest.end_frame)]


def score_turn(turn: Turn, times: np.ndarray, angles: FrameAngles, config: MetricsConfig) -> Turn:
    """Edge similarity of a turn, 0-100, from how well the two edge angles agree and how far apart in time they build.

    Agreement: the mean absolute left-right difference over the edged part of the turn
    (frames around the apex leaning at least `edged_fraction` of the peak), scoring 100 at
    0 degrees and 0 at `edge_difference_scale_deg`. Lag: the shift (within `max_lag_ms`) that
    best aligns the two edge angle curves over the turn, positive when the right leg follows
    the left; it scores 100 up to one frame and falls to 0 at `lag_scale_ms` beyond that.
    """
    span = slice(turn.start_frame, turn.end_frame)
    left, right = angles.left_edge_deg[span], angles.right_edge_deg[span]
    edged = edged_frames(np.abs(angles.inclination_deg[span]), turn.apex_frame - turn.start_frame, config.edged_fraction)
    edged &= ~np.isnan(left) & ~np.isnan(right)
    if edged.sum() < 2:
        return turn
    difference = float(np.mean(np.abs(left - right)[edged]))
    agreement = 100 * float(np.clip(1 - difference / config.edge_difference_scale_deg, 0, 1))
    interval = float(np.median(np.diff(times))) if len(times) > 1 else 1.0
    lag_frames = best_lag(_fill(left), _fill(right), round(config.max_lag_ms / 1000 / interval))
    lag_ms = lag_frames * interval * 1000
    # A lag within one frame cannot be told apart from the pose's own wobble.
    beyond_a_frame = max(0.0, abs(lag_frames) - 1) * interval * 1000
    lag_score = 100 * float(np.clip(1 - beyond_a_frame / config.lag_scale_ms, 0, 1))
    similarity = config.agreement_weight * agreement + (1 - config.agreement_weight) * lag_score
    return replace(
        turn,
        edge_similarity=similarity,
        edge_agreement_score=agreement,
        edge_difference_deg=difference,
        edge_lag_ms=lag_ms,
        edge_lag_score=lag_score,
    )


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


def best_lag(left: np.ndarray, right: np.ndarray, max_lag: int) -> float:
    """The shift of `right` against `left` (frames) with the highest correlation; positive = right later.

    The best whole-frame shift is refined to a fraction of a frame by a parabola through the
    correlations either side of it, so that the lag does not jump a whole frame when the
    pose wobbles.
    """
    left, right = left - left.mean(), right - right.mean()
    scores = {lag: _correlation(left, right, lag) for lag in range(-max_lag, max_lag + 1)}
    scores = {lag: score for lag, score in scores.items() if score is not None}
    if not scores:
        return 0.0
    best = max(sorted(scores, key=abs), key=scores.get)
    before, at, after = scores.get(best - 1), scores[best], scores.get(best + 1)
    if before is None or after is None or before - 2 * at + after >= 0:
        return float(best)
    return best + 0.5 * (before - after) / (before - 2 * at + after)


def _correlation(left: np.ndarray, right: np.ndarray, lag: int) -> float | None:
    a, b = (left[: len(left) - lag], right[lag:]) if lag >= 0 else (left[-lag:], right[: len(right) + lag])
    if len(a) < 3:
        return None
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-9))


def summarize(turns: tuple[Turn, ...], config: MetricsConfig) -> dict:
    """Overall: the best mean of `summary_window` consecutive complete turns. Left and right: the
    best rolling median of `side_window` consecutive turns of that side. Null with a reason when
    there are too few."""
    scored = [turn for turn in turns if turn.edge_similarity is not None]
    summary = {
        "complete_turns": len(scored),
        "mean_edge_similarity": _rounded(float(np.mean([t.edge_similarity for t in scored]))) if scored else None,
    }
    summary.update(_best_window("overall", [t.edge_similarity for t in scored], config.summary_window, np.mean, "turns"))
    for direction in ("left", "right"):
        scores = [t.edge_similarity for t in scored if t.direction == direction]
        summary.update(_best_window(direction, scores, config.side_window, np.median, f"{direction} turns"))
    return summary


def rhythm(turns: tuple[Turn, ...]) -> dict:
    """Turns per minute (from the median duration) and the duration's coefficient of variation."""
    durations = np.array([turn.duration_s for turn in turns if not turn.partial])
    if len(durations) == 0:
        return {"turns_per_minute": None, "duration_cv": None, "reason": "no complete turns"}
    return {
        "turns_per_minute": _rounded(60 / float(np.median(durations))),
        "duration_cv": _rounded(float(durations.std() / durations.mean())),
        "median_duration_s": _rounded(float(np.median(durations))),
    }


def _turns_between(times: np.ndarray, inclination: np.ndarray, transitions: list[int]) -> tuple[Turn, ...]:
    bounds = [0, *transitions, len(times)]
    end_time = float(times[-1] + (times[-1] - times[-2] if len(times) > 1 else 0.0))
    turns = []
    for index, (start, end) in enumerate(zip(bounds[:-1], bounds[1:])):
        lean = inclination[start:end]
        if np.all(np.isnan(lean)):
            apex, peak = start, 0.0
        else:
            apex = start + int(np.nanargmax(np.abs(lean)))
            peak = float(inclination[apex])
        start_s = float(times[start])
        stop_s = float(times[end]) if end < len(times) else end_time
        turns.append(
            Turn(
                index=index, direction="right" if peak > 0 else "left",
                partial=start == 0 or end == len(times), start_frame=start, apex_frame=apex, end_frame=end,
                start_s=start_s, apex_s=float(times[apex]), end_s=stop_s, duration_s=stop_s - start_s,
                peak_inclination_deg=peak,
            )
        )
    return tuple(turns)


def _best_window(name: str, scores: list[float], window: int, statistic, what: str) -> dict:
    if len(scores) < window:
        return {name: None, f"{name}_reason": f"not enough {what}: {window} needed, {len(scores)} scored"}
    best = max(float(statistic(scores[i : i + window])) for i in range(len(scores) - window + 1))
    return {name: _rounded(best)}


def _fill(values: np.ndarray) -> np.ndarray:
    valid = ~np.isnan(values)
    return np.interp(np.arange(len(values)), np.flatnonzero(valid), values[valid])


def _rounded(value):
    if isinstance(value, (float, np.floating)):
        return round(float(value), 2)
    return value
