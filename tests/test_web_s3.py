"""Uploads and downloads with S3 storage, against a real S3 server (SeaweedFS)."""

from __future__ import annotations

import hashlib

import boto3
import httpx
import pytest

from tests.conftest import S3_BUCKET
from tests.test_web_analyses import CLIP, create
from tests.webutil import read_flow_run, sign_in, write_headers


@pytest.fixture
def s3_app(app, s3_server):
    app.config.update(STORAGE_BACKEND="s3", S3_BUCKET=S3_BUCKET, S3_ENDPOINT_URL=s3_server)
    app.extensions.pop("poser_storage", None)
    return app


@pytest.fixture
def signed_in(s3_app, client, smtp_sink):
    sign_in(client, smtp_sink)
    return client


def bucket_keys(endpoint: str, prefix: str) -> list[str]:
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    return [item["Key"] for item in s3.list_objects_v2(Bucket=S3_BUCKET, Prefix=prefix).get("Contents", [])]


def test_a_presigned_upload_goes_straight_to_s3_and_starts_the_analysis(signed_in, s3_server, analysis_deployment):
    answer = create(signed_in).json
    upload = answer["upload"]
    assert upload["url"].startswith(s3_server) and upload["method"] == "PUT"
    assert httpx.put(upload["url"], content=CLIP, headers={"Content-Type": "video/webm"}).status_code == 403
    assert httpx.put(upload["url"], content=CLIP, headers=upload["headers"]).status_code == 200

    analysis_id = answer["analysis"]["id"]
    confirmed = signed_in.post(f"/api/analyses/{analysis_id}/confirm-upload", headers=write_headers(signed_in))
    assert confirmed.status_code == 202

    from webapp.db import db
    from webapp.models import Analysis

    with signed_in.application.app_context():
        stored = db.session.get(Analysis, analysis_id)
        assert stored.upload.sha256 == hashlib.sha256(CLIP).hexdigest()

        run = read_flow_run(stored.flow_run_id).parameters
    # The analysed clip is a copy no upload link points to, so replaying the link changes nothing.
    assert run["video_path"] == f"s3://{S3_BUCKET}/uploads/{analysis_id}/sealed.mp4"
    assert run["output_location"] == f"s3://{S3_BUCKET}/analyses/{analysis_id}/outputs"
    assert run["out_dir"] is None


def test_a_wrong_size_is_caught_at_confirmation(signed_in):
    answer = create(signed_in).json
    httpx.put(answer["upload"]["url"], content=CLIP[:100], headers=answer["upload"]["headers"])
    response = signed_in.post(
        f"/api/analyses/{answer['analysis']['id']}/confirm-upload", headers=write_headers(signed_in)
    )
    assert response.status_code == 409 and "were declared" in response.json["error"]["message"]


def test_deleting_removes_the_objects(signed_in, s3_server):
    answer = create(signed_in).json
    httpx.put(answer["upload"]["url"], content=CLIP, headers=answer["upload"]["headers"])
    analysis_id = answer["analysis"]["id"]
    assert bucket_keys(s3_server, f"uploads/{analysis_id}/") == [f"uploads/{analysis_id}/input.mp4"]
    assert signed_in.delete(f"/api/analyses/{analysis_id}", headers=write_headers(signed_in)).status_code == 204
    assert bucket_keys(s3_server, f"uploads/{analysis_id}/") == []


def test_local_storage_urls_are_off_with_s3(signed_in):
    assert signed_in.put("/storage/uploads/x.mp4?token=t", data=b"x").status_code == 404
