"""The links of widget submissions: the results link's analysis, and the confirmation link,
used once (see `webapp/tokens.py` for the secrets themselves)."""

from __future__ import annotations

from flask import abort
from sqlalchemy import select, update

from webapp.db import db, execute
from webapp.models import Analysis, EmbedToken, utcnow
from webapp.tokens import token_hash


def analysis_for_results_token(token: str) -> Analysis:
    """The analysis a results link points at; 404 for anything else."""
    embed = db.session.scalar(select(EmbedToken).where(EmbedToken.results_token_hash == token_hash(token)))
    if embed is None or embed.confirmed_at is None:
        abort(404, "No such results.")
    return embed.analysis


def claim(embed: EmbedToken) -> bool:
    """Mark the link used; False when another request got there first."""
    claimed = execute(
        update(EmbedToken)
        .where(EmbedToken.id == embed.id, EmbedToken.confirmed_at.is_(None))
        .values(confirmed_at=utcnow())
    ).rowcount
    db.session.commit()
    return claimed == 1
