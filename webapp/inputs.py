"""Reading what a request sends: its JSON body, text fields, email addresses, ids and the
client's address. Each check ends a bad request with a 4xx and a message that says what to fix,
so nothing malformed reaches the database, the mail server or a template.
"""

from __future__ import annotations

import ipaddress
import json
import re
import unicodedata
from typing import Any

from email_validator import EmailNotValidError, validate_email
from flask import abort, request
from werkzeug.exceptions import RequestEntityTooLarge

# Deeper JSON than this is refused before anything walks it recursively.
MAX_JSON_DEPTH = 32
MAX_EMAIL_LENGTH = 254
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
# Characters that reorder or hide text: they make `run.mp4` out of `run<RLO>4pm.exe`.
_BIDI_CONTROLS = set("\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


class _Invalid(ValueError):
    """JSON that parsed but that the API never accepts; the message says why."""


def json_object() -> dict[str, Any]:
    """The request's body as a JSON object.

    An empty body reads as `{}`, so each field's own check says what is missing. 415 for a
    body that is not sent as JSON; 400 for one that is not a JSON object, nests deeper than
    MAX_JSON_DEPTH, or holds NUL characters, unpaired surrogates, NaN or Infinity; 413 (from
    the app's MAX_CONTENT_LENGTH) for one too large.
    """
    data = request.get_data(cache=True)
    limit = request.max_content_length
    if request.content_length is None and limit is not None and len(data) >= limit:
        # A chunked body stops being read at the limit; what came is only its start.
        raise RequestEntityTooLarge()
    if not data.strip():
        return {}
    if not request.is_json:
        abort(415, "Send the request body as JSON, with Content-Type: application/json.")
    try:
        payload = parse_json(data)
    except _Invalid as exc:
        abort(400, str(exc))
    except (ValueError, RecursionError):
        abort(400, "The request body is not valid JSON.")
    if not isinstance(payload, dict):
        abort(400, 'Send a JSON object, such as {"email": "..."}, as the request body.')
    return payload


def parse_json(data: bytes | str) -> Any:
    """Parse strict JSON (no NaN or Infinity) and check its depth and strings.

    Raises ValueError (with a message for people when it is `_Invalid`).
    """
    payload = json.loads(data, parse_constant=_refuse_constant)
    _check_tree(payload)
    return payload


def _refuse_constant(name: str):
    raise _Invalid(f"{name} is not a number JSON allows.")


def _check_tree(payload: Any) -> None:
    """Refuse deep nesting, NUL characters and unpaired surrogates anywhere, without recursion."""
    pending = [(payload, 1)]
    while pending:
        value, depth = pending.pop()
        if depth > MAX_JSON_DEPTH:
            raise _Invalid(f"The JSON nests deeper than {MAX_JSON_DEPTH} levels.")
        if isinstance(value, str):
            _check_string(value)
        elif isinstance(value, dict):
            for key, item in value.items():
                _check_string(key)
                pending.append((item, depth + 1))
        elif isinstance(value, list):
            pending.extend((item, depth + 1) for item in value)


def _check_string(value: str) -> None:
    if "\x00" in value:
        raise _Invalid("Text in the request must not contain NUL characters.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise _Invalid("Text in the request must be valid Unicode (it holds an unpaired surrogate).") from None


def text(
    payload: dict, name: str, label: str, max_length: int, *, multiline: bool = False, required: bool = True
) -> str | None:
    """The field `name` of `payload` as trimmed text of at most `max_length` characters.

    400, naming `label`, when it is missing (and `required`), not a string, too long, or holds
    control characters (line breaks are allowed only when `multiline`) or, on one-line fields,
    characters that reorder text.
    """
    value = payload.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            abort(400, f"Give {label} (at most {max_length} characters).")
        return None
    if not isinstance(value, str):
        abort(400, f"{label[0].upper()}{label[1:]} must be text.")
    value = value.strip()
    if len(value) > max_length:
        abort(400, f"Give {label} of at most {max_length} characters.")
    allowed = {"\n", "\r", "\t"} if multiline else set()
    for character in value:
        if character in allowed:
            continue
        if unicodedata.category(character) in ("Cc", "Cs") or (not multiline and character in _BIDI_CONTROLS):
            kind = "control characters" if multiline else "line breaks or other control characters"
            abort(400, f"{label[0].upper()}{label[1:]} must not contain {kind}.")
    return value


def email_address(value: Any) -> str:
    """A deliverable-looking email address, normalised (lowercase, IDN domain in ASCII).

    Validated by `email-validator` without DNS look-ups: one address, no comments, quoted
    parts, IP literals or reserved domains. 400 with the reason otherwise.
    """
    if not isinstance(value, str) or not value.strip():
        abort(400, "Enter a valid email address.")
    candidate = value.strip()
    if len(candidate) > MAX_EMAIL_LENGTH:
        abort(400, f"Enter a valid email address (at most {MAX_EMAIL_LENGTH} characters).")
    try:
        checked = validate_email(candidate, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        abort(400, f"Enter a valid email address. {exc}")
    return (checked.ascii_email or checked.normalized).lower()


def is_uuid(value: Any) -> bool:
    """Whether `value` is an id as this app makes them (a lowercase UUID)."""
    return isinstance(value, str) and _UUID.match(value) is not None


def client_key() -> str:
    """Who is asking, for rate limits: the client's IPv4 address, or its IPv6 /64 network
    (one subscriber's whole allocation)."""
    try:
        address = ipaddress.ip_address(request.remote_addr or "")
    except ValueError:
        return "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def positive_int(name: str, default: int, maximum: int) -> int:
    """The query argument `name` as a whole number from 1 to `maximum`; 400 otherwise."""
    value = request.args.get(name)
    if value is None:
        return default
    if not value.isascii() or not value.isdigit() or len(value) > len(str(maximum)) or not 1 <= int(value) <= maximum:
        abort(400, f"{name} must be a whole number from 1 to {maximum}.")
    return int(value)
