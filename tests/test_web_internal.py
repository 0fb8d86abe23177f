"""The endpoints the analysis flow reports through."""

from __future__ import annotations

import pytest

from tests.webutil import sign_in, write_headers

SECRET = "internal-test-secret"


@pytest.fixture
def analysis_id(app, client, smtp_sink):
    app.config["INTERNAL_SECRET"] = SECRET
    sign_in(client, smtp_sink)
    csrf = write_headers(client)
    payload = {"filename": "run.mp4", "content_type": "video/mp4", "size": 100}
    return client.post("/api/analyses/create-upload", json=payload, headers=csrf).json["analysis"]["id"]


def internal(client, method, path, payload, secret=SECRET):
    return client.open(
        f"/api/internal/{path}", method=method, json=payload, headers={"X-Poser-Internal-Secret": secret}
    )


@pytest.mark.parametrize("secret", ["", "wrong", SECRET + "x"])
def test_a_wrong_secret_is_refused(client, analysis_id, secret):
    response = internal(client, "PUT", f"analyses/{analysis_id}/progress", {"progress": 10}, secret)
    assert response.status_code == 403


def test_internal_endpoints_are_off_without_a_secret(app, client, analysis_id):
    app.config["INTERNAL_SECRET"] = None
    assert internal(client, "PUT", f"analyses/{analysis_id}/progress", {"progress": 10}, "").status_code == 403


def test_progress_then_outcome(client, analysis_id):
    assert (
        internal(client, "PUT", f"analyses/{analysis_id}/progress", {"step": "pose", "progress": 40}).status_code == 200
    )
    internal(client, "PUT", f"analyses/{analysis_id}/progress", {"step": "track", "progress": 30})
    analysis = client.get(f"/api/analyses/{analysis_id}").json["analysis"]
    assert (analysis["status"], analysis["progress"]) == ("processing", 40)  # progress never goes back
    done = internal(
        client, "PUT", f"analyses/{analysis_id}/status", {"status": "failed", "error": "The file is empty."}
    )
    assert done.json["analysis"]["status"] == "failed" and done.json["analysis"]["error"] == "The file is empty."
    internal(client, "PUT", f"analyses/{analysis_id}/progress", {"progress": 90})
    assert client.get(f"/api/analyses/{analysis_id}").json["analysis"]["status"] == "failed"


def test_a_new_attempt_reopens_a_failed_analysis(app, client, analysis_id):
    internal(client, "PUT", f"analyses/{analysis_id}/progress", {"step": "pose", "progress": 45})
    internal(client, "PUT", f"analyses/{analysis_id}/status", {"status": "failed", "error": "Stopped unexpectedly."})
    from webapp.db import db
    from webapp.models import Analysis

    with app.app_context():
        db.session.get(Analysis, analysis_id).notified_status = "failed"
        db.session.commit()

    started = internal(client, "PUT", f"analyses/{analysis_id}/status", {"status": "processing"}).json["analysis"]
    assert (started["status"], started["error"]) == ("processing", None)
    internal(client, "PUT", f"analyses/{analysis_id}/progress", {"step": "render", "progress": 80})
    shown = client.get(f"/api/analyses/{analysis_id}").json["analysis"]
    assert (shown["status"], shown["step"], shown["progress"]) == ("processing", "render", 80)
    with app.app_context():
        assert db.session.get(Analysis, analysis_id).notified_status is None  # the new outcome gets mailed
    done = internal(
        client, "PUT", f"analyses/{analysis_id}/status", {"status": "complete", "results": {"outcome": "complete"}}
    )
    assert (done.json["analysis"]["status"], done.json["analysis"]["error"]) == ("complete", None)


def test_a_cancelled_analysis_stays_cancelled(app, client, analysis_id):
    from webapp.db import db
    from webapp.models import Analysis

    with app.app_context():
        db.session.get(Analysis, analysis_id).status = "cancelled"
        db.session.commit()
    for report in ({"status": "processing"}, {"status": "complete"}, {"status": "failed", "error": "x"}):
        assert (
            internal(client, "PUT", f"analyses/{analysis_id}/status", report).json["analysis"]["status"] == "cancelled"
        )
    internal(client, "PUT", f"analyses/{analysis_id}/progress", {"step": "pose", "progress": 50})
    assert client.get(f"/api/analyses/{analysis_id}").json["analysis"]["status"] == "cancelled"


def test_repeated_reports_change_nothing(client, analysis_id):
    artifact = {
        "analysis_id": analysis_id,
        "kind": "video",
        "key": f"analyses/{analysis_id}/outputs/overlay.mp4",
        "size": 10,
        "content_type": "video/mp4",
        "sha256": "a" * 64,
    }
    turns = {"turns": [{"index": 0, "direction": "left"}, {"index": 1, "direction": "right"}]}
    for _ in range(2):
        assert internal(client, "POST", "artifacts", artifact).status_code == 201
        assert internal(client, "POST", f"analyses/{analysis_id}/turns", turns).json == {"turns": 2}
        internal(client, "PUT", f"analyses/{analysis_id}/edge-similarity", {"overall": 81.5, "left": None, "right": 70})
    analysis = client.get(f"/api/analyses/{analysis_id}").json["analysis"]
    assert analysis["artifacts"] == ["video"]
    scores = analysis["edge_similarity"]
    assert (scores["overall"], scores["left"], scores["right"]) == (81.5, None, 70)
    assert len(client.get(f"/api/analyses/{analysis_id}/turns").json["turns"]) == 2


@pytest.mark.parametrize(
    ("method", "path", "payload", "status"),
    [
        ("PUT", "analyses/{id}/progress", {"progress": 140}, 400),
        ("PUT", "analyses/{id}/status", {"status": "partying"}, 400),
        ("PUT", "analyses/{id}/edge-similarity", {"overall": 120}, 400),
        ("POST", "analyses/{id}/turns", {"turns": "many"}, 400),
        (
            "POST",
            "artifacts",
            {
                "analysis_id": "{id}",
                "kind": "video",
                "key": "elsewhere/x.mp4",
                "size": 1,
                "content_type": "video/mp4",
                "sha256": "a",
            },
            400,
        ),
        ("PUT", "analyses/no-such-id/progress", {"progress": 1}, 404),
    ],
)
def test_bad_reports_are_refused(client, analysis_id, method, path, payload, status):
    payload = {
        key: value.replace("{id}", analysis_id) if isinstance(value, str) else value for key, value in payload.items()
    }
    assert internal(client, method, path.replace("{id}", analysis_id), payload).status_code == status
