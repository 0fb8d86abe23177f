"""Uploads and analyses through the web API, with local storage and a real Prefect server."""

from __future__ import annotations

import hashlib
from datetime import UTC
from urllib.parse import urlsplit

import pytest

from tests.webutil import https_client, read_flow_run, sign_in, write_headers

CLIP = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40


@pytest.fixture
def signed_in(client, smtp_sink):
    sign_in(client, smtp_sink)
    return client


def create(client, **overrides):
    payload = {"filename": "run.mp4", "content_type": "video/mp4", "size": len(CLIP)} | overrides
    return client.post("/api/analyses/create-upload", json=payload, headers=write_headers(client))


def upload(client, answer, body=CLIP):
    url = urlsplit(answer["upload"]["url"])
    return client.put(f"{url.path}?{url.query}", data=body, headers=answer["upload"]["headers"])


@pytest.mark.parametrize(
    ("overrides", "status", "message"),
    [
        ({"filename": ""}, 400, "Give the file's name"),
        ({"filename": "../../etc/passwd.mp4"}, 400, "Give the file's name"),
        ({"content_type": "image/png", "filename": "run.png"}, 415, "MP4, MOV or WebM"),
        ({"filename": "run.avi"}, 415, "MP4, MOV or WebM"),
        ({"size": 0}, 400, "size in bytes"),
        ({"size": "big"}, 400, "size in bytes"),
        ({"size": 600 * 1024 * 1024}, 413, "limit is 500 MB"),
        ({"trim_start_s": -1}, 400, "cannot be negative"),
        ({"trim_start_s": 4, "trim_end_s": 3}, 400, "at least 0.5 s long"),
        ({"trim_start_s": 0, "trim_end_s": 900}, 400, "longer than the 600 s limit"),
        ({"trim_end_s": "soon"}, 400, "must be a number of seconds"),
    ],
)
def test_create_upload_rejects_bad_requests(signed_in, overrides, status, message):
    response = create(signed_in, **overrides)
    assert response.status_code == status
    assert message in response.json["error"]["message"]


def test_an_upload_is_confirmed_and_starts_a_flow_run(app, signed_in, analysis_deployment):
    answer = create(signed_in, filename="My Run.MOV", content_type="video/quicktime", trim_start_s=1, trim_end_s=5)
    assert answer.status_code == 201
    analysis = answer.json["analysis"]
    assert analysis["status"] == "awaiting_upload" and analysis["file_name"] == "My Run.MOV"
    assert answer.json["upload"]["method"] == "PUT"
    assert upload(signed_in, answer.json).status_code == 200

    confirmed = signed_in.post(f"/api/analyses/{analysis['id']}/confirm-upload", headers=write_headers(signed_in))
    assert confirmed.status_code == 202 and confirmed.json["analysis"]["status"] == "queued"
    from webapp.db import db
    from webapp.models import Analysis

    with app.app_context():
        stored = db.session.get(Analysis, analysis["id"])
        assert stored.upload.sha256 == hashlib.sha256(CLIP).hexdigest()
        run = read_flow_run(stored.flow_run_id)
    assert run.deployment_id == analysis_deployment
    assert run.parameters["analysis_id"] == analysis["id"]
    assert (run.parameters["trim_start_s"], run.parameters["trim_end_s"]) == (1.0, 5.0)
    assert run.parameters["video_path"].endswith(f"uploads/{analysis['id']}/input.mov")
    assert "web" in run.tags
    assert run.name == f"analysis-{analysis['id']}"
    again = signed_in.post(f"/api/analyses/{analysis['id']}/confirm-upload", headers=write_headers(signed_in))
    assert again.status_code == 409


def test_confirming_an_upload_that_never_came_is_refused(signed_in):
    analysis = create(signed_in).json["analysis"]
    response = signed_in.post(f"/api/analyses/{analysis['id']}/confirm-upload", headers=write_headers(signed_in))
    assert response.status_code == 409 and "has not arrived" in response.json["error"]["message"]


def test_uploads_must_match_what_was_signed(signed_in):
    answer = create(signed_in).json
    assert upload(signed_in, answer, CLIP[:-10]).status_code == 400
    url = urlsplit(answer["upload"]["url"])
    forged = signed_in.put(
        url.path, data=CLIP, headers=answer["upload"]["headers"] | {"X-Poser-Upload-Token": "forged"}
    )
    assert forged.status_code == 403
    other_type = signed_in.put(
        url.path, data=CLIP, headers=answer["upload"]["headers"] | {"Content-Type": "video/webm"}
    )
    assert other_type.status_code == 403
    other_key = signed_in.put("/storage/uploads/elsewhere.mp4", data=CLIP, headers=answer["upload"]["headers"])
    assert other_key.status_code == 403


