"""Findings, progress over time and comparisons through the web API, on SQLite and PostgreSQL.

Analyses are reported complete through the internal endpoints, as a worker's flow reports
them, with results built from constructed turns (see `tests/test_findings.py`)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from tests.test_findings import findings_of, make_run, per_side
from tests.webutil import create_partner, https_client, mail_text, sign_in, write_headers
from webapp.db import db
from webapp.models import Analysis

SECRET = "findings-test-secret"


def results_for(specs, **summary):
    """A complete analysis's results (as the flow reports them) for constructed turns."""
    metrics, frames = make_run(specs, **summary)
    metrics["camera_side"] = "behind"
    return {
        "outcome": "complete",
        "warnings": [],
        "metrics": metrics,
        "findings": findings_of(metrics, frames),
        "series": {"time_s": [], "inclination_deg": [], "left_edge_deg": [], "right_edge_deg": []},
    }


def internal(client, method, path, payload, secret=SECRET):
    response = client.open(
        f"/api/internal/{path}", method=method, json=payload, headers={"X-Poser-Internal-Secret": secret}
    )
    assert response.status_code in (200, 201), response.json
    return response


def seed(app, client, results=None, *, name="run.mp4", created_at=None, stills=True) -> str:
    """An analysis of the signed-in user, reported complete with `results` (left awaiting its
    upload without them), registered with a still per finding, created at `created_at`."""
    # The app's own secret where it has one (a worker may be reporting to it too).
    secret = app.config["INTERNAL_SECRET"] = app.config.get("INTERNAL_SECRET") or SECRET
    created = client.post(
        "/api/analyses/create-upload",
        headers=write_headers(client),
        json={"filename": name, "content_type": "video/mp4", "size": 100},
    )
    analysis_id = created.json["analysis"]["id"]
    if results is not None:
        summary = results["metrics"]["summary"]
        internal(
            client,
            "PUT",
            f"analyses/{analysis_id}/edge-similarity",
            {side: summary[side] for side in ("overall", "left", "right")},
            secret,
        )
        for finding in results["findings"] if stills else []:
            if finding["still"]:
                internal(
                    client,
                    "POST",
                    "artifacts",
                    {
                        "analysis_id": analysis_id,
                        "kind": f"finding_{finding['rank']}",
                        "key": f"analyses/{analysis_id}/outputs/{finding['still']}",
                        "content_type": "image/jpeg",
                        "sha256": "0" * 64,
                        "size": 10,
                    },
                    secret,
                )
        internal(client, "PUT", f"analyses/{analysis_id}/status", {"status": "complete", "results": results}, secret)
    if created_at is not None:
        with app.app_context():
            analysis = db.session.get(Analysis, analysis_id)
            assert analysis is not None
            analysis.created_at = created_at
            db.session.commit()
    return analysis_id


WEAK_LEFT = per_side(6, {"similarity": 70.0, "lag": -100.0}, {"similarity": 90.0})
BETTER = per_side(6, {"similarity": 90.0}, {"similarity": 91.0})
SAME = per_side(6, {"similarity": 71.0, "lag": -100.0}, {"similarity": 90.0})


@pytest.fixture
def skier(client, smtp_sink):
    sign_in(client, smtp_sink)
    return client


def test_the_findings_come_with_their_evidence_moment_cue_and_still(app, skier):
    results = results_for(WEAK_LEFT)
    analysis_id = seed(app, skier, results)
    found = skier.get(f"/api/analyses/{analysis_id}/findings").json["findings"]
    assert [f["key"] for f in found] == [f["key"] for f in results["findings"]] == ["weaker_side", "inside_ski_late"]
    top = found[0]
    assert top["text"].startswith("Your 3 left turns score lower than your 3 right turns (70 against 90")
    assert top["evidence"]["metric"] == "left_mean" and top["evidence"]["against"]["metric"] == "right_mean"
    assert top["try"].startswith("On your left turns") and top["time_s"] is not None
    assert [f["still_kind"] for f in found] == ["finding_1", "finding_2"]
    assert "finding-1.jpg" in skier.get(f"/api/analyses/{analysis_id}/download/finding_1").json["url"]
    assert skier.get(f"/api/analyses/{analysis_id}/download/finding_3").status_code == 404
    # The whole analysis carries them too, for the results page.
    assert skier.get(f"/api/analyses/{analysis_id}").json["analysis"]["results"]["findings"] == results["findings"]


