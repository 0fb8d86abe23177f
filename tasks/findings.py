"""Findings: what a run's numbers say about the skier's technique, in plain words.

Each finding is one sentence a skier can act on, the evidence it rests on (a stored metric,
its value with its 90% interval and the turns it covers, and what it is compared with), the
moment that shows it best (a turn and a frame, of which the render step saves a still with
the skeleton), and one thing to try, from `CUES`.

The rule that keeps them honest is the one used everywhere a difference is claimed
(`tasks.wording.different`): a finding is stated only when the interval of its evidence does
not overlap the interval it is compared with. That is the other side's turns, the other
turns, or a zone: values too small to matter (`Cue.threshold`), or a lag within one frame,
which cannot be told from the pose's wobble. Findings read the stored metrics only
(`metrics.summary`, `metrics.rhythm` and `metrics.turns` of `results.json`); the per-frame
angles only pick the frame of each moment.

Plain Python over `results.json`'s dictionaries, with no numerical libraries.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tasks.contract import OUTPUT_FILES, still_kind
from tasks.wording import different, quantity, turns_phrase

# At most this many findings are reported, the most important first.
MAX_FINDINGS = 4
# Fewer turns scored precisely enough than this, and the findings only say so.
MIN_CLEAN_TURNS = 2
# Rhythm needs at least this many complete turns.
MIN_RHYTHM_TURNS = 3
INF = math.inf

ISSUE, STRENGTH, NOTE = "issue", "strength", "note"


@dataclass(frozen=True)
class Cue:
    """One row of the cue table: a pattern in one metric, and one thing to try about it.

    Attributes:
        metric: The metric the pattern is read from.
        kind: `issue` (something to work on), `strength` (something done well) or `note`
            (about the evidence itself).
        pattern: When the finding is stated, in words.
        threshold: The smallest effect worth telling, in `unit`; None where the rule needs
            no threshold beyond the intervals not overlapping.
        unit: The metric's unit.
        cue: One thing to try; `{weaker}` and `{stronger}` name the sides where used.
    """

    metric: str
    kind: str
    pattern: str
    threshold: float | None
    unit: str
    cue: str

    @property
    def limit(self) -> float:
        """`threshold`, for the rules that have one."""
        if self.threshold is None:
            raise ValueError(f"The cue for {self.metric} has no threshold.")
        return self.threshold


CUES: dict[str, Cue] = {
    "weaker_side": Cue(
        "edge_similarity",
        ISSUE,
        "the mean edge similarity of one side's turns is below the other side's, the intervals apart",
        5.0,
        "points",
        "On your {weaker} turns, tip both knees into the turn together from the very start, as you do "
        "turning {stronger}; ski a few slow {weaker} turns thinking of nothing else.",
    ),
    "inside_ski_late": Cue(
        "edge_lag_ms",
        ISSUE,
        "in turns of one direction, the inside leg's edge builds after the outside leg's, by more than "
        "one frame all through the lag's interval",
        None,
        "ms",
        "Start each turn by tipping the inside foot: roll it onto its little-toe edge first and let the "
        "outside ski follow.",
    ),
    "outside_ski_late": Cue(
        "edge_lag_ms",
        ISSUE,
        "in turns of one direction, the outside leg's edge builds after the inside leg's, by more than "
        "one frame all through the lag's interval",
        None,
        "ms",
        "Roll the outside ski onto its big-toe edge as the turn starts, together with the inside ski, "
        "instead of letting it follow.",
    ),
    "shins_apart": Cue(
        "edge_difference_deg",
        ISSUE,
        "the mean left-right shin tilt difference over all turns is above the threshold, all through its interval",
        4.0,
        "degrees",
        "Keep your shins parallel: imagine a ball held between your knees and tip both knees the same amount.",
    ),
    "least_parallel_turn": Cue(
        "edge_difference_deg",
        ISSUE,
        "one turn's shin tilt difference is above the threshold and its interval above every other turn's",
        4.0,
        "degrees",
        "Watch this turn in the video: find where one knee tips in or falls behind the other, then ski "
        "that part again slowly.",
    ),
    "uneven_rhythm": Cue(
        "duration_spread_s",
        ISSUE,
        "the longest complete turn lasts longer than the shortest by over 40% of the median turn, all "
        "through the interval of the difference",
        0.4,
        "share of the median turn",
        "Ski to a count: say 'turn, and, turn' aloud, or follow a line of markers set at even spacing.",
    ),
    "even_rhythm": Cue(
        "duration_spread_s",
        STRENGTH,
        "the longest complete turn lasts longer than the shortest by under 25% of the median turn, all "
        "through the interval of the difference",
        0.25,
        "share of the median turn",
        "Keep it, and vary it on purpose: link a few short turns, then a few long ones, each rhythm steady.",
    ),
    "leaning_in_side": Cue(
        "angulation_deg",
        ISSUE,
        "the shins tip further beyond the body's lean in one direction's turns than in the other's, the "
        "intervals apart",
        5.0,
        "degrees",
        "When turning {weaker}, keep your shoulders level and move your knees and hips into the turn, as "
        "you do turning {stronger}.",
    ),
    "leaning_in": Cue(
        "angulation_deg",
        ISSUE,
        "over all turns, the shins tip less than the threshold beyond the body's lean, all through the "
        "interval: the skier leans in with the whole body",
        5.0,
        "degrees",
        "Angulate: keep your upper body upright and level, and move your knees and hips into the turn "
        "instead of leaning your whole body.",
    ),
    "angulation": Cue(
        "angulation_deg",
        STRENGTH,
        "over all turns, the shins tip more than the threshold beyond the body's lean, all through the interval",
        10.0,
        "degrees",
        "Keep it: with the edges holding, let your body lean a little further into the turn as your speed grows.",
    ),
    "few_clean_turns": Cue(
        "edge_similarity",
        NOTE,
        f"fewer than {MIN_CLEAN_TURNS} complete turns are scored precisely enough (not uncertain)",
        None,
        "turns",
        "Film six or more linked turns from behind or in front, with the skier large in the frame and "
        "both legs in view.",
    ),
    "nothing_stands_out": Cue(
        "all",
        NOTE,
        "no other finding clears its intervals",
        None,
        "",
        "Film a longer run, eight or more turns, so that smaller differences can be told apart.",
    ),
}


# The metrics findings cite, in words (the evidence's `metric` is the stored field's name).
METRIC_LABELS = {
    "left_mean": "mean edge similarity of left turns",
    "right_mean": "mean edge similarity of right turns",
    "left_edge_lag_ms": "mean edge lag of left turns (+ = right leg later)",
    "right_edge_lag_ms": "mean edge lag of right turns (+ = right leg later)",
    "edge_difference_deg": "shin tilt difference",
    "duration_spread_s": "longest minus shortest complete turn",
    "angulation_deg": "shin tilt beyond the lean",
    "left_angulation_deg": "shin tilt beyond the lean in left turns",
    "right_angulation_deg": "shin tilt beyond the lean in right turns",
    "clean_turns": "turns scored precisely enough",
}


@dataclass(frozen=True)
class Reference:
    """What a finding's evidence is compared with.

    Attributes:
        label: In words, e.g. `your right turns` or `within one frame`.
        source: Where its numbers are stored: `summary` (`metrics.summary[metric]`), `turns`
            (the range of `metric` over `turns`: lowest low to highest high), or `zone` (a
            constant of the rule, not a measurement).
        metric: The field it is read from (None for a zone).
        low: The lower end of its interval (or of the zone).
        high: The upper end.
        value: Its value, where it has one.
        turns: The turns it covers.
    """

    label: str
    source: str
    metric: str | None
    low: float
    high: float
    value: float | None = None
    turns: tuple[int, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "source": self.source,
            "metric": self.metric,
            "value": self.value,
            "low": _finite(self.low),
            "high": _finite(self.high),
            "turns": list(self.turns),
        }


@dataclass(frozen=True)
class Evidence:
    """The stored metric a finding rests on, and what it is compared with.

    Attributes:
        source: `summary` (`metrics.summary[metric]`), `rhythm` (`metrics.rhythm[metric]`),
            `turn` (`metric` of the one turn in `turns`) or `count` (a number of turns).
        metric: The field.
        value: Its value.
        low: The lower end of its 90% interval.
        high: The upper end.
        unit: Its unit.
        turns: The turns it covers.
        against: What it is compared with; the finding holds because the two intervals do not
            overlap. None for a note.
    """

    source: str
    metric: str
    value: float
    low: float
    high: float
    unit: str
    turns: tuple[int, ...]
    against: Reference | None = None

    @property
    def clears(self) -> bool:
        """Whether the evidence's interval and its reference's do not overlap."""
        return self.against is not None and different((self.low, self.high), (self.against.low, self.against.high))

    def text(self) -> str:
        """The evidence in words: `left_mean 72 points (65-79) over turns 2, 4; your right
        turns: 88 (84-92)`."""
        digits = 1 if self.unit in ("s", "degrees") else 0
        said = f"{METRIC_LABELS.get(self.metric, self.metric)}: {quantity(self.value, self.low, self.high, self.unit, digits)}"
        if self.turns:
            said += f" over turn{'s' if len(self.turns) > 1 else ''} {', '.join(map(str, self.turns))}"
        if self.against is not None:
            against = self.against
            if against.source == "zone":
                said += f"; {against.label}: {_zone(against.low, against.high, self.unit, digits)}"
            elif against.value is None:
                said += f"; {against.label}: {against.low:.{digits}f}-{against.high:.{digits}f}"
            else:
                said += f"; {against.label}: {quantity(against.value, against.low, against.high, '', digits)}"
        return said

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "metric": self.metric,
            "value": self.value,
            "low": self.low,
            "high": self.high,
            "unit": self.unit,
            "turns": list(self.turns),
            "against": self.against.as_dict() if self.against else None,
            "text": self.text(),
        }


@dataclass(frozen=True)
class Moment:
    """The frame that shows a finding best: its index from the start of the analysed part,
    its time in seconds from the start of the clip, and the turn it belongs to."""

    turn: int
    frame: int
    time_s: float


@dataclass(frozen=True)
class Finding:
    """One thing the run shows, with its evidence, moment and cue.

    Attributes:
        key: The row of `CUES` it comes from.
        title: A few words, plain ASCII (it is drawn on the still).
        text: The finding, one plain sentence.
        evidence: What it rests on.
        turns: The turns involved.
        moment: The frame that shows it best, or None when no single frame does.
        weight: How large the effect is against the smallest worth telling (ranks issues and
            strengths).
        sides: The weaker and stronger side, for cues that name them.
    """

    key: str
    title: str
    text: str
    evidence: Evidence
    turns: tuple[int, ...]
    moment: Moment | None
    weight: float = 1.0
    sides: tuple[str, str] | None = None

    @property
    def cue(self) -> Cue:
        return CUES[self.key]

    @property
    def kind(self) -> str:
        return self.cue.kind

    @property
    def to_try(self) -> str:
        """The cue, with the sides named where it names them."""
        weaker, stronger = self.sides or ("", "")
        return self.cue.cue.format(weaker=weaker, stronger=stronger)

    def as_dict(self, rank: int) -> dict[str, Any]:
        """The finding as `results.json` holds it; `rank` counts from 1."""
        moment = self.moment
        return {
            "rank": rank,
            "key": self.key,
            "kind": self.kind,
            "title": self.title,
            "text": self.text,
            "evidence": self.evidence.as_dict(),
            "turns": list(self.turns),
            "turn": moment.turn if moment else None,
            "frame": moment.frame if moment else None,
            "time_s": moment.time_s if moment else None,
            "try": self.to_try,
            "still": still_name(rank) if moment else None,
        }


def still_name(rank: int) -> str:
    """The file name of the still of the finding ranked `rank`."""
    return OUTPUT_FILES[still_kind(rank)]


def find_findings(
    metrics: Mapping[str, Any], frames: Sequence[Mapping[str, Any]], *, frame_s: float, edged_fraction: float
) -> list[Finding]:
    """The run's findings, the most important first, at most `MAX_FINDINGS`.

    A note that too few turns were scored precisely enough comes first and alone; then the
    issues, then the strengths, each by weight; "nothing stands out" when none clears its
    intervals.

    Args:
        metrics: `results.json`'s `metrics`: `turns`, `summary` and `rhythm`.
        frames: `results.json`'s `frames` (`time_s`, `turn_index`, `inclination_deg`,
            `left_edge_deg`, `right_edge_deg`), indexed by frame.
        frame_s: Seconds between frames.
        edged_fraction: `metrics.edged_fraction`: the edged part of a turn leans at least
            this fraction of its peak.
    """
    run = _Run(metrics, frames, frame_s, edged_fraction)
    if len(run.clean) < MIN_CLEAN_TURNS:
        return [_few_clean_turns(run)]
    found = [finding for finder in _FINDERS for finding in finder(run)]
    order = {ISSUE: 0, STRENGTH: 1}
    found.sort(key=lambda finding: (order[finding.kind], -finding.weight))
    return found[:MAX_FINDINGS] or [_nothing_stands_out(run)]


def findings_as_dicts(findings: Sequence[Finding]) -> list[dict[str, Any]]:
    """The findings as `results.json`'s `findings` list."""
    return [finding.as_dict(rank) for rank, finding in enumerate(findings, start=1)]


