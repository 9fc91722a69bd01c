"""The workplace's rows: inbox items, the e-mail outbox, preferences, settings, announcements.

Items, outbox messages and preferences belong to one recipient (an account), and carry the
recipient's agency (:class:`portal.tenancy.RecipientOwned`). The tenant guard shows a signed-in
user their own rows only, whatever their role, HQ's included; row-level security on PostgreSQL
says the same. Only the system's whole-network scope (the write path's receivers, the tick,
the delivery worker, and reasoned unscoped blocks: HQ admin's outbox, HQ's read and
acknowledged counts of an announcement) reaches everybody's rows.
"""
from datetime import date, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.models import UTCDateTime, utcnow
from portal.tenancy import RecipientOwned, Scope

TASK, NOTICE = "task", "notice"
IMMEDIATE, DIGEST, OFF = "immediate", "digest", "off"
MAIL_MODES = (IMMEDIATE, DIGEST, OFF)
# Outbox states: waiting for a (re)try, handed to a sender, accepted by the SMTP server, given up.
QUEUED, SENDING, SENT, FAILED = "queued", "sending", "sent", "failed"


class InboxItem(RecipientOwned, db.Model):
    """A task (needs action, may have a due time) or a notice (for information)."""

    __tablename__ = "inbox_items"
    __table_args__ = (
        CheckConstraint("kind IN ('task', 'notice')", name="kind_known"),
        # Open tasks of a recipient, oldest due first (the navigation count, "waiting for me").
        Index("ix_inbox_items_recipient_open", "recipient_id", "closed_at", "due_at"),
        Index("ix_inbox_items_recipient_created", "recipient_id", "created_at"),
        Index("ix_inbox_items_subject", "subject_type", "subject_id"),
        Index("ix_inbox_items_batch", "batch"),
        Index("ix_inbox_items_announcement", "announcement_id", "agency_id"),
        # Reminders and escalations name their occurrence: the tick never creates one twice.
        UniqueConstraint("recipient_id", "dedupe_key", name="uq_inbox_items_recipient_dedupe"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    recipient_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    agency_id: Mapped[int | None] = mapped_column(ForeignKey("agencies.id",
                                                             ondelete="RESTRICT"))
    event: Mapped[str] = mapped_column(String(64))
    category: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(8))
    subject_type: Mapped[str | None] = mapped_column(String(40))
    subject_id: Mapped[int | None] = mapped_column(Integer)
    # The subject as people name it (a settlement's number, an engineer's certificate…).
    label: Mapped[str | None] = mapped_column(String(120))
    params: Mapped[dict] = mapped_column(JSON, default=dict)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_by: Mapped[str | None] = mapped_column(String(64))  # the event that closed it
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    announcement_id: Mapped[int | None] = mapped_column(
        ForeignKey("announcements.id", ondelete="CASCADE"))
    dedupe_key: Mapped[str | None] = mapped_column(String(120))
    batch: Mapped[str | None] = mapped_column(String(32))

    @property
    def is_task(self) -> bool:
        return self.kind == TASK

    @property
    def is_open(self) -> bool:
        return self.kind == TASK and self.closed_at is None


class MailMessage(RecipientOwned, db.Model):
    """One e-mail in the outbox: an item's, or a day's digest. Written in the transaction of
    the change, delivered after the commit; the Message-ID, set before the first try, stays."""

    __tablename__ = "mail_outbox"
    __table_args__ = (
        CheckConstraint("kind IN ('item', 'digest')", name="kind_known"),
        Index("ix_mail_outbox_status_next", "status", "next_attempt_at"),
        Index("ix_mail_outbox_recipient_created", "recipient_id", "created_at"),
        UniqueConstraint("recipient_id", "digest_day", name="uq_mail_outbox_one_digest_a_day"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    recipient_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    agency_id: Mapped[int | None] = mapped_column(ForeignKey("agencies.id",
                                                             ondelete="RESTRICT"))
    kind: Mapped[str] = mapped_column(String(8), default="item")
    item_id: Mapped[int | None] = mapped_column(ForeignKey("inbox_items.id",
                                                           ondelete="CASCADE"))
    digest_day: Mapped[date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16), default=QUEUED)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    message_id: Mapped[str | None] = mapped_column(String(200))
    to_address: Mapped[str | None] = mapped_column(String(254))
    subject: Mapped[str | None] = mapped_column(String(250))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claim: Mapped[str | None] = mapped_column(String(16))  # the token of the sender on it
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    recipient = relationship("User", foreign_keys=[recipient_id], lazy="joined")
    item = relationship("InboxItem", foreign_keys=[item_id])


class Preference(RecipientOwned, db.Model):
    """How one account wants the e-mails of one category: immediately, in a digest, or not."""

    __tablename__ = "inbox_preferences"
    __table_args__ = (CheckConstraint("mode IN ('immediate', 'digest', 'off')",
                                      name="mode_known"),)

    recipient_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                              primary_key=True)
    category: Mapped[str] = mapped_column(String(32), primary_key=True)
    mode: Mapped[str] = mapped_column(String(16))

    def check_tenant_insert(self, scope: Scope) -> None:
        if self.recipient_id == scope.user_id:  # one's own choices, in any scope
            return
        super().check_tenant_insert(scope)


class WorkplaceSettings(db.Model):
    """HQ admin's knobs for escalations and deadlines (one row)."""

    __tablename__ = "workplace_settings"
    __table_args__ = (
        CheckConstraint("settlement_review_days BETWEEN 1 AND 90", name="review_days_range"),
        CheckConstraint("complaint_verdict_days BETWEEN 1 AND 90", name="verdict_days_range"),
        CheckConstraint("complaint_response_hours BETWEEN 1 AND 720",
                        name="response_hours_range"),
        CheckConstraint("digest_hour BETWEEN 0 AND 23", name="digest_hour_range"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # A settlement in HQ's review longer than this escalates (to the region's manager, at
    # twice this to HQ admin); a complaint without verdict likewise (HQ service, then admin).
    settlement_review_days: Mapped[int] = mapped_column(default=5)
    complaint_verdict_days: Mapped[int] = mapped_column(default=7)
    # The agency's time to answer a recorded complaint (the task's due time).
    complaint_response_hours: Mapped[int] = mapped_column(default=48)
    # The local hour from which the day's digest goes out.
    digest_hour: Mapped[int] = mapped_column(default=18)
    version: Mapped[int] = mapped_column(default=1)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __mapper_args__ = {"version_id_col": version}


class Announcement(db.Model):
    """A message from HQ to an audience (群发), optionally to be acknowledged by a day.

    HQ's row; recipients reach it only through their own inbox item."""

    __tablename__ = "announcements"
    __table_args__ = (
        CheckConstraint("audience IN ('agencies', 'region', 'product_line', 'hq')",
                        name="audience_known"),
        CheckConstraint("(audience IN ('region', 'product_line')) = (audience_id IS NOT NULL)",
                        name="audience_id_when_needed"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    audience: Mapped[str] = mapped_column(String(16))
    audience_id: Mapped[int | None] = mapped_column(Integer)
    staff_too: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    requires_ack: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    ack_by: Mapped[date | None] = mapped_column(Date)
    recipient_count: Mapped[int] = mapped_column(default=0)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id",
                                                                 ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    created_by = relationship("User", foreign_keys=[created_by_id])
