"""Malformed input, table-driven, against every route of the app on SQLite and PostgreSQL.

Every rule in the app's URL map is tried, with the credentials it needs (a signed-in cookie
with its CSRF header, the partner's origin and a visitor key, the internal secret): each path
id replaced by NUL, unpaired surrogates, huge numbers, traversals and the like; each JSON body
replaced by deep nesting, wrong JSON types, invalid UTF-8, NaN and huge numbers, NUL, CR/LF and
oversized bodies; and each field of a valid body replaced by every bad value in turn. Not one
answer may be a 500, and every API refusal must be JSON with a message.
"""

from __future__ import annotations

import json

import pytest

from tests.test_web_embed import ORIGIN, SLUG, put_clip, submit
from tests.webutil import create_partner, sign_in, write_headers

SECRET = "malformed-test-secret"

# Valid values for the path parameters; {analysis} and {upload_key} are filled in per test.
PATH_VALUES = {
    "analysis_id": "{analysis}",
    "slug": SLUG,
    "token": "no-such-token",
    "kind": "video",
    "key": "{upload_key}",
    "name": "widget.js",
    "filename": "app.css",
    "other_id": "{analysis}",
}

BAD_PATH_VALUES = [
    "%00",
    "%00abc",
    "abc%00",
    "9223372036854775807",
    "-1",
    "%ED%A0%80",
    "%C0%AE%C0%AE%2F",
    "..%2F..%2Fetc%2Fpasswd",
    "%0D%0ASet-Cookie:%20x=1",
    "x" * 3000,
    "%F0%9F%92%A9",
    "a%20b",
    "%25",
    "%FF%FE",
    "null",
    "%7B%7D",
    "00000000-0000-0000-0000-000000000000",
    "{analysis}x",
    "{analysis}%00",
]


def deep(depth: int, opener: str = "[", closer: str = "]", inner: str = "1") -> bytes:
    return (opener * depth + inner + closer * depth).encode()


BAD_BODIES = [
    ("deep arrays", deep(100_000), "application/json"),
    ("deep objects", deep(30_000, '{"a":', "}"), "application/json"),
    ("just deeper than allowed", deep(40), "application/json"),
    ("array", b"[1, 2, 3]", "application/json"),
    ("string", b'"hello"', "application/json"),
    ("number", b"42", "application/json"),
    ("null", b"null", "application/json"),
    ("true", b"true", "application/json"),
    ("not JSON", b"{not json", "application/json"),
    ("truncated", b'{"email": "a@b.co"', "application/json"),
    ("NaN", b'{"size": NaN, "progress": NaN}', "application/json"),
    ("Infinity", b'{"size": Infinity, "trim_end_s": -Infinity}', "application/json"),
    ("1e400", b'{"size": 1e400, "progress": 1e400, "trim_start_s": 1e400}', "application/json"),
    ("5000 digits", b'{"size": ' + b"9" * 5000 + b"}", "application/json"),
    ("invalid UTF-8", b'{"email": "\xff\xfe@example.com"}', "application/json"),
    ("unpaired surrogate key", b'{"\\ud800": 1}', "application/json"),
    ("NUL key", b'{"a\\u0000": 1}', "application/json"),
    ("form", b"email=a%40b.co&code=123456", "application/x-www-form-urlencoded"),
    ("text", b'{"email": "a@b.co"}', "text/plain"),
    ("300 KB", b'{"email": "' + b"a" * (300 * 1024) + b'"}', "application/json"),
    ("BOM", b'\xef\xbb\xbf{"email": "a@b.co"}', "application/json"),
]

BAD_VALUES: list[object] = [
    None,
    True,
    False,
    0,
    -1,
    1.5,
    1e308,
    -1e308,
    10**30,
    2**63,
    -(2**63) - 1,
    "",
    " ",
    "x" * 100_000,
    "\u0000",
    "a\u0000b",
    "\ud800",
    "\udfff",
    "a\r\nb",
    "\t",
    "\u202e",
    "../../etc/passwd",
    "<script>alert(1)</script>",
    "%00",
    [],
    {},
    [[[]]],
    {"a": {"b": {"c": 1}}},
    [None],
    ["\u0000"],
    {"\ud800": 1},
]

