"""Progress across runs: a skier's analyses over time, and two of them side by side.

Two runs differ in a score only when its two intervals do not overlap
(`tasks.wording.change`); otherwise the comparison says "no measurable change". Plain Python
over `results.json`'s dictionaries: the web app uses it without the vision stack.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tasks.wording import NO_MEASURABLE_CHANGE, change, quantity

NOT_COMPARABLE = "not comparable"


@dataclass(frozen=True)
class Row:
    """One line of a comparison: a stored value with its interval.

    Attributes:
        group: `summary`, `sides`, `technique` or `rhythm`: where the page shows it.
        source: `summary` or `rhythm`, the part of `metrics` it is stored in.
        name: The field.
        label: In words.
        unit: Its unit.
        digits: Decimals shown.
    """

    group: str
    source: str
    name: str
    label: str
    unit: str = ""
    digits: int = 0


ROWS = (
    Row("summary", "summary", "overall", "Overall: best 4 consecutive turns"),
    Row("summary", "summary", "mean_edge_similarity", "Mean of the clean turns"),
    Row("sides", "summary", "left_mean", "Left turns, mean"),
    Row("sides", "summary", "right_mean", "Right turns, mean"),
    Row("sides", "summary", "left", "Left turns, best median of 3"),
    Row("sides", "summary", "right", "Right turns, best median of 3"),
    Row("technique", "summary", "edge_difference_deg", "Shin tilt difference", "degrees", 1),
    Row("technique", "summary", "angulation_deg", "Shin tilt beyond the lean", "degrees", 1),
    Row("rhythm", "rhythm", "turns_per_minute", "Turns per minute"),
    Row("rhythm", "rhythm", "duration_spread_s", "Longest minus shortest turn", "s", 2),
)


def headline(summary: Mapping[str, Any]) -> dict[str, Any]:
    """The score a run is known by: the overall score, or when there are too few turns for
    it the mean of the clean turns, with its interval and how many turns it covers.

    Returns:
        `name` (`overall`, `mean_edge_similarity` or None), `value`, `low`, `high`, `turns`,
        and `reason` when there is no value.
    """
    clean = summary.get("complete_turns", 0) - summary.get("uncertain_turns", 0)
    for name in ("overall", "mean_edge_similarity"):
        if summary.get(name) is not None:
            return {
                "name": name,
                "value": summary[name],
                "low": summary.get(f"{name}_low"),
                "high": summary.get(f"{name}_high"),
                "turns": clean,
                "reason": None,
            }
    return {
        "name": None,
        "value": None,
        "low": None,
        "high": None,
        "turns": clean,
        "reason": summary.get("mean_edge_similarity_reason") or "no turn scored",
    }


def history_point(results: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A run's headline and per-side means, each with its interval, for the progress chart;
    None for a run without metrics."""
    metrics = (results or {}).get("metrics")
    if not metrics:
        return None
    summary = metrics["summary"]
    sides = {
        side: {
            "value": summary.get(f"{side}_mean"),
            "low": summary.get(f"{side}_mean_low"),
            "high": summary.get(f"{side}_mean_high"),
            "turns": summary.get(f"{side}_mean_turns"),
        }
        for side in ("left", "right")
    }
    return {"headline": headline(summary)} | sides


def compare_results(first: Mapping[str, Any], second: Mapping[str, Any]) -> dict[str, Any]:
    """Two complete runs side by side: summary, sides, technique and rhythm, and findings.

    Args:
        first: The earlier run's `results.json` (at least `metrics` and `findings`).
        second: The later run's.

    Returns:
        `rows`: for each of `ROWS`, both values with their intervals and the `change`
        (`higher`, `lower`, `no measurable change`, or `not comparable` when either run lacks
        the value or its interval); `changes`: how many rows changed measurably; `findings`:
        each run's findings, each marked `in_both` when the other run has one from the same
        cue.
    """
    rows = [_row(row, first, second) for row in ROWS]
    first_findings, second_findings = first.get("findings") or [], second.get("findings") or []
    return {
        "rows": rows,
        "changes": sum(row["change"] in ("higher", "lower") for row in rows),
        "findings": {
            "first": _findings(first_findings, second_findings),
            "second": _findings(second_findings, first_findings),
        },
    }


def _row(row: Row, first: Mapping[str, Any], second: Mapping[str, Any]) -> dict[str, Any]:
    before, after = _measure(row, first), _measure(row, second)
    was, now = _interval(before), _interval(after)
    verdict = NOT_COMPARABLE if was is None or now is None else change(was, now)
    return {
        "group": row.group,
        "name": row.name,
        "label": row.label,
        "unit": row.unit,
        "first": before,
        "second": after,
        "change": verdict,
        "measurable": verdict not in (NO_MEASURABLE_CHANGE, NOT_COMPARABLE),
    }


def _measure(row: Row, results: Mapping[str, Any]) -> dict[str, Any]:
    stored = ((results.get("metrics") or {}).get(row.source)) or {}
    value, low, high = stored.get(row.name), stored.get(f"{row.name}_low"), stored.get(f"{row.name}_high")
    reason = stored.get(f"{row.name}_reason") or (None if value is not None else "not measured")
    return {
        "value": value,
        "low": low,
        "high": high,
        "reason": reason,
        "text": quantity(value, low, high, row.unit, row.digits) if value is not None else reason,
    }


def _interval(measure: Mapping[str, Any]) -> tuple[float, float] | None:
    if measure["value"] is None or measure["low"] is None or measure["high"] is None:
        return None
    return measure["low"], measure["high"]


def _findings(own: Sequence[Mapping[str, Any]], other: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    keys = {finding.get("key") for finding in other}
    return [
        {
            "key": finding.get("key"),
            "kind": finding.get("kind"),
            "title": finding.get("title"),
            "text": finding.get("text"),
            "in_both": finding.get("key") in keys,
        }
        for finding in own
    ]
