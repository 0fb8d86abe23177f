from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from tasks.config import load_config
from tasks.frontal import FrameAngles
from tasks.turns import Turn, analyze_turns, find_transitions, rhythm, segment_turns, summarize

CONFIG = load_config().metrics
FPS = 30.0
NAN = np.nan


def angles(inclination, left=None, right=None) -> FrameAngles:
    inclination = np.asarray(inclination, dtype=float)
    left = inclination * 1.5 if left is None else np.asarray(left, dtype=float)
    right = left if right is None else np.asarray(right, dtype=float)
    return FrameAngles(inclination, left, right, left - right, np.zeros_like(left), "behind")


def linked_turns(seconds=5.0, start=0.5, amplitude=30.0):
    """Inclination of linked turns, one per second: transitions at every whole second."""
    times = start + np.arange(round(seconds * FPS)) / FPS
    return times, amplitude * np.sin(np.pi * times)


@pytest.mark.parametrize(
    ("inclination", "transitions"),
    [
        ([-10, -8, -2, 3, 8, 12], [3]),
        ([-10, -3, 2, 4, -2, -10], []),  # never reaches the 5-degree hysteresis on the right
        ([-10, -6, NAN, NAN, 1, 9], [4]),
        ([2, 3, 7, 9, -1, -6, -9, 1, 6], [4, 7]),
        ([NAN, NAN], []),
    ],
)
def test_find_transitions_with_hysteresis(inclination, transitions):
    assert find_transitions(np.array(inclination, dtype=float), 5.0) == transitions


def test_linked_turns_are_found_with_directions_apexes_and_partial_ends():
    times, inclination = linked_turns()
    turns = segment_turns(times, inclination, CONFIG)
    assert len(turns) == 6
    assert [t.partial for t in turns] == [True, False, False, False, False, True]
    assert [t.direction for t in turns[1:5]] == ["left", "right", "left", "right"]
    for turn, expected_start in zip(turns[1:5], (1.0, 2.0, 3.0, 4.0)):
        assert turn.start_s == pytest.approx(expected_start, abs=1.5 / FPS)
        assert turn.apex_s == pytest.approx(expected_start + 0.5, abs=1 / FPS)
        assert abs(turn.peak_inclination_deg) == pytest.approx(30, abs=0.5)
        assert turn.duration_s == pytest.approx(1.0, abs=1.5 / FPS)


@pytest.mark.parametrize(
    ("blip", "why"),
    [
        ((1.4, 1.6, 25.0), "a right lean inside a left turn, shorter than min_turn_s"),
        ((2.2, 2.8, -8.0), "a left lean inside a right turn, peaking below min_peak_deg"),
    ],
)
def test_weak_turns_merge_into_their_neighbours(blip, why):
    times, inclination = linked_turns()
    start, stop, value = blip
    inside = (times >= start) & (times < stop)
    inclination[inside] = value
    turns = segment_turns(times, inclination, CONFIG)
    assert len(turns) == 6, why
    assert [t.direction for t in turns[1:5]] == ["left", "right", "left", "right"]


def test_parallel_shins_score_near_100_and_partial_turns_are_not_scored():
    times, inclination = linked_turns()
    found = analyze_turns(times, angles(inclination), CONFIG)
    complete = [t for t in found.turns if not t.partial]
    assert all(t.edge_similarity > 99 for t in complete)
    assert all(t.edge_lag_ms == pytest.approx(0, abs=1e-6) for t in complete)
    assert all(t.edge_similarity is None for t in found.turns if t.partial)


def test_a_leg_that_tips_less_scores_low():
    times, inclination = linked_turns()
    left = 1.5 * inclination
    found = analyze_turns(times, angles(inclination, left, 0.3 * left), CONFIG)
    complete = [t for t in found.turns if not t.partial]
    assert all(t.edge_similarity < 50 for t in complete)
    assert all(t.edge_difference_deg > 15 for t in complete)


@pytest.mark.parametrize("delay", [-4, -2, 3, 5])
def test_the_lag_of_one_legs_edge_build_is_recovered(delay):
    times, inclination = linked_turns()
    left = 1.5 * inclination
    right = 1.5 * 30 * np.sin(np.pi * (times - delay / FPS))
    found = analyze_turns(times, angles(inclination, left, right), CONFIG)
    for turn in (t for t in found.turns if not t.partial):
        assert turn.edge_lag_ms == pytest.approx(delay / FPS * 1000, abs=1000 / FPS)
        assert turn.edge_lag_score < 100


def turn(index, direction, score, duration=1.0, partial=False, half_width=0.0, uncertain=False):
    return Turn(
        index=index,
        direction=direction,
        partial=partial,
        start_frame=0,
        apex_frame=0,
        end_frame=1,
        start_s=0.0,
        apex_s=0.0,
        end_s=duration,
        duration_s=duration,
        peak_inclination_deg=20.0,
        edge_similarity=None if partial else score,
        edge_similarity_low=None if partial else score - half_width,
        edge_similarity_high=None if partial else score + half_width,
        uncertain=None if partial else uncertain,
    )


def test_summary_takes_the_best_windows():
    scores = [60, 80, 70, 90, 85, 50, 95]
    turns = tuple(turn(i, "left" if i % 2 else "right", s) for i, s in enumerate(scores))
    summary = summarize(turns, CONFIG)
    assert summary["overall"] == pytest.approx(max(np.mean(scores[i : i + 4]) for i in range(4)))
    assert summary["right"] == pytest.approx(85.0)  # right turns 60, 70, 85, 95: medians 70 and 85
    assert summary["left"] == pytest.approx(80.0)  # left turns 80, 90, 50: median 80
    assert summary["complete_turns"] == 7