class _Run:
    """The parts of `results.json` the finders read, with a few shortcuts."""

    def __init__(
        self, metrics: Mapping[str, Any], frames: Sequence[Mapping[str, Any]], frame_s: float, edged_fraction: float
    ) -> None:
        self.turns = list(metrics["turns"])
        self.summary = metrics["summary"]
        self.rhythm = metrics.get("rhythm") or {}
        self.frames = frames
        self.frame_s = frame_s
        self.edged_fraction = edged_fraction
        self.complete = [turn for turn in self.turns if not turn["partial"]]
        self.clean = [
            turn for turn in self.complete if turn.get("edge_similarity") is not None and not turn["uncertain"]
        ]

    def side(self, direction: str) -> list[Mapping[str, Any]]:
        return [turn for turn in self.clean if turn["direction"] == direction]

    def interval(self, name: str) -> tuple[float, float, float] | None:
        """A summary value with its interval, or None."""
        value = self.summary.get(name)
        return None if value is None else (value, self.summary[f"{name}_low"], self.summary[f"{name}_high"])

    def moment(self, turn: Mapping[str, Any], frame: int | None = None) -> Moment:
        """The turn's frame `frame` (its apex by default) as a moment."""
        frame = turn["apex_frame"] if frame is None else frame
        return Moment(
            turn["index"], frame, self.frames[frame]["time_s"] if frame < len(self.frames) else turn["apex_s"]
        )

    def edged(self, turn: Mapping[str, Any]) -> list[int]:
        """The frames of the turn's edged part: around the apex, leaning at least
        `edged_fraction` of the lean there (frames without a lean do not end it)."""
        lean = [self._lean(frame) for frame in range(turn["start_frame"], turn["end_frame"])]
        apex = turn["apex_frame"] - turn["start_frame"]
        if not 0 <= apex < len(lean) or lean[apex] is None:
            return [turn["apex_frame"]]
        threshold = self.edged_fraction * lean[apex]
        picked = []
        for step in (-1, 1):
            frame = apex if step == -1 else apex + 1
            while 0 <= frame < len(lean) and (lean[frame] is None or lean[frame] >= threshold):
                picked.append(turn["start_frame"] + frame)
                frame += step
        return sorted(picked)

    def angle(self, frame: int, name: str) -> float | None:
        return self.frames[frame].get(name) if frame < len(self.frames) else None

    def _lean(self, frame: int) -> float | None:
        lean = self.angle(frame, "inclination_deg")
        return None if lean is None else abs(lean)

    def frame_where(self, frames: Sequence[int], measure: Callable[[int], float | None]) -> int | None:
        """Of `frames`, the one where `measure` is largest (frames without a value skipped)."""
        measured = [(value, frame) for frame in frames if (value := measure(frame)) is not None]
        return max(measured)[1] if measured else None


