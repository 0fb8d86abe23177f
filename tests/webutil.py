"""Helpers for the web app's tests."""

from __future__ import annotations

import asyncio
import re

EMAIL = "skier@example.com"


def create_partner(
    app,
    slug: str = "alpine-school",
    domain: str = "alpine.example",
    *options: str,
    name: str = "Alpine School",
    owner: str = "owner@alpine.example",
) -> None:
    """Register a partner with the `partners create` command, as an operator does; `options`
    are the command's further flags (limits)."""
    args = ["partners", "create", slug, "--name", name, "--domain", domain, "--owner", owner, *options]
    result = app.test_cli_runner().invoke(args=args)
    assert result.exit_code == 0, result.output


def https_client(app):
    """A test client speaking HTTPS, as the session cookie is Secure."""
    client = app.test_client()
    client.environ_base["wsgi.url_scheme"] = "https"
    return client


def request_code(client, smtp_sink, email=EMAIL, **options):
    """Ask for a sign-in code; returns the response and the code read from the SMTP sink."""
    before = len(smtp_sink.messages)
    response = client.post("/api/auth/request-code", json={"email": email}, **options)
    if response.status_code != 202:
        return response, None
    return response, re.search(r"\b(\d{6})\b", smtp_sink.messages[before]["Subject"]).group(1)


def sign_in(client, smtp_sink, email=EMAIL) -> dict:
    """Sign `client` in; returns the verify-code answer (user, token, csrf_token)."""
    _, code = request_code(client, smtp_sink, email)
    response = client.post("/api/auth/verify-code", json={"email": email, "code": code})
    assert response.status_code == 200, response.json
    return response.json


def write_headers(client) -> dict:
    """The CSRF header a signed-in cookie client sends with writes."""
    return {"X-CSRF-Token": client.get("/api/auth/me").json["csrf_token"]}


def read_flow_run(flow_run_id: str):
    """The flow run as the Prefect API has it."""
    from prefect import get_client

    async def read():
        async with get_client() as prefect:
            return await prefect.read_flow_run(flow_run_id)

    return asyncio.run(read())


def mail_text(message) -> str:
    """The decoded text of a message the SMTP sink received."""
    return message.get_payload(decode=True).decode().replace("\r\n", "\n")


def sign_in_with_browser(page, base: str, smtp_sink, email: str, then: str = "/") -> None:
    """Sign in on the sign-in page with the code read from the SMTP sink; waits for `then`."""
    page.goto(f"{base}/signin?next={then}")
    page.fill("#email", email)
    sent = len(smtp_sink.messages)
    page.click("text=Email me a code")
    page.wait_for_selector("#code-form:not([hidden])")
    code = re.search(r"\b(\d{6})\b", smtp_sink.messages[sent]["Subject"])
    assert code is not None
    page.fill("#code", code.group(1))
    page.click("#code-form button")
    page.wait_for_url(f"{base}{then}")
