"""Findings on constructed metrics: which are stated, that each claim agrees with the numbers
it cites, and that none is stated when the intervals it rests on overlap."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from tasks.config import load_config
from tasks.findings import CUES, MAX_FINDINGS, find_findings, findings_as_dicts
from tasks.turns import Turn, rhythm, summarize
from tasks.wording import different

CONFIG = load_config().metrics
FPS = 25.0
FRAME_S = 1 / FPS


def make_turn(
    index,
    direction,
    *,
    start,
    duration=1.5,
    similarity=88.0,
    half=3.0,
    lag=0.0,
    lag_half=10.0,
    difference=2.0,
    difference_half=1.0,
    angulation=7.0,
    angulation_half=2.0,
    uncertain=False,
    partial=False,
) -> Turn:
    frames = round(duration * FPS)
    sign = 1 if direction == "right" else -1
    scored = not partial
    values = {}
    if scored:
        values = dict(
            edge_similarity=similarity,
            edge_similarity_low=similarity - half,
            edge_similarity_high=similarity + half,
            edge_agreement_score=similarity,
            edge_agreement_score_low=similarity - half,
            edge_agreement_score_high=similarity + half,
            edge_difference_deg=difference,
            edge_difference_deg_low=max(0.0, difference - difference_half),
            edge_difference_deg_high=difference + difference_half,
            edge_lag_ms=lag,
            edge_lag_ms_low=lag - lag_half,
            edge_lag_ms_high=lag + lag_half,
            edge_lag_score=100.0,
            edge_lag_score_low=100.0,
            edge_lag_score_high=100.0,
            angulation_deg=angulation,
            angulation_deg_low=angulation - angulation_half,
            angulation_deg_high=angulation + angulation_half,
            edged_frames=frames // 2,
            uncertain=uncertain,
            uncertain_reason="legs hidden in 60% of the edged frames" if uncertain else None,
        )
    return Turn(
        index=index,
        direction=direction,
        partial=partial,
        start_frame=start,
        apex_frame=start + frames // 2,
        end_frame=start + frames,
        start_s=start * FRAME_S,
        apex_s=(start + frames // 2) * FRAME_S,
        end_s=(start + frames) * FRAME_S,
        duration_s=frames * FRAME_S,
        peak_inclination_deg=sign * 30.0,
        **values,
    )


def make_run(specs, **summary_overrides):
    """`results.json`-like metrics and frames for turns described by `specs` (dicts of
    `make_turn` options, `direction` required), between a partial turn at each end."""
    turns, start = [], 0
    directions = [spec["direction"] for spec in specs]
    first = "left" if directions and directions[0] == "right" else "right"
    last = "left" if directions and directions[-1] == "right" else "right"
    for index, spec in enumerate(
        [
            {"direction": first, "partial": True, "duration": 0.6},
            *specs,
            {"direction": last, "partial": True, "duration": 0.6},
        ]
    ):
        turn = make_turn(index, start=start, **spec)
        turns.append(turn)
        start = turn.end_frame
    frames = []
    for turn in turns:
        sign = 1 if turn.direction == "right" else -1
        count = turn.end_frame - turn.start_frame
        gap = turn.angulation_deg if turn.angulation_deg is not None else 5.0
        lag_frames = (turn.edge_lag_ms or 0.0) / 1000 / FRAME_S
        for k in range(count):
            lean = 30 * math.sin(math.pi * (k + 0.5) / count)
            late = 30 * math.sin(math.pi * max(0.0, k + 0.5 - abs(lag_frames)) / count)
            # A positive lag: the right leg's edge builds later than the left's.
            left = (late if lag_frames < 0 else lean) + gap
            right = (late if lag_frames > 0 else lean) + gap + (turn.edge_difference_deg or 0.0)
            frames.append(
                {
                    "index": len(frames),
                    "time_s": round(len(frames) * FRAME_S, 4),
                    "turn_index": turn.index,
                    "inclination_deg": sign * lean,
                    "left_edge_deg": sign * left,
                    "right_edge_deg": sign * right,
                }
            )
    summary = summarize(tuple(turns), CONFIG) | summary_overrides
    metrics = {"turns": [turn.as_dict() for turn in turns], "summary": summary, "rhythm": rhythm(tuple(turns), FRAME_S)}
    return metrics, frames


def findings_of(metrics, frames):
    ranked = find_findings(metrics, frames, frame_s=FRAME_S, edged_fraction=CONFIG.edged_fraction)
    return findings_as_dicts(ranked)


# --- The checker: every finding against the metrics it cites ---------------------------------

ZONES = {
    "inside_ski_late": lambda metrics: (-1000 * FRAME_S, 1000 * FRAME_S),
    "outside_ski_late": lambda metrics: (-1000 * FRAME_S, 1000 * FRAME_S),
    "shins_apart": lambda metrics: (-math.inf, 4.0),
    "uneven_rhythm": lambda metrics: (-math.inf, 0.4 * metrics["rhythm"]["median_duration_s"]),
    "even_rhythm": lambda metrics: (0.25 * metrics["rhythm"]["median_duration_s"], math.inf),
    "leaning_in": lambda metrics: (5.0, math.inf),
    "angulation": lambda metrics: (-math.inf, 10.0),
}


def cited(source, metric, turns, metrics):
    """The (value, low, high) a finding cites, read from the metrics themselves."""
    by_index = {turn["index"]: turn for turn in metrics["turns"]}
    if source in ("summary", "rhythm"):
        stored = metrics[source]
        return stored[metric], stored[f"{metric}_low"], stored[f"{metric}_high"]
    if source == "turn":
        (index,) = turns
        turn = by_index[index]
        return turn[metric], turn[f"{metric}_low"], turn[f"{metric}_high"]
    if source == "turns":
        return (
            None,
            min(by_index[i][f"{metric}_low"] for i in turns),
            max(by_index[i][f"{metric}_high"] for i in turns),
        )
    if source == "count":
        clean = [
            t for t in metrics["turns"] if not t["partial"] and t["edge_similarity"] is not None and not t["uncertain"]
        ]
        return len(clean), len(clean), len(clean)
    raise AssertionError(f"unknown source {source}")


def numbers(text):
    return [float(n) for n in re.findall(r"-?\d+(?:\.\d+)?", text)]


def check_claim(finding, metrics, frames):
    """Assert that the finding's claim agrees with every number it cites."""
    evidence = finding["evidence"]
    value, low, high = cited(evidence["source"], evidence["metric"], evidence["turns"], metrics)
    assert (evidence["value"], evidence["low"], evidence["high"]) == (value, low, high), finding["key"]
    clean = {
        t["index"]: t
        for t in metrics["turns"]
        if not t["partial"] and t["edge_similarity"] is not None and not t["uncertain"]
    }
    complete = {t["index"]: t for t in metrics["turns"] if not t["partial"]}
    assert finding["kind"] == CUES[finding["key"]].kind and finding["try"]
    if finding["kind"] != "note":
        against = evidence["against"]
        their = (
            -math.inf if against["low"] is None else against["low"],
            math.inf if against["high"] is None else against["high"],
        )
        if against["source"] == "zone":
            assert their == pytest.approx(ZONES[finding["key"]](metrics)), finding["key"]
        else:
            _, their_low, their_high = cited(against["source"], against["metric"], against["turns"], metrics)
            assert their == (their_low, their_high)
            assert not set(against["turns"]) & set(evidence["turns"])
        # The rule: a finding only where its intervals do not overlap.
        assert different((low, high), their), finding
        pool = complete if finding["key"].endswith("rhythm") else clean
        assert set(evidence["turns"]) <= set(pool), finding
    key, text = finding["key"], finding["text"]
    said = numbers(text)
    if key in ("weaker_side", "leaning_in_side"):
        field = "mean" if key == "weaker_side" else "angulation_deg"
        weaker = evidence["metric"].split("_")[0]
        stronger = "right" if weaker == "left" else "left"
        assert evidence["metric"] == f"{weaker}_{field}" and evidence["against"]["metric"] == f"{stronger}_{field}"
        assert value < evidence["against"]["value"]
        assert all(clean[i]["direction"] == weaker for i in evidence["turns"])
        assert all(clean[i]["direction"] == stronger for i in evidence["against"]["turns"])
        assert round(value) in said and round(evidence["against"]["value"]) in said
        assert (
            f"turn {weaker}" in text.lower() or f"turning {weaker}" in text.lower() or f"{weaker} turn" in text.lower()
        )
    elif key in ("inside_ski_late", "outside_ski_late"):
        direction = evidence["metric"].split("_")[0]
        late = "right" if value > 0 else "left"  # a positive lag: the right leg's edge builds later
        role = "inside" if late == direction else "outside"
        assert key == f"{role}_ski_late" and f"your {role} ({late}) ski tips about {abs(value):.0f} ms after" in text
        assert all(clean[i]["direction"] == direction for i in evidence["turns"])
    elif key == "shins_apart":
        assert round(value) in said and value > 4
    elif key == "least_parallel_turn":
        (index,) = evidence["turns"]
        assert clean[index]["edge_difference_deg"] == max(t["edge_difference_deg"] for t in clean.values())
        assert index in said and round(value) in said and value >= 4
    elif key in ("uneven_rhythm", "even_rhythm"):
        durations = [t["duration_s"] for t in complete.values()]
        assert round(min(durations), 1) in said and round(max(durations), 1) in said
        assert value == pytest.approx(max(durations) - min(durations), abs=0.011)
    elif key in ("leaning_in", "angulation"):
        assert round(value) in said and (value < 5 if key == "leaning_in" else value > 10)
    elif key == "few_clean_turns":
        assert value < 2 and (int(value) in said or (value == 0 and "no complete turn" in text))
    if finding["time_s"] is not None:
        frame = frames[finding["frame"]]
        assert frame["time_s"] == finding["time_s"] and frame["turn_index"] == finding["turn"]
        assert finding["turn"] in finding["turns"] and finding["still"] == f"finding-{finding['rank']}.jpg"
    else:
        assert finding["still"] is None


