"""Poser's web app: an app factory in the style of Flask's tutorial."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from flask import Flask, jsonify, render_template, request
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from webapp.config import DEFAULTS
from webapp.db import db, migrate

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
log = logging.getLogger(__name__)


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the app: defaults, then `POSER_*` environment variables, then `test_config`."""
    app = Flask(__name__, instance_relative_config=True)
    app.config.from_mapping(DEFAULTS)
    app.config.from_prefixed_env("POSER")
    if test_config:
        app.config.from_mapping(test_config)
    if not app.config["SQLALCHEMY_DATABASE_URI"]:
        Path(app.instance_path).mkdir(parents=True, exist_ok=True)
        app.config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{Path(app.instance_path) / 'poser.sqlite3'}"
    if app.config["TRUSTED_PROXIES"]:
        proxies = int(app.config["TRUSTED_PROXIES"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies)

    db.init_app(app)
    migrate.init_app(app, db, directory=str(MIGRATIONS))

    from webapp import analyses, auth, contact, embed, health, internal, maintenance, pages, partners, storage

    app.register_blueprint(health.bp)
    app.register_blueprint(pages.bp)
    app.register_blueprint(auth.bp)
    app.register_blueprint(contact.bp)
    app.register_blueprint(internal.bp)
    app.register_blueprint(maintenance.bp)
    app.register_blueprint(partners.bp)
    app.cli.add_command(partners.cli)
    app.register_blueprint(embed.bp)
    app.register_blueprint(analyses.bp)
    app.register_blueprint(storage.bp)
    _register_error_handlers(app)
    app.context_processor(lambda: {"current_user": auth.current_user()})
    return app


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
        return respond(error.code, error.name, error.description, headers)

    @app.errorhandler(Exception)
    def unexpected_error(error: Exception):
        log.exception("Unhandled error")
        return respond(500, "Something went wrong", "Something went wrong on our side. Please try again.")
