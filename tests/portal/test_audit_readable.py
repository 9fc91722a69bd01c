"""The audit log reads like a record of what people did: translated actions and roles, objects
by their numbers with links, before → after as the fields that changed, sign-ins apart,
filters by object, person, agency and local day, and a CSV with readable and raw columns."""
import csv
import io
import re
from datetime import UTC, date, datetime

import pytest
from flask_babel import force_locale
from sqlalchemy import insert

from portal import transitions
from portal.audit.models import AuditEntry
from portal.audit.services import record
from portal.auth.roles import ROLE_LABELS, Role
from portal.extensions import db
from portal.tenancy import unscoped
from settlement.models import Settlement
from tests.factories import sign_in

EN = {"Accept-Language": "en"}
ZH = {"Accept-Language": "zh-CN"}


def _settlement(agency, number="ST202610-01", month=10) -> Settlement:
    settlement = Settlement(agency_id=agency.id, number=number, year=2026, month=month,
                            computed_on=date(2026, 11, 1))
    db.session.add(settlement)
    db.session.flush()
    return settlement


def _entry(action, obj=None, *, actor=None, at=None, **kw) -> AuditEntry:
    entry = record(action, obj, actor=actor, **kw)
    if at is not None:
        entry.at = at
    db.session.flush()
    return entry


@pytest.fixture
def decided(app, world):
    """A settlement of agency A and HQ settlement's decision on one of its lines."""
    with app.app_context(), unscoped("the test writes audit entries"):
        settlement = _settlement(world.a)
        entry = _entry("settlement.line_decided", settlement,
                       actor=world.user(Role.HQ_SETTLEMENT),
                       before={"status": "submitted", "approved_total": "100.00",
                               "line_decision": "pending", "line_amount": None},
                       after={"status": "submitted", "approved_total": "1234.50",
                              "line_decision": "adjusted", "line_amount": "34.50",
                              "reason_code": "duplicate",
                              "submitted_at": "2026-12-31T16:30:00+00:00",
                              "paid_on": "2027-01-02"},
                       reason="Same repair claimed twice " * 4)
        db.session.commit()
        return settlement.id, entry.id


def _table(response) -> str:
    """The log's table body, as text and markup (the filter form names raw codes too)."""
    html = response.get_data(as_text=True)
    return html[html.find("<tbody>"):html.rfind("</tbody>")]


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


@pytest.mark.parametrize("headers,locale", [(EN, "en"), (ZH, "zh_CN")])
def test_actions_and_roles_are_named_in_the_readers_language(app, client, world, decided,
                                                             headers, locale):
    sign_in(client, world.user(Role.AUDITOR))
    body = _table(client.get("/audit/?action=settlement.line_decided", headers=headers))
    with app.test_request_context(), force_locale(locale):
        action = str(transitions.get("settlement.line_decided").label)
        role = str(ROLE_LABELS[Role.HQ_SETTLEMENT])
    email = world.user(Role.HQ_SETTLEMENT).email  # "hq_settlement.9@test.example"
    assert action in body and role in body and email in body  # who, by name and address
    words = body.replace(email, "")
    assert "settlement.line_decided" not in words and "hq_settlement" not in words


def test_objects_show_their_numbers_and_link_to_their_pages(client, world, decided):
    settlement_id, _entry_id = decided
    sign_in(client, world.user(Role.AUDITOR))
    body = _table(client.get("/audit/?action=settlement.line_decided", headers=EN))
    assert f'<a href="/settlements/{settlement_id}">ST202610-01</a>' in body
    assert f'<a href="/agencies/{world.a.id}">A-OWN</a>' in body
    assert f"Settlement {settlement_id}" not in _text(body)


def test_a_deleted_or_unknown_object_is_named_by_type_and_id_without_a_link(app, client,
                                                                            world):
    with app.app_context(), unscoped("the test writes audit entries"):
        _entry("settlement.withdrawn", object_type="Settlement", object_id=987654)
        _entry("test.gadget", object_type="Gadget", object_id=12)
        db.session.commit()
    sign_in(client, world.user(Role.AUDITOR))
    body = _table(client.get("/audit/?action=settlement.withdrawn", headers=EN))
    assert "Settlement #987654" in _text(body) and "/settlements/987654" not in body
    body = _table(client.get("/audit/?action=test.gadget", headers=EN))
    assert "Gadget #12" in _text(body) and "test.gadget" in body  # nobody named it: the code


def test_links_only_where_the_reader_may_open_the_page(app, client, world):
    """Accounts are edited by HQ admin: the auditor reads the name, the admin gets a link."""
    staff = world.user(Role.AGENCY_STAFF)
    with app.app_context(), unscoped("the test writes audit entries"):
        _entry("user.updated", staff, before={"name": "Old"}, after={"name": "New"})
        db.session.commit()
    sign_in(client, world.user(Role.AUDITOR))
    body = _table(client.get("/audit/?action=user.updated", headers=EN))
    assert staff.name in body and f"/users/{staff.id}/edit" not in body
    admin = client.application.test_client()
    sign_in(admin, world.user(Role.HQ_ADMIN))
    body = _table(admin.get("/audit/?action=user.updated", headers=EN))
    assert f'<a href="/users/{staff.id}/edit">{staff.name}</a>' in body


