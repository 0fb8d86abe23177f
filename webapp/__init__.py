"""Poser's web app: an app factory in the style of Flask's tutorial."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

from flask import Flask, jsonify, render_template, request
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from werkzeug.middleware.proxy_fix import ProxyFix

from webapp import config as settings
from webapp.db import db, migrate

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
log = logging.getLogger(__name__)


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the app: defaults, then `POSER_*` environment variables, then `test_config`.

    Raises `config.ConfigurationError` (a SystemExit, with a message saying what to set) when
    production settings are missing or unsafe; see `config.prepare`.
    """
    app = Flask(__name__, instance_relative_config=True)
    app.config.from_mapping(settings.DEFAULTS)
    app.config.from_prefixed_env("POSER")
    if test_config:
        app.config.from_mapping(test_config)
    settings.prepare(app.config, app.instance_path)
    if app.config["DEV_MODE"] and not app.config.get("TESTING"):
        log.warning("Development mode: secrets and the public URL are filled in; never use it in production.")
    if not app.config["SQLALCHEMY_DATABASE_URI"]:
        Path(app.instance_path).mkdir(parents=True, exist_ok=True)
        app.config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{Path(app.instance_path) / 'poser.sqlite3'}"
    if app.config["TRUSTED_PROXIES"]:
        proxies = int(app.config["TRUSTED_PROXIES"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies)  # type: ignore[method-assign]
    _log_security_events()

    db.init_app(app)
    migrate.init_app(app, db, directory=str(MIGRATIONS))

    # `limits` and `sessions` hold tables of their own: imported so the metadata has them.
    from webapp import (  # noqa: F401
        account,
        analyses,
        auth,
        contact,
        embed,
        headers,
        health,
        internal,
        limits,
        maintenance,
        pages,
        partners,
        sessions,
        storage_links,
    )
    from webapp.services import accounts

    app.register_blueprint(health.bp)
    app.register_blueprint(pages.bp)
    app.register_blueprint(auth.bp)
    app.register_blueprint(account.bp)
    app.register_blueprint(contact.bp)
    app.register_blueprint(internal.bp)
    app.register_blueprint(maintenance.bp)
    app.register_blueprint(partners.bp)
    app.cli.add_command(partners.cli)
    app.register_blueprint(embed.bp)
    app.register_blueprint(analyses.bp)
    app.register_blueprint(storage_links.bp)
    headers.init_app(app)
    accounts.init_app(app)
    _register_error_handlers(app)
    return app


class _Stderr(logging.StreamHandler):
    """A handler writing to whatever `sys.stderr` is when it writes (a test runner swaps it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def _log_security_events() -> None:
    """Sign-in checks and sign-outs go to stderr (the service's log) unless logging is set up."""
    security = logging.getLogger("poser.security")
    if not security.handlers:
        handler = _Stderr()
        handler.setFormatter(logging.Formatter("%(asctime)s [%(process)d] [security] %(message)s"))
        security.addHandler(handler)
        security.setLevel(logging.INFO)
        security.propagate = False


def _register_error_handlers(app: Flask) -> None:
    """JSON errors for the API, pages for people; never a stack trace."""

    def respond(code: int, title: str, message: str, headers=()):
        if request.path.startswith(("/api/", "/storage/")):
            return jsonify(error={"code": code, "message": message}), code, headers
        return render_template("error.html", code=code, title=title, message=message), code, headers

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        # Keep headers such as Retry-After and Allow; the body is ours.
        headers = [(name, value) for name, value in error.get_headers() if name.lower() != "content-type"]
        message = error.description
        if isinstance(error, RequestEntityTooLarge) and message == RequestEntityTooLarge.description:
            limit = request.max_content_length
            message = f"The request body is too large (at most {limit // 1024} KB)." if limit else message
        return respond(error.code or 500, error.name, message or error.name, headers)

    @app.errorhandler(OperationalError)
    def database_unavailable(error: OperationalError):
        # A database that is down, or (SQLite) locked by another writer for too long: say so.
        transient = (
            "locked" in str(error.orig) or "busy" in str(error.orig) if db.engine.dialect.name == "sqlite" else True
        )
        if not transient:
            return unexpected_error(error)
        log.warning("Database unavailable: %s", error.orig)
        db.session.rollback()
        return respond(
            503, "Service unavailable", "The service is busy. Please try again in a moment.", [("Retry-After", "5")]
        )

    @app.errorhandler(Exception)
    def unexpected_error(error: Exception):
        log.exception("Unhandled error")
        return respond(500, "Something went wrong", "Something went wrong on our side. Please try again.")
