"""Liveness and readiness."""

from __future__ import annotations


def test_healthz_answers_while_the_process_is_up(client):
    assert client.get("/healthz").json == {"status": "ok"}


def test_readyz_checks_the_database_storage_and_prefect(client, prefect_server):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json["checks"] == {"database": True, "storage": True, "prefect": True}


def test_readyz_reports_what_is_down(client, prefect_server):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: "http://127.0.0.1:9/api"}):
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json["checks"] == {"database": True, "storage": True, "prefect": False}


def test_readyz_checks_the_s3_bucket(app, client, prefect_server, s3_server):
    app.config.update(STORAGE_BACKEND="s3", S3_BUCKET="no-such-bucket", S3_ENDPOINT_URL=s3_server)
    app.extensions.pop("poser_storage", None)
    assert client.get("/readyz").json["checks"]["storage"] is False