def test_before_and_after_read_as_a_table_of_changed_fields(client, world, decided):
    sign_in(client, world.user(Role.AUDITOR))
    body = _table(client.get("/audit/?action=settlement.line_decided", headers=EN))
    text = _text(body)
    assert "<details" in body and "<table" in body
    assert "Approved total CN¥100.00 CN¥1,234.50" in text  # money, with the money filter
    assert "Decision Pending Adjusted" in text  # states through their labels
    assert "Line amount — CN¥34.50" in text
    assert "Reason code — Duplicate" in text
    # 16:30 UTC on New Year's Eve is half past midnight on New Year's Day in Shanghai.
    assert "Jan 1, 2027, 00:30" in text and "Jan 2, 2027" in text
    assert '"approved_total"' not in body and "{" not in text  # no JSON
    zh = _text(_table(client.get("/audit/?action=settlement.line_decided", headers=ZH)))
    assert "¥1,234.50" in zh and "2027年1月2日" in zh and "待审核" in zh


def test_unchanged_fields_stay_out_of_the_diff(client, world, decided):
    sign_in(client, world.user(Role.AUDITOR))
    text = _text(_table(client.get("/audit/?action=settlement.line_decided", headers=EN)))
    diff = text[text.find("Field Before After"):]
    assert "Status" not in diff  # submitted on both sides


def test_the_reason_column_wraps(client, world, decided):
    sign_in(client, world.user(Role.AUDITOR))
    body = _table(client.get("/audit/?action=settlement.line_decided", headers=EN))
    cell = re.search(r'<td class="([^"]*)">Same repair claimed twice', body)
    assert cell and "audit-values" in cell.group(1) and "text-wrap" in cell.group(1)


def test_sign_ins_are_hidden_by_default_and_shown_by_their_filter(client, world, decided):
    sign_in(client, world.user(Role.AUDITOR))  # writes a sign-in entry
    with client.application.test_request_context(), force_locale("en"):
        signed_in = str(transitions.get("auth.sign_in").label)
    default = _text(_table(client.get("/audit/", headers=EN)))
    assert signed_in not in default and "Line decided" in default
    only = _text(_table(client.get("/audit/?signins=only", headers=EN)))
    assert signed_in in only and "Line decided" not in only
    both = _text(_table(client.get("/audit/?signins=with", headers=EN)))
    assert signed_in in both and "Line decided" in both


@pytest.fixture
def spread(app, world):
    """Entries by different people, about different agencies' objects, on different days."""
    with app.app_context(), unscoped("the test writes audit entries"):
        a_settlement = _settlement(world.a, "ST202610-01")
        b_settlement = _settlement(world.b, "ST202611-07", month=11)
        hq, admin = world.user(Role.HQ_SETTLEMENT), world.user(Role.HQ_ADMIN)
        _entry("settlement.approved", a_settlement, actor=hq,
               at=datetime(2026, 12, 31, 16, 30, tzinfo=UTC))  # 2027-01-01 00:30 local
        _entry("settlement.approved", b_settlement, actor=hq,
               at=datetime(2026, 12, 31, 15, 30, tzinfo=UTC))  # 2026-12-31 23:30 local
        _entry("agency.updated", world.b, actor=admin, before={"tier": 3}, after={"tier": 4},
               at=datetime(2027, 1, 1, 2, 0, tzinfo=UTC))
        db.session.commit()


def _objects(client, query: str) -> list[str]:
    body = _table(client.get(f"/audit/?{query}", headers=EN))
    return re.findall(r'<td class="audit-object"><a href="[^"]*">([^<]+)</a>', body)


@pytest.mark.parametrize("query,expected", [
    ("action=settlement.approved", ["ST202610-01", "ST202611-07"]),
    ("action=settlement", ["ST202610-01", "ST202611-07"]),
    ("object_type=Agency", ["B-FOR"]),
    ("object_type=Settlement&object=202611", ["ST202611-07"]),
    ("object=ST202610-01", ["ST202610-01"]),
    ("object=B-FOR", ["B-FOR"]),
    ("agency=A-OWN", ["ST202610-01"]),
    ("agency=b-for", ["B-FOR", "ST202611-07"]),
    ("from=2027-01-01&to=2027-01-01", ["B-FOR", "ST202610-01"]),
    ("to=2026-12-31", ["ST202611-07"]),
    ("from=2027-01-02", []),
])
def test_each_filter_narrows_the_list(client, world, spread, query, expected):
    sign_in(client, world.user(Role.AUDITOR))
    assert sorted(_objects(client, query)) == sorted(expected)


