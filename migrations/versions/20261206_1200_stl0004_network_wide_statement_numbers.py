"""settlement: statement numbers unique across the network (ST-SH-C01-202610-01)

Numbers were counted per agency (ST202610-01 was JS-C01's and SH-C01's), so two statements
downloaded under one file name. Every old-style number becomes ST-<agency code>-<the old
number without its ST> (ST202610-01 of SH-C01 → ST-SH-C01-202610-01), in one UPDATE on SQLite
and PostgreSQL alike; the old number stays in `former_number` (indexed: the settlement list's
search still finds it, and the settlement's page says "formerly ST202610-01"). A unique index
on `number` then holds the rule network-wide. 3 + 16 (an agency code at most) + 10 characters
fit the String(40) column.

Should two rows share a number after the renumbering (a number outside the old pattern held
by two agencies, or one equal to another's new number), the upgrade stops before changing
anything and names them, rather than fail on the index. The downgrade drops the index and
writes the former numbers back.

Revision ID: stl0004
Revises: ten0003
Create Date: 2026-12-06 12:00:00

"""
import sqlalchemy as sa
from alembic import op

revision = "stl0004"
down_revision = "ten0003"
branch_labels = None
depends_on = None

# "ST" + year and month (6) + "-" + counter; the new numbers start "ST-" and never match.
OLD_STYLE, NEW_STYLE = "ST______-%", "ST-%"
# A row's number after the renumbering. substr() and || mean the same on SQLite and
# PostgreSQL; the agency's code by a correlated sub-select, which both run (UPDATE … FROM is
# PostgreSQL's and newer SQLite's only).
RENUMBERED = ("CASE WHEN number LIKE :old AND number NOT LIKE :new THEN 'ST-' || "
              "(SELECT agencies.code FROM agencies WHERE agencies.id = settlements.agency_id) "
              "|| '-' || substr(number, 3) ELSE number END")
RENUMBER = sa.text(
    f"UPDATE settlements SET number = {RENUMBERED}, former_number = number "  # noqa: S608
    "WHERE number LIKE :old AND number NOT LIKE :new")  # (constants of this module only)
CLASHES = sa.text(
    f"SELECT renumbered, count(DISTINCT agency_id) FROM (SELECT agency_id, "  # noqa: S608
    f"{RENUMBERED} AS renumbered FROM settlements) AS after_renumbering GROUP BY renumbered "
    "HAVING count(*) > 1 ORDER BY renumbered")
RESTORE = sa.text("UPDATE settlements SET number = former_number, former_number = NULL "
                  "WHERE former_number IS NOT NULL")
STYLES = {"old": OLD_STYLE, "new": NEW_STYLE}


def _as_owner(conn) -> None:
    """The tables force row-level security on their owner too: see every agency's rows."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT set_config('portal.scope', 'all', true)"))


def clashes(conn) -> list[tuple[str, int]]:
    """(number, agencies holding it) of the numbers that would repeat after the renumbering."""
    return [tuple(row) for row in conn.execute(CLASHES, STYLES)]


def refuse_clashes(conn) -> None:
    """Raises RuntimeError, naming them, when numbers would repeat after the renumbering."""
    if found := clashes(conn):
        raise RuntimeError(f"settlement numbers that would repeat (number, agencies holding "
                           f"it): {found}; renumber them by hand, then run the migration again")


def renumber(conn) -> int:
    """Give every old-style number its agency's code, keeping the old one in former_number;
    returns the rows renumbered. Raises RuntimeError (nothing changed) when numbers would
    repeat afterwards."""
    refuse_clashes(conn)
    return conn.execute(RENUMBER, STYLES).rowcount


def restore(conn) -> int:
    """Write the former numbers back (the downgrade); returns the rows changed."""
    return conn.execute(RESTORE).rowcount


def upgrade():
    conn = op.get_bind()
    _as_owner(conn)
    refuse_clashes(conn)  # before the new column: SQLite does not take DDL back
    op.add_column("settlements", sa.Column("former_number", sa.String(length=40), nullable=True))
    renumber(conn)
    op.create_index("ix_settlements_former_number", "settlements", ["former_number"])
    op.create_index("uq_settlements_number", "settlements", ["number"], unique=True)


def downgrade():
    op.drop_index("uq_settlements_number", table_name="settlements")
    conn = op.get_bind()
    _as_owner(conn)
    restore(conn)
    op.drop_index("ix_settlements_former_number", table_name="settlements")
    op.drop_column("settlements", "former_number")
