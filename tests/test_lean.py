"""Angulation (how much further the shins tip than the body leans) of a turn, with its interval."""

from __future__ import annotations

import numpy as np
import pytest

from tasks.config import load_config
from tasks.frontal import FrameAngles
from tasks.lean import estimate_angulation

CONFIG = load_config().metrics
FRAMES = 36
# A turn of 1.2 s at 30 fps peaking at 30 degrees of lean, and smooth pose noise.
LEAN = 30 * np.sin(np.pi * (np.arange(FRAMES) + 0.5) / FRAMES)
SPAN, APEX = slice(0, FRAMES), FRAMES // 2


def wobble(scale: float, seed: int, views: int | None = None) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal((FRAMES + 2,) if views is None else (FRAMES + 2, views))
    return scale * (noise[:-2] + noise[1:-1] + noise[2:]) / np.sqrt(3)


def angles(direction: str, gap: float, noise: float = 0.0, view_noise: float = 0.0) -> FrameAngles:
    """Shins tipped `gap` degrees further into the turn than the body leans."""
    inward = 1.0 if direction == "right" else -1.0
    lean = inward * LEAN
    left = lean + inward * gap + wobble(noise, 1)
    right = lean + inward * gap + wobble(noise, 2)
    views = 8
    return FrameAngles(
        lean,
        left,
        right,
        left - right,
        np.zeros(FRAMES),
        "behind",
        left[:, None] + wobble(view_noise, 3, views),
        right[:, None] + wobble(view_noise, 4, views),
    )


@pytest.mark.parametrize("direction", ["left", "right"])
@pytest.mark.parametrize("gap", [-4.0, 0.0, 15.0])
def test_the_gap_between_shins_and_lean_is_measured_towards_the_inside_of_the_turn(direction, gap):
    found = estimate_angulation(SPAN, APEX, direction, angles(direction, gap), CONFIG)
    assert found.value == pytest.approx(gap, abs=1e-9)
    assert found.low == pytest.approx(gap, abs=1e-6) and found.high == pytest.approx(gap, abs=1e-6)


@pytest.mark.parametrize(
    ("noisier", "why"), [(dict(noise=3.0), "wobbling legs"), (dict(view_noise=3.0), "views that disagree")]
)
def test_noise_widens_the_interval_around_the_gap(noisier, why):
    calm = estimate_angulation(SPAN, APEX, "right", angles("right", 10.0, noise=0.5, view_noise=0.5), CONFIG)
    shaky = estimate_angulation(
        SPAN, APEX, "right", angles("right", 10.0, **({"noise": 0.5, "view_noise": 0.5} | noisier)), CONFIG
    )
    assert calm.low < calm.value < calm.high
    assert shaky.high - shaky.low > 1.5 * (calm.high - calm.low), why
    assert shaky.low < 10.0 < shaky.high


def test_frames_outside_the_edged_part_do_not_count():
    found = angles("right", 10.0)
    left = found.left_edge_deg.copy()
    left[:5] += 40  # the start of the turn, leaning less than the edged fraction of the peak
    changed = FrameAngles(
        found.inclination_deg, left, found.right_edge_deg, left - found.right_edge_deg, found.shin_angle_deg, "behind"
    )
    assert estimate_angulation(SPAN, APEX, "right", changed, CONFIG).value == pytest.approx(10.0)


def test_a_turn_without_legs_has_no_angulation():
    hidden = angles("left", 5.0)
    nothing = np.full(FRAMES, np.nan)
    blind = FrameAngles(hidden.inclination_deg, nothing, nothing, nothing, nothing, "behind")
    assert estimate_angulation(SPAN, APEX, "left", blind, CONFIG) is None