# A valid body for each route that takes one (by endpoint); each field is then replaced in turn.
BODIES = {
    "auth.request_code": {"email": "rider@example.com"},
    "auth.verify_code": {"email": "rider@example.com", "code": "123456"},
    "contact.contact": {"subject": "Hi", "message": "Hello", "email": "rider@example.com"},
    "analyses.create_upload": {
        "filename": "run.mp4",
        "content_type": "video/mp4",
        "size": 100,
        "trim_start_s": 0,
        "trim_end_s": 5,
    },
    "embed.submit": {
        "email": "rider@example.com",
        "filename": "run.mp4",
        "content_type": "video/mp4",
        "size": 100,
        "trim_start_s": 0,
        "trim_end_s": 5,
        "skier_hint": {"time_s": 1, "point": [1, 2]},
    },
    "embed.upload_complete": {"analysis_id": "{visitor_analysis}"},
    "partners.update_own": {"name": "School", "domains": ["alpine.example"], "max_upload_mb": 10, "max_trim_s": 30},
    "internal.put_progress": {"step": "pose", "progress": 10},
    "internal.put_status": {"status": "failed", "error": "Broken.", "results": {"warnings": []}, "retryable": True},
    "internal.put_edge_similarity": {"overall": 50, "left": 40, "right": 60},
    "internal.post_turns": {"turns": [{"index": 1, "partial": False}]},
    "internal.post_artifact": {
        "analysis_id": "{analysis}",
        "kind": "video",
        "key": "analyses/{analysis}/outputs/o.mp4",
        "content_type": "video/mp4",
        "sha256": "0" * 64,
        "size": 10,
    },
}
# Query arguments some routes read.
QUERIES = {
    "analyses.list_analyses": ["page", "per_page"],
    "embed.confirm": ["token"],
}
BAD_QUERY_VALUES = [
    "0",
    "-1",
    "9223372036854775807",
    "9" * 5000,
    "1.5",
    "abc",
    "%00",
    "%ED%A0%80",
    "",
    "1%0D%0A",
    "%EF%BC%91",
]  # a full-width digit
# Pages under /api/ that people open from an email: they answer with a page, not JSON.
HTML_API_PAGES = {"embed.confirm"}
# Routes that take no input a client controls, or that only report on the services around.
UNTESTED = {"health.readyz": "pings Prefect; it reads no input"}


def routes():
    from webapp import create_app

    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": "sqlite://"})
    return sorted(
        (rule.endpoint, rule.rule, method)
        for rule in app.url_map.iter_rules()
        if rule.endpoint not in UNTESTED
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"})
    )


@pytest.fixture
def setting(app, client, smtp_sink):
    """A signed-in partner owner with an analysis of their own, a partner, and a visitor's
    submission with its key; limits raised so that every case reaches the checks."""
    app.config.update(
        INTERNAL_SECRET=SECRET,
        LOGIN_CODES_PER_CLIENT=10**6,
        LOGIN_CODES_PER_EMAIL=10**6,
        LOGIN_VERIFY_PER_CLIENT=10**6,
        CONTACT_PER_CLIENT=10**6,
        CONTACT_PER_USER=10**6,
        EMBED_SUBMITS_PER_CLIENT=10**6,
        EMBED_SUBMITS_PER_EMAIL=10**6,
        UPLOADS_PER_USER=10**6,
        UPLOAD_BYTES_PER_USER=10**15,
    )
    create_partner(app, SLUG)
    sign_in(client, smtp_sink, "owner@alpine.example")
    csrf = write_headers(client)
    created = client.post(
        "/api/analyses/create-upload",
        headers=csrf,
        json={"filename": "run.mp4", "content_type": "video/mp4", "size": 100},
    ).json
    visitor = submit(client).json
    put_clip(client, visitor["upload"])
    return {
        "headers": csrf
        | {"Origin": ORIGIN, "X-Poser-Visitor": visitor["visitor_key"], "X-Poser-Internal-Secret": SECRET},
        "{analysis}": created["analysis"]["id"],
        "{visitor_analysis}": visitor["analysis_id"],
        "{upload_key}": f"uploads/{created['analysis']['id']}/input.mp4",
    }