# --- Which findings are stated -----------------------------------------------------------------

# Turns of 1.3 s and 1.7 s: a rhythm neither even nor uneven enough to tell.
RIGHT, LEFT = {"direction": "right", "duration": 1.3}, {"direction": "left", "duration": 1.7}


def alternating(count, **options):
    return [(RIGHT if i % 2 == 0 else LEFT) | options for i in range(count)]


def per_side(count, left, right):
    return [RIGHT | right if i % 2 == 0 else LEFT | left for i in range(count)]


SCENARIOS = {
    "steady skier": (alternating(6), ["nothing_stands_out"]),
    "left turns weaker": (per_side(6, {"similarity": 70.0}, {"similarity": 90.0}), ["weaker_side"]),
    "inside ski late both ways": (per_side(6, {"lag": -100.0}, {"lag": 100.0}), ["inside_ski_late", "inside_ski_late"]),
    "outside ski late turning left": (per_side(6, {"lag": 100.0}, {}), ["outside_ski_late"]),
    "lag within a frame": (per_side(6, {"lag": 30.0, "lag_half": 20.0}, {}), ["nothing_stands_out"]),
    "shins apart throughout": (alternating(6, difference=8.0), ["shins_apart"]),
    "one turn not parallel": ([*alternating(4), {"direction": "left", "difference": 9.0}], ["least_parallel_turn"]),
    "uneven rhythm": (
        [{"direction": d, "duration": s} for d, s in zip(["right", "left", "right", "left"], [1.0, 2.0, 1.2, 1.9])],
        ["uneven_rhythm"],
    ),
    "even rhythm": (
        [{"direction": d, "duration": s} for d, s in zip(["right", "left", "right", "left"], [1.48, 1.52, 1.48, 1.52])],
        ["even_rhythm"],
    ),
    "leaning in turning left": (per_side(6, {"angulation": 1.0}, {"angulation": 15.0}), ["leaning_in_side"]),
    "leaning in": (alternating(6, angulation=1.0, angulation_half=1.0), ["leaning_in"]),
    "angulating": (alternating(6, angulation=15.0), ["angulation"]),
    "one clean turn": (
        [
            {"direction": "right"},
            {"direction": "left", "uncertain": True, "half": 15.0},
            {"direction": "right", "uncertain": True, "half": 15.0},
        ],
        ["few_clean_turns"],
    ),
    "no complete turn": ([], ["few_clean_turns"]),
    "everything at once": (
        per_side(
            6,
            {"similarity": 60.0, "lag": -150.0, "difference": 8.0, "angulation": 1.0},
            {"similarity": 90.0, "lag": 150.0, "difference": 8.0, "angulation": 15.0},
        ),
        ["inside_ski_late", "inside_ski_late", "weaker_side", "leaning_in_side"],
    ),
}


