"""Partners (ski schools and shops embedding the widget): their settings, the CLI that manages
them, and the API behind the owner's partner page."""

from __future__ import annotations

import unicodedata

import click
from flask import Blueprint, abort, jsonify
from flask.cli import AppGroup
from sqlalchemy import func, select
from werkzeug.exceptions import HTTPException

from tasks.contract import AnalysisStatus
from webapp.db import db
from webapp.inputs import email_address, json_object
from webapp.models import Analysis, Partner
from webapp.services.accounts import login_required, signed_in_user, user_for_email
from webapp.services.partners import SLUG, normalise_domain

bp = Blueprint("partners", __name__, url_prefix="/api/partners")
cli = AppGroup("partners", help="Create, change and list partners.")

# Path segments of the embed API that a partner's slug would shadow.
_RESERVED_SLUGS = {"confirm", "results"}
_MAX_DOMAINS = 50


@bp.get("")
@login_required
def list_own():
    """The partners the signed-in user owns, with their submissions by status."""
    partners = db.session.scalars(
        select(Partner).where(Partner.owner_user_id == signed_in_user().id).order_by(Partner.slug)
    ).all()
    return jsonify(partners=[_partner_dict(partner) for partner in partners])


@bp.patch("/<slug>")
@login_required
def update_own(slug: str):
    """Change the name, domains or limits of a partner the signed-in user owns."""
    partner = (
        db.session.scalar(select(Partner).where(Partner.slug == slug, Partner.owner_user_id == signed_in_user().id))
        if SLUG.match(slug)
        else None
    )
    if partner is None:
        abort(404, "No such partner.")
    payload = json_object()
    try:
        apply_settings(
            partner, **{name: payload.get(name) for name in ("name", "domains", "max_upload_mb", "max_trim_s")}
        )
    except ValueError as exc:
        abort(400, str(exc))
    db.session.commit()
    return jsonify(partner=_partner_dict(partner))


def apply_settings(partner: Partner, name=None, domains=None, max_upload_mb=None, max_trim_s=None) -> None:
    """Set the given settings on `partner`; ValueError names the first bad one."""
    if name is not None:
        # It appears in email subjects and pages: one line of visible text.
        if (
            not isinstance(name, str)
            or not 0 < len(name.strip()) <= 200
            or any(unicodedata.category(c) in ("Cc", "Cf", "Cs") for c in name.strip())
        ):
            raise ValueError("The name must be 1 to 200 characters on one line, without control characters.")
        partner.display_name = name.strip()
    if domains is not None:
        if not isinstance(domains, list) or not domains or not all(isinstance(domain, str) for domain in domains):
            raise ValueError("Give at least one allowed domain, as a list.")
        if len(domains) > _MAX_DOMAINS:
            raise ValueError(f"Give at most {_MAX_DOMAINS} allowed domains.")
        partner.allowed_domains = sorted({normalise_domain(domain) for domain in domains})
    if max_upload_mb is not None:
        if not _number_between(max_upload_mb, 1, 5000) or int(max_upload_mb) != max_upload_mb:
            raise ValueError("The upload limit must be a whole number of MB from 1 to 5000.")
        partner.max_upload_bytes = int(max_upload_mb) * 1024 * 1024
    if max_trim_s is not None:
        if not _number_between(max_trim_s, 1, 3600):
            raise ValueError("The longest analysed part must be 1 to 3600 seconds.")
        partner.max_trim_s = float(max_trim_s)


def _number_between(value, low: float, high: float) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and low <= value <= high


def _partner_dict(partner: Partner) -> dict:
    counts = dict(
        db.session.execute(
            select(Analysis.status, func.count()).where(Analysis.partner_id == partner.id).group_by(Analysis.status)
        ).all()
    )
    return {
        "slug": partner.slug,
        "name": partner.display_name,
        "domains": partner.allowed_domains,
        "max_upload_mb": partner.max_upload_bytes // (1024 * 1024),
        "max_trim_s": partner.max_trim_s,
        "submissions": {"total": sum(counts.values()), "complete": counts.get(AnalysisStatus.COMPLETE, 0)},
    }


@cli.command("create")
@click.argument("slug")
@click.option("--name", required=True, help="Name shown to visitors.")
@click.option("--domain", "domains", multiple=True, required=True, help="Allowed site domain; repeat for more.")
@click.option("--owner", required=True, help="Email of the partner's owner account (created if new).")
@click.option("--max-upload-mb", default=200, show_default=True, type=click.IntRange(1, 5000))
@click.option("--max-trim-s", default=120.0, show_default=True, type=click.FloatRange(1, 3600))
def create(slug, name, domains, owner, max_upload_mb, max_trim_s):
    """Create partner SLUG (lowercase letters, digits and hyphens)."""
    if len(slug) > 64 or not SLUG.match(slug) or slug in _RESERVED_SLUGS:
        raise click.BadParameter("use lowercase letters, digits and single hyphens.", param_hint="SLUG")
    if db.session.scalar(select(Partner).where(Partner.slug == slug)):
        raise click.ClickException(f"Partner {slug} already exists.")
    try:
        email = email_address(owner)
    except HTTPException as exc:
        raise click.BadParameter(exc.description, param_hint="--owner") from None
    partner = Partner(slug=slug, owner_user_id=user_for_email(email).id)
    _apply_or_fail(partner, name, domains, max_upload_mb, max_trim_s)
    db.session.add(partner)
    db.session.commit()
    click.echo(f"Created partner {slug}.")


@cli.command("update")
@click.argument("slug")
@click.option("--name", help="Name shown to visitors.")
@click.option("--domain", "domains", multiple=True, help="Allowed site domains (replace the list); repeat for more.")
@click.option("--max-upload-mb", type=click.IntRange(1, 5000))
@click.option("--max-trim-s", type=click.FloatRange(1, 3600))
def update(slug, name, domains, max_upload_mb, max_trim_s):
    """Change partner SLUG."""
    partner = db.session.scalar(select(Partner).where(Partner.slug == slug))
    if partner is None:
        raise click.ClickException(f"No partner {slug}.")
    _apply_or_fail(partner, name, domains, max_upload_mb, max_trim_s)
    db.session.commit()
    click.echo(f"Updated partner {slug}.")


def _apply_or_fail(partner: Partner, name, domains, max_upload_mb, max_trim_s) -> None:
    try:
        apply_settings(partner, name, list(domains) or None, max_upload_mb, max_trim_s)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@cli.command("list")
def list_partners():
    """Show every partner."""
    for partner in db.session.scalars(select(Partner).order_by(Partner.slug)):
        click.echo(
            f"{partner.slug}\t{partner.display_name}\t{','.join(partner.allowed_domains)}\t"
            f"{partner.max_upload_bytes // (1024 * 1024)} MB\t{partner.max_trim_s:g} s"
        )
