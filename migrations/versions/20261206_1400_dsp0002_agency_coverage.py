"""dispatch: agency coverage (服务区域): the areas an agency serves per product line and
service type, declared by the agency and decided by HQ

Agency-owned: row-level security like every agency's rows. A live declaration (proposed or
approved) is unique per agency, area, line and type (a partial unique index).

Revision ID: dsp0002
Revises: dsp0001
Create Date: 2026-12-06 14:00:00

"""
import sqlalchemy as sa
from alembic import op

from portal import dbsecurity

revision = "dsp0002"
down_revision = "dsp0001"
branch_labels = None
depends_on = None

LIVE = "status IN ('proposed', 'approved')"


def upgrade():
    op.create_table(
        "agency_coverages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("province_id", sa.Integer(), nullable=False),
        sa.Column("city", sa.String(length=64), nullable=False),
        sa.Column("district", sa.String(length=64), nullable=False),
        sa.Column("product_line_id", sa.Integer(), nullable=False),
        sa.Column("service_type", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("declared_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("declared_by_id", sa.Integer(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_by_id", sa.Integer(), nullable=True),
        sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("withdrawn_by_id", sa.Integer(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("agency_id", sa.Integer(), nullable=False),
        sa.CheckConstraint("status IN ('proposed', 'approved', 'rejected', 'withdrawn')",
                           name=op.f("ck_agency_coverages_status_known")),
        sa.CheckConstraint("service_type IN ('phone', 'onsite', 'carry_in')",
                           name=op.f("ck_agency_coverages_service_type_known")),
        sa.CheckConstraint("city <> ''", name=op.f("ck_agency_coverages_city_given")),
        sa.CheckConstraint("status <> 'rejected' OR reason <> ''",
                           name=op.f("ck_agency_coverages_rejected_has_reason")),
        sa.ForeignKeyConstraint(["agency_id"], ["agencies.id"], ondelete="RESTRICT",
                                name=op.f("fk_agency_coverages_agency_id_agencies")),
        sa.ForeignKeyConstraint(["province_id"], ["provinces.id"], ondelete="RESTRICT",
                                name=op.f("fk_agency_coverages_province_id_provinces")),
        sa.ForeignKeyConstraint(["product_line_id"], ["product_lines.id"], ondelete="RESTRICT",
                                name=op.f("fk_agency_coverages_product_line_id_product_lines")),
        sa.ForeignKeyConstraint(["declared_by_id"], ["users.id"], ondelete="SET NULL",
                                name=op.f("fk_agency_coverages_declared_by_id_users")),
        sa.ForeignKeyConstraint(["decided_by_id"], ["users.id"], ondelete="SET NULL",
                                name=op.f("fk_agency_coverages_decided_by_id_users")),
        sa.ForeignKeyConstraint(["withdrawn_by_id"], ["users.id"], ondelete="SET NULL",
                                name=op.f("fk_agency_coverages_withdrawn_by_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agency_coverages")),
        sa.UniqueConstraint("agency_id", "id", name=op.f("uq_agency_coverages_agency_id_id")),
    )
    op.create_index("ix_agency_coverages_agency_id_status", "agency_coverages",
                    ["agency_id", "status"])
    op.create_index("ix_agency_coverages_area", "agency_coverages",
                    ["province_id", "city", "product_line_id", "service_type", "status"])
    op.create_index("uq_agency_coverages_live", "agency_coverages",
                    ["agency_id", "province_id", "city", "district", "product_line_id",
                     "service_type"], unique=True,
                    postgresql_where=sa.text(LIVE), sqlite_where=sa.text(LIVE))
    dbsecurity.enable_tenant_rls("agency_coverages")


def downgrade():
    dbsecurity.disable_tenant_rls("agency_coverages")
    op.drop_index("uq_agency_coverages_live", table_name="agency_coverages")
    op.drop_index("ix_agency_coverages_area", table_name="agency_coverages")
    op.drop_index("ix_agency_coverages_agency_id_status", table_name="agency_coverages")
    op.drop_table("agency_coverages")
