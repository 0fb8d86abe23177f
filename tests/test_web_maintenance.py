"""Housekeeping: stale uploads, expired tokens, orphaned objects, crashed and lost flow runs."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from tests.conftest import WORKER_SECRET
from tests.test_web_analyses import CLIP, create, upload
from tests.webutil import sign_in, write_headers
from webapp.db import db
from webapp.models import Analysis, EmbedToken, Partner, User, utcnow
from webapp.storage import storage

HEADERS = {"X-Poser-Internal-Secret": WORKER_SECRET}


@pytest.fixture
def signed_in(app, client, smtp_sink):
    app.config["INTERNAL_SECRET"] = WORKER_SECRET
    sign_in(client, smtp_sink)
    return client


def maintain(client) -> dict:
    response = client.post("/api/internal/maintenance", headers=HEADERS)
    assert response.status_code == 200
    return response.json


def test_uploads_never_confirmed_expire_with_their_objects(app, signed_in):
    stale, fresh = create(signed_in).json, create(signed_in).json
    upload(signed_in, stale, CLIP)
    with app.app_context():
        db.session.get(Analysis, stale["analysis"]["id"]).created_at = utcnow() - timedelta(hours=3)
        db.session.commit()
        stale_file = storage().path(f"uploads/{stale['analysis']['id']}/input.mp4")
    assert stale_file.is_file()
    assert maintain(signed_in)["expired_uploads"] == 1
    assert not stale_file.exists()
    assert signed_in.get(f"/api/analyses/{stale['analysis']['id']}").status_code == 404
    assert signed_in.get(f"/api/analyses/{fresh['analysis']['id']}").status_code == 200


def test_expired_embed_tokens_go_and_others_stay(app, signed_in):
    with app.app_context():
        owner = db.session.scalar(db.select(User))
        partner = Partner(
            slug="school",
            display_name="School",
            allowed_domains=[],
            max_upload_bytes=1,
            max_trim_s=1,
            owner_user_id=owner.id,
        )
        db.session.add(partner)
        db.session.flush()
        for i, (expires, confirmed) in enumerate([(-1, None), (1, None), (-1, utcnow())]):
            analysis = Analysis(user_id=owner.id, input_key=f"uploads/{i}/input.mp4")
            db.session.add(analysis)
            db.session.flush()
            db.session.add(
                EmbedToken(
                    partner_id=partner.id,
                    analysis_id=analysis.id,
                    email="a@b.co",
                    token_hash=str(i) * 64,
                    results_token_hash=str(i + 3) * 64,
                    client_ip="127.0.0.1",
                    expires_at=utcnow() + timedelta(hours=expires),
                    confirmed_at=confirmed,
                )
            )
        db.session.commit()
    assert maintain(signed_in)["expired_embed_tokens"] == 1


def test_orphaned_objects_are_removed(app, signed_in):
    kept = create(signed_in).json
    upload(signed_in, kept, CLIP)
    with app.app_context():
        orphan = storage().path(f"analyses/{uuid.uuid4()}/outputs/overlay.mp4")
        orphan.parent.mkdir(parents=True)
        orphan.write_bytes(b"left behind")
        kept_file = storage().path(f"uploads/{kept['analysis']['id']}/input.mp4")
    assert maintain(signed_in)["orphaned_objects"] == 1
    assert not orphan.exists() and kept_file.is_file()


def test_analyses_whose_flow_run_is_gone_are_failed(app, signed_in, analysis_deployment):
    live = create(signed_in).json
    upload(signed_in, live, CLIP)
    signed_in.post(f"/api/analyses/{live['analysis']['id']}/confirm-upload", headers=write_headers(signed_in))
    lost_id = create(signed_in).json["analysis"]["id"]
    with app.app_context():
        lost = db.session.get(Analysis, lost_id)
        lost.status, lost.flow_run_id = "queued", str(uuid.uuid4())
        db.session.commit()
    assert maintain(signed_in)["lost_runs"] == 1
    assert signed_in.get(f"/api/analyses/{lost_id}").json["analysis"]["status"] == "failed"
    assert signed_in.get(f"/api/analyses/{live['analysis']['id']}").json["analysis"]["status"] == "queued"


def test_analyses_whose_flow_run_crashed_are_failed(app, signed_in, analysis_deployment):
    import asyncio

    from prefect import get_client
    from prefect.states import Crashed

    crashed, waiting = (create(signed_in).json for _ in range(2))
    for answer in (crashed, waiting):
        upload(signed_in, answer, CLIP)
        signed_in.post(f"/api/analyses/{answer['analysis']['id']}/confirm-upload", headers=write_headers(signed_in))
    with app.app_context():
        flow_run_id = db.session.get(Analysis, crashed["analysis"]["id"]).flow_run_id

    async def crash() -> None:
        async with get_client() as prefect:
            await prefect.set_flow_run_state(flow_run_id, Crashed(message="No heartbeat."), force=True)

    asyncio.run(crash())
    assert maintain(signed_in)["refreshed_runs"] == 1
    failed = signed_in.get(f"/api/analyses/{crashed['analysis']['id']}").json["analysis"]
    assert failed["status"] == "failed" and "stopped unexpectedly" in failed["error"]
    assert signed_in.get(f"/api/analyses/{waiting['analysis']['id']}").json["analysis"]["status"] == "queued"
    assert maintain(signed_in)["refreshed_runs"] == 0


def test_the_maintenance_flow_calls_the_web_app(served_app, monkeypatch):
    from flows.maintenance import maintenance

    _, url = served_app
    monkeypatch.setenv("POSER_WEBAPP_URL", url)
    monkeypatch.setenv("POSER_INTERNAL_SECRET", WORKER_SECRET)
    assert maintenance() == {
        "expired_uploads": 0,
        "expired_embed_tokens": 0,
        "orphaned_objects": 0,
        "lost_runs": 0,
        "refreshed_runs": 0,
        "outcomes_mailed": 0,
        "ended_sessions": 0,
        "old_sign_in_codes": 0,
        "old_rate_limits": 0,
    }
