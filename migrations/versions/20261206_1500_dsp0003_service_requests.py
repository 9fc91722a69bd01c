"""dispatch: service requests (the hotline's calls) and their calls

A request's status is a string checked against the states of dispatch.requests.RequestStatus;
the offers add theirs ("offered", "accepted", "closed") by replacing the check constraint
ck_service_requests_status_known, with no column change.

Revision ID: dsp0003
Revises: dsp0002
Create Date: 2026-12-06 15:00:00

"""
import sqlalchemy as sa
from alembic import op

revision = "dsp0003"
down_revision = "dsp0002"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "service_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(20), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("customer_name", sa.String(64), nullable=False),
        sa.Column("customer_phone", sa.String(32), nullable=False),
        sa.Column("province_id", sa.Integer(), nullable=False),
        sa.Column("city", sa.String(64), nullable=False),
        sa.Column("district", sa.String(64), nullable=False),
        sa.Column("street", sa.String(200), nullable=False),
        sa.Column("product_line_id", sa.Integer(), nullable=False),
        sa.Column("product_model_id", sa.Integer(), nullable=False),
        sa.Column("serial_number", sa.String(64), nullable=False),
        sa.Column("serial_key", sa.String(64), nullable=False),
        sa.Column("purchase_date", sa.Date(), nullable=True),
        sa.Column("fault_description", sa.Text(), nullable=False),
        sa.Column("service_type", sa.String(16), nullable=False),
        sa.Column("preferred_from", sa.DateTime(timezone=True), nullable=True),
        sa.Column("preferred_to", sa.DateTime(timezone=True), nullable=True),
        sa.Column("taken_by_id", sa.Integer(), nullable=True),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancel_reason", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("status IN ('new', 'cancelled')",
                           name=op.f("ck_service_requests_status_known")),
        sa.CheckConstraint("service_type IN ('phone', 'onsite', 'carry_in')",
                           name=op.f("ck_service_requests_service_type_known")),
        sa.CheckConstraint("preferred_from IS NULL OR preferred_to IS NULL "
                           "OR preferred_to > preferred_from",
                           name=op.f("ck_service_requests_window_in_order")),
        sa.CheckConstraint("(status = 'cancelled') = (cancelled_at IS NOT NULL)",
                           name=op.f("ck_service_requests_cancelled_when")),
        sa.ForeignKeyConstraint(["province_id"], ["provinces.id"], ondelete="RESTRICT",
                                name=op.f("fk_service_requests_province_id_provinces")),
        sa.ForeignKeyConstraint(["product_line_id"], ["product_lines.id"], ondelete="RESTRICT",
                                name=op.f("fk_service_requests_product_line_id_product_lines")),
        sa.ForeignKeyConstraint(["product_model_id"], ["product_models.id"],
                                ondelete="RESTRICT",
                                name=op.f("fk_service_requests_product_model_id_product_models")),
        sa.ForeignKeyConstraint(["taken_by_id"], ["users.id"], ondelete="RESTRICT",
                                name=op.f("fk_service_requests_taken_by_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_service_requests")),
        sa.UniqueConstraint("number", name=op.f("uq_service_requests_number")),
    )
    with op.batch_alter_table("service_requests") as batch:
        batch.create_index("ix_service_requests_status_received_at",
                           ["status", "received_at"])
        batch.create_index("ix_service_requests_duplicate",
                           ["product_line_id", "serial_key", "status"])
        batch.create_index(batch.f("ix_service_requests_province_id"), ["province_id"])
        batch.create_index(batch.f("ix_service_requests_product_model_id"),
                           ["product_model_id"])
        batch.create_index(batch.f("ix_service_requests_taken_by_id"), ["taken_by_id"])
    op.create_table(
        "service_request_calls",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("taken_by_id", sa.Integer(), nullable=True),
        sa.Column("call_key", sa.String(32), nullable=True),
        sa.ForeignKeyConstraint(["request_id"], ["service_requests.id"], ondelete="CASCADE",
                                name=op.f("fk_service_request_calls_request_id_service_requests")),
        sa.ForeignKeyConstraint(["taken_by_id"], ["users.id"], ondelete="RESTRICT",
                                name=op.f("fk_service_request_calls_taken_by_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_service_request_calls")),
        sa.UniqueConstraint("call_key", name=op.f("uq_service_request_calls_call_key")),
    )
    with op.batch_alter_table("service_request_calls") as batch:
        batch.create_index(batch.f("ix_service_request_calls_request_id"), ["request_id"])
        batch.create_index(batch.f("ix_service_request_calls_taken_by_id"), ["taken_by_id"])


def downgrade():
    op.drop_table("service_request_calls")
    op.drop_table("service_requests")