def test_summary_intervals_follow_the_turns_intervals():
    scores = [60, 80, 70, 90, 85, 50, 95]
    exact = summarize(tuple(turn(i, "left" if i % 2 else "right", s) for i, s in enumerate(scores)), CONFIG)
    assert exact["overall_low"] == exact["overall"] == exact["overall_high"]
    loose = summarize(
        tuple(turn(i, "left" if i % 2 else "right", s, half_width=8) for i, s in enumerate(scores)), CONFIG
    )
    for name in ("overall", "left", "right", "mean_edge_similarity"):
        assert loose[f"{name}_low"] < loose[name] < loose[f"{name}_high"], name
    # Averaging seven turns narrows the interval below a single turn's.
    assert loose["mean_edge_similarity_high"] - loose["mean_edge_similarity_low"] < 16


def test_uncertain_turns_are_left_out_of_the_summary():
    turns = (turn(0, "right", 90), turn(1, "left", 20, half_width=30, uncertain=True), turn(2, "right", 80))
    summary = summarize(turns, CONFIG)
    assert summary["mean_edge_similarity"] == pytest.approx(85.0)
    assert summary["complete_turns"] == 3 and summary["uncertain_turns"] == 1


def test_summary_is_null_with_a_reason_when_turns_are_too_few():
    turns = (turn(0, "left", None, partial=True), turn(1, "right", 80), turn(2, "left", 70))
    summary = summarize(turns, CONFIG)
    assert summary["overall"] is None and summary["overall_reason"] == "not enough turns: 4 needed, 2 scored"
    assert summary["left"] is None and summary["left_reason"] == "not enough left turns: 3 needed, 1 scored"


def test_rhythm_counts_complete_turns_only():
    turns = (
        turn(0, "left", None, 0.3, partial=True),
        turn(1, "right", 80, 1.0),
        turn(2, "left", 80, 1.5),
        turn(3, "right", 80, 2.0),
    )
    assert rhythm(turns) == {
        "turns_per_minute": 40.0,
        "duration_cv": pytest.approx(0.27, abs=0.01),
        "median_duration_s": 1.5,
    }
    assert rhythm(turns[:1])["turns_per_minute"] is None


@pytest.mark.parametrize("delay, full_score", [(1, True), (-1, True), (2, False), (-3, False)])
def test_a_lag_within_one_frame_is_not_held_against_the_skier(delay, full_score):
    times, inclination = linked_turns()
    left = 1.5 * inclination
    right = 1.5 * 30 * np.sin(np.pi * (times - delay / FPS))
    found = analyze_turns(times, angles(inclination, left, right), CONFIG)
    for turn in (t for t in found.turns if not t.partial):
        assert (turn.edge_lag_score == 100) is full_score


def test_each_side_has_its_mean_with_an_interval_however_few_its_turns():
    turns = (
        turn(0, "left", None, partial=True),
        turn(1, "right", 80, half_width=4),
        turn(2, "left", 70, half_width=4),
        turn(3, "right", 90, half_width=4),
    )
    summary = summarize(turns, CONFIG)
    assert summary["right"] is None and summary["left"] is None  # too few for the rolling medians
    assert summary["right_mean"] == pytest.approx(85.0) and summary["right_mean_turns"] == 2
    assert summary["left_mean"] == pytest.approx(70.0) and summary["left_mean_turns"] == 1
    assert summary["left_mean_low"] < 70 < summary["left_mean_high"]
    # Two turns averaged: narrower than one turn's interval.
    assert summary["right_mean_high"] - summary["right_mean_low"] < 8


def test_lag_difference_and_angulation_are_averaged_per_side_over_the_clean_turns():
    def scored(index, direction, lag, angulation, uncertain=False):
        return replace(
            turn(index, direction, 80, half_width=2, uncertain=uncertain),
            edge_lag_ms=lag,
            edge_lag_ms_low=lag - 10,
            edge_lag_ms_high=lag + 10,
            edge_difference_deg=2.0,
            edge_difference_deg_low=1.0,
            edge_difference_deg_high=3.0,
            angulation_deg=angulation,
            angulation_deg_low=angulation - 2,
            angulation_deg_high=angulation + 2,
        )

    turns = (
        scored(1, "left", -60, 2),
        scored(2, "right", 40, 14),
        scored(3, "left", -80, 4),
        scored(4, "right", 999, 99, uncertain=True),
    )
    summary = summarize(turns, CONFIG)
    assert summary["left_edge_lag_ms"] == pytest.approx(-70) and summary["right_edge_lag_ms"] == pytest.approx(40)
    assert summary["left_edge_lag_ms_low"] < -70 < summary["left_edge_lag_ms_high"]
    assert summary["left_angulation_deg"] == pytest.approx(3) and summary["right_angulation_deg"] == pytest.approx(14)
    assert summary["angulation_deg"] == pytest.approx(20 / 3, abs=0.01) and summary[
        "edge_difference_deg"
    ] == pytest.approx(2)


def test_rhythm_intervals_allow_a_frame_either_side_of_each_transition():
    turns = (turn(1, "right", 80, 1.0), turn(2, "left", 80, 1.5), turn(3, "right", 80, 2.0))
    found = rhythm(turns, 0.04)
    assert found["duration_spread_s"] == pytest.approx(1.0)
    assert (found["duration_spread_s_low"], found["duration_spread_s_high"]) == pytest.approx((0.84, 1.16))
    assert found["turns_per_minute_low"] < found["turns_per_minute"] == 40.0 < found["turns_per_minute_high"]