def test_the_person_filter_finds_by_name_or_email(client, world, spread):
    sign_in(client, world.user(Role.AUDITOR))
    hq, admin = world.user(Role.HQ_SETTLEMENT), world.user(Role.HQ_ADMIN)
    assert sorted(_objects(client, f"actor={hq.name}")) == ["ST202610-01", "ST202611-07"]
    assert _objects(client, f"actor={admin.email.split('@')[0].upper()}") == ["B-FOR"]
    assert _objects(client, "actor=nobody-at-all") == []


def test_filters_of_any_shape_never_break_the_page(client, world, spread):
    sign_in(client, world.user(Role.AUDITOR))
    for query in ("object=%25", "object=_", "object_type=Nope&object=x", "agency=%25%25",
                  "actor=" + "x" * 600, "object_type=Appeal@evaluation.&object=Q",
                  "object_type=Appeal@nothing", "signins=bogus", "object=" + "9" * 40):
        assert client.get(f"/audit/?{query}").status_code == 200, query
    assert _objects(client, "object=%25") == [] and _objects(client, "agency=_") == []


def test_the_export_has_readable_and_raw_columns_in_local_time(client, world, spread):
    sign_in(client, world.user(Role.AUDITOR))
    export = client.get("/audit/export.csv?action=settlement.approved&object=ST202610-01",
                        headers=EN)
    rows = list(csv.reader(io.StringIO(export.get_data(as_text=True).lstrip("\ufeff"))))
    header, (row,) = rows[0], rows[1:]
    data = dict(zip(header, row, strict=True))
    assert data["at (Asia/Shanghai)"] == "2027-01-01 00:30:00"
    assert data["action"] == "settlement.approved" and data["Action"] == "Approved"
    assert data["object_type"] == "Settlement" and data["Object"] == "ST202610-01"
    assert data["actor_id"] == str(world.user(Role.HQ_SETTLEMENT).id)
    assert data["Actor"] == world.user(Role.HQ_SETTLEMENT).name
    assert data["Role"] == "HQ settlement" and data["role"] == "hq_settlement"
    assert data["Agency"] == "A-OWN" and data["agency_id"] == str(world.a.id)
    export = client.get("/audit/export.csv?action=agency.updated", headers=EN)
    rows = list(csv.reader(io.StringIO(export.get_data(as_text=True).lstrip("\ufeff"))))
    data = dict(zip(rows[0], rows[1], strict=True))
    assert data["before"] == '{"tier": 3}' and data["after"] == '{"tier": 4}'
    assert data["Changes"] == "Tier (stars): 3 → 4"


def test_the_export_keeps_sign_ins_out_like_the_page(client, world, spread):
    sign_in(client, world.user(Role.AUDITOR))
    export = client.get("/audit/export.csv", headers=EN).get_data(as_text=True)
    assert "settlement.approved" in export and "auth.sign_in" not in export
    assert "auth.sign_in" in client.get("/audit/export.csv?signins=only").get_data(as_text=True)


@pytest.mark.parametrize("role", [r for r in Role if r not in (Role.AUDITOR, Role.HQ_ADMIN)])
def test_nobody_else_reads_the_log_whatever_the_filters(client, world, spread, role):
    sign_in(client, world.user(role))
    for url in ("/audit/?object=ST202611-07&agency=B-FOR", "/audit/?signins=only",
                "/audit/export.csv?object=ST202611-07"):
        response = client.get(url)
        assert response.status_code == 403 and b"audit-object" not in response.data
        assert response.mimetype == "text/html"  # no file


def test_a_page_reads_its_labels_with_one_query_whatever_it_holds(app, client, world,
                                                                  query_counter):
    """A page of one kind of object and a page of many kinds cost the same statements."""
    sign_in(client, world.user(Role.AUDITOR))
    with app.app_context(), unscoped("the test writes audit entries"):
        _entry("settlement.opened", _settlement(world.a, "ST202601-01", month=1))
        db.session.commit()
    with query_counter as few:
        assert client.get("/audit/").status_code == 200
    with app.app_context(), unscoped("the test writes many audit entries"):
        for n in range(2, 10):
            _entry("settlement.opened", _settlement(world.a, f"ST2026{n:02d}-01", month=n),
                   actor=world.user(Role.HQ_ADMIN), after={"line_id": n, "work_order_id": n})
        for agency in (world.a, world.a2, world.b):
            _entry("agency.updated", agency, actor=world.user(Role.HQ_ADMIN),
                   after={"region_id": agency.region_id, "product_line_ids": [world.line.id]})
        for user in world.users.values():
            _entry("user.updated", user, actor=world.user(Role.HQ_ADMIN))
        db.session.execute(insert(AuditEntry), [
            {"action": "test.bulk", "object_type": "Gadget", "object_id": str(n)}
            for n in range(5)])
        db.session.commit()
    with query_counter as many:
        page = client.get("/audit/")
    assert page.status_code == 200 and b"ST202609-01" in page.data
    assert many.count == few.count, (few.statements, many.statements)
