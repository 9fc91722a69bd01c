"""row-level security reads the scope once per statement; merges the area branches

The policies called ``portal_scope_allows(owner)`` for every row. That SQL function holds a
sub-select (the region's agencies), so PostgreSQL cannot inline it: counting 2,000,000 rows in
HQ's scope took 14 s instead of 0.1 s. The policies now compare the owner with the scope's
kind and id read by uncorrelated sub-selects, which PostgreSQL evaluates once per statement
(:func:`portal.dbsecurity.tenant_check`); the same rows stay visible in every scope.

This revision depends on every area's latest revision, so that it rewrites the policies of
every table that has one (read from ``pg_policies``). SQLite has no row-level security.

Revision ID: rls0002
Revises: core0002, cert0001, stl0002, evl0002, svcscale1
Create Date: 2026-11-30 13:10:00

"""
import re

import sqlalchemy as sa
from alembic import op

from portal import dbsecurity

revision = "rls0002"
down_revision = ("core0002", "cert0001", "stl0002", "evl0002", "svcscale1")
branch_labels = None
depends_on = None

# The policies as the earlier revisions created them (for the downgrade).
OLD_AGENCIES_CHECK = """CASE split_part(coalesce(current_setting('portal.scope', true), ''), ':', 1)
    WHEN 'all' THEN true
    WHEN 'agency' THEN id = nullif(split_part(current_setting('portal.scope', true), ':', 2), '')::int
    WHEN 'region' THEN region_id = nullif(split_part(current_setting('portal.scope', true), ':', 2), '')::int
    ELSE false END"""
OLD_ALL = "coalesce(current_setting('portal.scope', true), '') = 'all'"


def _old_check(column: str, hq_rows: bool, accounts: bool) -> str:
    check = f"portal_scope_allows({column})"
    if hq_rows or accounts:
        check = f"(CASE WHEN {column} IS NULL THEN {OLD_ALL} ELSE {check} END)"
    if accounts:
        check = f"(id = nullif(current_setting('portal.user_id', true), '')::int OR {check})"
    return check


def _policies(bind) -> list[tuple[str, str]]:
    return bind.execute(sa.text(
        "SELECT tablename, qual FROM pg_policies "
        "WHERE schemaname = current_schema() AND policyname = 'tenant_isolation' "
        "AND tablename <> 'agencies' ORDER BY tablename")).all()


def _replace(table: str, check: str) -> None:
    op.execute(f"DROP POLICY tenant_isolation ON {table}")
    op.execute(f"CREATE POLICY tenant_isolation ON {table} USING ({check}) WITH CHECK ({check})")


def upgrade():
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    op.execute(dbsecurity.SCOPE_FUNCTION)  # now declared PARALLEL SAFE
    op.execute("DROP POLICY tenant_isolation ON agencies")
    op.execute(dbsecurity.AGENCIES_POLICY)
    for table, qual in _policies(bind):
        found = re.search(r"portal_scope_allows\((\w+)\)", qual)
        if found is None:
            continue  # already reads the scope once per statement
        _replace(table, dbsecurity.tenant_check(
            found.group(1), hq_rows="IS NULL" in qual,
            is_accounts_table="portal.user_id" in qual))
    op.execute("DROP POLICY audit_read ON audit_entries")
    op.execute(f"CREATE POLICY audit_read ON audit_entries FOR SELECT "
               f"USING ({dbsecurity.SCOPE_KIND} = 'all')")


def downgrade():
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    op.execute("DROP POLICY tenant_isolation ON agencies")
    op.execute(f"CREATE POLICY tenant_isolation ON agencies USING ({OLD_AGENCIES_CHECK})")
    for table, qual in _policies(bind):
        found = re.search(r"WHEN 'agency'::text THEN \((\w+) = ", qual)
        if found is None:
            continue
        _replace(table, _old_check(found.group(1), "IS NULL" in qual, "portal.user_id" in qual))
    op.execute("DROP POLICY audit_read ON audit_entries")
    op.execute(f"CREATE POLICY audit_read ON audit_entries FOR SELECT USING ({OLD_ALL})")
