"""Messages to the operators."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, jsonify, request

from webapp.auth import email_from, current_user
from webapp.mail import send_mail

bp = Blueprint("contact", __name__, url_prefix="/api")

SUBJECT_LIMIT = 200
MESSAGE_LIMIT = 5000


@bp.post("/contact")
def contact():
    """Mail `subject` and `message` to the operators, with the sender's address to reply to."""
    payload = request.get_json(silent=True) or {}
    subject = str(payload.get("subject", "")).strip()
    message = str(payload.get("message", "")).strip()
    if not 1 <= len(subject) <= SUBJECT_LIMIT:
        abort(400, f"Give a subject of at most {SUBJECT_LIMIT} characters.")
    if not 1 <= len(message) <= MESSAGE_LIMIT:
        abort(400, f"Write a message of at most {MESSAGE_LIMIT} characters.")
    user = current_user()
    sender = user.email if user else email_from(payload)
    send_mail(
        current_app.config["CONTACT_EMAIL"],
        f"[Poser contact] {subject}",
        f"From: {sender}\n\n{message}",
        reply_to=sender,
    )
    return jsonify(status="sent"), 202
