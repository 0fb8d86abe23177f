"""The analysis files: the landmarks (a row per frame) and the turns (a row per turn), each as
CSV and as Parquet through pandas DataFrames, and `results.json` (everything else, see
`tasks/contract.py`). The README documents each table's columns.

Each is written to a temporary name and renamed, so a reader never sees half a file. pandas is
imported only when the tables are written, not with the flow.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import numpy as np

from tasks.config import AnalysisConfig
from tasks.contract import SCHEMA_VERSION, Results
from tasks.files import atomic_path
from tasks.landmarks import LANDMARK_NAMES
from tasks.pose import PoseSequence
from tasks.tracking import SkierTrack
from tasks.turns import TechniqueMetrics, Turn
from tasks.video import VideoInfo
from tasks.wording import summary_score, turn_score

if TYPE_CHECKING:
    import pandas as pd

# Per landmark: image position (px), world position (m) and visibility (0-1).
LANDMARK_AXES = ("x_px", "y_px", "x_m", "y_m", "z_m", "visibility")
FRAME_COLUMNS = ("frame", "time_s", "skier_x1", "skier_y1", "skier_x2", "skier_y2", "pose_detected")
# Per-frame technique metrics, in degrees; the turn index is -1 outside any turn.
METRIC_COLUMNS = (
    "turn_index",
    "inclination_deg",
    "left_edge_deg",
    "right_edge_deg",
    "edge_difference_deg",
    "shin_angle_deg",
)
TURN_COLUMNS = tuple(Turn.__dataclass_fields__)


def landmark_columns() -> list[str]:
    """The landmark columns of `landmarks.csv`: `<landmark>.<axis>` for each landmark and axis."""
    return [f"{name}.{axis}" for name in LANDMARK_NAMES for axis in LANDMARK_AXES]


def landmarks_table(skier: SkierTrack, pose: PoseSequence, metrics: TechniqueMetrics) -> pd.DataFrame:
    """One row per frame of the window (the layout of `landmarks.csv`, see the README): the
    frame, its time, the skier's box, the angles and every landmark's position and visibility,
    rounded as written; NaN where there is no value (no pose, no box)."""
    import pandas as pd

    frames = len(pose.times_s)
    angles = metrics.angles
    per_frame = np.round(
        np.column_stack(
            [
                angles.inclination_deg,
                angles.left_edge_deg,
                angles.right_edge_deg,
                angles.edge_difference_deg,
                angles.shin_angle_deg,
            ]
        ),
        2,
    )
    landmarks = np.concatenate(
        [np.round(pose.image_xy, 2), np.round(pose.world_xyz, 4), np.round(pose.visibility[..., None], 3)],
        axis=2,
    ).reshape(frames, -1)
    boxes = np.round(skier.boxes, 1)
    columns: dict[str, Any] = {
        "frame": np.arange(frames),
        "time_s": np.asarray(pose.times_s, dtype=np.float64),
        **{name: boxes[:, i] for i, name in enumerate(FRAME_COLUMNS[2:6])},
        "pose_detected": pose.detected.astype(np.int64),
        "turn_index": np.asarray(metrics.turn_of_frame, dtype=np.int64),
        **{name: per_frame[:, i] for i, name in enumerate(METRIC_COLUMNS[1:])},
        **{name: landmarks[:, i] for i, name in enumerate(landmark_columns())},
    }
    return pd.DataFrame(columns)


def tidy_landmarks(table: pd.DataFrame) -> pd.DataFrame:
    """`landmarks_table` as `landmarks.parquet` holds it: one row per frame and landmark, with
    the frame's own columns beside each landmark's `x_px` ... `visibility`; nulls where there
    is no value, `landmark` as a category, `pose_detected` as a boolean."""
    import pandas as pd

    frames, count = len(table), len(LANDMARK_NAMES)
    per_frame = table[[*FRAME_COLUMNS, *METRIC_COLUMNS]].loc[np.repeat(table.index.to_numpy(), count)]
    tidy = per_frame.reset_index(drop=True)
    tidy["pose_detected"] = tidy["pose_detected"].astype(bool)
    tidy.insert(len(tidy.columns), "landmark", pd.Categorical(np.tile(LANDMARK_NAMES, frames), LANDMARK_NAMES))
    values = table[landmark_columns()].to_numpy().reshape(frames * count, len(LANDMARK_AXES))
    for i, axis in enumerate(LANDMARK_AXES):
        tidy[axis] = values[:, i]
    nullable = ["skier_x1", "skier_y1", "skier_x2", "skier_y2", *METRIC_COLUMNS[1:], *LANDMARK_AXES]
    return tidy.astype({name: "Float64" for name in nullable})


def write_landmarks(csv_path: Path, parquet_path: Path, table: pd.DataFrame) -> None:
    """Write `landmarks.csv` (one row per frame, empty cells where there is no value) and
    `landmarks.parquet` (`tidy_landmarks`)."""
    cells = table.astype({"time_s": object})
    cells["time_s"] = [f"{t:.4f}" for t in table["time_s"]]
    with _atomic(csv_path, newline="") as handle:
        cells.to_csv(handle, index=False, na_rep="", lineterminator="\r\n")
    _write_parquet(parquet_path, tidy_landmarks(table))


def turns_table(metrics: TechniqueMetrics) -> pd.DataFrame:
    """One row per turn, partial ones included and flagged, the columns of `contract.Turn`,
    each cell the value `results.json` holds (None where there is none)."""
    import pandas as pd

    return pd.DataFrame([turn.as_dict() for turn in metrics.turns], columns=list(TURN_COLUMNS), dtype=object)


def write_turns(csv_path: Path, parquet_path: Path, table: pd.DataFrame) -> None:
    """Write `turns.csv` and `turns.parquet` (typed columns, nulls where there is no value)."""
    with _atomic(csv_path, newline="") as handle:
        table.to_csv(handle, index=False, na_rep="", lineterminator="\r\n")
    _write_parquet(parquet_path, table.astype(_TURN_DTYPES))


# The Parquet type of each turn column (nullable: a partial turn has no scores).
_TURN_DTYPES = {
    name: "Int64"
    if name in ("index", "start_frame", "apex_frame", "end_frame", "edged_frames")
    else "boolean"
    if name in ("partial", "uncertain")
    else "string"
    if name in ("direction", "uncertain_reason")
    else "Float64"
    for name in TURN_COLUMNS
}


def _write_parquet(path: Path, table: pd.DataFrame) -> None:
    with atomic_path(path) as partial:
        table.to_parquet(partial, index=False, engine="pyarrow")


def build_results(
    *,
    outcome: str,
    info: VideoInfo,
    config: AnalysisConfig,
    device: str,
    skier: SkierTrack,
    pose: PoseSequence | None,
    metrics: TechniqueMetrics | None,
    outputs: dict[str, str],
    timings: dict[str, float],
    warnings: list[str],
    findings: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The content of `results.json`, versioned by `schema_version`; `findings` are the
    ranked findings (`tasks/findings.py`), empty without metrics."""
    times = pose.times_s if pose is not None else info.trim_start_s + np.arange(len(skier.boxes)) / info.fps
    frames = [
        {
            "index": i,
            "time_s": round(float(t), 4),
            "skier_box": None if np.isnan(skier.boxes[i, 0]) else [round(float(v), 1) for v in skier.boxes[i]],
            "pose": bool(pose is not None and pose.has_pose[i]),
            "pose_detected": bool(pose is not None and pose.detected[i]),
        }
        | (_frame_angles(metrics, i) if metrics is not None else {})
        for i, t in enumerate(times)
    ]
    with_pose = sum(frame["pose"] for frame in frames)
    return {
        "schema_version": SCHEMA_VERSION,
        "outcome": outcome,
        "input": {k: v for k, v in asdict(info).items() if k != "path"} | {"file_name": Path(info.path).name},
        "device": device,
        "config": config.model_dump(mode="json"),
        "skier": skier.summary(),
        "pose": {
            "frames_with_pose": int(with_pose),
            "frames_detected": int(sum(frame["pose_detected"] for frame in frames)),
            "pose_fraction": round(with_pose / max(len(frames), 1), 4),
        },
        "metrics": metrics.as_dict() if metrics is not None else None,
        "findings": list(findings or []),
        "frames": frames,
        "outputs": outputs,
        "timings_s": {stage: round(seconds, 3) for stage, seconds in timings.items()},
        "warnings": warnings,
    }


