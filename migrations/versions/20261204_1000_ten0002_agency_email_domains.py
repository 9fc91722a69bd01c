"""tenants: the e-mail domains of each agency's accounts (agency owners create accounts in them)

Existing agencies start with none: until HQ sets them, their owners ask HQ for new accounts.

Revision ID: ten0002
Revises: stl0003
Create Date: 2026-12-04 10:00:00

"""
import sqlalchemy as sa
from alembic import op

revision = "ten0002"
down_revision = "stl0003"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("agencies", sa.Column("email_domains", sa.Text(), nullable=False,
                                        server_default=""))


def downgrade():
    op.drop_column("agencies", "email_domains")
