"""api: webhook endpoints and their deliveries (the outbox)

An endpoint belongs to HQ (agency_id NULL) or to one agency, and so does each delivery (its
endpoint's owner). Row-level security as for the jobs table: the whole-network scope sees all,
an agency's scope its own agency's rows only (never HQ's), a region's scope its agencies'.

Revision ID: api0002
Revises: api0001
Create Date: 2026-12-07 09:10:00

"""
import sqlalchemy as sa
from alembic import op

from portal import dbsecurity

revision = "api0002"
down_revision = "api0001"
branch_labels = None
depends_on = None

TABLES = ("webhook_endpoints", "webhook_deliveries")


def upgrade():
    op.create_table(
        "webhook_endpoints",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agency_id", sa.Integer(), nullable=True),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("url", sa.String(length=500), nullable=False),
        sa.Column("events", sa.Text(), nullable=False),
        sa.Column("secret", sa.String(length=80), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["agency_id"], ["agencies.id"],
                                name=op.f("fk_webhook_endpoints_agency_id_agencies"),
                                ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["created_by_id"], ["users.id"],
                                name=op.f("fk_webhook_endpoints_created_by_id_users"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_endpoints")),
        sa.UniqueConstraint("agency_id", "id", name="uq_webhook_endpoints_agency_id_id"),
    )
    op.create_index("ix_webhook_endpoints_agency_id", "webhook_endpoints", ["agency_id"])
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agency_id", sa.Integer(), nullable=True),
        sa.Column("endpoint_id", sa.Integer(), nullable=False),
        sa.Column("event", sa.String(length=40), nullable=False),
        sa.Column("event_id", sa.String(length=32), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claim", sa.String(length=16), nullable=True),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("dedupe_key", sa.String(length=120), nullable=True),
        sa.Column("redelivery_of_id", sa.Integer(), nullable=True),
        sa.CheckConstraint("status IN ('pending', 'sending', 'delivered', 'failed', 'given_up')",
                           name=op.f("ck_webhook_deliveries_status_known")),
        sa.ForeignKeyConstraint(["agency_id", "endpoint_id"],
                                ["webhook_endpoints.agency_id", "webhook_endpoints.id"],
                                name="fk_webhook_deliveries_agency_id_endpoint_id",
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["agency_id"], ["agencies.id"],
                                name=op.f("fk_webhook_deliveries_agency_id_agencies"),
                                ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["endpoint_id"], ["webhook_endpoints.id"],
                                name=op.f("fk_webhook_deliveries_endpoint_id_webhook_endpoints"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["redelivery_of_id"], ["webhook_deliveries.id"],
                                name=op.f("fk_webhook_deliveries_redelivery_of_id_webhook_deliveries"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
        sa.UniqueConstraint("endpoint_id", "dedupe_key", name="uq_webhook_deliveries_dedupe"),
    )
    op.create_index("ix_webhook_deliveries_status_next", "webhook_deliveries",
                    ["status", "next_attempt_at"])
    op.create_index("ix_webhook_deliveries_endpoint_id", "webhook_deliveries",
                    ["endpoint_id", "id"])
    for table in TABLES:
        dbsecurity.enable_tenant_rls(table, hq_rows=True)


def downgrade():
    for table in TABLES:
        dbsecurity.disable_tenant_rls(table)
    op.drop_index("ix_webhook_deliveries_endpoint_id", table_name="webhook_deliveries")
    op.drop_index("ix_webhook_deliveries_status_next", table_name="webhook_deliveries")
    op.drop_table("webhook_deliveries")
    op.drop_index("ix_webhook_endpoints_agency_id", table_name="webhook_endpoints")
    op.drop_table("webhook_endpoints")
