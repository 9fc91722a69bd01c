"""PostgreSQL's second wall: row-level security and a plain application role."""
import os
import re
from datetime import date

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

from certification.models import Engineer
from portal.extensions import db
from portal.tenancy import (
    NONE,
    agency_scope,
    raw_sql_allowed,
    region_scope,
    scoped,
    tenant_models,
    unscoped,
)

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not os.environ.get("DATABASE_URL", "").startswith("postgres"),
                       reason="needs DATABASE_URL pointing at PostgreSQL (.ci/run sets it)"),
]


@pytest.fixture
def engineers(ctx, world):
    with unscoped("fixture"):
        for agency, name in ((world.a, "a"), (world.a2, "s"), (world.b, "b")):
            db.session.add(Engineer(agency_id=agency.id, name=name, id_number=f"N{name}",
                                    hire_date=date(2020, 1, 1)))
        db.session.commit()


def test_application_role_is_plain(ctx):
    row = db.session.execute(text(
        "SELECT rolsuper, rolbypassrls, current_user FROM pg_roles "
        "WHERE rolname = current_user")).one()
    assert row.rolsuper is False and row.rolbypassrls is False
    owned = db.session.scalar(text(
        "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' "
        "AND tableowner = current_user"))
    assert owned == 0, "the application role must not own tables (owners can skip RLS)"


def test_every_scoped_table_has_forced_row_level_security(ctx):
    tables = {m.__tablename__ for m in tenant_models()} | {"audit_entries"}
    rows = dict(db.session.execute(text(
        "SELECT relname, relrowsecurity AND relforcerowsecurity FROM pg_class "
        "WHERE relname = ANY(:names)"), {"names": sorted(tables)}).all())
    assert set(rows) == tables
    assert all(rows.values()), {t: v for t, v in rows.items() if not v}


def test_raw_sql_in_an_agency_scope_reads_only_that_agency(ctx, world, engineers):
    with scoped(agency_scope(world.a.id)), raw_sql_allowed("test the database wall"):
        names = db.session.execute(text("SELECT name FROM engineers ORDER BY name")).scalars()
        assert list(names) == ["a"]
        agencies = db.session.execute(text("SELECT code FROM agencies")).scalars().all()
        assert agencies == ["A-OWN"]


def test_raw_sql_in_a_region_scope_reads_that_region(ctx, world, engineers):
    with scoped(region_scope(world.region1.id)), raw_sql_allowed("test the database wall"):
        names = db.session.execute(text("SELECT name FROM engineers ORDER BY name")).scalars()
        assert list(names) == ["a", "s"]


def test_no_scope_reads_nothing(ctx, world, engineers):
    with scoped(NONE), raw_sql_allowed("test the database wall"):
        assert db.session.execute(text("SELECT count(*) FROM engineers")).scalar() == 0
        assert db.session.execute(text("SELECT count(*) FROM users")).scalar() == 0


def test_raw_insert_for_another_agency_is_refused(ctx, world, engineers):
    with scoped(agency_scope(world.a.id)), raw_sql_allowed("test the database wall"):
        with pytest.raises(DBAPIError, match="row-level security"):
            with db.session.begin_nested():
                db.session.execute(text(
                    "INSERT INTO engineers (agency_id, name, id_number, phone, education, "
                    "hire_date, status, created_at) VALUES (:b, 'x', 'x', '', 'college', "
                    "'2020-01-01', 'active', now())"), {"b": world.b.id})


def test_application_cannot_change_audit_entries(ctx, world):
    from portal.audit.services import record

    with unscoped("test"):
        record("test.x", world.a)
        db.session.flush()
        with pytest.raises(DBAPIError, match="permission denied"):
            with db.session.begin_nested():
                db.session.execute(text("DELETE FROM audit_entries"))


def test_agency_scope_can_write_but_not_read_the_audit_log(ctx, world):
    from portal.audit.services import record

    with scoped(agency_scope(world.a.id)), raw_sql_allowed("test the database wall"):
        record("test.agency_action", world.a)
        db.session.flush()
        assert db.session.execute(text("SELECT count(*) FROM audit_entries")).scalar() == 0


def test_scope_setting_dies_with_the_transaction(app, world):
    """A pooled connection never carries one user's scope into the next transaction."""
    engine = create_engine(app.config["SQLALCHEMY_DATABASE_URI"], pool_size=1,
                           max_overflow=0)
    try:
        with engine.connect() as conn:
            with conn.begin():
                conn.execute(text("SELECT set_config('portal.scope', 'agency:1', true)"))
                assert conn.execute(text(
                    "SELECT current_setting('portal.scope', true)")).scalar() == "agency:1"
            with conn.begin():
                leftover = conn.execute(text(
                    "SELECT current_setting('portal.scope', true)")).scalar()
                assert leftover in (None, "")
                assert conn.execute(text("SELECT count(*) FROM agencies")).scalar() == 0
    finally:
        engine.dispose()


def test_every_policy_reads_the_scope_once_per_statement(ctx):
    """A policy calling a function per row made HQ's scans 100× slower (14 s for 2,000,000
    rows): the scope is read by sub-selects that PostgreSQL runs once per statement."""
    quals = dict(db.session.execute(text(
        "SELECT tablename || '.' || policyname, qual FROM pg_policies "
        "WHERE schemaname = current_schema() AND qual IS NOT NULL")).all())
    assert len(quals) >= len(tenant_models())
    once = re.compile(r'\( SELECT .*? AS (split_part|"nullif")\)', re.DOTALL)
    per_row = {name for name, qual in quals.items()
               if "portal_scope_allows" in qual or "current_setting" in once.sub("", qual)}
    assert per_row == set()
    with scoped(agency_scope(1)), raw_sql_allowed("read the plan"):
        plan = "\n".join(db.session.execute(text(
            "EXPLAIN SELECT count(*) FROM work_orders")).scalars())
    assert "InitPlan" in plan and "portal_scope_allows" not in plan


def test_a_failed_statement_inside_a_scope_block_surfaces_its_own_error(ctx, world):
    """Leaving a scope block re-sends the scope; after a failed statement that would fail
    too ("current transaction is aborted") and hide what went wrong."""
    with pytest.raises(DBAPIError) as failed:
        with scoped(agency_scope(world.a.id)), unscoped("test a failing statement"):
            db.session.execute(text("SELECT 2147483647::int + 1"))
    assert "out of range" in str(failed.value)
    db.session.rollback()
    with scoped(agency_scope(world.a.id)), raw_sql_allowed("the scope is back after rollback"):
        assert db.session.scalar(text("SELECT current_setting('portal.scope', true)")) == \
            f"agency:{world.a.id}"
