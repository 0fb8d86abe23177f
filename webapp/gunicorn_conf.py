"""gunicorn settings for the web app: `gunicorn -c python:webapp.gunicorn_conf 'webapp:create_app()'`.

- No `Server: gunicorn` header: responses do not name the server software.
- The access log keeps no secrets: query strings (download and confirmation tokens) are left
  out, and results links' tokens (`/results/<token>`) are masked, in the request line and the
  referrer alike. Upload tokens travel in a header and are never logged.
- Request lines and headers are kept small; bodies are limited by the app itself
  (MAX_CONTENT_LENGTH).

Options given on the command line or in GUNICORN_CMD_ARGS (bind, workers, threads) still apply.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from gunicorn.glogging import Logger
from gunicorn.http import wsgi

_RESULTS_TOKEN = re.compile(r"(/results/)[^/?#\s]+")

limit_request_line = 4094
limit_request_fields = 64
limit_request_field_size = 8190
access_log_format = '%(h)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(L)ss "%(f)s" "%(a)s"'


def redact(target: str) -> str:
    """A path or URL with its query and fragment dropped and results tokens masked."""
    if not target or target == "-":
        return target
    parts = urlsplit(target)
    origin = f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""
    return origin + _RESULTS_TOKEN.sub(r"\1[token]", parts.path)


class RedactingLogger(Logger):
    """gunicorn's logger, with the access log's request line and referrer redacted."""

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        atoms["U"] = redact(atoms.get("U") or "")
        atoms["q"] = ""
        atoms["r"] = f"{atoms.get('m', '-')} {atoms['U']} {atoms.get('H', '-')}"
        atoms["f"] = redact(atoms.get("f") or "-")
        return atoms


logger_class = RedactingLogger


def _without_server_header(default_headers):
    def headers(self):
        return [line for line in default_headers(self) if not line.lower().startswith("server:")]

    return headers


if not getattr(wsgi.Response.default_headers, "poser_patched", False):
    wsgi.Response.default_headers = _without_server_header(wsgi.Response.default_headers)
    wsgi.Response.default_headers.poser_patched = True
