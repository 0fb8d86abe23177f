"""Messages to the operators."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, jsonify

from webapp.inputs import client_key, json_object, text
from webapp.limits import Limit, enforce
from webapp.mail import MailError, send_mail
from webapp.services.accounts import current_user, email_from

bp = Blueprint("contact", __name__, url_prefix="/api")

SUBJECT_LIMIT = 200
MESSAGE_LIMIT = 5000


@bp.post("/contact")
def contact():
    """Mail `subject` and `message` to the operators, with the sender's address to reply to.

    At most CONTACT_PER_CLIENT messages an hour from one client without an account, and
    CONTACT_PER_USER from one signed-in user.
    """
    payload = json_object()
    subject = text(payload, "subject", "a subject", SUBJECT_LIMIT)
    message = text(payload, "message", "a message", MESSAGE_LIMIT, multiline=True)
    user = current_user()
    sender = user.email if user else email_from(payload)
    config = current_app.config
    limit = (
        Limit("contact-user", user.id, config["CONTACT_PER_USER"], config["CONTACT_WINDOW_S"])
        if user
        else Limit("contact-client", client_key(), config["CONTACT_PER_CLIENT"], config["CONTACT_WINDOW_S"])
    )
    enforce([limit], "Too many messages sent from here; please try again in {minutes} minutes.")
    try:
        send_mail(
            config["CONTACT_EMAIL"], f"[Poser contact] {subject}", f"From: {sender}\n\n{message}", reply_to=sender
        )
    except MailError:
        abort(503, "We could not send your message just now. Please try again in a minute.")
    return jsonify(status="sent"), 202
