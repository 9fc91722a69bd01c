"""evaluation: scheme versions that grade dispatched orders by the SLA clocks (#18)

A scheme version gains ``dispatch_clocks``: versions made from now on count dispatched orders'
timeliness from the system's SLA clocks and carry the appointment KPIs (预约率, 预约达成率).
Every existing version starts False, so the quarters computed on them stay as they were.
A KPI figure gains ``by_clocks``: how many of its counted orders the clocks measured (NULL for
the figures computed before, and for KPIs not about time).

Revision ID: evl0003
Revises: dsp0004
Create Date: 2026-12-06 17:00:00

"""
import sqlalchemy as sa
from alembic import op

revision = "evl0003"
down_revision = "dsp0004"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("evaluation_schemes", sa.Column("dispatch_clocks", sa.Boolean(),
                                                  nullable=False, server_default=sa.false()))
    op.add_column("evaluation_kpi_values", sa.Column("by_clocks", sa.Integer(), nullable=True))


def downgrade():
    op.drop_column("evaluation_kpi_values", "by_clocks")
    op.drop_column("evaluation_schemes", "dispatch_clocks")
