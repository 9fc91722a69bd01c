"""Audit entries: who changed what, when, from what to what. Rows are never updated or deleted."""
from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String, Text, event
from sqlalchemy.orm import Mapped, mapped_column

from portal.extensions import db
from portal.models import UTCDateTime, utcnow


class AuditEntry(db.Model):
    __tablename__ = "audit_entries"
    __table_args__ = (
        Index("ix_audit_entries_at", "at"),
        Index("ix_audit_entries_object", "object_type", "object_id"),
        Index("ix_audit_entries_agency_id_at", "agency_id", "at"),
        Index("ix_audit_entries_actor_id_at", "actor_id", "at"),
        # Row-level security lets agency scopes add entries but never read them back, so the
        # INSERT must not ask for RETURNING (the id comes from the sequence beforehand).
        {"implicit_returning": False},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    actor_email: Mapped[str | None] = mapped_column(String(254))
    actor_role: Mapped[str | None] = mapped_column(String(32))
    # The agency the object belongs to, for filtering (agency users never read the log).
    agency_id: Mapped[int | None] = mapped_column(ForeignKey("agencies.id", ondelete="RESTRICT"))
    action: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str] = mapped_column(String(64))
    object_id: Mapped[str | None] = mapped_column(String(64))
    before: Mapped[dict | None] = mapped_column(JSON)
    after: Mapped[dict | None] = mapped_column(JSON)
    reason: Mapped[str | None] = mapped_column(Text)
    ip: Mapped[str | None] = mapped_column(String(64))
    request_id: Mapped[str | None] = mapped_column(String(32))


class AppendOnlyViolation(Exception):
    """Something tried to change or delete an audit entry."""


@event.listens_for(AuditEntry, "before_update")
@event.listens_for(AuditEntry, "before_delete")
def _refuse_change(mapper, connection, target):
    raise AppendOnlyViolation("audit entries are append-only")
