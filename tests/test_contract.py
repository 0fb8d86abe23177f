"""The contract between the flow and the web app (`tasks/contract.py`): the real `results.json`
of the sample clips goes through it unchanged, the web app takes the flow's report of it and
reads it back, and a report that strays from the contract is refused, saying where."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from tasks.contract import (
    ARTIFACT_KINDS,
    FINAL_STATUSES,
    OUTPUT_FILES,
    REPORTED_STATUSES,
    SCHEMA_VERSION,
    AnalysisStatus,
    ArtifactKind,
    ContractError,
    Outcome,
    Results,
    ResultsReport,
    Turn,
    check_fields,
    still_kind,
)
from tasks.reporting import results_report
from tests.test_web_findings import seed
from tests.webutil import sign_in

pytestmark = pytest.mark.slow

CLIPS = ["piste_followcam", "indoor_carpet_front"]


def stored_results(analyses: dict[str, tuple[dict, Path]], clip: str) -> dict[str, Any]:
    """The `results.json` the flow wrote for `clip`, as a reader loads it."""
    _, out = analyses[clip]
    return json.loads((out / OUTPUT_FILES[ArtifactKind.RESULTS_JSON]).read_text())


@pytest.mark.parametrize("clip", CLIPS)
def test_results_json_is_exactly_what_the_contract_describes(analyses, clip):
    raw = stored_results(analyses, clip)
    results = Results.model_validate(raw)
    # Nothing dropped, renamed or added: the model gives back the very file.
    assert results.model_dump(mode="json", by_alias=True, exclude_unset=True) == raw
    assert results.schema_version == SCHEMA_VERSION
    for kind, name in results.outputs.items():
        assert (analyses[clip][1] / name).is_file(), kind


def test_the_piste_clips_results_hold_every_score_with_its_interval(analyses):
    results = Results.model_validate(stored_results(analyses, "piste_followcam"))
    assert results.outcome is Outcome.COMPLETE and results.metrics is not None
    scored = [turn for turn in results.metrics.turns if turn.edge_similarity is not None]
    assert scored, "the piste clip has scored turns"
    for turn in scored:
        for part in ("edge_similarity", "edge_agreement_score", "edge_difference_deg", "edge_lag_ms", "edge_lag_score"):
            value, low, high = (getattr(turn, f"{part}{suffix}") for suffix in ("", "_low", "_high"))
            assert low is not None and high is not None and low <= value <= high, (turn.index, part)
    summary = results.metrics.summary
    assert summary.mean_edge_similarity_low <= summary.mean_edge_similarity <= summary.mean_edge_similarity_high
    assert results.findings and all(finding.try_ for finding in results.findings)


def test_the_web_app_takes_the_flows_report_and_reads_it_back(app, client, smtp_sink, analyses):
    raw = stored_results(analyses, "piste_followcam")
    report = results_report(raw)
    ResultsReport.model_validate(report)
    sign_in(client, smtp_sink)
    analysis_id = seed(app, client, report)
    analysis = client.get(f"/api/analyses/{analysis_id}").json["analysis"]
    summary = raw["metrics"]["summary"]
    assert analysis["status"] == AnalysisStatus.COMPLETE
    assert analysis["results"] == json.loads(json.dumps(report))
    for name, key in (("mean", "mean_edge_similarity"), ("left_mean", "left_mean"), ("right_mean", "right_mean")):
        for suffix in ("", "_low", "_high"):
            assert analysis["edge_similarity"][f"{name}{suffix}"] == summary[f"{key}{suffix}"]
    findings = client.get(f"/api/analyses/{analysis_id}/findings").json["findings"]
    assert [{k: v for k, v in f.items() if k != "still_kind"} for f in findings] == raw["findings"]
    assert [f["still_kind"] for f in findings] == [still_kind(f["rank"]) for f in raw["findings"]]


def _mutated(report: dict[str, Any], path: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(report)
    target: Any = changed
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return changed


@pytest.mark.parametrize(
    ("path", "value", "where"),
    [
        (("outcome",), "finished", "outcome: Input should be 'complete' or 'no_skier_found'"),
        (("unexpected",), 1, "unexpected: Extra inputs are not permitted"),
        (("metrics", "summary", "overall"), "high", "metrics.summary.overall: Input should be a valid number"),
        (("metrics", "summary", "overall"), None, None),
        (("metrics", "turns", 0, "direction"), "sideways", "metrics.turns.0.direction: Input should be 'left' or"),
        (("metrics", "turns", 0, "index"), None, "metrics.turns.0.index: Input should be a valid integer"),
        (("metrics", "turns", 0, "edge_similarity_mid"), 50, "metrics.turns.0.edge_similarity_mid: Extra inputs"),
        (("findings", 0, "evidence", "source"), "gut feeling", "findings.0.evidence.source: Input should be"),
        (("outputs", "screenshot"), "x.png", "outputs.screenshot.[key]: Input should be"),
        (("series", "time_s"), "now", "series.time_s: Input should be a valid list"),
    ],
)
def test_a_report_that_strays_from_the_contract_is_refused_saying_where(
    app, client, smtp_sink, analyses, path, value, where
):
    report = _mutated(results_report(stored_results(analyses, "piste_followcam")), path, value)
    if where is None:  # a summary score may be null (with its reason)
        check_fields(ResultsReport, report)
        return
    with pytest.raises(ContractError) as refused:
        check_fields(ResultsReport, report)
    assert str(refused.value).startswith(where)
    sign_in(client, smtp_sink)
    analysis_id = seed(app, client)
    answer = client.put(
        f"/api/internal/analyses/{analysis_id}/status",
        json={"status": "complete", "results": report},
        headers={"X-Poser-Internal-Secret": app.config["INTERNAL_SECRET"]},
    )
    assert answer.status_code == 400
    assert f"results do not match the results schema: {where}" in answer.json["error"]["message"]
    analysis = client.get(f"/api/analyses/{analysis_id}").json["analysis"]
    assert (analysis["status"], analysis["results"]) == (AnalysisStatus.AWAITING_UPLOAD, None)


@pytest.mark.parametrize(
    ("turn", "refused"),
    [
        ({"index": 0, "direction": "left"}, None),
        ({"index": 0, "partial": True}, None),
        ({"index": "first"}, "index"),
        ({"index": 0, "direction": "up"}, "direction"),
        ({"index": 0, "score": 80}, "score: Extra inputs are not permitted"),
    ],
)
def test_a_reported_turn_may_leave_fields_out_but_not_get_them_wrong(turn, refused):
    if refused is None:
        check_fields(Turn, turn)
    else:
        with pytest.raises(ContractError, match=refused):
            check_fields(Turn, turn)


def test_the_names_both_sides_use_fit_together():
    assert set(OUTPUT_FILES) == set(ArtifactKind)
    assert {ARTIFACT_KINDS[name] for name in OUTPUT_FILES.values()} == set(ArtifactKind)
    assert {still_kind(rank) for rank in range(1, 5)} <= set(ArtifactKind)
    assert {outcome.value for outcome in Outcome} <= REPORTED_STATUSES <= {*FINAL_STATUSES, AnalysisStatus.PROCESSING}
    assert AnalysisStatus.CANCELLED not in REPORTED_STATUSES
