"""The resampling statistics behind the score intervals."""

from __future__ import annotations

import numpy as np
import pytest

from tasks.intervals import Z_90, block_length, block_resamples, draw_interval, small_sample_factor


@pytest.mark.parametrize(
    ("series", "shortest", "longest"),
    [
        (np.random.default_rng(0).standard_normal(200), 1, 1),
        (np.convolve(np.random.default_rng(0).standard_normal(210), np.ones(10) / 10, "valid"), 3, 10),
        (np.sin(np.arange(30) / 20), 3, 10),  # a slow curve: blocks up to a third of the series
        (np.ones(20), 1, 1),
        (np.array([1.0, np.nan, 2.0]), 1, 1),
    ],
)
def test_block_length_follows_the_autocorrelation(series, shortest, longest):
    assert shortest <= block_length(series) <= longest


def test_block_resamples_are_runs_of_consecutive_rows():
    rows = block_resamples(20, 4, 50)
    assert rows.shape == (50, 20) and rows.min() >= 0 and rows.max() < 20
    steps = np.diff(rows.reshape(50, 5, 4), axis=2)
    assert (steps == 1).all()
    np.testing.assert_array_equal(rows, block_resamples(20, 4, 50))


def test_fewer_blocks_need_a_wider_interval():
    factors = [small_sample_factor(blocks) for blocks in (2, 5, 20, 1000)]
    assert factors == sorted(factors, reverse=True)
    assert factors[-1] == pytest.approx(1, abs=0.01) and factors[0] > 3


@pytest.mark.parametrize(
    ("blocks", "t_95"),
    [(2, 6.3138), (5, 2.1318), (20, 1.7291)],  # Student's t, one-sided 95%, blocks - 1 degrees
)
def test_the_small_sample_factor_is_students_t_over_the_normal_quantile(blocks, t_95):
    assert small_sample_factor(blocks) * Z_90 == pytest.approx(t_95, abs=1e-4)


@pytest.mark.parametrize("count", [1, 4, 16])
def test_the_mean_of_independent_scores_narrows_as_their_root_count(count):
    low, high = draw_interval(lambda draws: draws.mean(axis=1), [80.0] * count, [10.0] * count, 20000)
    assert (high - low) / 2 == pytest.approx(10 / np.sqrt(count), rel=0.05)
    assert (low + high) / 2 == pytest.approx(80, abs=0.2)


def test_scores_known_exactly_give_a_point():
    assert draw_interval(lambda draws: draws.max(axis=1), [70.0, 90.0], [0.0, 0.0], 100) == (90.0, 90.0)


def test_z_90_is_the_normal_quantile():
    from scipy.stats import norm

    assert pytest.approx(norm.ppf(0.95)) == Z_90