def _weaker_side(run: _Run) -> list[Finding]:
    left, right = run.interval("left_mean"), run.interval("right_mean")
    if left is None or right is None or not different(left[1:], right[1:]):
        return []
    (weaker, low_side), (stronger, high_side) = sorted((("left", left), ("right", right)), key=lambda item: item[1][0])
    weak_turns, strong_turns = run.side(weaker), run.side(stronger)
    evidence = Evidence(
        "summary",
        f"{weaker}_mean",
        *low_side,
        "points",
        _indices(weak_turns),
        Reference(
            turns_phrase(stronger, len(strong_turns)),
            "summary",
            f"{stronger}_mean",
            high_side[1],
            high_side[2],
            high_side[0],
            _indices(strong_turns),
        ),
    )
    worst = min(weak_turns, key=lambda turn: turn["edge_similarity"])
    verb = "scores" if len(weak_turns) == 1 else "score"
    text = (
        f"{_capital(turns_phrase(weaker, len(weak_turns)))} {verb} lower than "
        f"{turns_phrase(stronger, len(strong_turns))} ({low_side[0]:.0f} against {high_side[0]:.0f} edge "
        f"similarity): your legs tip less together when you turn {weaker}."
    )
    return [
        Finding(
            "weaker_side",
            f"{weaker.capitalize()} turns score lower",
            text,
            evidence,
            _indices(weak_turns + strong_turns),
            run.moment(worst),
            (high_side[0] - low_side[0]) / CUES["weaker_side"].limit,
            (weaker, stronger),
        )
    ]


