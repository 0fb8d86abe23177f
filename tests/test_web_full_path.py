"""The whole path through real services: sign in with a mailed code, upload, a Prefect process
worker runs the analysis, the flow reports back over HTTP, the outputs download."""

from __future__ import annotations

import csv
import io
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.webutil import https_client, sign_in, write_headers

pytestmark = pytest.mark.slow


@pytest.fixture(params=["local", "s3"])
def storage_backend(request):
    return request.param


def submit(app, smtp_sink, clip: bytes, **trim):
    """Sign in, upload `clip` (to wherever the upload URL points) and confirm it; returns the
    client and the analysis id."""
    client = https_client(app)
    sign_in(client, smtp_sink, "rider@example.com")
    csrf = write_headers(client)
    answer = client.post(
        "/api/analyses/create-upload",
        headers=csrf,
        json={"filename": "carpet.mp4", "content_type": "video/mp4", "size": len(clip)} | trim,
    ).json
    upload = answer["upload"]
    if "//localhost/" in upload["url"]:
        url = urlsplit(upload["url"])
        assert client.put(f"{url.path}?{url.query}", data=clip, headers=upload["headers"]).status_code == 200
    else:
        assert httpx.put(upload["url"], content=clip, headers=upload["headers"]).status_code == 200
    analysis_id = answer["analysis"]["id"]
    assert client.post(f"/api/analyses/{analysis_id}/confirm-upload", headers=csrf).status_code == 202
    return client, analysis_id


def wait_until_done(client, analysis_id: str, timeout_s: float = 300) -> tuple[dict, set[str]]:
    seen, deadline = set(), time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        analysis = client.get(f"/api/analyses/{analysis_id}").json["analysis"]
        seen.add(analysis["status"])
        if analysis["status"] in ("complete", "no_skier_found", "failed", "cancelled"):
            break
        time.sleep(1)
    return analysis, seen


def test_from_code_to_downloaded_results(served_app, worker, smtp_sink, derived):
    client, analysis_id = submit(served_app[0], smtp_sink, derived["short"].read_bytes())
    analysis, seen = wait_until_done(client, analysis_id)
    assert analysis["status"] == "complete", analysis
    assert "processing" in seen or "queued" in seen
    assert analysis["progress"] == 100
    stills = [f"finding_{f['rank']}" for f in analysis["results"]["findings"] if f["still"]]
    assert analysis["artifacts"] == sorted(
        ["chart", "landmarks_csv", "landmarks_parquet", "results_json", "turns_csv", "turns_parquet", "video", *stills]
    )
    assert analysis["results"]["skier"]["tracked_fraction"] > 0.9
    assert client.get(f"/api/analyses/{analysis_id}/turns").json["turns"]

    link = client.get(f"/api/analyses/{analysis_id}/download/landmarks_csv").json
    if "//localhost/" in link["url"]:
        download = urlsplit(link["url"])
        body = client.get(f"{download.path}?{download.query}")
        status, text = body.status_code, body.get_data(as_text=True)
    else:
        body = httpx.get(link["url"])
        status, text = body.status_code, body.text
    assert status == 200 and len(text.encode()) == link["size"]
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == analysis["results"]["input"]["frames_in_trim"]
    assert client.get(f"/api/analyses/{analysis_id}/download/nothing").status_code == 404
    # Outputs go to the storage folder, or to S3 without leaving a copy on the worker.
    assert not (Path(tempfile.gettempdir()) / "poser-runs" / analysis_id).exists()
