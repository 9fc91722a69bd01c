"""service: kept import files (an uploaded table kept for importing it again, a day at most)

A kept file belongs to its uploader and, for an agency's import, to that agency: row-level
security like the agencies' rows; HQ's files (no agency) are visible in the whole-network
scope only.

Revision ID: imp0001
Revises: inb0001
Create Date: 2026-12-06 09:00:00

"""
import sqlalchemy as sa
from alembic import op

from portal import dbsecurity

revision = "imp0001"
down_revision = "inb0001"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "import_uploads",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agency_id", sa.Integer(), nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("original_name", sa.String(length=200), nullable=False),
        sa.Column("stored_name", sa.String(length=64), nullable=False),
        sa.Column("fmt", sa.String(length=8), nullable=False),
        sa.Column("encoding", sa.String(length=16), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("row_count", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["agency_id"], ["agencies.id"],
                                name=op.f("fk_import_uploads_agency_id_agencies"),
                                ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"],
                                name=op.f("fk_import_uploads_user_id_users"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_uploads")),
    )
    op.create_index("ix_import_uploads_user_id_kind", "import_uploads", ["user_id", "kind"])
    op.create_index("ix_import_uploads_expires_at", "import_uploads", ["expires_at"])
    dbsecurity.enable_tenant_rls("import_uploads", hq_rows=True)


def downgrade():
    dbsecurity.disable_tenant_rls("import_uploads")
    op.drop_index("ix_import_uploads_expires_at", table_name="import_uploads")
    op.drop_index("ix_import_uploads_user_id_kind", table_name="import_uploads")
    op.drop_table("import_uploads")