def _late_ski(run: _Run) -> list[Finding]:
    """Per direction: which ski's edge builds later, when the lag clears one frame."""
    frame_ms = 1000 * run.frame_s
    found = []
    for direction in ("left", "right"):
        lag = run.interval(f"{direction}_edge_lag_ms")
        if lag is None or not different(lag[1:], (-frame_ms, frame_ms)):
            continue
        turns = [turn for turn in run.side(direction) if turn.get("edge_lag_ms") is not None]
        late = "right" if lag[0] > 0 else "left"
        early = "left" if late == "right" else "right"
        inside_late = late == direction
        key = "inside_ski_late" if inside_late else "outside_ski_late"
        role, other = ("inside", "outside") if inside_late else ("outside", "inside")
        evidence = Evidence(
            "summary",
            f"{direction}_edge_lag_ms",
            *lag,
            "ms",
            _indices(turns),
            Reference(
                "a lag within one frame cannot be told from the pose's wobble", "zone", None, -frame_ms, frame_ms
            ),
        )
        sign = 1 if lag[0] > 0 else -1
        shown = max(turns, key=lambda turn: sign * turn["edge_lag_ms"])
        inward = 1 if direction == "right" else -1
        build = range(shown["start_frame"], shown["apex_frame"] + 1)
        frame = run.frame_where(build, lambda f: _gap(run, f, early, late, inward))  # noqa: B023  called at once
        text = (
            f"In {turns_phrase(direction, len(turns))} your {role} ({late}) ski tips about {abs(lag[0]):.0f} ms "
            f"after your {other} ({early}) ski."
        )
        found.append(
            Finding(
                key,
                f"{role.capitalize()} ski tips late in {direction} turns",
                text,
                evidence,
                _indices(turns),
                run.moment(shown, frame),
                abs(lag[0]) / frame_ms,
            )
        )
    return found


