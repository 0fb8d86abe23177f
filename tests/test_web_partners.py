"""Partners: the CLI that manages them and the origin check of the embed endpoints."""

from __future__ import annotations

import pytest

from webapp.models import Partner
from webapp.partners import normalise_domain


@pytest.fixture
def partner(runner):
    result = runner.invoke(
        args=[
            "partners",
            "create",
            "alpine-school",
            "--name",
            "Alpine School",
            "--domain",
            "https://Alpine.example/",
            "--domain",
            "*.alpine.example",
            "--owner",
            "Owner@Alpine.example",
            "--max-upload-mb",
            "100",
            "--max-trim-s",
            "60",
        ]
    )
    assert result.exit_code == 0, result.output
    return "alpine-school"


@pytest.mark.parametrize(
    ("value", "host"),
    [
        ("Example.com", "example.com"),
        ("https://example.com/", "example.com"),
        ("*.example.com", "*.example.com"),
        ("http://127.0.0.1:8000", "127.0.0.1:8000"),
    ],
)
def test_domains_are_normalised(value, host):
    assert normalise_domain(value) == host


@pytest.mark.parametrize("value", ["not a domain", "example..com", "-bad.com", ""])
def test_bad_domains_are_refused(value):
    with pytest.raises(ValueError):
        normalise_domain(value)


def test_the_cli_creates_updates_and_lists_partners(app, runner, partner):
    listed = runner.invoke(args=["partners", "list"]).output
    assert "alpine-school\tAlpine School\t*.alpine.example,alpine.example\t100 MB\t60 s" in listed
    assert (
        runner.invoke(
            args=["partners", "update", partner, "--name", "Alpine Ski School", "--max-trim-s", "90"]
        ).exit_code
        == 0
    )
    with app.app_context():
        from webapp.db import db

        stored = db.session.scalar(db.select(Partner))
        assert (stored.display_name, stored.max_trim_s, stored.max_upload_bytes) == (
            "Alpine Ski School",
            90,
            100 * 1024 * 1024,
        )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["create", "Bad_Slug", "--name", "x", "--domain", "a.example", "--owner", "o@a.example"], "lowercase letters"),
        (["create", "ok", "--name", "x", "--domain", "not a domain", "--owner", "o@a.example"], "Not a domain"),
        (["update", "missing", "--name", "x"], "No partner missing"),
    ],
)
def test_the_cli_explains_mistakes(runner, args, message):
    result = runner.invoke(args=["partners", *args])
    assert result.exit_code != 0 and message in result.output


def test_a_duplicate_slug_is_refused(runner, partner):
    result = runner.invoke(
        args=["partners", "create", partner, "--name", "x", "--domain", "b.example", "--owner", "o@b.example"]
    )
    assert result.exit_code != 0 and "already exists" in result.output


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"Origin": "https://alpine.example"}, 200),
        ({"Origin": "https://www.alpine.example"}, 200),
        ({"Referer": "https://alpine.example/lessons/video"}, 200),
        ({"Origin": "https://evil.example"}, 403),
        ({"Origin": "https://alpine.example.evil.example"}, 403),
        ({}, 403),
    ],
)
def test_embed_config_answers_only_allowed_origins(client, partner, headers, status):
    response = client.get(f"/api/embed/{partner}/config", headers=headers)
    assert response.status_code == status
    if status == 200:
        assert response.json["partner"] == {"slug": partner, "name": "Alpine School"}
        assert response.json["max_trim_s"] == 60 and response.json["max_upload_bytes"] == 100 * 1024 * 1024
        origin = headers.get("Origin") or "https://alpine.example"
        assert response.headers["Access-Control-Allow-Origin"] == origin
    else:
        assert "Access-Control-Allow-Origin" not in response.headers


def test_an_unknown_partner_is_404(client):
    assert client.get("/api/embed/nobody/config", headers={"Origin": "https://alpine.example"}).status_code == 404


def test_a_reserved_slug_is_refused(runner):
    result = runner.invoke(
        args=["partners", "create", "results", "--name", "x", "--domain", "a.example", "--owner", "o@a.example"]
    )
    assert result.exit_code != 0 and "lowercase letters" in result.output


def test_owners_see_and_change_their_own_partners_only(client, smtp_sink, partner):
    from tests.webutil import sign_in, write_headers

    sign_in(client, smtp_sink, "someone@else.example")
    assert client.get("/api/partners").json == {"partners": []}
    assert (
        client.patch(f"/api/partners/{partner}", json={"name": "Mine"}, headers=write_headers(client)).status_code
        == 404
    )

    sign_in(client, smtp_sink, "owner@alpine.example")
    listed = client.get("/api/partners").json["partners"]
    assert listed == [
        {
            "slug": partner,
            "name": "Alpine School",
            "domains": ["*.alpine.example", "alpine.example"],
            "max_upload_mb": 100,
            "max_trim_s": 60.0,
            "submissions": {"total": 0, "complete": 0},
        }
    ]
    changed = client.patch(
        f"/api/partners/{partner}",
        headers=write_headers(client),
        json={"name": "Alpine Ski School", "domains": ["https://ski.example/"], "max_trim_s": 45},
    )
    assert changed.status_code == 200, changed.json
    assert changed.json["partner"] | {"submissions": None} == {
        "slug": partner,
        "name": "Alpine Ski School",
        "domains": ["ski.example"],
        "max_upload_mb": 100,
        "max_trim_s": 45.0,
        "submissions": None,
    }


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"name": ""}, "name"),
        ({"domains": []}, "at least one"),
        ({"domains": ["not a domain"]}, "Not a domain"),
        ({"max_upload_mb": 0}, "upload limit"),
        ({"max_upload_mb": 1.5}, "upload limit"),
        ({"max_trim_s": "60"}, "longest"),
    ],
)
def test_bad_partner_changes_are_refused(client, smtp_sink, partner, change, message):
    from tests.webutil import sign_in, write_headers

    sign_in(client, smtp_sink, "owner@alpine.example")
    response = client.patch(f"/api/partners/{partner}", json=change, headers=write_headers(client))
    assert response.status_code == 400 and message in response.json["error"]["message"]


def test_the_partner_page_needs_sign_in(client):
    response = client.get("/partners")
    assert response.status_code == 302 and "/signin" in response.headers["Location"]


def test_owners_find_their_partner_page_in_the_menu(client, smtp_sink, partner):
    from tests.webutil import sign_in

    sign_in(client, smtp_sink, "rider@example.com")
    assert "Partner sites" not in client.get("/").text
    sign_in(client, smtp_sink, "owner@alpine.example")
    assert "Partner sites" in client.get("/").text
    assert 'id="partner-list"' in client.get("/partners").text
