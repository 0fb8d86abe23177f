"""The signed-in user's account: deleting it, with everything it holds."""

from __future__ import annotations

import logging

from flask import Blueprint, abort, session
from sqlalchemy import delete, select

from webapp import sessions
from webapp.db import db
from webapp.models import Analysis, EmbedToken, Partner, VerificationCode
from webapp.services.accounts import current_user, login_required
from webapp.services.analyses import remove_analysis

bp = Blueprint("account", __name__, url_prefix="/api/account")
security_log = logging.getLogger("poser.security")


@bp.delete("")
@login_required
def delete_account():
    """Delete the signed-in user: their analyses (runs cancelled, files removed), pending
    widget submissions for their address, sign-in codes, and every session and token.

    409 while they own partner sites: those must be handed over or removed by an operator first.
    """
    user = current_user()
    if db.session.scalar(select(Partner.id).where(Partner.owner_user_id == user.id).limit(1)) is not None:
        abort(409, "You manage partner sites; ask us to hand them over or remove them before deleting your account.")
    unconfirmed = select(EmbedToken.analysis_id).where(EmbedToken.email == user.email)
    for analysis in db.session.scalars(
        select(Analysis).where((Analysis.user_id == user.id) | Analysis.id.in_(unconfirmed))
    ).all():
        remove_analysis(analysis)
    # Rows, not just revocations: SQLite may give a later user this one's id.
    db.session.execute(delete(sessions.AuthSession).where(sessions.AuthSession.user_id == user.id))
    db.session.execute(delete(VerificationCode).where(VerificationCode.email == user.email))
    db.session.delete(user)
    db.session.commit()
    security_log.info("account deleted: user=%s", user.id)
    session.clear()
    return "", 204