def _gap(run: _Run, frame: int, early: str, late: str, inward: int) -> float | None:
    """How much further the early leg is tipped into the turn than the late one."""
    first, second = run.angle(frame, f"{early}_edge_deg"), run.angle(frame, f"{late}_edge_deg")
    return None if first is None or second is None else inward * (first - second)


def _shins_apart(run: _Run) -> list[Finding]:
    cue = CUES["shins_apart"]
    difference = run.interval("edge_difference_deg")
    if difference is None or not different(difference[1:], (-INF, cue.limit)):
        return []
    turns = [turn for turn in run.clean if turn.get("edge_difference_deg") is not None]
    shown = max(turns, key=lambda turn: turn["edge_difference_deg"])
    evidence = Evidence(
        "summary",
        "edge_difference_deg",
        *difference,
        "degrees",
        _indices(turns),
        Reference("a difference too small to matter", "zone", None, -INF, cue.limit),
    )
    text = (
        f"Your shins are not parallel: through your turns one is tipped about {_degrees(difference[0])} "
        "more than the other."
    )
    return [
        Finding(
            "shins_apart",
            "Shins not parallel",
            text,
            evidence,
            _indices(turns),
            run.moment(shown, _most_apart(run, shown)),
            difference[0] / cue.limit,
        )
    ]


