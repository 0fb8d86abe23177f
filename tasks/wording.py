"""Scores in words, the same wherever they are shown: terminal, overlay, chart and reports.

A score is always shown with its interval ("85 (79-90)"), a turn measured too loosely as
"uncertain" with the reason, and two scores are called different only when their intervals
do not overlap: between two turns, two sides, a finding and what it is compared with
(`tasks/findings.py`), or two analyses of the same skier (`tasks/comparison.py`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def score_range(value: float | None, low: float | None, high: float | None) -> str:
    """`85 (79-90)`, or `-` without a value."""
    if value is None:
        return "-"
    if low is None or high is None:
        return f"{value:.0f}"
    return f"{value:.0f} ({low:.0f}-{high:.0f})"


def turn_score(turn: Mapping[str, Any]) -> str:
    """A turn's edge similarity as shown: with its interval, or why there is none to show."""
    if turn["partial"]:
        return "partial"
    if turn["edge_similarity"] is None:
        return "no score"
    if turn["uncertain"]:
        return f"uncertain: {turn['uncertain_reason']}"
    return score_range(turn["edge_similarity"], turn["edge_similarity_low"], turn["edge_similarity_high"])


def summary_score(summary: Mapping[str, Any], name: str) -> str:
    """A summary score (`overall`, `left`, `right`, `mean_edge_similarity`) with its
    interval, or the reason it has none."""
    if summary[name] is None:
        return summary.get(f"{name}_reason") or "-"
    return score_range(summary[name], summary[f"{name}_low"], summary[f"{name}_high"])


def different(first: tuple[float, float], second: tuple[float, float]) -> bool:
    """Whether two scores, as `(low, high)` intervals, can be told apart: they do not overlap.

    Either may also be a zone, e.g. `(-40, 40)` for lags within one frame, or
    `(-inf, 5)` for values too small to matter.
    """
    return first[1] < second[0] or second[1] < first[0]


NO_MEASURABLE_CHANGE = "no measurable change"


def change(first: tuple[float, float], second: tuple[float, float]) -> str:
    """From `first` to `second` (`(low, high)` intervals): `higher`, `lower`, or
    `no measurable change` when the intervals overlap."""
    if not different(first, second):
        return NO_MEASURABLE_CHANGE
    return "higher" if second[0] > first[1] else "lower"


def quantity(value: float | None, low: float | None, high: float | None, unit: str = "", digits: int = 0) -> str:
    """`62 ms (40-84)`: a value with its unit and interval, as in `score_range`."""
    if value is None:
        return "-"
    suffix = f" {unit}" if unit else ""
    if low is None or high is None or low == high == value:
        return f"{value:.{digits}f}{suffix}"
    between = " to " if low < 0 else "-"
    return f"{value:.{digits}f}{suffix} ({low:.{digits}f}{between}{high:.{digits}f})"


def turns_phrase(direction: str, count: int) -> str:
    """`your left turn` or `your 3 left turns`."""
    return f"your {direction} turn" if count == 1 else f"your {count} {direction} turns"


def left_against_right(summary: Mapping[str, Any]) -> str | None:
    """A sentence comparing left and right turns, or None when either has no score."""
    if summary["left"] is None or summary["right"] is None:
        return None
    left, right = (summary["left_low"], summary["left_high"]), (summary["right_low"], summary["right_high"])
    if not different(left, right):
        return "Left and right turns: no measurable difference (their intervals overlap)."
    better, worse = ("left", "right") if summary["left"] > summary["right"] else ("right", "left")
    return f"{better.capitalize()} turns score higher than {worse} turns (their intervals do not overlap)."
