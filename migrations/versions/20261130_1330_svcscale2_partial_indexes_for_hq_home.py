"""service: partial indexes for HQ's home (the network's open orders and due returns)

HQ's home counts the network's open work orders and overdue defective-part returns per region.
Open orders are under 1 % of the orders and due returns under 10 % of the returns, yet both
counts read every row: 68 ms and 31 ms of the page's 187 ms on PostgreSQL with 2,000 agencies
and 2,000,000 orders. Partial indexes hold only those rows (13 ms and 21 ms).

Revision ID: svcscale2
Revises: rls0002
Create Date: 2026-11-30 13:30:00

"""
import sqlalchemy as sa
from alembic import op

revision = "svcscale2"
down_revision = "rls0002"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index("ix_work_orders_open", "work_orders", ["agency_id"],
                    postgresql_where=sa.text("status = 'open'"),
                    sqlite_where=sa.text("status = 'open'"))
    op.create_index("ix_part_returns_due", "part_returns", ["agency_id", "due_on"],
                    postgresql_where=sa.text("status = 'due'"),
                    sqlite_where=sa.text("status = 'due'"))


def downgrade():
    op.drop_index("ix_part_returns_due", table_name="part_returns")
    op.drop_index("ix_work_orders_open", table_name="work_orders")
