"""Partners' sites: their domains as host patterns, and whether a request's origin is one of
them (the widget's API and the local storage's CORS answer only those)."""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import urlsplit

from webapp.models import Partner

SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_HOST = re.compile(r"^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(:\d+)?$")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def normalise_domain(value: str) -> str:
    """`Example.com`, `https://example.com/` or `*.example.com` as a lowercase host pattern."""
    host = value.strip().lower()
    if "://" in host:
        host = urlsplit(host).netloc
    host = host.rstrip("/")
    if not _HOST.match(host):
        raise ValueError(f"Not a domain: {value!r}")
    return host


def parse_origin(value: str, path_allowed: bool = False) -> str | None:
    """`value` (an Origin header, or with `path_allowed` a Referer) as a canonical
    `scheme://host[:port]`, the port only when it is not the scheme's default; None for
    anything but a plain http(s) origin: other schemes, user names (`https://evil@host`),
    `null`, bad ports or hosts, and (for an Origin) a path, query or fragment."""
    if not value or len(value) > 2048 or not value.isascii() or any(unicodedata.category(c) == "Cc" for c in value):
        return None
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in _DEFAULT_PORTS or "@" in parts.netloc or not parts.hostname:
        return None
    if not path_allowed and (parts.path or parts.query or parts.fragment or value.endswith(("?", "#"))):
        return None
    host = parts.hostname.lower()
    if not _HOST.match(host) or host.startswith("*"):
        return None
    if port is not None and port != _DEFAULT_PORTS[parts.scheme]:
        host = f"{host}:{port}"
    return f"{parts.scheme}://{host}"


def origin_allowed(partner: Partner, origin: str) -> bool:
    """Whether `origin` is an http(s) origin of one of the partner's allowed domains.

    An entry `*.example.com` allows every subdomain of example.com, not example.com itself.
    """
    canonical = parse_origin(origin)
    if canonical is None:
        return False
    host = canonical.split("://", 1)[1]
    for allowed in partner.allowed_domains:
        if allowed.startswith("*.") and host.endswith(allowed[1:]) and host != allowed[2:]:
            return True
        if host == allowed:
            return True
    return False
