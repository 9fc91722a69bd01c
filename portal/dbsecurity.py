"""Database-side walls, created by migrations: row-level security and the append-only log.

PostgreSQL gets a policy on every scoped table that reads the per-transaction setting
``portal.scope`` ('all', 'agency:<id>', 'region:<id>' or 'none'), enabled and forced so the
table owner is bound too. Both databases get triggers that refuse UPDATE and DELETE on the
audit log.
"""
from alembic import op

# The scope's kind and id as uncorrelated sub-selects: PostgreSQL evaluates each once per
# statement (an InitPlan), not once per row. A policy calling a SQL function per row cost 14 s
# instead of 0.1 s for the whole network's 2,000,000 rows (the function has a sub-select, so
# the planner cannot inline it).
SCOPE_KIND = "(SELECT split_part(coalesce(current_setting('portal.scope', true), ''), ':', 1))"
SCOPE_ID = "(SELECT nullif(split_part(current_setting('portal.scope', true), ':', 2), '')::int)"
USER_ID = "(SELECT nullif(current_setting('portal.user_id', true), '')::int)"

# Kept for raw SQL and older policies; the policies no longer call it.
SCOPE_FUNCTION = """
CREATE OR REPLACE FUNCTION portal_scope_allows(owner integer) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT CASE split_part(coalesce(current_setting('portal.scope', true), ''), ':', 1)
    WHEN 'all' THEN true
    WHEN 'agency' THEN owner = nullif(split_part(current_setting('portal.scope', true), ':', 2), '')::int
    WHEN 'region' THEN owner IN (
      SELECT a.id FROM agencies a
      WHERE a.region_id = nullif(split_part(current_setting('portal.scope', true), ':', 2), '')::int)
    ELSE false
  END
$$;
"""

AGENCIES_CHECK = (f"CASE {SCOPE_KIND} WHEN 'all' THEN true "
                  f"WHEN 'agency' THEN id = {SCOPE_ID} "
                  f"WHEN 'region' THEN region_id = {SCOPE_ID} ELSE false END")
AGENCIES_POLICY = f"CREATE POLICY tenant_isolation ON agencies USING ({AGENCIES_CHECK})"


def tenant_check(owner_column: str = "agency_id", *, hq_rows: bool = False,
                 is_accounts_table: bool = False) -> str:
    """The row-level security condition of a table keyed on `owner_column`.

    `hq_rows`: rows without an owner belong to HQ and are visible in the 'all' scope only.
    `is_accounts_table`: the users table, where every account may also read its own row
    (``portal.user_id`` is set with the scope).
    """
    check = (f"CASE {SCOPE_KIND} WHEN 'all' THEN true "
             f"WHEN 'agency' THEN {owner_column} = {SCOPE_ID} "
             f"WHEN 'region' THEN {owner_column} IN "
             f"(SELECT a.id FROM agencies a WHERE a.region_id = {SCOPE_ID}) "
             f"ELSE false END")
    if hq_rows or is_accounts_table:
        check = (f"CASE WHEN {owner_column} IS NULL THEN {SCOPE_KIND} = 'all' "
                 f"ELSE {check} END")
    if is_accounts_table:
        check = f"(id = {USER_ID} OR {check})"
    return check


def _is_postgresql() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def create_scope_function() -> None:
    if _is_postgresql():
        op.execute(SCOPE_FUNCTION)
        op.execute(AGENCIES_POLICY)
        op.execute("ALTER TABLE agencies ENABLE ROW LEVEL SECURITY")
        op.execute("ALTER TABLE agencies FORCE ROW LEVEL SECURITY")


def drop_scope_function() -> None:
    if _is_postgresql():
        op.execute("DROP POLICY IF EXISTS tenant_isolation ON agencies")
        op.execute("ALTER TABLE agencies NO FORCE ROW LEVEL SECURITY")
        op.execute("ALTER TABLE agencies DISABLE ROW LEVEL SECURITY")
        op.execute("DROP FUNCTION IF EXISTS portal_scope_allows(integer)")


def enable_tenant_rls(table: str, owner_column: str = "agency_id", *,
                      hq_rows: bool = False, is_accounts_table: bool = False) -> None:
    """Enable and force row-level security on `table`, keyed on its owner column (see
    :func:`tenant_check` for the options)."""
    if not _is_postgresql():
        return
    check = tenant_check(owner_column, hq_rows=hq_rows, is_accounts_table=is_accounts_table)
    op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
    op.execute(f"CREATE POLICY tenant_isolation ON {table} USING ({check}) WITH CHECK ({check})")


def disable_tenant_rls(table: str) -> None:
    if not _is_postgresql():
        return
    op.execute(f"DROP POLICY IF EXISTS tenant_isolation ON {table}")
    op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")


def make_append_only(table: str) -> None:
    """Refuse UPDATE and DELETE on `table` for everyone, the owner included."""
    if _is_postgresql():
        op.execute("""
            CREATE OR REPLACE FUNCTION portal_refuse_change() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END $$;""")
        op.execute(f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                   f"FOR EACH ROW EXECUTE FUNCTION portal_refuse_change()")
    else:
        for event in ("UPDATE", "DELETE"):
            op.execute(f"CREATE TRIGGER {table}_no_{event.lower()} BEFORE {event} ON {table} "
                       f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END")


def drop_append_only(table: str) -> None:
    if _is_postgresql():
        op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
    else:
        for event in ("update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{event}")


def protect_audit_log(table: str = "audit_entries") -> None:
    """Audit rows: anyone may add (the app inserts without RETURNING), only HQ scope reads."""
    make_append_only(table)
    if not _is_postgresql():
        return
    op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
    op.execute(f"CREATE POLICY audit_insert ON {table} FOR INSERT WITH CHECK (true)")
    op.execute(f"CREATE POLICY audit_read ON {table} FOR SELECT USING ({SCOPE_KIND} = 'all')")


def unprotect_audit_log(table: str = "audit_entries") -> None:
    drop_append_only(table)
    if _is_postgresql():
        op.execute(f"DROP POLICY IF EXISTS audit_insert ON {table}")
        op.execute(f"DROP POLICY IF EXISTS audit_read ON {table}")
        op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")


def grant_app_role(connection, role: str) -> None:
    """Give the application's login role what it needs, and not more (run as the owner).

    The role must be neither superuser, table owner nor BYPASSRLS, so that row-level security
    binds it; it may never update or delete audit entries.
    """
    quoted = connection.dialect.identifier_preparer.quote(role)
    for statement in (
        f"GRANT USAGE ON SCHEMA public TO {quoted}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {quoted}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {quoted}",
        f"REVOKE UPDATE, DELETE, TRUNCATE ON audit_entries FROM {quoted}",
        f"REVOKE ALL ON alembic_version FROM {quoted}",
        f"GRANT SELECT ON alembic_version TO {quoted}",
    ):
        connection.exec_driver_sql(statement)


def recipient_check(owner_column: str = "recipient_id") -> str:
    """Rows of one account (inbox items, e-mails, preferences): a signed-in account reads its
    own, whatever its role; only the system's whole-network scope (no account set: the write
    path's receivers, the tick, workers) reads everyone's."""
    return (f"CASE WHEN {USER_ID} IS NOT NULL THEN {owner_column} = {USER_ID} "
            f"WHEN {SCOPE_KIND} = 'all' THEN true ELSE false END")


def enable_recipient_rls(table: str, owner_column: str = "recipient_id") -> None:
    if not _is_postgresql():
        return
    check = recipient_check(owner_column)
    op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
    op.execute(f"CREATE POLICY tenant_isolation ON {table} USING ({check}) WITH CHECK ({check})")