def test_findings_of_an_analysis_that_is_not_complete_or_not_yours_are_refused(app, skier, smtp_sink):
    waiting = seed(app, skier)
    response = skier.get(f"/api/analyses/{waiting}/findings")
    assert response.status_code == 409 and "not complete" in response.json["error"]["message"]
    mine = seed(app, skier, results_for(WEAK_LEFT))
    stranger = https_client(app)
    sign_in(stranger, smtp_sink, "stranger@example.com")
    assert stranger.get(f"/api/analyses/{mine}/findings").status_code == 404
    assert skier.get("/api/analyses/not-an-id/findings").status_code == 404


def test_history_lists_complete_analyses_oldest_first_with_intervals(app, skier, smtp_sink):
    start = datetime(2026, 1, 10, 9, tzinfo=UTC)
    short = [
        {"direction": "right", "similarity": 80.0},
        {"direction": "left", "similarity": 84.0},
        {"direction": "right", "similarity": 82.0},
    ]
    ids = [
        seed(app, skier, results_for(specs), name=f"run{i}.mp4", created_at=start + timedelta(days=7 * i))
        for i, specs in enumerate([WEAK_LEFT, short, BETTER])
    ]
    seed(app, skier, created_at=start + timedelta(days=30))  # still awaiting its upload: not a point
    stranger = https_client(app)
    sign_in(stranger, smtp_sink, "stranger@example.com")
    seed(app, stranger, results_for(BETTER))

    points = skier.get("/api/analyses/history").json["analyses"]
    assert [p["id"] for p in points] == ids
    assert [p["file_name"] for p in points] == ["run0.mp4", "run1.mp4", "run2.mp4"]
    assert points[0]["created_at"] < points[1]["created_at"] < points[2]["created_at"]
    for point in points:
        headline = point["headline"]
        assert headline["low"] <= headline["value"] <= headline["high"]
        assert point["left"]["low"] <= point["left"]["value"] <= point["left"]["high"]
    # Three turns are too few for the overall score: the mean of the clean turns stands in.
    assert points[1]["headline"]["name"] == "mean_edge_similarity" and points[1]["headline"]["turns"] == 3
    assert points[0]["headline"]["name"] == "overall"
    assert points[1]["left"]["turns"] == 1 and points[1]["right"]["turns"] == 2
    assert stranger.get("/api/analyses/history").json["analyses"][0]["id"] not in ids


def test_a_comparison_names_measurable_changes_and_says_so_when_there_is_none(app, skier):
    before = seed(app, skier, results_for(WEAK_LEFT), name="january.mp4")
    after = seed(app, skier, results_for(BETTER), name="february.mp4")
    same = seed(app, skier, results_for(SAME), name="again.mp4")

    compared = skier.get(f"/api/analyses/{before}/compare/{after}").json
    assert (compared["first"]["file_name"], compared["second"]["file_name"]) == ("january.mp4", "february.mp4")
    rows = {row["name"]: row for row in compared["rows"]}
    assert rows["left_mean"]["change"] == "higher" and rows["left_mean"]["measurable"]
    assert rows["left_mean"]["first"]["text"].startswith("70 (") and rows["left_mean"]["second"]["text"].startswith(
        "90 ("
    )
    assert rows["right_mean"]["change"] == "no measurable change"
    assert {row["group"] for row in compared["rows"]} == {"summary", "sides", "technique", "rhythm"}
    assert compared["changes"] == sum(row["measurable"] for row in compared["rows"]) >= 1
    first_keys = [f["key"] for f in compared["findings"]["first"]]
    assert (
        first_keys == ["weaker_side", "inside_ski_late"]
        and compared["findings"]["second"][0]["key"] == "nothing_stands_out"
    )
    assert not any(f["in_both"] for f in compared["findings"]["first"])

    unchanged = skier.get(f"/api/analyses/{before}/compare/{same}").json
    for row in unchanged["rows"]:
        assert row["change"] in ("no measurable change", "not comparable"), row
    assert unchanged["changes"] == 0
    assert all(f["in_both"] for f in unchanged["findings"]["first"])


