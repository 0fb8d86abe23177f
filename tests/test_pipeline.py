"""The real pipeline, with the real models, on the sample clips, through Prefect."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from uuid import UUID

import av
import numpy as np
import pytest
import yaml

from flows.analyze import analyze_video
from tasks import steps
from tasks.export import METRIC_COLUMNS, TURN_COLUMNS, landmark_columns

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_server")]

CLIPS = ("piste_followcam", "indoor_carpet_front")
DATA = Path(__file__).parent / "data"


@pytest.mark.parametrize(
    ("clip", "min_tracked", "min_pose"), [("piste_followcam", 0.97, 0.93), ("indoor_carpet_front", 0.97, 0.95)]
)
def test_the_skier_is_tracked_and_posed_in_nearly_every_frame(analyses, clip, min_tracked, min_pose):
    results, _ = analyses[clip]
    assert results["outcome"] == "complete"
    assert results["skier"]["tracked_fraction"] >= min_tracked
    assert results["pose"]["pose_fraction"] >= min_pose


@pytest.mark.parametrize("clip", CLIPS)
def test_the_real_skiers_are_not_taken_for_boarders_and_are_tracked_throughout(analyses, clip):
    results, _ = analyses[clip]
    equipment = results["skier"]["equipment"]
    assert set(equipment) == {"skis", "snowboard", "surfboard"}
    assert results["outcome"] == "complete" and not any("not a skier" in w for w in results["warnings"])
    assert results["skier"]["tracked_fraction"] == 1.0 and not results["warnings"]


def test_the_piste_skier_keeps_one_dominant_track_among_other_skiers(analyses):
    skier = analyses["piste_followcam"][0]["skier"]
    assert skier["people_tracked"] > 1  # the background skiers were seen
    assert max(skier["frames_per_track"].values()) >= 0.9 * skier["frame_count"]


@pytest.mark.parametrize("clip", CLIPS)
def test_the_overlay_video_is_browser_h264_with_every_frame(analyses, clip):
    results, out = analyses[clip]
    with av.open(str(out / results["outputs"]["video"])) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264" and stream.codec_context.pix_fmt == "yuv420p"
        assert (stream.width, stream.height) == (results["input"]["width"], results["input"]["height"])
        assert float(stream.average_rate) == pytest.approx(results["input"]["fps"], rel=1e-3)
        assert sum(1 for _ in container.decode(stream)) == results["input"]["frames_in_trim"]


@pytest.mark.parametrize("clip", CLIPS)
def test_csv_and_json_agree(analyses, clip):
    results, out = analyses[clip]
    assert json.loads((out / "results.json").read_text()) == results
    with open(out / "landmarks.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(results["frames"]) == results["input"]["frames_in_trim"]
    assert set(landmark_columns()) | set(METRIC_COLUMNS) <= set(rows[0])
    for row, frame in zip(rows, results["frames"]):
        assert int(row["frame"]) == frame["index"]
        assert float(row["time_s"]) == pytest.approx(frame["time_s"], abs=1e-3)
        assert bool(int(row["pose_detected"])) == frame["pose_detected"]
        assert (row["left_knee.x_px"] != "") == frame["pose"]
        if frame["skier_box"]:
            assert float(row["skier_x1"]) == pytest.approx(frame["skier_box"][0], abs=0.1)
    posed = [row for row in rows if row["left_hip.x_m"]]
    hips = np.array([[float(r[f"{side}_hip.{axis}_m"]) for side in ("left", "right") for axis in "xyz"] for r in posed])
    hip_width = np.linalg.norm(hips[:, :3] - hips[:, 3:], axis=1)
    assert 0.1 < np.median(hip_width) < 0.5  # world landmarks are in metres


def test_turns_match_the_annotation_of_the_piste_clip(analyses):
    annotation = yaml.safe_load((DATA / "piste_followcam_turns.yaml").read_text())
    metrics = analyses["piste_followcam"][0]["metrics"]
    assert metrics["camera_side"] == annotation["camera_side"]
    turns = metrics["turns"]
    assert [turn["direction"] for turn in turns] == annotation["directions"]
    assert [turn["partial"] for turn in turns] == [True] + [False] * (len(turns) - 2) + [True]
    detected = [turn["start_s"] for turn in turns[1:]]
    assert detected == pytest.approx(annotation["transitions_s"], abs=0.25)
    for turn in turns[1:-1]:
        assert 0 <= turn["edge_similarity"] <= 100
        assert turn["start_s"] < turn["apex_s"] < turn["end_s"]


@pytest.mark.parametrize("clip", CLIPS)
def test_turns_csv_chart_and_frame_columns_agree_with_the_json(analyses, clip):
    results, out = analyses[clip]
    with open(out / "turns.csv", newline="") as handle:
        turns = list(csv.DictReader(handle))
    assert tuple(turns[0]) == TURN_COLUMNS
    assert [row["direction"] for row in turns] == [t["direction"] for t in results["metrics"]["turns"]]
    assert [float(row["start_s"]) for row in turns] == [t["start_s"] for t in results["metrics"]["turns"]]
    with open(out / "landmarks.csv", newline="") as handle:
        frames = list(csv.DictReader(handle))
    for turn in results["metrics"]["turns"]:
        assert {int(row["turn_index"]) for row in frames[turn["start_frame"] : turn["end_frame"]]} == {turn["index"]}
    assert (out / "metrics.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_prefect_ui_gets_a_summary_artifact(analyses):
    from prefect import get_client

    async def latest_summary():
        async with get_client() as client:
            return await client.read_latest_artifacts()

    import asyncio

    summaries = [a for a in asyncio.run(latest_summary()) if a.key == "analysis-summary"]
    assert summaries and "Skier tracked in" in summaries[0].data and "Outputs in `" in summaries[0].data


def test_a_rotated_clip_is_analysed_upright(derived, tmp_path):
    results = analyze_video(str(derived["rotated"]), str(tmp_path))
    assert results["input"]["rotation"] == 90
    with av.open(str(tmp_path / "overlay.mp4")) as container:
        stream = container.streams.video[0]
        assert (stream.width, stream.height) == (848, 480)
    assert results["skier"]["tracked_fraction"] > 0.9


def test_a_clip_without_a_skier_completes_as_no_skier_found(derived, tmp_path):
    results = analyze_video(str(derived["empty_scene"]), str(tmp_path))
    assert results["outcome"] == "no_skier_found"
    assert results["skier"]["tracked_fraction"] == 0.0
    assert "found in 0% of frames" in results["warnings"][-1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]


def test_bad_input_fails_the_flow_with_the_users_message(derived, tmp_path):
    state = analyze_video(str(derived["image"]), str(tmp_path), return_state=True)
    assert state.is_failed()
    assert "still image, not a video" in str(state.result(raise_on_failure=False))


def test_a_retried_flow_resumes_after_the_last_completed_step(derived, tmp_path, monkeypatch):
    calls = {"track": 0, "pose": 0, "render": 0}

    def counting(name, function):
        def wrapper(*args, **kwargs):
            calls[name] += 1
            return function(*args, **kwargs)

        return wrapper

    def render_fails_on_the_first_attempt(*args, **kwargs):
        calls["render"] += 1
        if calls["render"] == 1:
            raise OSError("disk full")
        return real_render(*args, **kwargs)

    real_render = steps.render_overlay
    monkeypatch.setattr(steps, "detect_and_track", counting("track", steps.detect_and_track))
    monkeypatch.setattr(steps, "estimate_pose", counting("pose", steps.estimate_pose))
    monkeypatch.setattr(steps, "render_overlay", render_fails_on_the_first_attempt)
    monkeypatch.setattr(steps, "render", steps.render.with_options(retries=0))
    flow = analyze_video.with_options(retries=1, retry_delay_seconds=0)
    results = flow(str(derived["short"]), str(tmp_path))
    assert results["outcome"] == "complete"
    assert calls == {"track": 1, "pose": 1, "render": 2}


def _poser(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    command = [str(Path(sys.executable).with_name("poser")), *args]
    return subprocess.run(command, capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=600)


def test_the_cli_analyses_a_trimmed_window(media, tmp_path):
    done = _poser(
        "analyze",
        str(media / "indoor_carpet_front.mp4"),
        "--trim-start",
        "2",
        "--trim-end",
        "3",
        "--out",
        str(tmp_path),
    )
    assert done.returncode == 0, done.stderr
    assert str(tmp_path / "overlay.mp4") in done.stdout
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["input"]["frames_in_trim"] == 30
    assert results["frames"][0]["time_s"] == pytest.approx(2.0, abs=0.04)
    assert "Device: cpu" in done.stderr
    assert "Starting a temporary local Prefect server" in done.stderr
    assert "absl::InitializeLog" not in done.stderr and "I0000" not in done.stderr


def test_the_cli_uses_a_running_prefect_server_and_links_to_the_run(prefect_server, media, tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL

    done = _poser(
        "analyze",
        str(media / "indoor_carpet_front.mp4"),
        "--trim-start",
        "2",
        "--trim-end",
        "3",
        "--out",
        str(tmp_path),
        env={"PREFECT_API_URL": PREFECT_API_URL.value()},
    )
    assert done.returncode == 0, done.stderr
    link = re.search(r"Flow run \S+: (http://\S+)/runs/flow-run/([0-9a-f-]{36})\n", done.stderr)
    assert link and link[1] == PREFECT_API_URL.value().removesuffix("/api"), done.stderr
    assert "temporary" not in done.stderr
    with get_client(sync_client=True) as client:
        assert client.read_flow_run(UUID(link[2])).state.is_completed()


def test_a_cli_hint_needs_its_time(media, tmp_path):
    done = _poser(
        "analyze", str(media / "indoor_carpet_front.mp4"), "--hint-point", "400", "200", "--out", str(tmp_path)
    )
    assert done.returncode == 2
    assert "--hint-point and --hint-box need --hint-time." in done.stderr
    assert "Analysing" not in done.stderr


def test_the_cli_explains_bad_input_without_a_traceback(derived, tmp_path):
    done = _poser("analyze", str(derived["zero_bytes"]), "--out", str(tmp_path))
    assert done.returncode == 2
    assert "The file is empty (0 bytes)" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
