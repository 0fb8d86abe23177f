"""Edge similarity of a turn and its intervals, on constructed angles."""

from __future__ import annotations

import numpy as np
import pytest

from tasks.config import load_config
from tasks.edges import best_lags, edge_scores, estimate_edges
from tasks.frontal import FrameAngles

CONFIG = load_config().metrics
FPS = 30.0
FRAME_S = 1 / FPS
# One right turn of 1.2 s, peaking at 30 degrees of lean in the middle.
FRAMES = 36
LEAN = 30 * np.sin(np.pi * (np.arange(FRAMES) + 0.5) / FRAMES)
SPAN = slice(0, FRAMES)
APEX = FRAMES // 2


def wobble(scale: float, seed: int, views: int | None = None) -> np.ndarray:
    """Smooth pose noise: white noise through a 3-frame moving average, `scale` degrees."""
    rng = np.random.default_rng(seed)
    shape = (FRAMES,) if views is None else (FRAMES, views)
    noise = rng.standard_normal((FRAMES + 2, *shape[1:]))
    return scale * (noise[:-2] + noise[1:-1] + noise[2:]) / np.sqrt(3)


def turn_angles(
    left_noise: float = 0.0,
    view_noise: float = 0.0,
    hidden: np.ndarray | None = None,
    disagree: np.ndarray | None = None,
    offset: float = 0.0,
    views: int = 8,
) -> FrameAngles:
    """A turn's angles: both shins tip 1.4 x the lean, the left one `offset` further, with
    `left_noise` degrees of wobble on the left leg and `view_noise` between the views."""
    right = 1.4 * LEAN
    left = right + offset + wobble(left_noise, 1)
    view_left = left[:, None] + wobble(view_noise, 2, views)
    view_right = right[:, None] + wobble(view_noise, 3, views)
    if hidden is not None:
        left = np.where(hidden, np.nan, left)
    return FrameAngles(
        LEAN,
        left,
        right,
        left - right,
        np.zeros(FRAMES),
        "behind",
        view_left,
        view_right,
        np.zeros(FRAMES, bool),
        np.zeros(FRAMES, bool) if disagree is None else disagree,
    )


def half_width(estimate) -> float:
    return (estimate.high.edge_similarity - estimate.low.edge_similarity) / 2


def test_parallel_legs_score_100_with_a_tight_interval():
    estimate = estimate_edges(SPAN, APEX, turn_angles(), FRAME_S, CONFIG)
    assert estimate.scores.edge_similarity == pytest.approx(100)
    assert estimate.high.edge_similarity == 100 and half_width(estimate) < 1
    assert estimate.uncertain_reason is None


EVERY_OTHER = np.arange(FRAMES) % 2 == 0
DISPUTED = np.arange(FRAMES) % 3 > 0


@pytest.mark.parametrize(
    ("worse", "why"),
    [
        (dict(left_noise=3.0), "a leg that wobbles more"),
        (dict(view_noise=4.0), "views of the second model that disagree"),
        (dict(hidden=EVERY_OTHER), "the legs hidden in half the frames"),
        (dict(disagree=DISPUTED), "the two keypoint models disagreeing in two frames of three"),
    ],
)
def test_each_source_of_doubt_widens_the_interval(worse, why):
    settings = dict(offset=4.0, left_noise=1.0, view_noise=1.0)
    base = estimate_edges(SPAN, APEX, turn_angles(**settings), FRAME_S, CONFIG)
    doubtful = estimate_edges(SPAN, APEX, turn_angles(**(settings | worse)), FRAME_S, CONFIG)
    assert half_width(doubtful) > 1.2 * half_width(base), why
    for estimate in (base, doubtful):
        assert estimate.low.edge_similarity <= estimate.scores.edge_similarity <= estimate.high.edge_similarity


def test_fewer_edged_frames_widen_the_interval():
    angles = turn_angles(offset=4.0, left_noise=1.5, view_noise=1.0)
    wide = estimate_edges(SPAN, APEX, angles, FRAME_S, CONFIG)
    narrow = estimate_edges(
        SPAN, APEX, angles, FRAME_S, load_config(overrides={"metrics": {"edged_fraction": 0.9}}).metrics
    )
    assert narrow.edged_frames < wide.edged_frames / 2
    assert half_width(narrow) > half_width(wide)


@pytest.mark.parametrize(
    ("worse", "reason"),
    [
        (dict(left_noise=22.0), "too few edged frames (26) for the legs' wobble"),
        (dict(view_noise=14.0), "the pose models disagree about the legs"),
        (dict(hidden=np.arange(FRAMES) % 4 > 0, left_noise=6.0), "legs hidden in 77% of the edged frames"),
    ],
)
def test_a_too_wide_interval_is_uncertain_with_its_main_reason(worse, reason):
    estimate = estimate_edges(SPAN, APEX, turn_angles(offset=4.0, **worse), FRAME_S, CONFIG)
    assert half_width(estimate) > CONFIG.uncertain_half_width
    assert estimate.uncertain_reason.startswith(reason)


def test_the_same_turn_gives_the_same_interval():
    angles = turn_angles(offset=3.0, left_noise=2.0, view_noise=2.0)
    first, second = (estimate_edges(SPAN, APEX, angles, FRAME_S, CONFIG) for _ in range(2))
    assert first == second


@pytest.mark.parametrize(("tilt", "cost"), [(5.0, 15.0), (10.0, 30.0)])
def test_a_tilted_shin_costs_points(tilt, cost):
    straight = estimate_edges(SPAN, APEX, turn_angles(left_noise=1.0), FRAME_S, CONFIG)
    tilted = estimate_edges(SPAN, APEX, turn_angles(left_noise=1.0, offset=tilt), FRAME_S, CONFIG)
    assert straight.scores.edge_similarity - tilted.scores.edge_similarity >= cost


def test_too_few_edged_frames_give_no_score():
    hidden = np.ones(FRAMES, bool)
    hidden[APEX] = False
    assert estimate_edges(SPAN, APEX, turn_angles(hidden=hidden), FRAME_S, CONFIG) is None


def test_resampling_every_frame_once_gives_the_plain_scores():
    angles = turn_angles(offset=3.0, left_noise=2.0)
    edged = np.abs(LEAN) >= CONFIG.edged_fraction * LEAN[APEX]
    plain = edge_scores(angles.left_edge_deg, angles.right_edge_deg, edged, FRAME_S, CONFIG)
    rows = np.tile(np.arange(FRAMES), (2, 1))
    resampled = edge_scores(angles.left_edge_deg, angles.right_edge_deg, edged, FRAME_S, CONFIG, rows)
    np.testing.assert_allclose(resampled, np.tile(plain.as_array(), (2, 1)))


def lag(left: np.ndarray, right: np.ndarray, max_lag: int) -> float:
    return float(best_lags(left, right, max_lag, np.arange(len(left))[None])[0])


def test_best_lag_prefers_no_shift_for_identical_curves():
    curve = np.sin(np.linspace(0, 3, 40))
    assert lag(curve, curve, 5) == 0


@pytest.mark.parametrize("delay", [-2.5, 0.4, 1.5, 3.25])
def test_best_lag_finds_a_shift_of_part_of_a_frame(delay):
    frames = np.arange(60)
    assert lag(np.sin(frames / 6), np.sin((frames - delay) / 6), 8) == pytest.approx(delay, abs=0.15)
