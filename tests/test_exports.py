"""The landmarks and turns tables as data people load them: `landmarks.parquet` and
`turns.parquet` beside the CSVs, with the schema the README documents and the same values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tasks.contract import Turn
from tasks.landmarks import LANDMARK_NAMES

pytestmark = pytest.mark.slow

FRAME_COLUMNS = [
    "frame",
    "time_s",
    "skier_x1",
    "skier_y1",
    "skier_x2",
    "skier_y2",
    "pose_detected",
    "turn_index",
    "inclination_deg",
    "left_edge_deg",
    "right_edge_deg",
    "edge_difference_deg",
    "shin_angle_deg",
]
AXES = ["x_px", "y_px", "x_m", "y_m", "z_m", "visibility"]


@pytest.mark.parametrize(
    ("column", "dtype"),
    [
        ("frame", "int64"),
        ("time_s", "float64"),
        ("skier_x1", "Float64"),
        ("pose_detected", "bool"),
        ("turn_index", "int64"),
        ("inclination_deg", "Float64"),
        ("shin_angle_deg", "Float64"),
        ("landmark", "category"),
        ("x_px", "Float64"),
        ("z_m", "Float64"),
        ("visibility", "Float64"),
    ],
)
def test_landmarks_parquet_has_one_typed_row_per_frame_and_landmark(analyses, column, dtype):
    results, out = analyses["piste_followcam"]
    table = pd.read_parquet(out / "landmarks.parquet")
    assert list(table.columns) == [*FRAME_COLUMNS, "landmark", *AXES]
    assert str(table[column].dtype) == dtype
    frames = results["input"]["frames_in_trim"]
    assert len(table) == frames * len(LANDMARK_NAMES)
    assert list(table["landmark"].cat.categories) == list(LANDMARK_NAMES)


def test_landmarks_parquet_holds_the_csvs_values(analyses):
    _, out = analyses["piste_followcam"]
    wide = pd.read_csv(out / "landmarks.csv")
    tidy = pd.read_parquet(out / "landmarks.parquet")
    for axis in AXES:
        pivoted = tidy.pivot(index="frame", columns="landmark", values=axis)[list(LANDMARK_NAMES)]
        expected = wide[[f"{name}.{axis}" for name in LANDMARK_NAMES]].to_numpy()
        np.testing.assert_allclose(pivoted.to_numpy(dtype=float, na_value=np.nan), expected, equal_nan=True)
    per_frame = tidy.drop_duplicates("frame")[FRAME_COLUMNS].reset_index(drop=True)
    np.testing.assert_allclose(
        per_frame["inclination_deg"].to_numpy(dtype=float, na_value=np.nan), wide["inclination_deg"], equal_nan=True
    )
    assert (per_frame["pose_detected"] == wide["pose_detected"].astype(bool)).all()
    # Where there is no pose, Parquet holds nulls, not NaN.
    missing = tidy["x_px"].isna()
    assert missing.sum() == np.isnan(wide[f"{LANDMARK_NAMES[0]}.x_px"]).sum() * len(LANDMARK_NAMES)


@pytest.mark.parametrize("clip", ["piste_followcam", "indoor_carpet_front"])
def test_turns_parquet_holds_the_turns_of_the_results_with_nulls_for_partial_turns(analyses, clip):
    results, out = analyses[clip]
    table = pd.read_parquet(out / "turns.parquet")
    assert list(table.columns) == list(Turn.model_fields) == list(pd.read_csv(out / "turns.csv").columns)
    assert {str(dtype) for dtype in table.dtypes} <= {"Int64", "Float64", "boolean", "string"}
    rows = table.astype(object).where(table.notna(), None).to_dict("records")
    assert rows == results["metrics"]["turns"]
