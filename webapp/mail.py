"""Outgoing mail: printed to the log by default, sent through SMTP in production."""

from __future__ import annotations

import smtplib
import sys
from email.message import EmailMessage

from flask import abort, current_app


class MailError(Exception):
    """The message could not be sent."""


class MailRefused(MailError):
    """The mail server refused the recipient's address."""


class MailUnavailable(MailError):
    """The mail server could not be reached or failed; trying later may work."""


def send_mail(to: str, subject: str, body: str, reply_to: str | None = None) -> None:
    """Send a plain-text message to the single address `to` with the configured backend.

    `to` (and `reply_to`) must be validated addresses: the SMTP envelope names `to` alone,
    whatever the headers say. Raises MailRefused or MailUnavailable.
    """
    config = current_app.config
    message = EmailMessage()
    try:
        message["From"] = config["MAIL_FROM"]
        message["To"] = to
        message["Subject"] = subject
        if reply_to:
            message["Reply-To"] = reply_to
        message.set_content(body)
    except ValueError as exc:  # a line break in a header: the callers' checks should stop it first
        raise MailRefused(str(exc)) from exc
    if config["MAIL_BACKEND"] == "console":
        print(f"--- mail to {to}: {subject}\n{body}\n---", file=sys.stdout, flush=True)
        return
    try:
        with smtplib.SMTP(config["SMTP_HOST"], int(config["SMTP_PORT"]), timeout=10) as smtp:
            if config["SMTP_STARTTLS"]:
                smtp.starttls()
            if config["SMTP_USERNAME"]:
                smtp.login(config["SMTP_USERNAME"], config["SMTP_PASSWORD"])
            smtp.send_message(message, to_addrs=[to])
    except smtplib.SMTPRecipientsRefused as exc:
        raise MailRefused(f"the mail server refused {to}") from exc
    except (smtplib.SMTPException, OSError) as exc:
        raise MailUnavailable(str(exc)) from exc


def send_or_abort(to: str, subject: str, body: str, reply_to: str | None = None) -> None:
    """`send_mail`, ending the request with 400 when the address is refused and 503 when mail
    cannot be sent now."""
    try:
        send_mail(to, subject, body, reply_to=reply_to)
    except MailRefused:
        abort(400, f"We cannot send email to {to}: the mail server refused the address. Check it and try again.")
    except MailUnavailable:
        abort(503, "We could not send the email just now. Please try again in a minute.")
