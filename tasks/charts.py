"""The metrics chart: lean and edge angles over time with the turns, and the per-turn scores."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from tasks.turns import TechniqueMetrics

# The skier's left in orange and right in blue, as on the overlay video.
LEFT_COLOUR = "#ff8c00"
RIGHT_COLOUR = "#00a6d6"
LEAN_COLOUR = "#333333"


def plot_metrics(times: np.ndarray, metrics: TechniqueMetrics, path: Path) -> Path:
    """Write `metrics.png`: angles over time (turns shaded, apexes marked) over the turn scores."""
    angles = metrics.angles
    figure, (timeline, bars) = plt.subplots(2, 1, figsize=(11, 7), height_ratios=(2, 1), constrained_layout=True)
    for turn in metrics.turns:
        colour = RIGHT_COLOUR if turn.direction == "right" else LEFT_COLOUR
        timeline.axvspan(turn.start_s, turn.end_s, color=colour, alpha=0.06 if turn.partial else 0.14, lw=0)
        timeline.plot(turn.apex_s, turn.peak_inclination_deg, "v", color=LEAN_COLOUR, ms=7)
    timeline.plot(times, angles.inclination_deg, color=LEAN_COLOUR, lw=2, label="inclination")
    timeline.plot(times, angles.left_edge_deg, color=LEFT_COLOUR, lw=1.3, label="left edge angle")
    timeline.plot(times, angles.right_edge_deg, color=RIGHT_COLOUR, lw=1.3, label="right edge angle")
    timeline.axhline(0, color="#999999", lw=0.8)
    timeline.set(
        xlabel="time (s)",
        ylabel="degrees (+ = towards the skier's right)",
        title="Lean and edge angles; shaded: right turns blue, left turns orange (pale: partial)",
    )
    timeline.legend(loc="upper right", fontsize=8)
    timeline.set_xlim(times[0], times[-1])

    scored = [turn for turn in metrics.turns if turn.scored]
    scores = np.array([turn.edge_similarity for turn in scored])
    positions = np.arange(len(scored))
    for position, turn in zip(positions, scored):
        bars.bar(
            position,
            turn.edge_similarity,
            color=RIGHT_COLOUR if turn.direction == "right" else LEFT_COLOUR,
            alpha=0.35 if turn.uncertain else 1.0,
            hatch="//" if turn.uncertain else None,
        )
    bars.errorbar(
        positions,
        scores,
        yerr=[scores - [t.edge_similarity_low for t in scored], [t.edge_similarity_high for t in scored] - scores],
        fmt="none",
        ecolor=LEAN_COLOUR,
        capsize=5,
        lw=1.2,
    )
    for position, turn in zip(positions, scored):
        if turn.uncertain:
            bars.text(
                position,
                8,
                "uncertain",
                ha="center",
                va="bottom",
                fontsize=8,
                bbox={"facecolor": "white", "edgecolor": "none", "pad": 1},
            )
    bars.set_xticks(positions, [f"{turn.index} {turn.direction}" for turn in scored])
    bars.set(
        ylim=(0, 100),
        ylabel="edge similarity",
        title="Edge similarity per complete turn, with its 90% interval (hatched: uncertain)",
    )
    if not scored:
        bars.text(0.5, 0.5, "no complete turn", ha="center", va="center", transform=bars.transAxes)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
