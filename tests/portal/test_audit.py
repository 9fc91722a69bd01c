"""The audit log: append-only, complete, readable by auditors and HQ admin only."""
import pytest
from sqlalchemy import delete, select, text, update
from sqlalchemy.exc import DatabaseError

from portal.audit.models import AppendOnlyViolation, AuditEntry
from portal.audit.services import record
from portal.auth.roles import Role
from portal.extensions import db
from portal.tenancy import raw_sql_allowed, unscoped
from tests.factories import sign_in


def _entry(world):
    with unscoped("test"):
        entry = record("test.thing", world.a, before={"x": 1}, after={"x": 2})
        db.session.commit()
    return entry


def test_entries_cannot_be_changed_through_the_orm(ctx, world):
    entry = _entry(world)
    with unscoped("test"):
        entry.action = "forged"
        with pytest.raises(AppendOnlyViolation):
            db.session.flush()
        db.session.rollback()
        db.session.delete(db.session.scalars(select(AuditEntry)).first())
        with pytest.raises(AppendOnlyViolation):
            db.session.flush()
        db.session.rollback()


def test_the_database_refuses_update_and_delete(ctx, world):
    _entry(world)
    with unscoped("test"), raw_sql_allowed("test the trigger"):
        for statement in (update(AuditEntry).values(action="forged"), delete(AuditEntry),
                          text("UPDATE audit_entries SET reason = 'x'")):
            with pytest.raises(DatabaseError):
                with db.session.begin_nested():
                    db.session.execute(statement)


def test_entry_records_actor_object_and_change(ctx, world):
    entry = _entry(world)
    assert (entry.object_type, entry.object_id, entry.agency_id) == ("Agency", str(world.a.id),
                                                                      world.a.id)
    assert entry.before == {"x": 1} and entry.after == {"x": 2}


def test_secrets_never_enter_the_log(ctx, world):
    from portal.audit.services import snapshot

    with unscoped("test"):
        shot = snapshot(world.user(Role.HQ_ADMIN))
        agency_shot = snapshot(world.a)
    assert "password_hash" not in shot and "session_token" not in shot
    assert "bank_account" not in agency_shot


@pytest.mark.parametrize("role", [Role.AUDITOR, Role.HQ_ADMIN])
def test_readers_filter_and_export(client, world, role):
    sign_in(client, world.user(role))
    page = client.get("/audit/?action=auth.sign_in")
    assert page.status_code == 200 and b"auth.sign_in" in page.data
    export = client.get("/audit/export.csv?action=auth")
    assert export.status_code == 200 and export.mimetype == "text/csv"
    assert b"auth.sign_in" in export.data


def test_an_export_holds_every_entry_or_says_why_not(app, client, world, monkeypatch):
    """Never cut short in silence: every selected entry, or a message and no file."""
    from sqlalchemy import insert

    from portal.audit import views

    with app.app_context(), unscoped("the test writes many entries at once"):
        db.session.execute(insert(AuditEntry), [
            {"action": "test.bulk", "object_type": "thing", "object_id": str(n)}
            for n in range(1_234)])
        db.session.commit()
    sign_in(client, world.user(Role.AUDITOR))
    export = client.get("/audit/export.csv?action=test.bulk")
    lines = export.get_data(as_text=True).lstrip("\ufeff").splitlines()
    assert export.status_code == 200 and len(lines) == 1 + 1_234
    assert [line.split(",")[7] for line in lines[1:]] == [str(n) for n in range(1_234)]

    monkeypatch.setattr(views, "EXPORT_LIMIT", 1_000)
    refused = client.get("/audit/export.csv?action=test.bulk", follow_redirects=True,
                         headers={"Accept-Language": "zh-CN"})
    assert refused.mimetype == "text/html" and refused.request.path == "/audit/"
    page = refused.get_data(as_text=True)
    assert "1,234" in page and "一次导出最多 1,000 行" in page
    assert refused.request.args.get("action") == "test.bulk"


