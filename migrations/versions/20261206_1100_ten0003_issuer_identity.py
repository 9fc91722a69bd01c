"""tenants: the issuer of the network's documents (legal name, address, logo, seal; one row)

The row starts empty: until HQ admin fills it in, documents carry the portal's name.

Revision ID: ten0003
Revises: imp0001
Create Date: 2026-12-06 11:00:00

"""
import sqlalchemy as sa
from alembic import op

revision = "ten0003"
down_revision = "imp0001"
branch_labels = None
depends_on = None


def upgrade():
    table = op.create_table(
        "issuer_identity",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name_zh", sa.String(200), nullable=False, server_default=""),
        sa.Column("name_en", sa.String(200), nullable=False, server_default=""),
        sa.Column("address_zh", sa.String(300), nullable=False, server_default=""),
        sa.Column("address_en", sa.String(300), nullable=False, server_default=""),
        sa.Column("logo_file", sa.String(64)),
        sa.Column("logo_type", sa.String(32)),
        sa.Column("logo_sha256", sa.String(64)),
        sa.Column("seal_file", sa.String(64)),
        sa.Column("seal_type", sa.String(32)),
        sa.Column("seal_sha256", sa.String(64)),
        sa.Column("version", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False,
                  server_default=sa.func.current_timestamp()),
        sa.CheckConstraint("id = 1", name=op.f("ck_issuer_identity_one_issuer")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_issuer_identity")),
    )
    op.bulk_insert(table, [{"id": 1}])


def downgrade():
    op.drop_table("issuer_identity")
