"""The API's own rows: bearer tokens and the answers kept for idempotent retries.

Both belong to one account (``RecipientOwned``): a signed-in user or a token reaches its own
rows only, whatever the role; HQ admin manages service accounts' tokens in reasoned
unscoped blocks, and the token check runs before any scope exists (unscoped, by hash).
"""
from datetime import datetime

from sqlalchemy import ForeignKey, Index, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.models import UTCDateTime, utcnow
from portal.tenancy import RecipientOwned, Scope

# Tokens read "snp_<prefix>_<secret>": the prefix is stored and shown (to tell tokens apart),
# the whole token only as its SHA-256.
TOKEN_MARK = "snp"  # noqa: S105 - the public mark of a token, not a secret
MAX_TOKEN_DAYS = 366


class ApiToken(RecipientOwned, db.Model):
    __tablename__ = "api_tokens"
    __table_args__ = (Index("ix_api_tokens_recipient_id", "recipient_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # The account the token acts as (its role and scope): "recipient" for the one-account rule.
    recipient_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(80))
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user = relationship("User", foreign_keys=[recipient_id], lazy="joined")

    def is_live(self, at: datetime) -> bool:
        return self.revoked_at is None and self.expires_at > at

    def check_tenant_insert(self, scope: Scope) -> None:
        # One's own token in any scope (an agency user's); others' only in the whole network
        # (HQ admin's reasoned block for a service account, a command).
        if self.recipient_id == scope.user_id:
            return
        super().check_tenant_insert(scope)

    @property
    def shown(self) -> str:
        """What lists show of a token: its mark and prefix, never the secret."""
        return f"{TOKEN_MARK}_{self.prefix}_…"


class IdempotentRequest(RecipientOwned, db.Model):
    """A POST sent with an ``Idempotency-Key``: written in the same transaction as the
    change it made, with the answer, so a retry gets that answer and makes no second change."""

    __tablename__ = "api_idempotent_requests"
    __table_args__ = (UniqueConstraint("recipient_id", "key", name="uq_api_idempotency_key"),
                      Index("ix_api_idempotent_requests_created_at", "created_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    recipient_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(255))
    # What was asked: the method and path, and the SHA-256 of the body.
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(String(255))
    fingerprint: Mapped[str] = mapped_column(String(64))
    status: Mapped[int] = mapped_column()
    headers: Mapped[str] = mapped_column(Text, default="{}")
    body: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def check_tenant_insert(self, scope: Scope) -> None:
        if self.recipient_id == scope.user_id:  # one's own kept answer, in any scope
            return
        super().check_tenant_insert(scope)
