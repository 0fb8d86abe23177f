"""Partners (ski schools and shops embedding the widget): the CLI to manage them, and the
origin check every embed endpoint applies."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import click
from flask import Blueprint, abort, current_app, jsonify, request
from flask.cli import AppGroup
from sqlalchemy import select

from webapp.db import db
from webapp.models import Partner, User

bp = Blueprint("embed", __name__, url_prefix="/api/embed")
cli = AppGroup("partners", help="Create, change and list partners.")

_SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_HOST = re.compile(r"^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(:\d+)?$")


def normalise_domain(value: str) -> str:
    """`Example.com`, `https://example.com/` or `*.example.com` as a lowercase host pattern."""
    host = value.strip().lower()
    if "://" in host:
        host = urlsplit(host).netloc
    host = host.rstrip("/")
    if not _HOST.match(host):
        raise ValueError(f"Not a domain: {value!r}")
    return host


def origin_allowed(partner: Partner, origin: str) -> bool:
    """Whether `origin` (scheme://host[:port]) is one of the partner's allowed domains.

    An entry `*.example.com` allows every subdomain of example.com, not example.com itself.
    """
    host = urlsplit(origin).netloc.lower()
    if not host:
        return False
    for allowed in partner.allowed_domains:
        if allowed.startswith("*.") and host.endswith(allowed[1:]) and host != allowed[2:]:
            return True
        if host == allowed:
            return True
    return False


def partner_for_request(slug: str) -> tuple[Partner, str]:
    """The partner named in the URL and the request's origin; 404 for an unknown slug, 403 for
    an origin (or, without one, a referrer) that is not on the partner's list."""
    partner = db.session.scalar(select(Partner).where(Partner.slug == slug))
    if partner is None:
        abort(404, "No such partner.")
    origin = request.headers.get("Origin") or _origin_of(request.headers.get("Referer", ""))
    if not origin or not origin_allowed(partner, origin):
        abort(403, "This site is not allowed to use the Poser widget.")
    return partner, origin


@bp.get("/<slug>/config")
def config(slug: str):
    """What the widget needs to render for this partner."""
    partner, origin = partner_for_request(slug)
    response = jsonify(
        partner={"slug": partner.slug, "name": partner.display_name},
        max_upload_bytes=partner.max_upload_bytes,
        max_trim_s=partner.max_trim_s,
        types=sorted(current_app.config["UPLOAD_TYPES"]),
    )
    return with_cors(response, origin)


def with_cors(response, origin: str):
    """CORS headers for an allowed origin only."""
    response.headers["Access-Control-Allow-Origin"] = origin
    response.headers["Vary"] = "Origin"
    return response


def _origin_of(referrer: str) -> str:
    parts = urlsplit(referrer)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


def _domains(values: tuple[str, ...]) -> list[str]:
    try:
        return sorted({normalise_domain(value) for value in values})
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@cli.command("create")
@click.argument("slug")
@click.option("--name", required=True, help="Name shown to visitors.")
@click.option("--domain", "domains", multiple=True, required=True, help="Allowed site domain; repeat for more.")
@click.option("--owner", required=True, help="Email of the partner's owner account (created if new).")
@click.option("--max-upload-mb", default=200, show_default=True, type=click.IntRange(1, 5000))
@click.option("--max-trim-s", default=120.0, show_default=True, type=click.FloatRange(1, 3600))
def create(slug, name, domains, owner, max_upload_mb, max_trim_s):
    """Create partner SLUG (lowercase letters, digits and hyphens)."""
    if len(slug) > 64 or not _SLUG.match(slug):
        raise click.BadParameter("use lowercase letters, digits and single hyphens.", param_hint="SLUG")
    if db.session.scalar(select(Partner).where(Partner.slug == slug)):
        raise click.ClickException(f"Partner {slug} already exists.")
    email = owner.strip().lower()
    user = db.session.scalar(select(User).where(User.email == email)) or User(email=email)
    db.session.add(user)
    db.session.flush()
    db.session.add(Partner(slug=slug, display_name=name, allowed_domains=_domains(domains),
                           max_upload_bytes=max_upload_mb * 1024 * 1024, max_trim_s=max_trim_s, owner_user_id=user.id))
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
    if name:
        partner.display_name = name
    if domains:
        partner.allowed_domains = _domains(domains)
    if max_upload_mb:
        partner.max_upload_bytes = max_upload_mb * 1024 * 1024
    if max_trim_s:
        partner.max_trim_s = max_trim_s
    db.session.commit()
    click.echo(f"Updated partner {slug}.")


@cli.command("list")
def list_partners():
    """Show every partner."""
    for partner in db.session.scalars(select(Partner).order_by(Partner.slug)):
        click.echo(f"{partner.slug}\t{partner.display_name}\t{','.join(partner.allowed_domains)}\t"
                   f"{partner.max_upload_bytes // (1024 * 1024)} MB\t{partner.max_trim_s:g} s")