@pytest.mark.parametrize("name", SCENARIOS)
def test_each_pattern_gives_its_finding_and_every_claim_matches_its_numbers(name):
    specs, expected = SCENARIOS[name]
    metrics, frames = make_run(specs)
    found = findings_of(metrics, frames)
    assert sorted(f["key"] for f in found) == sorted(expected), [f["text"] for f in found]
    assert [f["rank"] for f in found] == list(range(1, len(found) + 1))
    for finding in found:
        check_claim(finding, metrics, frames)


def test_the_sentences_read_as_a_coach_would_say_them():
    metrics, frames = make_run(per_side(6, {"lag": -60.0}, {}))
    (finding,) = findings_of(metrics, frames)
    assert (
        finding["text"]
        == "In your 3 left turns your inside (left) ski tips about 60 ms after your outside (right) ski."
    )
    assert finding["try"].startswith("Start each turn by tipping the inside foot")
    assert finding["evidence"]["text"] == (
        "mean edge lag of left turns (+ = right leg later): -60 ms (-66 to -54) over turns 2, 4, 6; "
        "a lag within one frame cannot be told from the pose's wobble: -40 to 40 ms"
    )


def test_too_many_findings_keep_the_four_largest_issues_before_any_strength():
    specs = per_side(
        8,
        {"similarity": 60.0, "lag": -150.0, "difference": 9.0, "angulation": 1.0},
        {"similarity": 90.0, "lag": 150.0, "difference": 9.0, "angulation": 15.0},
    )
    specs = [spec | {"duration": 1.5} for spec in specs]
    metrics, frames = make_run(specs)
    every = find_findings(metrics, frames, frame_s=FRAME_S, edged_fraction=CONFIG.edged_fraction)
    assert len(every) == MAX_FINDINGS
    kinds = [finding.kind for finding in every]
    assert kinds == sorted(kinds, key=["issue", "strength"].index)
    weights = [finding.weight for finding in every if finding.kind == "issue"]
    assert weights == sorted(weights, reverse=True)