def summary_markdown(results: dict[str, Any], outputs_at: str) -> str:
    """A short report of an analysis for the Prefect UI: outcome, coverage, turns, outputs."""
    skier, pose = results["skier"], results["pose"]
    lines = [
        f"# {results['input']['file_name']}: {results['outcome']}",
        "",
        f"- Skier tracked in {skier['frames_tracked']}/{skier['frame_count']} frames "
        f"({skier['tracked_fraction']:.0%}); pose in {pose['frames_with_pose']} ({pose['pose_fraction']:.0%})",
        f"- Device: {results['device']}; stage seconds: "
        + ", ".join(f"{stage} {seconds:.1f}" for stage, seconds in results["timings_s"].items()),
    ]
    metrics = results.get("metrics")
    if metrics:
        summary = metrics["summary"]
        lines.append(
            f"- {summary['complete_turns']} complete turns; mean edge similarity "
            f"{summary_score(summary, 'mean_edge_similarity')}; overall {summary_score(summary, 'overall')}"
        )
        lines += [
            "",
            "| turn | direction | start s | end s | edge similarity (90% interval) |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| {t['index']} | {t['direction']} | {t['start_s']:.2f} | {t['end_s']:.2f} | {turn_score(t)} |"
            for t in metrics["turns"]
        ]
    if results.get("findings"):
        lines += ["", "## Findings", ""]
        lines += [f"{f['rank']}. {f['text']} Try: {f['try']}" for f in results["findings"]]
    lines += ["", *(f"- Warning: {warning}" for warning in results["warnings"])]
    lines += ["", f"Outputs in `{outputs_at}`: " + ", ".join(f"`{name}`" for name in results["outputs"].values())]
    return "\n".join(lines)