def _least_parallel_turn(run: _Run) -> list[Finding]:
    cue = CUES["least_parallel_turn"]
    turns = [turn for turn in run.clean if turn.get("edge_difference_deg") is not None]
    if len(turns) < 2:
        return []
    shown = max(turns, key=lambda turn: turn["edge_difference_deg"])
    others = [turn for turn in turns if turn is not shown]
    against = Reference(
        "your other turns",
        "turns",
        "edge_difference_deg",
        min(turn["edge_difference_deg_low"] for turn in others),
        max(turn["edge_difference_deg_high"] for turn in others),
        turns=_indices(others),
    )
    evidence = Evidence(
        "turn",
        "edge_difference_deg",
        shown["edge_difference_deg"],
        shown["edge_difference_deg_low"],
        shown["edge_difference_deg_high"],
        "degrees",
        (shown["index"],),
        against,
    )
    if not evidence.clears or shown["edge_difference_deg"] < cue.limit:
        return []
    text = (
        f"Your legs were least parallel in turn {shown['index']}, a {shown['direction']} turn: the shins differed "
        f"by about {_degrees(shown['edge_difference_deg'])}, more than in any other turn."
    )
    return [
        Finding(
            "least_parallel_turn",
            f"Least parallel: turn {shown['index']}",
            text,
            evidence,
            (shown["index"],),
            # Ranked a little below shins apart in every turn, when both are told.
            run.moment(shown, _most_apart(run, shown)),
            0.9 * shown["edge_difference_deg"] / cue.limit,
        )
    ]


def _most_apart(run: _Run, turn: Mapping[str, Any]) -> int | None:
    """The frame of the turn's edged part where the shins' tilts differ most."""

    def apart(frame: int) -> float | None:
        left, right = run.angle(frame, "left_edge_deg"), run.angle(frame, "right_edge_deg")
        return None if left is None or right is None else abs(left - right)

    return run.frame_where(run.edged(turn), apart)


