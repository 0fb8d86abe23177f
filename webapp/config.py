"""Web app settings: these defaults, then `POSER_*` environment variables, then test overrides.

`prepare` finishes the assembled settings. In production (neither `DEV_MODE` nor `TESTING`)
it refuses to start without strong secrets and a public URL; on a laptop (`poser dev`,
`POSER_DEV_MODE=true`) and in the tests it fills them in.
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path
from urllib.parse import urlsplit

DEFAULTS = {
    # Signs session cookies, results and visitor keys, sign-in code hashes and local storage
    # links. Production must set POSER_SECRET_KEY (at least 32 characters); development
    # keeps a random one in the instance folder.
    "SECRET_KEY": None,
    # `poser dev` and a developer's own runs: fill in missing secrets and the public URL.
    "DEV_MODE": False,
    # Where people reach the app, e.g. https://poser.example. Links in emails and local storage
    # links are built from it, never from the request's Host header.
    "PUBLIC_URL": None,
    # SQLite in the instance folder by default; production sets a postgresql+psycopg:// URL.
    "SQLALCHEMY_DATABASE_URI": None,
    # `console` prints mail to the log; `smtp` sends it through SMTP_HOST.
    "MAIL_BACKEND": "console",
    "MAIL_FROM": "Poser <no-reply@poser.local>",
    # Where contact-form messages go.
    "CONTACT_EMAIL": "operators@poser.local",
    "SMTP_HOST": "127.0.0.1",
    "SMTP_PORT": 25,
    "SMTP_USERNAME": None,
    "SMTP_PASSWORD": None,
    "SMTP_STARTTLS": False,
    # Sign-in codes: lifetime and wrong tries allowed per code (from the client that asked for
    # it, and from all others together), and how many may be requested per window: per
    # address and client, and per client.
    "LOGIN_CODE_TTL_S": 600,
    "LOGIN_CODE_MAX_TRIES": 5,
    "LOGIN_CODE_WINDOW_S": 600,
    "LOGIN_CODES_PER_EMAIL": 3,
    "LOGIN_CODES_PER_CLIENT": 10,
    # Codes checked per client and window, whatever the address.
    "LOGIN_VERIFY_PER_CLIENT": 30,
    # Bearer tokens for API clients: each works for API_TOKEN_TTL_S and can be renewed
    # (POST /api/auth/token) until API_TOKEN_MAX_AGE_S after sign-in.
    "API_TOKEN_TTL_S": 3600,
    "API_TOKEN_MAX_AGE_S": 30 * 24 * 3600,
    # Session cookie: never readable by scripts, only over HTTPS, not sent on cross-site posts.
    # It holds only a random session id; the session itself is a database row that sign-out
    # revokes.
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SECURE": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "PERMANENT_SESSION_LIFETIME": 14 * 24 * 3600,
    # Request bodies: JSON to the public API; the workers' reports (results summaries) may be
    # larger. Clips never pass through the app except to the local storage's own upload URL,
    # which accepts exactly the signed size.
    "MAX_CONTENT_LENGTH": 256 * 1024,
    "INTERNAL_MAX_CONTENT_LENGTH": 16 * 1024 * 1024,
    # Object storage: `local` (a folder, default instance/storage, with signed URLs) or `s3`
    # (any endpoint; credentials from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY).
    "STORAGE_BACKEND": "local",
    "STORAGE_ROOT": None,
    "S3_BUCKET": "poser",
    "S3_ENDPOINT_URL": None,
    "S3_REGION": "us-east-1",
    # Uploads: accepted types, size limit, longest trim window, and how long upload and
    # download links stay valid.
    "UPLOAD_TYPES": {"video/mp4": ".mp4", "video/quicktime": ".mov", "video/webm": ".webm"},
    "MAX_UPLOAD_BYTES": 500 * 1024 * 1024,
    "MAX_TRIM_S": 600,
    "UPLOAD_URL_TTL_S": 3600,
    # Each user's uploads per UPLOAD_QUOTA_WINDOW_S: clips, and bytes declared.
    "UPLOAD_QUOTA_WINDOW_S": 24 * 3600,
    "UPLOADS_PER_USER": 20,
    "UPLOAD_BYTES_PER_USER": 5 * 1024 * 1024 * 1024,
    # Analyses still awaiting their upload this long after the link expired are removed.
    "UPLOAD_GRACE_S": 3600,
    "DOWNLOAD_URL_TTL_S": 300,
    # Contact form: messages per hour from one client without an account, and per user.
    "CONTACT_WINDOW_S": 3600,
    "CONTACT_PER_CLIENT": 5,
    "CONTACT_PER_USER": 10,
    # Partner widget: how long the emailed "Confirm and start" link works, and how many clips
    # one email address from one client, or one client, may submit per window.
    "EMBED_CONFIRM_TTL_S": 24 * 3600,
    "EMBED_RATE_WINDOW_S": 3600,
    "EMBED_SUBMITS_PER_EMAIL": 5,
    "EMBED_SUBMITS_PER_CLIENT": 20,
    # Shared with the workers; their flows report through /api/internal with it. Required in
    # production; unset in development, the internal endpoints are off.
    "INTERNAL_SECRET": None,
    # The Prefect deployment that analyses an upload.
    "ANALYSIS_DEPLOYMENT": "analyze-video/analyze-video",
    # Number of reverse proxies in front of the app whose X-Forwarded-For is trusted.
    "TRUSTED_PROXIES": 0,
}

MIN_SECRET_LENGTH = 32
# Secrets that were ever written down as examples or defaults.
_KNOWN_SECRETS = {"dev-only-insecure-secret", "change-me", "changeme", "secret", "..."}
_DEV_PUBLIC_URL = "http://127.0.0.1:5000"
_TEST_PUBLIC_URL = "http://localhost"
# gunicorn stops (instead of restarting the worker again and again) when a worker exits with
# this status: "the application could not be loaded".
EXIT_STATUS = 4


class ConfigurationError(SystemExit):
    """The settings are unsafe or incomplete for production; the process exits with `message`.

    A SystemExit, so that `flask` commands and gunicorn workers end with the message instead
    of a traceback; its status makes gunicorn's master stop rather than restart the worker.
    """

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        self.message = (
            "Poser's web app will not start in production with these settings:\n"
            + "".join(f"  - {problem}\n" for problem in problems)
            + "Generate a secret with: python3 -c 'import secrets; print(secrets.token_urlsafe(32))'\n"
            "(For development on this machine run `poser dev`, or set POSER_DEV_MODE=true.)"
        )
        super().__init__(EXIT_STATUS)

    def __str__(self) -> str:
        return self.message


def prepare(config: dict, instance_path: str) -> None:
    """Finish the assembled settings in place; raise ConfigurationError when production
    settings are unsafe.

    Development and tests get what is missing: a secret key kept in the instance folder (the
    same for every process of the app), and a loopback public URL.
    """
    relaxed = bool(config.get("DEV_MODE") or config.get("TESTING"))
    if relaxed:
        if not config.get("SECRET_KEY"):
            config["SECRET_KEY"] = _instance_secret(Path(instance_path))
        if not config.get("PUBLIC_URL"):
            config["PUBLIC_URL"] = _TEST_PUBLIC_URL if config.get("TESTING") else _DEV_PUBLIC_URL
    else:
        problems = production_problems(config)
        if problems:
            error = ConfigurationError(problems)
            print(error.message, file=sys.stderr, flush=True)
            raise error
    config["PUBLIC_URL"] = str(config["PUBLIC_URL"]).rstrip("/")
    problem = public_url_problem(config["PUBLIC_URL"]) if relaxed else None
    if problem:
        raise ConfigurationError([problem])


def production_problems(config: dict) -> list[str]:
    """What makes `config` unsafe to serve people with; empty when nothing does."""
    problems = []
    for name, purpose in (
        ("SECRET_KEY", "signs sessions, links and tokens"),
        ("INTERNAL_SECRET", "authenticates the workers' reports"),
    ):
        value = config.get(name)
        if not value:
            problems.append(f"POSER_{name} is not set; it {purpose}.")
        elif not isinstance(value, str) or len(value) < MIN_SECRET_LENGTH or value in _KNOWN_SECRETS:
            problems.append(f"POSER_{name} must be a random string of at least {MIN_SECRET_LENGTH} characters.")
    if config.get("SECRET_KEY") and config.get("SECRET_KEY") == config.get("INTERNAL_SECRET"):
        problems.append("POSER_SECRET_KEY and POSER_INTERNAL_SECRET must differ.")
    if not config.get("PUBLIC_URL"):
        problems.append(
            "POSER_PUBLIC_URL is not set: the address people reach the app at, e.g. "
            "https://poser.example (emailed links are built from it)."
        )
    elif problem := public_url_problem(str(config["PUBLIC_URL"]).rstrip("/")):
        problems.append(problem)
    return problems


def public_url_problem(url: str) -> str | None:
    """Why `url` cannot be the app's public base URL, or None."""
    parts = urlsplit(url)
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.query
        or parts.fragment
        or parts.username
        or parts.password
    ):
        return f"POSER_PUBLIC_URL must be an http(s) address such as https://poser.example, not {url!r}."
    return None


def _instance_secret(instance: Path) -> str:
    """A random secret kept in the instance folder, readable only by its owner."""
    path = instance / "dev-secret-key"
    if not path.is_file():
        instance.mkdir(parents=True, exist_ok=True)
        draft = instance / f".dev-secret-key.{os.getpid()}"
        descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_urlsafe(32))
        try:
            os.link(draft, path)  # whole or not at all; the first process of the app wins
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return path.read_text().strip()