def test_cookie_writes_need_the_csrf_token_and_bearer_ones_do_not(client, smtp_sink):
    token = sign_in(client, smtp_sink)["token"]
    payload = {"filename": "run.mp4", "content_type": "video/mp4", "size": 10}
    assert client.post("/api/analyses/create-upload", json=payload).status_code == 403
    bearer = https_client(client.application)
    answer = bearer.post("/api/analyses/create-upload", json=payload, headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 201


def test_nobody_sees_or_touches_another_users_analysis(app, signed_in, smtp_sink):
    analysis_id = create(signed_in).json["analysis"]["id"]
    intruder = https_client(app)
    sign_in(intruder, smtp_sink, "intruder@example.com")
    headers = write_headers(intruder)
    assert intruder.get(f"/api/analyses/{analysis_id}").status_code == 404
    assert intruder.post(f"/api/analyses/{analysis_id}/confirm-upload", headers=headers).status_code == 404
    assert intruder.delete(f"/api/analyses/{analysis_id}", headers=headers).status_code == 404
    assert intruder.get("/api/analyses").json["total"] == 0
    assert signed_in.get(f"/api/analyses/{analysis_id}").status_code == 200
    assert https_client(app).get("/api/analyses").status_code == 401


def test_analyses_are_listed_newest_first_a_page_at_a_time(signed_in):
    ids = [create(signed_in, filename=f"run{i}.mp4").json["analysis"]["id"] for i in range(5)]
    first = signed_in.get("/api/analyses?per_page=2").json
    assert (first["total"], first["pages"], first["page"]) == (5, 3, 1)
    assert [a["id"] for a in first["analyses"]] == ids[::-1][:2]
    last = signed_in.get("/api/analyses?per_page=2&page=3").json
    assert [a["id"] for a in last["analyses"]] == ids[:1]
    assert signed_in.get("/api/analyses?page=0").status_code == 400


def test_deleting_cancels_the_run_and_removes_files_and_rows(app, signed_in, analysis_deployment):
    answer = create(signed_in).json
    analysis_id = answer["analysis"]["id"]
    upload(signed_in, answer)
    signed_in.post(f"/api/analyses/{analysis_id}/confirm-upload", headers=write_headers(signed_in))
    from webapp.db import db
    from webapp.models import Analysis
    from webapp.storage import storage

    with app.app_context():
        flow_run_id = db.session.get(Analysis, analysis_id).flow_run_id
        stored_file = storage().path(f"uploads/{analysis_id}/input.mp4")
    assert stored_file.is_file()
    assert signed_in.delete(f"/api/analyses/{analysis_id}", headers=write_headers(signed_in)).status_code == 204
    assert not stored_file.exists()
    assert signed_in.get(f"/api/analyses/{analysis_id}").status_code == 404
    assert read_flow_run(flow_run_id).state.type.value in ("CANCELLING", "CANCELLED")


def test_the_last_known_status_stands_when_prefect_is_unreachable(app, signed_in, analysis_deployment):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    answer = create(signed_in).json
    analysis_id = answer["analysis"]["id"]
    upload(signed_in, answer)
    signed_in.post(f"/api/analyses/{analysis_id}/confirm-upload", headers=write_headers(signed_in))
    with temporary_settings({PREFECT_API_URL: "http://127.0.0.1:9/api"}):
        response = signed_in.get(f"/api/analyses/{analysis_id}")
    assert response.status_code == 200 and response.json["analysis"]["status"] == "queued"
    refused = signed_in.post(
        "/api/analyses/create-upload",
        json={"filename": "b.mp4", "content_type": "video/mp4", "size": len(CLIP)},
        headers=write_headers(signed_in),
    )
    with temporary_settings({PREFECT_API_URL: "http://127.0.0.1:9/api"}):
        upload(signed_in, refused.json)
        confirm = signed_in.post(
            f"/api/analyses/{refused.json['analysis']['id']}/confirm-upload", headers=write_headers(signed_in)
        )
    assert confirm.status_code == 503 and "not reachable" in confirm.json["error"]["message"]
    assert (
        signed_in.get(f"/api/analyses/{refused.json['analysis']['id']}").json["analysis"]["status"] == "awaiting_upload"
    )


@pytest.mark.parametrize(
    ("state", "age_s", "expected"),
    [
        ("Running", 0, "RUNNING"),
        ("Crashed", 0, "CRASHED"),
        ("Completed", 0, "COMPLETED"),
        # The flow's own report of why it failed may still be on its way.
        ("Failed", 0, None),
        ("Failed", 300, "FAILED"),
    ],
)
def test_a_fresh_failure_waits_for_the_flow_to_say_why(state, age_s, expected):
    from datetime import datetime, timedelta

    from prefect import states

    from webapp.orchestration import state_type

    made = getattr(states, state)(timestamp=datetime.now(UTC) - timedelta(seconds=age_s))
    assert state_type(made) == expected
    assert state_type(None) is None


def test_a_state_read_from_prefect_never_overwrites_what_the_flow_reported_meanwhile(app):
    from sqlalchemy import update

    from webapp.db import db
    from webapp.models import Analysis, User
    from webapp.orchestration import apply_flow_run_state

    with app.app_context():
        user = User(email="race@example.com")
        db.session.add(user)
        db.session.flush()
        analysis = Analysis(user_id=user.id, status="processing", input_key="uploads/x/input.mp4", flow_run_id="x")
        db.session.add(analysis)
        db.session.commit()
        assert analysis.status == "processing"  # what this request read
        # The flow's failure report, committed by another request in the meantime.
        with db.engine.begin() as other:
            other.execute(
                update(Analysis.__table__)
                .where(Analysis.__table__.c.id == analysis.id)
                .values(status="failed", error="This file is a still image, not a video.")
            )
        assert apply_flow_run_state(analysis, "FAILED") is False
        assert (analysis.status, analysis.error) == ("failed", "This file is a still image, not a video.")

        lost = Analysis(user_id=user.id, status="processing", input_key="uploads/y/input.mp4", flow_run_id="y")
        db.session.add(lost)
        db.session.commit()
        assert apply_flow_run_state(lost, "CRASHED") is True
        assert (lost.status, lost.error) == ("failed", "The analysis stopped unexpectedly. Please try again.")
