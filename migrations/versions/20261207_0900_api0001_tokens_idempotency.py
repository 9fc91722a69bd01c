"""api: bearer tokens, kept answers of idempotent POSTs, service accounts

A token and a kept answer belong to one account: row-level security shows an account its own
rows only (the whole-network scope without an account, used by the token check before any
scope exists and by HQ admin's reasoned blocks, sees all). An account can be a service
account: it works through tokens only and never signs in on the pages.

Revision ID: api0001
Revises: evl0003
Create Date: 2026-12-07 09:00:00

"""
import sqlalchemy as sa
from alembic import op

from portal import dbsecurity

revision = "api0001"
down_revision = "evl0003"
branch_labels = None
depends_on = None

RECIPIENT_TABLES = ("api_tokens", "api_idempotent_requests")


def upgrade():
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("is_service_account", sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("recipient_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["created_by_id"], ["users.id"],
                                name=op.f("fk_api_tokens_created_by_id_users"),
                                ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["recipient_id"], ["users.id"],
                                name=op.f("fk_api_tokens_recipient_id_users"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("prefix", name=op.f("uq_api_tokens_prefix")),
    )
    op.create_index("ix_api_tokens_recipient_id", "api_tokens", ["recipient_id"])
    op.create_table(
        "api_idempotent_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("recipient_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("method", sa.String(length=8), nullable=False),
        sa.Column("path", sa.String(length=255), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("headers", sa.Text(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["recipient_id"], ["users.id"],
                                name=op.f("fk_api_idempotent_requests_recipient_id_users"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_idempotent_requests")),
        sa.UniqueConstraint("recipient_id", "key", name="uq_api_idempotency_key"),
    )
    op.create_index("ix_api_idempotent_requests_created_at", "api_idempotent_requests",
                    ["created_at"])
    for table in RECIPIENT_TABLES:
        dbsecurity.enable_recipient_rls(table)


def downgrade():
    for table in RECIPIENT_TABLES:
        dbsecurity.disable_tenant_rls(table)
    op.drop_table("api_idempotent_requests")
    op.drop_table("api_tokens")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("is_service_account")