def _rhythm(run: _Run) -> list[Finding]:
    spread = run.rhythm.get("duration_spread_s")
    if spread is None or len(run.complete) < MIN_RHYTHM_TURNS:
        return []
    median = run.rhythm["median_duration_s"]
    interval = (run.rhythm["duration_spread_s_low"], run.rhythm["duration_spread_s_high"])
    shortest = min(run.complete, key=lambda turn: turn["duration_s"])
    longest = max(run.complete, key=lambda turn: turn["duration_s"])
    every = _indices(run.complete)
    uneven, even = CUES["uneven_rhythm"].limit * median, CUES["even_rhythm"].limit * median
    if different(interval, (-INF, uneven)):
        evidence = Evidence(
            "rhythm",
            "duration_spread_s",
            spread,
            *interval,
            "s",
            every,
            Reference("even enough (40% of the median turn)", "zone", None, -INF, uneven),
        )
        odd = max(run.complete, key=lambda turn: abs(turn["duration_s"] - median))
        text = (
            f"Your rhythm is uneven: your turns took from {shortest['duration_s']:.1f} s to "
            f"{longest['duration_s']:.1f} s."
        )
        return [
            Finding(
                "uneven_rhythm",
                "Uneven rhythm",
                text,
                evidence,
                every,
                run.moment(odd, odd["start_frame"]),
                interval[0] / uneven,
            )
        ]
    if different(interval, (even, INF)):
        evidence = Evidence(
            "rhythm",
            "duration_spread_s",
            spread,
            *interval,
            "s",
            every,
            Reference("too uneven to call even (25% of the median turn)", "zone", None, even, INF),
        )
        between = (
            f"about {shortest['duration_s']:.1f} s"
            if f"{shortest['duration_s']:.1f}" == f"{longest['duration_s']:.1f}"
            else f"between {shortest['duration_s']:.1f} and {longest['duration_s']:.1f} s"
        )
        text = f"Your rhythm is even: each of your {len(run.complete)} complete turns took {between}."
        # A strength weighs more the further the spread stays below the limit.
        weight = even / max(interval[1], run.frame_s)
        return [Finding("even_rhythm", "Even rhythm", text, evidence, every, None, weight)]
    return []


def _lean(run: _Run) -> list[Finding]:
    """Leaning in compared with edging: between the sides when they differ, else over all turns."""
    left, right = run.interval("left_angulation_deg"), run.interval("right_angulation_deg")
    if left is not None and right is not None and different(left[1:], right[1:]):
        (weaker, low_side), (stronger, high_side) = sorted(
            (("left", left), ("right", right)), key=lambda item: item[1][0]
        )
        weak_turns = [turn for turn in run.side(weaker) if turn.get("angulation_deg") is not None]
        strong_turns = [turn for turn in run.side(stronger) if turn.get("angulation_deg") is not None]
        evidence = Evidence(
            "summary",
            f"{weaker}_angulation_deg",
            *low_side,
            "degrees",
            _indices(weak_turns),
            Reference(
                turns_phrase(stronger, len(strong_turns)),
                "summary",
                f"{stronger}_angulation_deg",
                high_side[1],
                high_side[2],
                high_side[0],
                _indices(strong_turns),
            ),
        )
        how = (
            "you lean in with your whole body"
            if different(low_side[1:], (CUES["leaning_in"].limit, INF))
            else "you angulate less"
        )
        text = (
            f"Turning {weaker} {how}: your shins tip about {_degrees(low_side[0])} further than your body "
            f"leans, against {_degrees(high_side[0])} turning {stronger}."
        )
        shown = min(weak_turns, key=lambda turn: turn["angulation_deg"])
        return [
            Finding(
                "leaning_in_side",
                f"Leaning in turning {weaker}",
                text,
                evidence,
                _indices(weak_turns + strong_turns),
                run.moment(shown),
                (high_side[0] - low_side[0]) / CUES["leaning_in_side"].limit,
                (weaker, stronger),
            )
        ]
    overall = run.interval("angulation_deg")
    if overall is None:
        return []
    turns = [turn for turn in run.clean if turn.get("angulation_deg") is not None]
    banking, angulating = CUES["leaning_in"].limit, CUES["angulation"].limit
    if different(overall[1:], (banking, INF)):
        shown = min(turns, key=lambda turn: turn["angulation_deg"])
        evidence = Evidence(
            "summary",
            "angulation_deg",
            *overall,
            "degrees",
            _indices(turns),
            Reference("angulating", "zone", None, banking, INF),
        )
        text = (
            f"You lean in with your whole body: your shins tip only about {_degrees(overall[0])} further than "
            "your body leans."
        )
        # At least 1, and more the further the angulation falls short of the limit.
        return [
            Finding(
                "leaning_in",
                "Leaning in",
                text,
                evidence,
                _indices(turns),
                run.moment(shown),
                (banking - overall[0]) / banking + 1,
            )
        ]
    if different(overall[1:], (-INF, angulating)):
        shown = max(turns, key=lambda turn: turn["angulation_deg"])
        evidence = Evidence(
            "summary",
            "angulation_deg",
            *overall,
            "degrees",
            _indices(turns),
            Reference("not clearly angulating", "zone", None, -INF, angulating),
        )
        text = (
            f"You angulate: your shins tip about {_degrees(overall[0])} further than your body leans, which "
            "holds the edges."
        )
        return [
            Finding(
                "angulation",
                "Good angulation",
                text,
                evidence,
                _indices(turns),
                run.moment(shown),
                overall[0] / angulating,
            )
        ]
    return []


