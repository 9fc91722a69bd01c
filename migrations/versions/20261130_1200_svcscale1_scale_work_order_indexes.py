"""service at network scale: work orders by receipt and by serial number across the network

Two reads of the whole network that the (agency_id, …) indexes cannot serve, measured on a
synthetic network of 2,000 agencies and 2,000,000 orders (SQLite):

- HQ's work-order list sorts the network's orders by receipt, newest first: without an index
  on ``received_at`` every matching order was sorted for a page of 25 (726 ms; 8 ms with it).
- The settlement's duplicate check looks for the same serial number in other agencies' claimed
  orders: without an index on ``serial_number`` SQLite walked every live claim of the network
  for each claimed order (a 5,000-order claim did not finish in 19 minutes).

Revision ID: svcscale1
Revises: svc0001
Create Date: 2026-11-30 12:00:00

"""
from alembic import op

revision = "svcscale1"
down_revision = "svc0001"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index("ix_work_orders_received_at", "work_orders", ["received_at"])
    op.create_index("ix_work_orders_serial_number", "work_orders", ["serial_number"])


def downgrade():
    op.drop_index("ix_work_orders_serial_number", table_name="work_orders")
    op.drop_index("ix_work_orders_received_at", table_name="work_orders")
