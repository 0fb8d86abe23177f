"""The migrations build (and take down) the whole schema on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect
from sqlalchemy.exc import IntegrityError

from webapp.db import db
from webapp.models import Analysis, EmbedToken, Partner, User, utcnow

TABLES = {
    "users",
    "verification_codes",
    "analyses",
    "uploads",
    "artifacts",
    "partners",
    "embed_tokens",
    "auth_sessions",
    "rate_limits",
}


def test_migrations_create_every_table_and_can_be_reversed(app):
    with app.app_context():
        assert set(inspect(db.engine).get_table_names()) >= TABLES
        downgrade(revision="base")
        db.session.remove()
        assert not TABLES & set(inspect(db.engine).get_table_names())
        upgrade()
        assert set(inspect(db.engine).get_table_names()) >= TABLES


def test_partners_and_embed_tokens_hold_together(app):
    with app.app_context():
        owner = User(email="school@example.com")
        db.session.add(owner)
        db.session.flush()
        partner = Partner(
            slug="alpine-school",
            display_name="Alpine School",
            allowed_domains=["alpine.example"],
            max_upload_bytes=200 * 1024 * 1024,
            max_trim_s=120,
            owner_user_id=owner.id,
        )
        analysis = Analysis(user_id=owner.id, input_key="uploads/x/input.mp4")
        db.session.add_all([partner, analysis])
        db.session.flush()
        db.session.add(
            EmbedToken(
                partner_id=partner.id,
                analysis_id=analysis.id,
                email="rider@example.com",
                token_hash="a" * 64,
                results_token_hash="b" * 64,
                client_ip="127.0.0.1",
                expires_at=utcnow() + timedelta(hours=1),
            )
        )
        db.session.commit()
        assert db.session.get(Partner, partner.id).allowed_domains == ["alpine.example"]
        db.session.add(
            Partner(
                slug="alpine-school",
                display_name="Copy",
                allowed_domains=[],
                max_upload_bytes=1,
                max_trim_s=1,
                owner_user_id=owner.id,
            )
        )
        with pytest.raises(IntegrityError):
            db.session.commit()
        db.session.rollback()
