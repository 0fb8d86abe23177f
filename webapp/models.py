"""Database tables."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from tasks.comparison import headline
from tasks.contract import AnalysisStatus
from webapp.db import Model, db


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every database (SQLite keeps no zone of its own)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        return None if value is None else value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None or value.tzinfo is not None:
            return value
        return value.replace(tzinfo=UTC)


class User(Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def as_dict(self) -> dict:
        return {"id": self.id, "email": self.email}

    @property
    def owns_partners(self) -> bool:
        return db.session.query(Partner.id).filter(Partner.owner_user_id == self.id).first() is not None


class VerificationCode(Model):
    """A sign-in code sent by email: stored as a keyed hash, single use, short-lived."""

    __tablename__ = "verification_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), index=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    client_ip: Mapped[str] = mapped_column(String(64), index=True)
    # Checks from the client that asked for the code, and from all other clients together.
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    other_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class Analysis(Model):
    __tablename__ = "analyses"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=lambda: str(uuid.uuid4()))
    # None for a widget submission until the visitor confirms it from their email.
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(32), default=AnalysisStatus.AWAITING_UPLOAD)
    step: Mapped[str | None] = mapped_column(String(20))
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    trim_start_s: Mapped[float | None] = mapped_column(Float)
    trim_end_s: Mapped[float | None] = mapped_column(Float)
    # A click on the skier, {"time_s": t, "point": [x, y]} in the upright frame's pixels.
    skier_hint: Mapped[dict | None] = mapped_column(JSON)
    input_key: Mapped[str] = mapped_column(String(512))
    error: Mapped[str | None] = mapped_column(Text)
    # For a failed analysis: whether running it again may succeed (False when the input is at fault).
    retryable: Mapped[bool | None] = mapped_column(Boolean)
    results: Mapped[dict | None] = mapped_column(JSON)
    edge_similarity_overall: Mapped[float | None] = mapped_column(Float)
    edge_similarity_left: Mapped[float | None] = mapped_column(Float)
    edge_similarity_right: Mapped[float | None] = mapped_column(Float)
    turns: Mapped[list | None] = mapped_column(JSON)
    flow_run_id: Mapped[str | None] = mapped_column(String(36))
    # Set for analyses submitted through a partner's widget.
    partner_id: Mapped[int | None] = mapped_column(ForeignKey("partners.id", ondelete="SET NULL"), index=True)
    # The final status the visitor was emailed about, so each outcome is mailed once.
    notified_status: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    upload: Mapped[Upload] = relationship(back_populates="analysis", cascade="all, delete-orphan", uselist=False)
    artifacts: Mapped[list[Artifact]] = relationship(back_populates="analysis", cascade="all, delete-orphan")
    partner: Mapped[Partner | None] = relationship()
    embed: Mapped[EmbedToken | None] = relationship(
        back_populates="analysis", cascade="all, delete-orphan", uselist=False
    )

    def as_dict(self) -> dict:
        return {
            "id": self.id,
            "status": self.status,
            "step": self.step,
            "progress": self.progress,
            "trim_start_s": self.trim_start_s,
            "trim_end_s": self.trim_end_s,
            "error": self.error,
            "retryable": self.status == AnalysisStatus.FAILED and self.retryable is not False,
            "file_name": self.upload.file_name if self.upload else None,
            "source": self.source,
            "edge_similarity": self.edge_similarity,
            "headline": headline(((self.results or {}).get("metrics") or {}).get("summary") or {}),
            "artifacts": sorted(artifact.kind for artifact in self.artifacts),
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }

    @property
    def edge_similarity(self) -> dict:
        """The summary scores, each with the low and high end of its 90% interval, and the
        mean of the turns scored precisely enough (`mean`, over `turns` of them)."""
        summary = ((self.results or {}).get("metrics") or {}).get("summary") or {}
        scores = {
            "overall": self.edge_similarity_overall,
            "left": self.edge_similarity_left,
            "right": self.edge_similarity_right,
            "mean": summary.get("mean_edge_similarity"),
        }
        for name, key in (
            ("overall", "overall"),
            ("left", "left"),
            ("right", "right"),
            ("mean", "mean_edge_similarity"),
        ):
            scores[f"{name}_low"] = summary.get(f"{key}_low")
            scores[f"{name}_high"] = summary.get(f"{key}_high")
        scores["turns"] = summary.get("complete_turns", 0) - summary.get("uncertain_turns", 0)
        # Each side's mean, for the side cards when there are too few turns for the rolling median.
        for side in ("left", "right"):
            for suffix in ("", "_low", "_high", "_turns"):
                scores[f"{side}_mean{suffix}"] = summary.get(f"{side}_mean{suffix}")
        return scores

    @property
    def findings(self) -> list[dict]:
        """The findings of a complete analysis, each with the download kind of its still
        (`still_kind`, None without one)."""
        kinds = {artifact.kind for artifact in self.artifacts}
        found = []
        for finding in (self.results or {}).get("findings") or []:
            kind = f"finding_{finding.get('rank')}"
            found.append(finding | {"still_kind": kind if finding.get("still") and kind in kinds else None})
        return found

    @property
    def source(self) -> str:
        """Where the analysis came from: `web`, or `embed:<partner slug>`."""
        return f"embed:{self.partner.slug}" if self.partner else "web"


class Upload(Model):
    __tablename__ = "uploads"

    id: Mapped[int] = mapped_column(primary_key=True)
    analysis_id: Mapped[str] = mapped_column(ForeignKey("analyses.id", ondelete="CASCADE"), unique=True)
    key: Mapped[str] = mapped_column(String(512))
    file_name: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(BigInteger)
    content_type: Mapped[str] = mapped_column(String(100))
    sha256: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(20), default="pending")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    analysis: Mapped[Analysis] = relationship(back_populates="upload")


class Artifact(Model):
    """A file an analysis produced, in object storage; one per kind and analysis."""

    __tablename__ = "artifacts"
    __table_args__ = (UniqueConstraint("analysis_id", "kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    analysis_id: Mapped[str] = mapped_column(ForeignKey("analyses.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    key: Mapped[str] = mapped_column(String(512))
    size: Mapped[int] = mapped_column(BigInteger)
    content_type: Mapped[str] = mapped_column(String(100))
    sha256: Mapped[str] = mapped_column(String(64))

    analysis: Mapped[Analysis] = relationship(back_populates="artifacts")


class Partner(Model):
    """A ski school or shop that embeds the upload widget on its own site."""

    __tablename__ = "partners"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    display_name: Mapped[str] = mapped_column(String(200))
    allowed_domains: Mapped[list] = mapped_column(JSON, default=list)
    max_upload_bytes: Mapped[int] = mapped_column(BigInteger)
    max_trim_s: Mapped[float] = mapped_column(Float)
    owner_user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class EmbedToken(Model):
    """The emailed link that confirms an analysis submitted through a partner's widget, and
    the link to its results. Both are stored only as hashes."""

    __tablename__ = "embed_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id", ondelete="CASCADE"), index=True)
    analysis_id: Mapped[str] = mapped_column(ForeignKey("analyses.id", ondelete="CASCADE"), unique=True)
    email: Mapped[str] = mapped_column(String(254), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    results_token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    client_ip: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    partner: Mapped[Partner] = relationship()
    analysis: Mapped[Analysis] = relationship(back_populates="embed")
