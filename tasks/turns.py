"""Turns from the inclination signal, their edge similarity, and the run's summary and rhythm."""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass, replace

import numpy as np

from tasks.config import MetricsConfig
from tasks.edges import PARTS, estimate_edges
from tasks.frontal import FrameAngles
from tasks.intervals import draw_interval
from tasks.lean import estimate_angulation


@dataclass(frozen=True)
class Turn:
    """One turn, from a transition (the centre of mass crossing over the feet) to the next.

    Frames are indexed from the start of the analysed part; `end_frame` is the first frame of
    the next turn. Edge-similarity fields are None for partial turns and turns without pose;
    each score has the low and high end of its interval (see `tasks/edges.py`) beside it.
    `uncertain` is True when the similarity's interval is too wide to show it as a number,
    `uncertain_reason` says why. `angulation_deg` is how much further the shins tip than the
    body leans over the edged part of the turn (see `tasks/lean.py`).
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
    edge_similarity_low: float | None = None
    edge_similarity_high: float | None = None
    edge_agreement_score: float | None = None
    edge_agreement_score_low: float | None = None
    edge_agreement_score_high: float | None = None
    edge_difference_deg: float | None = None
    edge_difference_deg_low: float | None = None
    edge_difference_deg_high: float | None = None
    edge_lag_ms: float | None = None
    edge_lag_ms_low: float | None = None
    edge_lag_ms_high: float | None = None
    edge_lag_score: float | None = None
    edge_lag_score_low: float | None = None
    edge_lag_score_high: float | None = None
    angulation_deg: float | None = None
    angulation_deg_low: float | None = None
    angulation_deg_high: float | None = None
    edged_frames: int | None = None
    uncertain: bool | None = None
    uncertain_reason: str | None = None

    @property
    def scored(self) -> bool:
        """Whether the turn has an edge similarity."""
        return self.edge_similarity is not None

    @property
    def certain(self) -> bool:
        """Whether the turn has an edge similarity precise enough to show and summarise."""
        return self.scored and not self.uncertain

    @property
    def half_width(self) -> float:
        """Half the width of the similarity's interval (0 for a turn without a score)."""
        if self.edge_similarity_low is None or self.edge_similarity_high is None:
            return 0.0
        return (self.edge_similarity_high - self.edge_similarity_low) / 2

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


def analyze_turns(times: np.ndarray, angles: FrameAngles, config: MetricsConfig) -> TechniqueMetrics:
    """Segment the run into turns, score each complete turn with its intervals, and summarise."""
    turns = segment_turns(times, angles.inclination_deg, config)
    frame_s = float(np.median(np.diff(times))) if len(times) > 1 else 1.0
    turns = tuple(turn if turn.partial else score_turn(turn, angles, frame_s, config) for turn in turns)
    turn_of_frame = np.full(len(times), -1)
    for turn in turns:
        turn_of_frame[turn.start_frame : turn.end_frame] = turn.index
    return TechniqueMetrics(angles, turns, turn_of_frame, summarize(turns, config), rhythm(turns, frame_s))


# The former spelling, for callers not yet moved to `analyze_turns`.
analyse_turns = analyze_turns


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
            turn
            for turn in turns
            if not turn.partial
            and (turn.duration_s < config.min_turn_s or abs(turn.peak_inclination_deg) < config.min_peak_deg)
        ]
        if not weak:
            return turns
        weakest = min(weak, key=lambda turn: abs(turn.peak_inclination_deg))
        transitions = [frame for frame in transitions if frame not in (weakest.start_frame, weakest.end_frame)]


def score_turn(turn: Turn, angles: FrameAngles, frame_s: float, config: MetricsConfig) -> Turn:
    """The turn with its edge similarity, the parts, and their intervals (`tasks/edges.py`)."""
    estimate = estimate_edges(slice(turn.start_frame, turn.end_frame), turn.apex_frame, angles, frame_s, config)
    if estimate is None:
        return turn
    values = {}
    for part in PARTS:
        values[part] = getattr(estimate.scores, part)
        values[f"{part}_low"] = getattr(estimate.low, part)
        values[f"{part}_high"] = getattr(estimate.high, part)
    angulation = estimate_angulation(
        slice(turn.start_frame, turn.end_frame), turn.apex_frame, turn.direction, angles, config
    )
    if angulation is not None:
        values |= {
            "angulation_deg": angulation.value,
            "angulation_deg_low": angulation.low,
            "angulation_deg_high": angulation.high,
        }
    return replace(
        turn,
        **values,
        edged_frames=estimate.edged_frames,
        uncertain=estimate.uncertain_reason is not None,
        uncertain_reason=estimate.uncertain_reason,
    )


