"""Emails to widget visitors when their analysis ends: results ready, or why it failed.

Each outcome is mailed once (`Analysis.notified_status`). A message that could not be sent
is tried again by the scheduled maintenance.
"""

from __future__ import annotations

import logging

from sqlalchemy import select

from tasks.contract import AnalysisStatus
from webapp.db import db
from webapp.links import public_url
from webapp.mail import send_mail
from webapp.models import Analysis
from webapp.tokens import results_token

log = logging.getLogger(__name__)

MAILED_OUTCOMES = (AnalysisStatus.COMPLETE, AnalysisStatus.NO_SKIER_FOUND, AnalysisStatus.FAILED)


def notify_outcome(analysis: Analysis) -> bool:
    """Email the visitor who submitted `analysis` through a widget about its outcome, once.

    Returns whether a message was sent.
    """
    if (
        analysis.partner is None
        or analysis.status not in MAILED_OUTCOMES
        or analysis.notified_status == analysis.status
    ):
        return False
    if analysis.embed is None:
        return False
    subject, body = _message(analysis)
    try:
        send_mail(analysis.embed.email, subject, body)
    except Exception as exc:  # any mail failure: leave it for the next maintenance run
        log.warning("Could not email the outcome of analysis %s: %s", analysis.id, exc)
        return False
    analysis.notified_status = analysis.status
    db.session.commit()
    return True


def pending_notifications() -> list[Analysis]:
    """Widget analyses that ended without their visitor having been told."""
    return list(
        db.session.scalars(
            select(Analysis).where(
                Analysis.partner_id.is_not(None),
                Analysis.status.in_(MAILED_OUTCOMES),
                (Analysis.notified_status.is_(None)) | (Analysis.notified_status != Analysis.status),
            )
        ).all()
    )


def _message(analysis: Analysis) -> tuple[str, str]:
    assert analysis.partner is not None, "only widget analyses are mailed"
    partner = analysis.partner.display_name
    link = public_url("pages.results", token=results_token(analysis.id))
    file_name = analysis.upload.file_name if analysis.upload else "your clip"
    if analysis.status == AnalysisStatus.COMPLETE:
        # The overall score, or the mean of the clean turns when there are too few for it.
        scores, score = analysis.edge_similarity, ""
        name = "overall" if scores["overall"] is not None else "mean" if scores["mean"] is not None else None
        if name is not None:
            known = scores[f"{name}_low"] is not None
            interval = f" (90% interval {scores[f'{name}_low']:.0f}-{scores[f'{name}_high']:.0f})" if known else ""
            mean = (
                ""
                if name == "overall"
                else f", the mean of {scores['turns']} turn{'s' if scores['turns'] != 1 else ''}"
            )
            score = f"Edge similarity: {scores[name]:.0f} out of 100{interval}{mean}.\n"
        turns = len([turn for turn in analysis.turns or [] if not turn.get("partial")])
        findings = analysis.findings
        top = f"\n{findings[0]['text']}\nTry: {findings[0]['try']}\n" if findings else ""
        return (
            f"Your {partner} ski analysis is ready",
            f"The analysis of {file_name}, submitted on {partner}'s site, is ready.\n\n"
            f"{score}Turns analysed: {turns}.\n{top}\nSee the overlay video, the charts, every turn and what "
            f"they show:\n{link}\n",
        )
    reason = analysis.error or _no_skier_reason(analysis)
    return (
        f"Your {partner} ski analysis could not be completed",
        f"We could not analyse {file_name}, submitted on {partner}'s site.\n\n{reason}\n\n"
        f"You can try again with another clip in the widget on {partner}'s site.\n",
    )


def _no_skier_reason(analysis: Analysis) -> str:
    warnings = (analysis.results or {}).get("warnings") or []
    return warnings[-1] if warnings else "We could not find a skier in enough of the clip."
