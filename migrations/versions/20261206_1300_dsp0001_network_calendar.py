"""dispatch: the network calendar (working hours per weekday, HQ's exceptions)

The hours start as the portal's defaults (dispatch.calendar.DEFAULT_HOURS): Monday to Friday
08:30–17:30, Saturday 09:00–17:00, Sunday closed.

Revision ID: dsp0001
Revises: stl0004
Create Date: 2026-12-06 13:00:00

"""
from datetime import time

import sqlalchemy as sa
from alembic import op

revision = "dsp0001"
down_revision = "stl0004"
branch_labels = None
depends_on = None

DEFAULTS = {**{day: (time(8, 30), time(17, 30)) for day in range(5)},
            5: (time(9, 0), time(17, 0)), 6: (None, None)}


def upgrade():
    hours = op.create_table(
        "network_working_hours",
        sa.Column("weekday", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("opens", sa.Time(), nullable=True),
        sa.Column("closes", sa.Time(), nullable=True),
        sa.CheckConstraint("(opens IS NULL) = (closes IS NULL)",
                           name=op.f("ck_network_working_hours_both_or_neither")),
        sa.CheckConstraint("opens IS NULL OR opens < closes",
                           name=op.f("ck_network_working_hours_opens_before_closes")),
        sa.CheckConstraint("weekday BETWEEN 0 AND 6",
                           name=op.f("ck_network_working_hours_weekday_range")),
        sa.PrimaryKeyConstraint("weekday", name=op.f("pk_network_working_hours")),
    )
    op.bulk_insert(hours, [{"weekday": day, "opens": opens, "closes": closes}
                           for day, (opens, closes) in DEFAULTS.items()])
    op.create_table(
        "calendar_exceptions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("opens", sa.Time(), nullable=True),
        sa.Column("closes", sa.Time(), nullable=True),
        sa.Column("note", sa.String(200), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("(opens IS NULL) = (closes IS NULL)",
                           name=op.f("ck_calendar_exceptions_both_or_neither")),
        sa.CheckConstraint("opens IS NULL OR opens < closes",
                           name=op.f("ck_calendar_exceptions_opens_before_closes")),
        sa.ForeignKeyConstraint(["created_by_id"], ["users.id"], ondelete="RESTRICT",
                                name=op.f("fk_calendar_exceptions_created_by_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calendar_exceptions")),
        sa.UniqueConstraint("day", name=op.f("uq_calendar_exceptions_day")),
    )


def downgrade():
    op.drop_table("calendar_exceptions")
    op.drop_table("network_working_hours")