def summarize(turns: tuple[Turn, ...], config: MetricsConfig) -> dict:
    """The run's summary scores, each with a 90% interval (`*_low`, `*_high`).

    Over the turns scored precisely enough (not `uncertain`): `mean_edge_similarity` averages
    them all; `overall` is the best mean of `summary_window` consecutive ones; `left` and
    `right` the best rolling median of `side_window` consecutive ones of that direction. Each
    is null, with a reason, when there are too few. Intervals come from drawing every turn's
    score within its own interval and taking the same statistic of each draw.

    Means over the same turns, for the headline when the windows need more turns than the
    clip has, and as the evidence of the findings (`tasks/findings.py`): `left_mean` and
    `right_mean` (with `*_mean_turns`, how many turns each averages), `edge_difference_deg`,
    `left_edge_lag_ms` and `right_edge_lag_ms`, `angulation_deg`, `left_angulation_deg` and
    `right_angulation_deg`.
    """
    scored = [turn for turn in turns if turn.scored]
    certain = [turn for turn in scored if turn.certain]
    summary: dict = {"complete_turns": len(scored), "uncertain_turns": len(scored) - len(certain)}
    summary.update(_statistic_with_interval("mean_edge_similarity", certain, 1, _mean_of_all, "turns", config))
    summary.update(_statistic_with_interval("overall", certain, config.summary_window, _best_mean, "turns", config))
    for direction in ("left", "right"):
        side = [turn for turn in certain if turn.direction == direction]
        summary.update(
            _statistic_with_interval(direction, side, config.side_window, _best_median, f"{direction} turns", config)
        )
        summary.update(
            _statistic_with_interval(f"{direction}_mean", side, 1, _mean_of_all, f"{direction} turns", config)
        )
        summary[f"{direction}_mean_turns"] = len(side)
    means: list[tuple[str, str, str | None, tuple[float, float]]] = [
        ("edge_difference_deg", "edge_difference_deg", None, (0.0, np.inf)),
        ("angulation_deg", "angulation_deg", None, (-np.inf, np.inf)),
    ]
    for direction in ("left", "right"):
        means += [
            (f"{direction}_edge_lag_ms", "edge_lag_ms", direction, (-np.inf, np.inf)),
            (f"{direction}_angulation_deg", "angulation_deg", direction, (-np.inf, np.inf)),
        ]
    for name, field, only, bounds in means:
        chosen = [turn for turn in certain if only in (None, turn.direction) and getattr(turn, field) is not None]
        what = f"{only} turns" if only else "turns"
        summary.update(
            _statistic_with_interval(name, chosen, 1, _mean_of_all, what, config, field=field, bounds=bounds)
        )
    return summary


def _statistic_with_interval(
    name: str,
    turns: list[Turn],
    window: int,
    statistic,
    what: str,
    config: MetricsConfig,
    field: str = "edge_similarity",
    bounds: tuple[float, float] = (0.0, 100.0),
) -> dict:
    if len(turns) < window:
        return {
            name: None,
            f"{name}_low": None,
            f"{name}_high": None,
            f"{name}_reason": f"not enough {what}: {window} needed, {len(turns)} scored",
        }
    values = [getattr(turn, field) for turn in turns]
    half_widths = [(getattr(turn, f"{field}_high") - getattr(turn, f"{field}_low")) / 2 for turn in turns]
    low, high = draw_interval(
        lambda draws: statistic(np.clip(draws, *bounds), window),
        values,
        half_widths,
        config.bootstrap_samples,
    )
    value = float(statistic(np.array([values]), window)[0])
    return {name: _rounded(value), f"{name}_low": _rounded(min(low, value)), f"{name}_high": _rounded(max(high, value))}


def _mean_of_all(scores: np.ndarray, window: int) -> np.ndarray:
    return scores.mean(axis=1)


def _best_mean(scores: np.ndarray, window: int) -> np.ndarray:
    return np.lib.stride_tricks.sliding_window_view(scores, window, axis=1).mean(axis=2).max(axis=1)


def _best_median(scores: np.ndarray, window: int) -> np.ndarray:
    return np.median(np.lib.stride_tricks.sliding_window_view(scores, window, axis=1), axis=2).max(axis=1)


def rhythm(turns: tuple[Turn, ...], frame_s: float | None = None) -> dict:
    """Turns per minute (from the median duration) and the duration's coefficient of variation.

    With `frame_s`, also the spread of the complete turns' durations (longest minus shortest,
    `duration_spread_s`) and turns per minute, each with an interval: a transition is placed
    within one frame (see the README's "Repeatability"), so a duration is known to two frames
    and the spread of two durations to four.
    """
    durations = np.array([turn.duration_s for turn in turns if not turn.partial])
    if len(durations) == 0:
        return {"turns_per_minute": None, "duration_cv": None, "reason": "no complete turns"}
    median = float(np.median(durations))
    summary = {
        "turns_per_minute": _rounded(60 / median),
        "duration_cv": _rounded(float(durations.std() / durations.mean())),
        "median_duration_s": _rounded(median),
    }
    if frame_s is None:
        return summary
    spread = float(durations.max() - durations.min())
    return summary | {
        "turns_per_minute_low": _rounded(60 / (median + 2 * frame_s)),
        "turns_per_minute_high": _rounded(60 / max(median - 2 * frame_s, frame_s)),
        "duration_spread_s": _rounded(spread),
        "duration_spread_s_low": _rounded(max(0.0, spread - 4 * frame_s)),
        "duration_spread_s_high": _rounded(spread + 4 * frame_s),
    }


def _turns_between(times: np.ndarray, inclination: np.ndarray, transitions: list[int]) -> tuple[Turn, ...]:
    bounds = [0, *transitions, len(times)]
    end_time = float(times[-1] + (times[-1] - times[-2] if len(times) > 1 else 0.0))
    turns = []
    for index, (start, end) in enumerate(itertools.pairwise(bounds)):
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
                index=index,
                direction="right" if peak > 0 else "left",
                partial=start == 0 or end == len(times),
                start_frame=start,
                apex_frame=apex,
                end_frame=end,
                start_s=start_s,
                apex_s=float(times[apex]),
                end_s=stop_s,
                duration_s=stop_s - start_s,
                peak_inclination_deg=peak,
            )
        )
    return tuple(turns)


def _rounded(value):
    if isinstance(value, (float, np.floating)):
        return round(float(value), 2)
    return value