def test_the_moment_of_a_late_ski_is_where_the_legs_are_furthest_apart_as_the_edge_builds():
    metrics, frames = make_run(per_side(4, {"lag": -160.0}, {}))
    (finding,) = findings_of(metrics, frames)
    turn = next(t for t in metrics["turns"] if t["index"] == finding["turn"])
    assert turn["start_frame"] <= finding["frame"] <= turn["apex_frame"]
    gaps = [
        frames[f]["left_edge_deg"] - frames[f]["right_edge_deg"]
        for f in range(turn["start_frame"], turn["apex_frame"] + 1)
    ]
    # A left turn's edges are negative; the right (outside) leg is further in while the left lags.
    assert frames[finding["frame"]]["left_edge_deg"] - frames[finding["frame"]]["right_edge_deg"] == max(gaps)


# --- Never stated when the intervals overlap ---------------------------------------------------


def _apart(metric_low, metric_high, other, gap):
    """Summary overrides putting one interval `gap` away from `other`'s (negative: overlapping)."""
    return {metric_low: other - 10.0 - gap, metric_high: other - gap}


@pytest.mark.parametrize("gap", [-0.01, 0.0, 0.01])
@pytest.mark.parametrize(
    ("key", "overrides"),
    [
        (
            "weaker_side",
            lambda gap: {
                "left_mean": 70.0,
                "left_mean_low": 65.0,
                "left_mean_high": 80.0 - gap,
                "right_mean": 85.0,
                "right_mean_low": 80.0,
                "right_mean_high": 90.0,
            },
        ),
        (
            "inside_ski_late",
            lambda gap: {
                "left_edge_lag_ms": -60.0,
                "left_edge_lag_ms_low": -80.0,
                "left_edge_lag_ms_high": -40.0 - gap,
            },
        ),
        (
            "shins_apart",
            lambda gap: {
                "edge_difference_deg": 6.0,
                "edge_difference_deg_low": 4.0 + gap,
                "edge_difference_deg_high": 8.0,
            },
        ),
        (
            "leaning_in_side",
            lambda gap: {
                "left_angulation_deg": 2.0,
                "left_angulation_deg_low": 0.0,
                "left_angulation_deg_high": 10.0 - gap,
                "right_angulation_deg": 15.0,
                "right_angulation_deg_low": 10.0,
                "right_angulation_deg_high": 20.0,
            },
        ),
        (
            "leaning_in",
            lambda gap: {"angulation_deg": 3.0, "angulation_deg_low": 1.0, "angulation_deg_high": 5.0 - gap},
        ),
        (
            "angulation",
            lambda gap: {"angulation_deg": 14.0, "angulation_deg_low": 10.0 + gap, "angulation_deg_high": 18.0},
        ),
    ],
)
def test_a_finding_is_stated_only_once_its_intervals_part(key, overrides, gap):
    metrics, frames = make_run(alternating(6), **overrides(gap))
    found = findings_of(metrics, frames)
    assert (key in [f["key"] for f in found]) is (gap > 0), [f["text"] for f in found]
    for finding in found:
        check_claim(finding, metrics, frames)


