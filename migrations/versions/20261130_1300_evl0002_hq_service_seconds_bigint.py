"""evaluation: HQ service-level totals in seconds as 64-bit integers

A quarter's total seconds of parts turnaround, settlement cycle and complaint verdicts for a
whole region overflowed PostgreSQL's 32-bit integer on a synthetic network of 2,000 agencies
("integer out of range"). SQLite's integers are 64-bit already; only PostgreSQL changes.

Revision ID: evl0002
Revises: evl0001
Create Date: 2026-11-30 13:00:00

"""
import sqlalchemy as sa
from alembic import op

revision = "evl0002"
down_revision = "evl0001"
branch_labels = None
depends_on = None

COLUMNS = {
    "evaluation_service_levels": ("parts_seconds", "settlement_seconds", "verdict_seconds"),
    "evaluation_results": ("hq_parts_seconds", "hq_settlement_seconds", "hq_verdict_seconds"),
}


def _alter(type_) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, columns in COLUMNS.items():
        for column in columns:
            op.alter_column(table, column, type_=type_, existing_nullable=False)


def upgrade():
    _alter(sa.BigInteger())


def downgrade():
    _alter(sa.Integer())
