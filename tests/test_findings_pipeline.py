"""The findings of the piste clip, from the real pipeline through `poser analyze --json`: on
stdout the exact results.json and nothing else, the findings printed after the turns table,
every claim consistent with the numbers it cites, and a still of each moment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from tests.test_findings import check_claim

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def piste_json(media, tmp_path_factory):
    out = tmp_path_factory.mktemp("piste-json")
    command = [
        str(Path(sys.executable).with_name("poser")),
        "analyze",
        str(media / "piste_followcam.mp4"),
        "--out",
        str(out),
        "--json",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, env=os.environ.copy())
    assert done.returncode == 0, done.stderr
    return done, out


def test_json_mode_prints_results_json_alone_on_stdout(piste_json):
    done, out = piste_json
    assert done.stdout == (out / "results.json").read_text()
    results = json.loads(done.stdout)
    assert results["outcome"] == "complete" and results["findings"]
    assert "Outputs in" in done.stderr and "Device:" in done.stderr


def test_the_findings_follow_the_turns_table(piste_json):
    done, _ = piste_json
    results = json.loads(done.stdout)
    stderr = done.stderr
    assert stderr.index("Turns (times in s") < stderr.index("\nFindings\n") < stderr.index("Outputs in")
    for finding in results["findings"]:
        assert f"{finding['rank']}. {finding['text']}" in stderr
        assert f"Try: {finding['try']}" in stderr


def test_every_finding_agrees_with_the_metrics_it_cites_and_has_a_still(piste_json):
    done, out = piste_json
    results = json.loads(done.stdout)
    findings = results["findings"]
    assert 1 <= len(findings) <= 4
    for finding in findings:
        check_claim(finding, results["metrics"], results["frames"])
        if finding["still"]:
            assert results["outputs"][f"finding_{finding['rank']}"] == finding["still"]
            still = cv2.imread(str(out / finding["still"]))
            assert still.shape == (results["input"]["height"], results["input"]["width"], 3)
    assert sorted(p.name for p in out.glob("finding-*.jpg")) == sorted(f["still"] for f in findings if f["still"])


def test_json_mode_leaves_stdout_empty_when_the_input_is_bad(tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    command = [
        str(Path(sys.executable).with_name("poser")),
        "analyze",
        str(empty),
        "--out",
        str(tmp_path / "out"),
        "--json",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, env=os.environ.copy())
    assert done.returncode == 2
    assert done.stdout == ""
    assert "The file is empty (0 bytes)" in done.stderr and "Traceback" not in done.stderr
