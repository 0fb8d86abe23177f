"""The partner widget's API: submit, upload, confirm by email, follow, and read the results,
with every refusal: other origins, unknown partners, bad clips, rate limits, forged, reused
or expired tokens, and other visitors' analyses."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
import requests

from tests.webutil import create_partner, mail_text, read_flow_run
from webapp.db import db
from webapp.models import Analysis, EmbedToken, User, utcnow

ORIGIN = "https://alpine.example"
SLUG = "alpine-school"
CLIP = b"\x00\x00\x00\x18ftypmp42" + bytes(2000)
SECRET = "embed-test-secret"


@pytest.fixture
def partner(app):
    app.config["INTERNAL_SECRET"] = SECRET
    create_partner(app, SLUG, "alpine.example", "--max-upload-mb", "1", "--max-trim-s", "30")
    return SLUG


def submit(client, email="rider@example.com", origin=ORIGIN, **overrides):
    body = {
        "email": email,
        "filename": "run.mp4",
        "content_type": "video/mp4",
        "size": len(CLIP),
        "trim_start_s": 0,
        "trim_end_s": 10,
    } | overrides
    return client.post(f"/api/embed/{SLUG}/submit", json=body, headers={"Origin": origin})


def local_path(url: str) -> str:
    """The path and query of one of the app's own absolute URLs, for the test client."""
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def put_clip(client, upload, body=CLIP, origin=ORIGIN):
    """PUT the clip to the upload URL the way the widget does: the app's own signed URL, or S3."""
    if urlsplit(upload["url"]).hostname == "localhost":
        return client.put(local_path(upload["url"]), data=body, headers=upload["headers"] | {"Origin": origin})
    return requests.put(upload["url"], data=body, headers=upload["headers"], timeout=30)


def visitor(answer) -> dict:
    return {"Origin": ORIGIN, "X-Poser-Visitor": answer["visitor_key"]}


def complete_upload(client, answer):
    return client.post(
        f"/api/embed/{SLUG}/upload-complete", json={"analysis_id": answer["analysis_id"]}, headers=visitor(answer)
    )


def submitted_and_mailed(client, smtp_sink, **overrides):
    """A submission whose clip arrived; returns the submit answer and the emailed confirm link."""
    answer = submit(client, **overrides).json
    put_clip(client, answer["upload"])
    before = len(smtp_sink.messages)
    assert complete_upload(client, answer).status_code == 202
    message = smtp_sink.messages[before]
    return answer, re.search(r"https?://\S+/api/embed/confirm\?token=\S+", mail_text(message)).group(0)


def confirm(client, link):
    return client.get(local_path(link))


def report(client, analysis_id, path, payload, method="put"):
    """What the worker's flow sends through the internal API."""
    send = getattr(client, method)
    response = send(f"/api/internal/{path}", json=payload, headers={"X-Poser-Internal-Secret": SECRET})
    assert response.status_code in (200, 201), response.json
    return response


LOW_COVERAGE = (
    "The skier was tracked in 71% of the clip (lost from 3.8 s to 6.0 s); scores cover only the tracked part."
)


def finish(client, analysis_id, status="complete", error=None, results=None):
    if status == "complete":
        report(
            client, analysis_id, f"analyses/{analysis_id}/edge-similarity", {"overall": 77.5, "left": 80, "right": 75}
        )
        report(
            client,
            analysis_id,
            f"analyses/{analysis_id}/turns",
            {"turns": [{"index": 1, "partial": True}, {"index": 2}, {"index": 3}]},
            method="post",
        )
        report(
            client,
            analysis_id,
            "artifacts",
            {
                "analysis_id": analysis_id,
                "kind": "video",
                "key": f"analyses/{analysis_id}/outputs/overlay.mp4",
                "content_type": "video/mp4",
                "sha256": "0" * 64,
                "size": 10,
            },
            method="post",
        )
    report(
        client, analysis_id, f"analyses/{analysis_id}/status", {"status": status, "error": error, "results": results}
    )


