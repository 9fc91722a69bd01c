"""background jobs

Revision ID: core0002
Revises: 7c8724463a2d
Create Date: 2026-11-22 06:50:00

"""
import sqlalchemy as sa
from alembic import op

from portal import dbsecurity

revision = "core0002"
down_revision = "7c8724463a2d"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "jobs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("scope", sa.String(length=32), nullable=False),
        sa.Column("agency_id", sa.Integer(), nullable=True),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["agency_id"], ["agencies.id"],
                                name=op.f("fk_jobs_agency_id_agencies"), ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["created_by_id"], ["users.id"],
                                name=op.f("fk_jobs_created_by_id_users"), ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
    )
    op.create_index("ix_jobs_agency_id_created_at", "jobs", ["agency_id", "created_at"])
    dbsecurity.enable_tenant_rls("jobs", hq_rows=True)


def downgrade():
    dbsecurity.disable_tenant_rls("jobs")
    op.drop_index("ix_jobs_agency_id_created_at", table_name="jobs")
    op.drop_table("jobs")
