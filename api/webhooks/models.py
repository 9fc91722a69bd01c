"""Webhook endpoints and their deliveries (the outbox).

An endpoint belongs to HQ (``agency_id`` NULL, managed by HQ admin) or to one agency (managed by
its owner, for its own agency's events only). Both tables are scoped like the jobs table: the
whole-network scope sees every row, an agency's scope its own agency's rows only (never HQ's),
a region's scope its agencies' rows, no scope nothing; row-level security says the same
(``dbsecurity.tenant_check(hq_rows=True)``). A delivery carries its endpoint's owner, so the
same filter holds for the delivery log.
"""
from datetime import datetime

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    String,
    Text,
    UniqueConstraint,
    and_,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.models import UTCDateTime, Versioned, utcnow
from portal.tenancy import Scope, TenantScoped, owner_criteria

# Delivery states: waiting for its first try, being sent (claimed by one sender), delivered,
# failed (the last try failed: tried again later), given up (24 hours of tries failed).
PENDING, SENDING, DELIVERED, FAILED, GIVEN_UP = ("pending", "sending", "delivered", "failed",
                                                 "given_up")
STATUSES = (PENDING, SENDING, DELIVERED, FAILED, GIVEN_UP)


class _HqOrAgencyOwned(TenantScoped):
    """Rows of HQ (``agency_id`` NULL) or of one agency."""

    @classmethod
    def tenant_criteria(cls, scope: Scope):
        if scope.kind == "none":
            return and_(cls.agency_id.is_(None), cls.agency_id.isnot(None))  # no row
        # agency and region scopes: their agencies' rows, never HQ's (NULL is in no set).
        return owner_criteria(cls.agency_id, scope)

    def check_tenant_insert(self, scope: Scope) -> None:
        if scope.kind == "agency" and self.agency_id == scope.id:
            return
        super().check_tenant_insert(scope)


class WebhookEndpoint(_HqOrAgencyOwned, Versioned, db.Model):
    __tablename__ = "webhook_endpoints"
    __table_args__ = (
        UniqueConstraint("agency_id", "id", name="uq_webhook_endpoints_agency_id_id"),
        Index("ix_webhook_endpoints_agency_id", "agency_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    agency_id: Mapped[int | None] = mapped_column(ForeignKey("agencies.id", ondelete="RESTRICT"))
    name: Mapped[str] = mapped_column(String(80))
    url: Mapped[str] = mapped_column(String(500))
    # The event names it subscribes to, space-separated (api.webhooks.events.EVENTS).
    events: Mapped[str] = mapped_column(Text, default="")
    # The signing key. Kept as it is (the signature needs it), shown to the endpoint's
    # managers only, never in the API, the audit log or a delivery.
    secret: Mapped[str] = mapped_column(String(80))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    @property
    def event_set(self) -> frozenset[str]:
        return frozenset(self.events.split())

    @property
    def is_hq(self) -> bool:
        return self.agency_id is None


class WebhookDelivery(_HqOrAgencyOwned, db.Model):
    """One event for one endpoint: written in the transaction of the change, sent after the
    commit, tried again with a growing delay for 24 hours. The body is kept as sent, so every
    try (and a redelivery) sends the same bytes; only the signature's time changes."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        ForeignKeyConstraint(["agency_id", "endpoint_id"],
                             ["webhook_endpoints.agency_id", "webhook_endpoints.id"],
                             name="fk_webhook_deliveries_agency_id_endpoint_id",
                             ondelete="CASCADE"),
        CheckConstraint("status IN ('pending', 'sending', 'delivered', 'failed', 'given_up')",
                        name="status_known"),
        Index("ix_webhook_deliveries_status_next", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_endpoint_id", "endpoint_id", "id"),
        # The tick's events (an SLA clock's warning) are raised once per endpoint.
        UniqueConstraint("endpoint_id", "dedupe_key", name="uq_webhook_deliveries_dedupe"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    agency_id: Mapped[int | None] = mapped_column(ForeignKey("agencies.id", ondelete="RESTRICT"))
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("webhook_endpoints.id",
                                                        ondelete="CASCADE"))
    event: Mapped[str] = mapped_column(String(40))
    # The event's id (the same in every endpoint's delivery and in a redelivery).
    event_id: Mapped[str] = mapped_column(String(32))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_status_code: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    claim: Mapped[str | None] = mapped_column(String(16))  # the token of the sender on it
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    dedupe_key: Mapped[str | None] = mapped_column(String(120))
    redelivery_of_id: Mapped[int | None] = mapped_column(
        ForeignKey("webhook_deliveries.id", ondelete="SET NULL"))

    endpoint = relationship("WebhookEndpoint", foreign_keys=[endpoint_id], lazy="joined",
                            viewonly=True)