def test_a_long_list_says_more_than_instead_of_counting_every_row(app, client, world,
                                                                   monkeypatch):
    """Lists count up to a limit (exact counts over millions of rows took seconds)."""
    from sqlalchemy import insert

    from portal import listing

    with app.app_context(), unscoped("the test writes many entries at once"):
        db.session.execute(insert(AuditEntry), [
            {"action": "test.many", "object_type": "thing", "object_id": str(n)}
            for n in range(60)])
        db.session.commit()
    sign_in(client, world.user(Role.AUDITOR))
    monkeypatch.setattr(listing, "COUNT_LIMIT", 50)
    page = client.get("/audit/?action=test.many", headers={"Accept-Language": "zh-CN"})
    assert "超过 50 条" in page.get_data(as_text=True)
    second = client.get("/audit/?action=test.many&page=2", headers={"Accept-Language": "en"})
    assert "More than 50;" in second.get_data(as_text=True) and b"test.many" in second.data

    monkeypatch.setattr(listing, "COUNT_LIMIT", 60)
    exact = client.get("/audit/?action=test.many", headers={"Accept-Language": "en"})
    assert "60 in total" in exact.get_data(as_text=True)


@pytest.mark.parametrize("role", [r for r in Role if r not in (Role.AUDITOR, Role.HQ_ADMIN)])
def test_others_cannot_read_the_log(client, world, role):
    sign_in(client, world.user(role))
    assert client.get("/audit/").status_code == 403
    assert client.get("/audit/export.csv").status_code == 403


def test_junk_filters_do_not_break_the_page(client, world):
    sign_in(client, world.user(Role.AUDITOR))
    for query in ("from=notadate&to=2026-13-45", "page=-5", "page=abc", "sort=;drop",
                  "agency_id=x", "action=" + "a" * 5000):
        assert client.get(f"/audit/?{query}").status_code == 200, query


def test_csv_export_neutralises_formulas(app, client, world):
    from portal.exports import cell

    assert cell("=HYPERLINK(1)") == "'=HYPERLINK(1)"
    assert cell("+1") == "'+1" and cell("plain") == "plain"


def test_the_export_prints_the_networks_local_time_and_names_its_zone(app, client, world):
    """The page shows local time; the CSV showed UTC, a day earlier around midnight, and
    its file name took the server's clock."""
    from datetime import UTC, datetime

    import time_machine

    # 17:30 UTC on New Year's Eve is 01:30 on New Year's Day in Shanghai.
    with time_machine.travel(datetime(2026, 12, 31, 17, 30, tzinfo=UTC), tick=False):
        sign_in(client, world.user(Role.AUDITOR))
        with app.app_context(), unscoped("an entry at a known instant"):
            record("test.midnight", world.a)
            db.session.commit()
        export = client.get("/audit/export.csv?action=test.midnight")
    lines = export.get_data(as_text=True).lstrip("\ufeff").splitlines()
    assert lines[0].split(",")[1] == "at (Asia/Shanghai)"
    assert lines[1].split(",")[1] == "2027-01-01 01:30:00"
    assert "filename=audit-20270101-0130.csv" in export.headers["Content-Disposition"]


def test_a_refused_export_goes_back_to_the_list_and_nowhere_else(client, world, monkeypatch):
    """The query string used to reach url_for: `_external`, `_scheme` and `_anchor` built an
    absolute link of the caller's choosing."""
    from portal.audit import views

    sign_in(client, world.user(Role.AUDITOR))
    monkeypatch.setattr(views, "EXPORT_LIMIT", 0)
    refused = client.get("/audit/export.csv?action=auth&_external=1&_scheme=javascript"
                         "&_anchor=x&_method=POST&sort=-at")
    assert refused.status_code == 302
    location = refused.headers["Location"]
    assert location.startswith("/audit/?") and "#" not in location
    for forged in ("javascript", "_external", "_scheme", "_anchor", "_method", "//"):
        assert forged not in location, forged
    assert "action=auth" in location and "sort=-at" in location