def test_a_turn_is_only_the_least_parallel_when_it_is_apart_from_every_other():
    for gap, stated in ((-0.01, False), (0.01, True)):
        specs = alternating(4, difference=3.0, difference_half=1.0)  # others reach 4.0
        specs.append({"direction": "left", "difference": 6.0, "difference_half": 2.0 - gap})
        metrics, frames = make_run(specs)
        assert ("least_parallel_turn" in [f["key"] for f in findings_of(metrics, frames)]) is stated


def test_random_runs_never_state_a_finding_whose_intervals_overlap():
    rng = np.random.default_rng(7)
    stated = set()
    for _ in range(150):
        count = int(rng.integers(0, 9))
        specs = [
            {
                "direction": "right" if i % 2 == 0 else "left",
                "similarity": float(rng.uniform(40, 100)),
                "half": float(rng.uniform(1, 14)),
                "lag": float(rng.uniform(-200, 200)),
                "lag_half": float(rng.uniform(5, 120)),
                "difference": float(rng.uniform(0, 12)),
                "difference_half": float(rng.uniform(0.5, 5)),
                "angulation": float(rng.uniform(-5, 25)),
                "angulation_half": float(rng.uniform(0.5, 8)),
                "duration": float(rng.uniform(0.8, 2.5)),
                "uncertain": bool(rng.random() < 0.15),
            }
            for i in range(count)
        ]
        metrics, frames = make_run(specs)
        found = findings_of(metrics, frames)
        assert 1 <= len(found) <= MAX_FINDINGS
        for finding in found:
            check_claim(finding, metrics, frames)
            stated.add(finding["key"])
    # The runs cover every kind of finding but the rare ones.
    assert stated >= {
        "weaker_side",
        "inside_ski_late",
        "outside_ski_late",
        "shins_apart",
        "uneven_rhythm",
        "leaning_in_side",
        "few_clean_turns",
    }


def test_the_checker_catches_a_claim_that_disagrees_with_its_numbers():
    metrics, frames = make_run(per_side(6, {"similarity": 70.0}, {"similarity": 90.0}))
    (finding,) = findings_of(metrics, frames)
    wrong_side = finding | {"evidence": finding["evidence"] | {"metric": "right_mean"}}
    with pytest.raises(AssertionError):
        check_claim(wrong_side, metrics, frames)
    overlapping = {
        **metrics,
        "summary": metrics["summary"] | {"left_mean_high": metrics["summary"]["right_mean_low"] + 1},
    }
    with pytest.raises(AssertionError):
        check_claim(
            finding | {"evidence": finding["evidence"] | {"high": overlapping["summary"]["left_mean_high"]}},
            overlapping,
            frames,
        )


def test_every_cue_names_its_metric_kind_and_something_to_try():
    for key, cue in CUES.items():
        assert cue.kind in ("issue", "strength", "note"), key
        assert cue.metric and cue.pattern and cue.cue.endswith("."), key
        assert cue.threshold is None or cue.threshold > 0


def test_an_uncertain_turn_is_left_out_and_named_as_the_moment_of_too_few_clean_turns():
    specs = [{"direction": "right"}, {"direction": "left", "uncertain": True, "half": 15.0}]
    metrics, frames = make_run(specs)
    (finding,) = findings_of(metrics, frames)
    assert finding["key"] == "few_clean_turns"
    assert (
        "1 of 2 complete turns was measured precisely enough (legs hidden in 60% of the edged frames)"
        in finding["text"]
    )
    assert finding["turn"] == 2


def test_findings_need_no_numerical_library():
    import subprocess
    import sys

    script = (
        "import sys; sys.modules['numpy'] = None; sys.modules['scipy'] = None\n"
        "import tasks.findings, tasks.comparison, tasks.wording; print('ok')"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.stdout == "ok\n", done.stderr