def _few_clean_turns(run: _Run) -> Finding:
    complete, clean = len(run.complete), len(run.clean)
    uncertain = [turn for turn in run.complete if turn.get("uncertain")]
    if complete == 0:
        text = "Not enough clean turns to say anything: the clip holds no complete turn."
    else:
        were = "was" if clean == 1 else "were"
        text = (
            f"Not enough clean turns to say more: {clean} of {complete} complete turn{'s' if complete != 1 else ''} "
            f"{were} measured precisely enough."
        )
        reasons = sorted({turn["uncertain_reason"] for turn in uncertain if turn.get("uncertain_reason")})
        if reasons:
            text = text[:-1] + f" ({'; '.join(reasons)})."
    evidence = Evidence("count", "clean_turns", clean, clean, clean, "turns", _indices(run.clean))
    shown = uncertain[0] if uncertain else None
    return Finding(
        "few_clean_turns",
        "Not enough clean turns",
        text,
        evidence,
        _indices(run.complete),
        run.moment(shown) if shown else None,
    )


def _nothing_stands_out(run: _Run) -> Finding:
    text = (
        f"Nothing in this run stands out beyond what the measurement can tell apart: over {len(run.clean)} clean "
        "turns, your left and right turns, the timing of your edges, your shins and your lean are all within "
        "their uncertainty."
    )
    evidence = Evidence(
        "count", "clean_turns", len(run.clean), len(run.clean), len(run.clean), "turns", _indices(run.clean)
    )
    return Finding("nothing_stands_out", "Nothing stands out", text, evidence, _indices(run.clean), None)


_FINDERS = (_weaker_side, _late_ski, _shins_apart, _least_parallel_turn, _rhythm, _lean)


def _indices(turns: Sequence[Mapping[str, Any]]) -> tuple[int, ...]:
    return tuple(sorted(turn["index"] for turn in turns))


def _degrees(value: float) -> str:
    return f"{value:.0f} degree" + ("" if f"{abs(value):.0f}" == "1" else "s")


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _zone(low: float, high: float, unit: str, digits: int) -> str:
    if low == -INF:
        return f"below {high:.{digits}f} {unit}".rstrip()
    if high == INF:
        return f"above {low:.{digits}f} {unit}".rstrip()
    return f"{low:.{digits}f} to {high:.{digits}f} {unit}".rstrip()


def _finite(value: float) -> float | None:
    """JSON has no infinity: an open end of a zone is null."""
    return None if math.isinf(value) else value