def fill(template, setting: dict):
    """`template` with the setting's ids put in its strings."""
    text = json.dumps(template)
    for placeholder in ("{analysis}", "{visitor_analysis}", "{upload_key}"):
        text = text.replace(placeholder, setting[placeholder])
    return json.loads(text)


def cases(endpoint: str, rule: str, method: str, setting: dict):
    """(label, path, body bytes, content type) for every malformed variant of one route."""
    from werkzeug.routing import Rule

    params = [argument for argument in Rule(rule).arguments] if "<" in rule else []
    base = rule
    for param in params:
        base = _substitute(base, param, fill(PATH_VALUES[param], setting))
    body = fill(BODIES.get(endpoint, {}), setting)
    raw = json.dumps(body).encode()

    yield "valid", base, raw if method != "GET" else None, "application/json"
    for param in params:
        for value in BAD_PATH_VALUES:
            path = _with(rule, params, param, fill(value, setting), setting)
            yield f"path {param}={value[:20]}", path, raw if method != "GET" else None, "application/json"
    for name in QUERIES.get(endpoint, []):
        for value in BAD_QUERY_VALUES:
            yield f"query {name}={value[:20]}", f"{base}?{name}={value}", None, "application/json"
    if method == "GET":
        return
    for label, data, content_type in BAD_BODIES:
        yield f"body {label}", base, data, content_type
    for field in body:
        for bad in BAD_VALUES:
            mutated = json.dumps(body | {field: bad}).encode()
            yield f"field {field}={str(bad)[:20]!r}", base, mutated, "application/json"


def _with(rule: str, params: list[str], bad: str, value: str, setting: dict) -> str:
    path = rule
    for param in params:
        path = _substitute(path, param, value if param == bad else fill(PATH_VALUES[param], setting))
    return path


def _substitute(rule: str, param: str, value: str) -> str:
    import re

    return re.sub(r"<(?:[^<>:]+:)?" + param + r"(?:\([^)]*\))?>", lambda _: value, rule, count=1)


@pytest.mark.parametrize(("endpoint", "rule", "method"), routes(), ids=lambda value: str(value))
def test_no_malformed_input_gets_a_500(app, client, setting, endpoint, rule, method):
    failures, tried = [], 0
    for label, path, data, content_type in cases(endpoint, rule, method, setting):
        response = client.open(
            path,
            method=method,
            data=data,
            content_type=content_type if data is not None else None,
            headers=setting["headers"],
        )
        tried += 1
        body = response.get_data(as_text=True)
        if (response.status_code >= 500 and response.status_code != 503) or "Traceback" in body:
            failures.append(f"{label}: {response.status_code} {body[:200]}")
        elif response.status_code >= 400 and path.startswith("/api/") and endpoint not in HTML_API_PAGES:
            message = (response.json or {}).get("error", {}).get("message") if response.is_json else None
            if not message:
                failures.append(f"{label}: {response.status_code} without a JSON message")
    assert tried > 0
    assert failures == [], f"{len(failures)} of {tried} cases failed:\n" + "\n".join(failures[:30])


# Writes that read no JSON body: the id in their path (or their session) is all they take.
BODYLESS_WRITES = {
    "auth.logout",
    "auth.logout_everywhere",
    "auth.renew_token",
    "account.delete_account",
    "analyses.confirm_upload",
    "analyses.retry_analysis",
    "analyses.delete_analysis",
    "embed.retry",
    "maintenance.run_maintenance",
    "storage.put_object",
}


def test_every_write_route_is_in_the_tables():
    """A new route that takes a body must get a valid one here, so its fields are tried too."""
    writes = {endpoint for endpoint, _, method in routes() if method in ("POST", "PUT", "PATCH", "DELETE")}
    assert writes == set(BODIES) | BODYLESS_WRITES
    assert set(QUERIES) <= {endpoint for endpoint, _, _ in routes()}
