"""settlement: one spelling of a quarter, "2026Q3" (as portal.periods.Period writes it)

Grade lines stored their quarter as "2026-Q3" while the evaluation area writes "2026Q3". The
stored values of settlement_claims.grade_period (under the partial unique index of live
claims: one live grade claim per agency and quarter) and settlement_lines.grade_period are
rewritten in place; the downgrade writes the old spelling back. Both spellings fit String(8).

The rewrite maps one spelling onto the other one to one, so it cannot make two live claims
of an agency equal, unless a claim in the new spelling was written before this migration ran
(the new code against the old schema): then the upgrade stops and names them rather than fail
on the unique index.

Revision ID: stl0003
Revises: stlscale1
Create Date: 2026-12-04 09:00:00

"""
import sqlalchemy as sa
from alembic import op

revision = "stl0003"
down_revision = "stlscale1"
branch_labels = None
depends_on = None

TABLES = ("settlement_claims", "settlement_lines")
DASHED = "____-Q_"  # LIKE pattern of "2026-Q3"
LABEL = "____Q_"  # LIKE pattern of "2026Q3"
# The same SQL on SQLite and PostgreSQL: substr() and || exist in both.
TO_LABEL = "substr(grade_period, 1, 4) || substr(grade_period, 6)"
TO_DASHED = "substr(grade_period, 1, 4) || '-' || substr(grade_period, 5)"


def _as_owner(conn) -> None:
    """The tables force row-level security on their owner too: see every agency's rows."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT set_config('portal.scope', 'all', true)"))


def _both_spellings(conn, pattern: str, rewritten: str) -> list[tuple[int, str]]:
    """(agency id, quarter) of live claims that the rewrite would make equal to another."""
    target = rewritten.replace("grade_period", "mine.grade_period")
    query = ("SELECT mine.agency_id, mine.grade_period FROM settlement_claims mine "  # noqa: S608
             "JOIN settlement_claims other ON other.agency_id = mine.agency_id "
             f"AND other.grade_period = {target} "  # constants of this module only
             "WHERE mine.grade_period LIKE :pattern AND mine.is_live = :live "
             "AND other.is_live = :live")
    return [tuple(row) for row in conn.execute(sa.text(query),
                                               {"pattern": pattern, "live": True})]


def respell(conn, pattern: str, rewritten: str) -> int:
    """Rewrite the grade_period values matching `pattern` as `rewritten` in both tables;
    returns the rows changed. Raises RuntimeError (nothing changed) where two live claims of
    an agency would end up on the same quarter."""
    clash = _both_spellings(conn, pattern, rewritten)
    if clash:
        raise RuntimeError(
            "live grade claims of the same quarter in both spellings (agency id, quarter): "
            f"{clash}; withdraw one of the two settlements, then run the migration again")
    changed = 0
    for table in TABLES:
        # Agency by agency, as every statement on an agency's table is written (grade lines
        # are a handful per agency and quarter).
        agencies = conn.execute(sa.text(
            f"SELECT DISTINCT agency_id FROM {table} "  # noqa: S608 - constants
            "WHERE grade_period LIKE :pattern"), {"pattern": pattern}).scalars().all()
        for agency_id in agencies:
            changed += conn.execute(sa.text(
                f"UPDATE {table} SET grade_period = {rewritten} "  # noqa: S608 - constants
                "WHERE agency_id = :agency_id AND grade_period LIKE :pattern"),
                {"agency_id": agency_id, "pattern": pattern}).rowcount
    return changed


def upgrade():
    conn = op.get_bind()
    _as_owner(conn)
    respell(conn, DASHED, TO_LABEL)


def downgrade():
    conn = op.get_bind()
    _as_owner(conn)
    respell(conn, LABEL, TO_DASHED)