@pytest.mark.parametrize(
    ("pair", "status", "message"),
    [
        (("mine", "mine"), 400, "two different analyses"),
        (("mine", "waiting"), 409, "must be complete"),
        (("mine", "theirs"), 404, "No such analysis"),
        (("theirs", "mine"), 404, "No such analysis"),
        (("mine", "0000"), 404, "No such analysis"),
        (("mine", "%00"), 404, "No such analysis"),
    ],
)
def test_bad_comparisons_are_refused_with_a_message(app, skier, smtp_sink, pair, status, message):
    ids = {"mine": seed(app, skier, results_for(WEAK_LEFT)), "waiting": seed(app, skier), "0000": "0000", "%00": "%00"}
    stranger = https_client(app)
    sign_in(stranger, smtp_sink, "stranger@example.com")
    ids["theirs"] = seed(app, stranger, results_for(BETTER))
    response = skier.get(f"/api/analyses/{ids[pair[0]]}/compare/{ids[pair[1]]}")
    assert response.status_code == status
    assert message in response.json["error"]["message"] and "Traceback" not in response.get_data(as_text=True)


def test_the_side_means_reach_the_api_for_the_cards(app, skier):
    short = [
        {"direction": "right", "similarity": 80.0},
        {"direction": "left", "similarity": 84.0},
        {"direction": "right", "similarity": 82.0},
    ]
    analysis_id = seed(app, skier, results_for(short))
    scores = skier.get(f"/api/analyses/{analysis_id}/edge-similarity").json["edge_similarity"]
    assert scores["left"] is None and scores["left_mean"] == pytest.approx(84.0) and scores["left_mean_turns"] == 1
    assert scores["right_mean"] == pytest.approx(81.0) and scores["right_mean_turns"] == 2
    assert scores["right_mean_low"] < 81 < scores["right_mean_high"]
    listed = skier.get("/api/analyses").json["analyses"][0]
    assert listed["headline"]["name"] == "mean_edge_similarity" and listed["headline"]["turns"] == 3


def test_the_widget_card_shows_the_top_finding(app, client, smtp_sink, analysis_deployment):
    from tests.test_web_embed import SECRET as EMBED_SECRET
    from tests.test_web_embed import SLUG, confirm, submitted_and_mailed, visitor

    app.config["INTERNAL_SECRET"] = EMBED_SECRET
    create_partner(app, SLUG)
    answer, link = submitted_and_mailed(client, smtp_sink)
    confirm(client, link)
    results = results_for(WEAK_LEFT)
    response = client.put(
        f"/api/internal/analyses/{answer['analysis_id']}/status",
        json={"status": "complete", "results": results},
        headers={"X-Poser-Internal-Secret": EMBED_SECRET},
    )
    assert response.status_code == 200, response.json
    card = client.get(f"/api/embed/{SLUG}/feedback/{answer['analysis_id']}", headers=visitor(answer)).json
    top = results["findings"][0]
    assert card["top_finding"] == {key: top[key] for key in ("title", "text", "try", "kind", "turn", "time_s")}
    mail = mail_text(smtp_sink.messages[-1])
    assert f"{top['text']}\nTry: {top['try']}" in mail


def test_the_ready_email_gives_the_mean_of_the_turns_when_they_are_too_few_for_the_overall_score(
    app, client, smtp_sink, analysis_deployment
):
    from tests.test_web_embed import SECRET as EMBED_SECRET
    from tests.test_web_embed import SLUG, confirm, submitted_and_mailed

    app.config["INTERNAL_SECRET"] = EMBED_SECRET
    create_partner(app, SLUG)
    answer, link = submitted_and_mailed(client, smtp_sink)
    confirm(client, link)
    short = [
        {"direction": "right", "similarity": 80.0},
        {"direction": "left", "similarity": 84.0},
        {"direction": "right", "similarity": 82.0},
    ]
    response = client.put(
        f"/api/internal/analyses/{answer['analysis_id']}/status",
        json={"status": "complete", "results": results_for(short)},
        headers={"X-Poser-Internal-Secret": EMBED_SECRET},
    )
    assert response.status_code == 200, response.json
    assert re.search(
        r"Edge similarity: 82 out of 100 \(90% interval \d+-\d+\), the mean of 3 turns\.",
        mail_text(smtp_sink.messages[-1]),
    )