@pytest.mark.parametrize(
    ("method", "path", "headers", "status"),
    [
        ("options", f"/api/embed/{SLUG}/submit", {"Origin": ORIGIN, "Access-Control-Request-Method": "POST"}, 200),
        (
            "options",
            f"/api/embed/{SLUG}/submit",
            {"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
            403,
        ),
        ("post", f"/api/embed/{SLUG}/submit", {"Origin": "https://evil.example"}, 403),
        ("post", f"/api/embed/{SLUG}/submit", {}, 403),
        ("post", "/api/embed/nobody/submit", {"Origin": ORIGIN}, 404),
        ("get", f"/api/embed/{SLUG}/status/x", {"Referer": "https://evil.example/page"}, 403),
    ],
)
def test_only_the_partners_origins_are_answered(client, partner, method, path, headers, status):
    response = getattr(client, method)(path, json={} if method == "post" else None, headers=headers)
    assert response.status_code == status
    if status == 200:
        assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
        assert "X-Poser-Visitor" in response.headers["Access-Control-Allow-Headers"]
    else:
        assert "Access-Control-Allow-Origin" not in response.headers


def test_a_visitor_submits_uploads_and_is_sent_the_confirmation(app, client, partner, smtp_sink):
    response = submit(client, email="New.Rider@Example.com", skier_hint={"time_s": 1.5, "point": [400, 300]})
    assert response.status_code == 201, response.json
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    answer = response.json
    stored = put_clip(client, answer["upload"])
    assert stored.status_code == 200 and stored.headers["Access-Control-Allow-Origin"] == ORIGIN
    state = client.get(f"/api/embed/{SLUG}/status/{answer['analysis_id']}", headers=visitor(answer)).json
    assert state["status"] == "awaiting_upload"

    before = len(smtp_sink.messages)
    completed = complete_upload(client, answer)
    assert completed.status_code == 202 and completed.json == {
        "status": "awaiting_confirmation",
        "email": "new.rider@example.com",
    }
    message = smtp_sink.messages[before]
    assert message["To"] == "new.rider@example.com"
    assert message["Subject"] == "Confirm and start your Alpine School ski analysis"
    assert "Confirm and start:\nhttp" in mail_text(message)
    # The uploader's file name is their text, not the recipient's: it stays out of the email.
    assert "run.mp4" not in mail_text(message) and "Someone, hopefully you, uploaded a video" in mail_text(message)
    assert complete_upload(client, answer).status_code == 409
    with app.app_context():
        analysis = db.session.get(Analysis, answer["analysis_id"])
        assert analysis.source == f"embed:{SLUG}" and analysis.skier_hint == {"time_s": 1.5, "point": [400.0, 300.0]}
        # Nobody's analysis, and no account, until the emailed link is opened.
        assert analysis.user_id is None
        assert db.session.scalar(db.select(User).where(User.email == "new.rider@example.com")) is None
        token = db.session.scalar(db.select(EmbedToken))
        assert token.token_hash not in mail_text(message) and len(token.token_hash) == 64


@pytest.mark.parametrize(
    ("overrides", "status", "message"),
    [
        ({"email": "not-an-email"}, 400, "valid email"),
        ({"content_type": "image/png", "filename": "run.png"}, 415, "MP4, MOV or WebM"),
        ({"size": 2 * 1024 * 1024}, 413, "limit is 1 MB"),
        ({"trim_end_s": None}, 400, "at most 30 s"),
        ({"trim_start_s": 0, "trim_end_s": 45}, 400, "longer than the 30 s limit"),
        ({"skier_hint": {"time_s": 1, "point": [1]}}, 400, "skier_hint"),
        ({"skier_hint": {"time_s": -1, "point": [1, 2]}}, 400, "skier_hint"),
    ],
)
def test_bad_submissions_are_refused(client, partner, overrides, status, message):
    response = submit(client, **overrides)
    assert response.status_code == status and message in response.json["error"]["message"]


@pytest.mark.parametrize(
    ("setting", "emails"),
    [
        ("EMBED_SUBMITS_PER_EMAIL", ["a@x.example"] * 3),
        ("EMBED_SUBMITS_PER_CLIENT", ["a@x.example", "b@x.example", "c@x.example"]),
    ],
)
def test_submissions_are_rate_limited_per_email_and_per_client(app, client, partner, setting, emails):
    app.config[setting] = 2
    statuses = [submit(client, email=email).status_code for email in emails]
    assert statuses == [201, 201, 429]
    response = submit(client, email=emails[-1])
    assert 0 < int(response.headers["Retry-After"]) <= app.config["EMBED_RATE_WINDOW_S"]
    assert "try again" in response.json["error"]["message"]


def test_upload_complete_needs_the_clip_and_the_visitors_key(client, partner):
    answer = submit(client).json
    assert complete_upload(client, answer).status_code == 409
    put_clip(client, answer["upload"])
    forged = dict(answer, visitor_key="x" * 43)
    assert complete_upload(client, forged).status_code == 404
    other = submit(client, email="other@example.com").json
    stolen = dict(other, analysis_id=answer["analysis_id"])
    assert complete_upload(client, stolen).status_code == 404


def test_status_and_feedback_reveal_nothing_about_other_visitors(client, partner):
    mine, theirs = submit(client).json, submit(client, email="other@example.com").json
    for kind in ("status", "feedback"):
        for headers in (visitor(mine), {"Origin": ORIGIN}):
            response = client.get(f"/api/embed/{SLUG}/{kind}/{theirs['analysis_id']}", headers=headers)
            assert response.status_code == 404 and response.json["error"]["message"] == "No such analysis."
        missing = client.get(f"/api/embed/{SLUG}/{kind}/no-such-id", headers=visitor(mine))
        assert missing.status_code == 404 and missing.json["error"]["message"] == "No such analysis."
    assert client.get(f"/api/embed/{SLUG}/feedback/{mine['analysis_id']}", headers=visitor(mine)).status_code == 409


def test_the_emailed_link_starts_the_analysis_once(app, client, partner, smtp_sink, analysis_deployment):
    answer, link = submitted_and_mailed(client, smtp_sink)
    page = confirm(client, link)
    assert page.status_code == 200 and "Your analysis has started" in page.text and "Alpine School" in page.text
    assert page.headers["Content-Security-Policy"].endswith("; frame-ancestors 'none'")
    assert page.headers["X-Frame-Options"] == "DENY"
    state = client.get(f"/api/embed/{SLUG}/status/{answer['analysis_id']}", headers=visitor(answer)).json
    assert state["status"] == "queued"
    with app.app_context():
        analysis = db.session.get(Analysis, answer["analysis_id"])
        run = read_flow_run(analysis.flow_run_id)
    assert {"embed", f"partner:{SLUG}"} <= set(run.tags)
    assert run.parameters["skier_hint"] is None and run.name == f"analysis-{analysis.id}"

    reused = confirm(client, link)
    assert reused.status_code == 410 and "already been used" in reused.text
    assert confirm(client, link.replace("token=", "token=x")).status_code == 404
    assert client.get("/api/embed/confirm").status_code == 404


def test_an_expired_link_is_refused(app, client, partner, smtp_sink):
    _, link = submitted_and_mailed(client, smtp_sink)
    with app.app_context():
        token = db.session.scalar(db.select(EmbedToken))
        token.expires_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
    page = confirm(client, link)
    assert page.status_code == 410 and "expired" in page.text


def test_a_finished_analysis_shows_its_card_and_results_and_mails_the_visitor_once(
    app, client, partner, smtp_sink, analysis_deployment
):
    answer, link = submitted_and_mailed(client, smtp_sink)
    confirm(client, link)
    analysis_id = answer["analysis_id"]
    before = len(smtp_sink.messages)
    finish(client, analysis_id, results={"warnings": [LOW_COVERAGE]})
    finish(client, analysis_id, results={"warnings": [LOW_COVERAGE]})
    assert len(smtp_sink.messages) == before + 1
    mail = smtp_sink.messages[before]
    assert mail["Subject"] == "Your Alpine School ski analysis is ready"
    results_link = re.search(r"https?://\S+/results/\S+", mail_text(mail)).group(0)
    assert "Edge similarity: 78 out of 100." in mail_text(mail) and "Turns analysed: 2." in mail_text(mail)

    card = client.get(f"/api/embed/{SLUG}/feedback/{analysis_id}", headers=visitor(answer)).json
    assert card["edge_similarity"]["overall"] == 77.5 and card["turns_analysed"] == 2 and card["turns_found"] == 3
    assert card["results_url"] == results_link and "/storage/analyses/" in card["video_url"]
    assert card["warnings"] == [LOW_COVERAGE]

    token = results_link.rsplit("/", 1)[1]
    results = client.get(f"/api/embed/results/{token}").json
    assert results["analysis"]["id"] == analysis_id and results["partner"]["name"] == "Alpine School"
    assert client.get(f"/api/embed/results/{token}/download/video").status_code == 200
    assert client.get(f"/api/embed/results/{token}/download/chart").status_code == 404
    page = client.get(f"/results/{token}")
    assert (
        page.status_code == 200
        and "Submitted on Alpine School" in page.text
        and "Delete this analysis" not in page.text
    )
    assert page.headers["Content-Security-Policy"].endswith(
        "; frame-ancestors 'self' https://alpine.example http://alpine.example"
    )
    assert "X-Frame-Options" not in page.headers
    for forged in ("x" * 43, token[:-1]):
        assert client.get(f"/api/embed/results/{forged}").status_code == 404
        assert client.get(f"/results/{forged}").status_code == 404


def test_an_unconfirmed_submission_has_no_results(app, client, partner, smtp_sink):
    answer, _ = submitted_and_mailed(client, smtp_sink)
    with app.test_request_context():
        from webapp.tokens import results_token

        token = results_token(answer["analysis_id"])
    assert client.get(f"/api/embed/results/{token}").status_code == 404


@pytest.mark.parametrize(
    ("status", "error", "reason"),
    [
        ("failed", "This file is a still image, not a video.", "This file is a still image, not a video."),
        ("no_skier_found", None, "We could not find a skier in enough of the clip."),
    ],
)
def test_a_failed_analysis_is_mailed_with_its_reason(
    client, partner, smtp_sink, analysis_deployment, status, error, reason
):
    answer, link = submitted_and_mailed(client, smtp_sink)
    confirm(client, link)
    before = len(smtp_sink.messages)
    finish(client, answer["analysis_id"], status=status, error=error)
    mail = smtp_sink.messages[before]
    assert mail["Subject"] == "Your Alpine School ski analysis could not be completed"
    assert reason in mail_text(mail) and "Alpine School's site" in mail_text(mail)
    state = client.get(f"/api/embed/{SLUG}/status/{answer['analysis_id']}", headers=visitor(answer)).json
    assert (state["status"], state["message"]) == (status, reason)


def test_maintenance_removes_submissions_never_confirmed(app, client, partner, smtp_sink):
    answer, _ = submitted_and_mailed(client, smtp_sink)
    with app.app_context():
        from webapp.storage import storage

        clip = storage().path(db.session.get(Analysis, answer["analysis_id"]).input_key)
        token = db.session.scalar(db.select(EmbedToken))
        token.expires_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
    assert clip.is_file()
    done = client.post("/api/internal/maintenance", headers={"X-Poser-Internal-Secret": SECRET}).json
    assert done["expired_embed_tokens"] == 1 and not clip.exists()
    with app.app_context():
        assert db.session.get(Analysis, answer["analysis_id"]) is None


@pytest.mark.parametrize("storage_backend", ["s3"])
def test_submissions_work_with_s3_storage(app, client, partner, smtp_sink, s3_server, storage_backend):
    from tests.conftest import S3_BUCKET

    app.config.update(STORAGE_BACKEND="s3", S3_BUCKET=S3_BUCKET, S3_ENDPOINT_URL=s3_server)
    answer = submit(client).json
    assert answer["upload"]["url"].startswith(s3_server)
    assert put_clip(client, answer["upload"]).status_code == 200
    assert complete_upload(client, answer).status_code == 202
    assert "Confirm and start" in mail_text(smtp_sink.messages[-1])


def test_an_outcome_email_that_could_not_be_sent_goes_out_with_the_next_maintenance(
    app, client, partner, smtp_sink, analysis_deployment
):
    from tests.conftest import free_port

    answer, link = submitted_and_mailed(client, smtp_sink)
    confirm(client, link)
    app.config["SMTP_PORT"] = free_port()  # nothing listens there
    finish(client, answer["analysis_id"])
    app.config["SMTP_PORT"] = smtp_sink.port
    before = len(smtp_sink.messages)
    done = client.post("/api/internal/maintenance", headers={"X-Poser-Internal-Secret": SECRET}).json
    assert done["outcomes_mailed"] == 1 and smtp_sink.messages[before]["Subject"].endswith("is ready")
    assert (
        client.post("/api/internal/maintenance", headers={"X-Poser-Internal-Secret": SECRET}).json["outcomes_mailed"]
        == 0
    )


def test_a_visitor_runs_a_failed_analysis_again_unless_the_clip_is_at_fault(
    app, client, partner, smtp_sink, analysis_deployment
):
    import asyncio

    from prefect import get_client
    from prefect.states import Failed

    answer, link = submitted_and_mailed(client, smtp_sink)
    confirm(client, link)
    analysis_id = answer["analysis_id"]
    retry = f"/api/embed/{SLUG}/retry/{analysis_id}"
    assert client.post(retry, headers=visitor(answer)).status_code == 409  # still queued
    with app.app_context():
        flow_run_id = db.session.get(Analysis, analysis_id).flow_run_id

    async def fail() -> None:
        async with get_client() as prefect:
            await prefect.set_flow_run_state(flow_run_id, Failed(message="Stopped."), force=True)

    asyncio.run(fail())
    report(
        client,
        analysis_id,
        f"analyses/{analysis_id}/status",
        {"status": "failed", "error": "This file is a still image, not a video.", "retryable": False},
    )
    state = client.get(f"/api/embed/{SLUG}/status/{analysis_id}", headers=visitor(answer)).json
    assert (state["status"], state["retryable"]) == ("failed", False)
    assert client.post(retry, headers=visitor(answer)).status_code == 409

    report(
        client,
        analysis_id,
        f"analyses/{analysis_id}/status",
        {"status": "failed", "error": "The analysis stopped unexpectedly.", "retryable": True},
    )
    other = submit(client, email="other@example.com").json
    assert client.post(retry, headers=visitor(other)).status_code == 404
    assert client.post(retry, headers={"Origin": "https://evil.example"}).status_code == 403
    response = client.post(retry, headers=visitor(answer))
    assert response.status_code == 202 and response.json == {"status": "queued"}
    assert read_flow_run(flow_run_id).state.name == "AwaitingRetry"


def test_a_visitor_who_signs_in_finds_and_can_delete_the_submission(
    app, client, partner, smtp_sink, analysis_deployment
):
    from tests.webutil import sign_in, write_headers

    answer, link = submitted_and_mailed(client, smtp_sink)
    sign_in(client, smtp_sink, "rider@example.com")
    assert client.get("/api/analyses").json["analyses"] == []  # not confirmed yet: not theirs
    confirm(client, link)
    listed = client.get("/api/analyses").json["analyses"]
    assert [(a["id"], a["status"], a["source"]) for a in listed] == [(answer["analysis_id"], "queued", f"embed:{SLUG}")]
    assert client.delete(f"/api/analyses/{answer['analysis_id']}", headers=write_headers(client)).status_code == 204
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(EmbedToken)) == 0