def angle_rows(times: np.ndarray, metrics: TechniqueMetrics) -> list[dict[str, Any]]:
    """Each frame's time, turn and angles, as `results.json`'s `frames` hold them."""
    return [{"index": i, "time_s": round(float(t), 4)} | _frame_angles(metrics, i) for i, t in enumerate(times)]


def _frame_angles(metrics: TechniqueMetrics, index: int) -> dict[str, Any]:
    angles = metrics.angles
    values = {
        "inclination_deg": angles.inclination_deg[index],
        "left_edge_deg": angles.left_edge_deg[index],
        "right_edge_deg": angles.right_edge_deg[index],
    }
    return {"turn_index": int(metrics.turn_of_frame[index])} | {
        name: None if np.isnan(value) else round(float(value), 2) for name, value in values.items()
    }


def write_results(path: Path, results: dict[str, Any]) -> Path:
    """Write `results.json`, once the results are checked against the contract
    (`contract.Results`).

    Raises:
        pydantic.ValidationError: The results do not match the contract.
    """
    Results.model_validate(results)
    return write_json(path, results)


def write_json(path: Path, data: dict[str, Any]) -> Path:
    with _atomic(path) as handle:
        json.dump(data, handle, indent=2)
        handle.write("\n")
    return path


@contextmanager
def _atomic(path: Path, **open_args: Any) -> Iterator[TextIO]:
    """Open `path` for writing text under a temporary name; it appears at `path` on success only."""
    with atomic_path(path) as partial, open(partial, "w", encoding="utf-8", **open_args) as handle:
        yield handle
