"""settlement: the live-claim indexes in the terms SQLite's queries use

The unique indexes of live claims were written "WHERE is_live AND …", but SQLAlchemy writes
the condition as "is_live = 1" on SQLite, and SQLite uses a partial index only when the
query repeats its condition. The network-wide duplicate check then scanned each agency's
claims for every claimed order (a 5,000-order claim took 28 s at 200 agencies). PostgreSQL's
queries match the existing condition; only SQLite's indexes are made again.

Revision ID: stlscale1
Revises: svcscale2
Create Date: 2026-11-30 14:00:00

"""
import sqlalchemy as sa
from alembic import op

revision = "stlscale1"
down_revision = "svcscale2"
branch_labels = None
depends_on = None

SUBJECTS = {"work_order": "work_order_id", "part_return": "part_return_id",
            "complaint": "complaint_id", "grade": "grade_period"}


def _remake(live: str) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for name, column in SUBJECTS.items():
        op.drop_index(f"uq_settlement_claims_live_{name}", table_name="settlement_claims")
        op.create_index(f"uq_settlement_claims_live_{name}", "settlement_claims",
                        ["agency_id", column], unique=True,
                        sqlite_where=sa.text(f"{live} AND {column} IS NOT NULL"))


def upgrade():
    _remake("is_live = 1")


def downgrade():
    _remake("is_live")
