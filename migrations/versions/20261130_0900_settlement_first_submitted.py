"""settlement: the day each line first went to HQ (the claim window is judged on it)

Lines of claims already submitted get the day of the first submission that followed their
claim, so that a claim returned and submitted again keeps its on-time lines on time.

Revision ID: stl0002
Revises: stl0001
Create Date: 2026-11-30 09:00:00

"""
from collections import defaultdict
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from alembic import op
from flask import current_app, has_app_context

from portal.models import UTCDateTime

revision = "stl0002"
down_revision = "stl0001"
branch_labels = None
depends_on = None

events = sa.table("settlement_events", sa.column("agency_id", sa.Integer),
                  sa.column("settlement_id", sa.Integer), sa.column("action", sa.String),
                  sa.column("at", UTCDateTime))
claims = sa.table("settlement_claims", sa.column("agency_id", sa.Integer),
                  sa.column("id", sa.Integer), sa.column("created_at", UTCDateTime))
lines = sa.table("settlement_lines", sa.column("agency_id", sa.Integer),
                 sa.column("id", sa.Integer), sa.column("settlement_id", sa.Integer),
                 sa.column("claim_id", sa.Integer), sa.column("first_submitted_on", sa.Date))


def _zone() -> ZoneInfo:
    name = current_app.config.get("BABEL_DEFAULT_TIMEZONE") if has_app_context() else None
    return ZoneInfo(name or "Asia/Shanghai")


def upgrade():
    op.add_column("settlement_lines", sa.Column("first_submitted_on", sa.Date(), nullable=True))
    conn = op.get_bind()
    if conn.dialect.name == "postgresql":  # the tables force row-level security on the owner
        conn.execute(sa.text("SELECT set_config('portal.scope', 'all', true)"))
    backfill(conn, _zone())


def backfill(conn, zone: ZoneInfo) -> int:
    """Give each line of a submitted claim the local day of the first submission after it was
    claimed (lines added since the last submission stay empty). Returns the lines set."""
    submitted = defaultdict(list)
    for agency_id, settlement_id, at in conn.execute(
            sa.select(events.c.agency_id, events.c.settlement_id, events.c.at)
            .where(events.c.action == "submitted")):
        submitted[(agency_id, settlement_id)].append(at)
    changed = 0
    for agency_id, line_id, settlement_id, claimed_at in conn.execute(
            sa.select(lines.c.agency_id, lines.c.id, lines.c.settlement_id, claims.c.created_at)
            .join(claims, (claims.c.agency_id == lines.c.agency_id)
                  & (claims.c.id == lines.c.claim_id))
            .where(lines.c.first_submitted_on.is_(None))):
        later = [at for at in submitted.get((agency_id, settlement_id), []) if at >= claimed_at]
        if later:
            conn.execute(lines.update().where(lines.c.agency_id == agency_id,
                                              lines.c.id == line_id)
                         .values(first_submitted_on=min(later).astimezone(zone).date()))
            changed += 1
    return changed


def downgrade():
    op.drop_column("settlement_lines", "first_submitted_on")
