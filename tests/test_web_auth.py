"""Sign-in by emailed code, against SQLite and PostgreSQL, with mail through a real SMTP server."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.webutil import EMAIL, https_client, request_code, sign_in, write_headers
from webapp.db import db
from webapp.models import VerificationCode, utcnow

INVALID = "This code is not valid. Check the newest email from Poser, or request a new code."


def test_a_code_by_email_signs_in_with_a_cookie_and_a_token(client, smtp_sink):
    response, code = request_code(client, smtp_sink, "Skier@Example.com ")
    assert response.status_code == 202 and response.json == {"status": "sent"}
    assert smtp_sink.messages[-1]["To"] == EMAIL
    assert code in smtp_sink.messages[-1].get_payload()

    response = client.post("/api/auth/verify-code", json={"email": EMAIL, "code": code})
    assert response.status_code == 200
    assert response.json["user"]["email"] == EMAIL
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "Secure" in cookie and "SameSite=Lax" in cookie
    assert client.get("/api/auth/me").json["user"]["email"] == EMAIL

    anonymous = https_client(client.application)
    assert anonymous.get("/api/auth/me").status_code == 401
    bearer = {"Authorization": f"Bearer {response.json['token']}"}
    assert anonymous.get("/api/auth/me", headers=bearer).json["user"]["email"] == EMAIL


def test_the_code_is_stored_hashed(app, client, smtp_sink):
    _, code = request_code(client, smtp_sink)
    with app.app_context():
        stored = db.session.scalars(db.select(VerificationCode)).all()
    assert len(stored) == 1 and code not in stored[0].code_hash


def test_a_code_works_once(client, smtp_sink):
    _, code = request_code(client, smtp_sink)
    assert client.post("/api/auth/verify-code", json={"email": EMAIL, "code": code}).status_code == 200
    again = client.post("/api/auth/verify-code", json={"email": EMAIL, "code": code})
    assert again.status_code == 400 and again.json["error"]["message"] == INVALID


def test_an_expired_code_is_refused(app, client, smtp_sink):
    _, code = request_code(client, smtp_sink)
    with app.app_context():
        db.session.execute(db.update(VerificationCode).values(expires_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    response = client.post("/api/auth/verify-code", json={"email": EMAIL, "code": code})
    assert response.status_code == 400 and response.json["error"]["message"] == INVALID


def test_a_newer_code_replaces_the_older_one(client, smtp_sink):
    _, first = request_code(client, smtp_sink)
    _, second = request_code(client, smtp_sink)
    if first != second:
        assert client.post("/api/auth/verify-code", json={"email": EMAIL, "code": first}).status_code == 400
    assert client.post("/api/auth/verify-code", json={"email": EMAIL, "code": second}).status_code == 200


def test_five_wrong_codes_lock_the_code(client, smtp_sink):
    _, code = request_code(client, smtp_sink)
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    messages = [client.post("/api/auth/verify-code", json={"email": EMAIL, "code": wrong}).json for _ in range(5)]
    assert {message["error"]["message"] for message in messages} == {INVALID}
    locked = client.post("/api/auth/verify-code", json={"email": EMAIL, "code": code})
    assert locked.status_code == 400 and locked.json["error"]["message"] == INVALID


def test_codes_are_rate_limited_per_email_and_per_client(client, smtp_sink):
    for _ in range(3):
        assert request_code(client, smtp_sink)[0].status_code == 202
    limited, _ = request_code(client, smtp_sink)
    assert limited.status_code == 429 and 590 <= int(limited.headers["Retry-After"]) <= 600

    statuses = [request_code(client, smtp_sink, f"rider{i}@example.com")[0].status_code for i in range(8)]
    assert statuses == [202] * 7 + [429]  # 3 + 7 codes from this client, then the client limit
    other_client = {"environ_base": {"REMOTE_ADDR": "10.9.9.9"}}
    assert request_code(client, smtp_sink, "rider9@example.com", **other_client)[0].status_code == 202


def test_unknown_and_known_addresses_get_the_same_answer(client, smtp_sink):
    sign_in(client, smtp_sink)
    known, _ = request_code(client, smtp_sink, EMAIL)
    unknown, _ = request_code(client, smtp_sink, "nobody@example.com")
    assert (known.status_code, known.json) == (unknown.status_code, unknown.json)


@pytest.mark.parametrize(
    "payload", [{}, {"email": "not-an-email"}, {"email": "a@b"}, {"email": "x" * 250 + "@a.com"}, None]
)
def test_bad_addresses_are_refused(client, payload):
    response = client.post("/api/auth/request-code", json=payload)
    assert response.status_code == 400
    assert response.json["error"]["message"].startswith("Enter a valid email address")


def test_logout_ends_the_session(client, smtp_sink):
    sign_in(client, smtp_sink)
    assert client.post("/api/auth/logout", headers=write_headers(client)).status_code == 200
    assert client.get("/api/auth/me").status_code == 401


def test_unexpected_errors_are_reported_without_details(app, client):
    @app.get("/api/boom")
    @app.get("/boom")
    def boom():
        raise RuntimeError("secret internals")

    for path in ("/api/boom", "/boom"):
        response = client.get(path)
        assert response.status_code == 500
        assert "secret internals" not in response.get_data(as_text=True)
        assert "Something went wrong on our side" in response.get_data(as_text=True)
    assert client.get("/api/boom").json["error"]["code"] == 500
    assert client.get("/boom").content_type.startswith("text/html")


def test_contact_mails_the_operators_with_the_sender_to_reply_to(client, smtp_sink):
    response = client.post(
        "/api/contact", json={"subject": "Turn scores", "message": "How is it computed?", "email": "a@b.co"}
    )
    assert response.status_code == 202
    mail = smtp_sink.messages[-1]
    assert mail["To"] == "operators@poser.local" and mail["Reply-To"] == "a@b.co"
    assert mail["Subject"] == "[Poser contact] Turn scores" and "How is it computed?" in mail.get_payload()


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"subject": "", "message": "hi", "email": "a@b.co"}, "subject"),
        ({"subject": "x" * 201, "message": "hi", "email": "a@b.co"}, "subject"),
        ({"subject": "hi", "message": "x" * 5001, "email": "a@b.co"}, "message"),
        ({"subject": "hi", "message": "hello", "email": "nope"}, "valid email"),
    ],
)
def test_contact_checks_its_fields(client, payload, message):
    response = client.post("/api/contact", json=payload)
    assert response.status_code == 400 and message in response.json["error"]["message"]
