"""The agency's 360 (issue #16): every area's panel on the agency page with its figures, who
sees which, and the lifecycle change that contradicts the evidence (warned, confirmed, audited).

A small network written directly: agency A (on probation) with orders, complaints, returns,
settlements, an engineer, a published quarter graded D and a draft one carrying an
elimination warning; agency B with figures of its own that must never show on A's page.
"""
import itertools
import re
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

import pytest
from flask import g
from sqlalchemy import select

from certification.models import Certificate, Engineer, Program
from evaluation.models import Quarter, Result
from inbox.models import InboxItem
from portal import clock
from portal.audit.models import AuditEntry
from portal.auth.roles import Role
from portal.extensions import db
from portal.periods import Period
from portal.tenancy import unscoped
from service.models import Complaint, Part, PartReturn, WorkOrder, WorkOrderPart
from settlement.models import Settlement
from tenants.models import Agency, AgencyStatus, ProductModel
from tests.factories import make_user, sign_in

_seq = itertools.count(1)
DRAFT_SCORE, PUBLISHED_SCORE = Decimal("55.17"), Decimal("61.29")


@dataclass
class Net:
    latest: Period     # the draft quarter (elimination warning)
    earlier: Period    # the published one (grade D)
    draft_result: int
    a_settlement: int
    b_settlement: int


def _months_ago(today: date, n: int) -> date:
    index = today.year * 12 + today.month - 1 - n
    return date(index // 12, index % 12 + 1, 1)


def _order(agency, line, *, status="completed", day=None, received_days_ago=1):
    n = next(_seq)
    model = db.session.scalar(select(ProductModel.id).where(
        ProductModel.product_line_id == line.id))
    received = clock.now() - timedelta(days=received_days_ago)
    row = WorkOrder(agency_id=agency.id, number=f"WO-360-{n}", service_type="carry_in",
                    status=status, customer_name="客户", customer_phone="13800000000",
                    product_line_id=line.id, product_model_id=model,
                    serial_number=f"SN360{n:06d}", received_at=received,
                    completed_at=received + timedelta(hours=2) if status == "completed"
                    else None, service_date=day or clock.local_day(received),
                    cancel_reason="客户取消" if status == "cancelled" else None)
    db.session.add(row)
    db.session.flush()
    return row


def _return(agency, line, *, due_on, price="100.00", quantity=2):
    order = _order(agency, line, day=_months_ago(clock.local_today(), 20))  # out of the chart
    part = Part(part_number=f"P360-{next(_seq)}", name_zh="主板", name_en="Board",
                product_line_id=line.id, unit_price=Decimal(price), is_returnable=True)
    db.session.add(part)
    db.session.flush()
    used = WorkOrderPart(agency_id=agency.id, work_order_id=order.id, part_id=part.id,
                         quantity=quantity, unit_price=part.unit_price)
    db.session.add(used)
    db.session.flush()
    db.session.add(PartReturn(agency_id=agency.id, work_order_part_id=used.id,
                              work_order_id=order.id, part_id=part.id, quantity=quantity,
                              unit_price=part.unit_price, status="due", due_on=due_on))


def _complaint(agency, *, status="open", hours_ago=72):
    received = clock.now() - timedelta(hours=hours_ago)
    db.session.add(Complaint(agency_id=agency.id, channel="hotline", severity="major",
                             description="上门迟到", status=status, received_at=received,
                             response="已致歉" if status == "responded" else None,
                             responded_at=received if status == "responded" else None))


def _settlement(agency, day: date, status: str, claimed: str, approved: str = "0.00"):
    moment = clock.now()
    row = Settlement(agency_id=agency.id, number=f"ST-360-{next(_seq)}", year=day.year,
                     month=day.month, status=status, claimed_total=Decimal(claimed),
                     approved_total=Decimal(approved), computed_on=day,
                     submitted_at=moment if status != "draft" else None,
                     approved_at=moment if status in ("approved", "paid") else None,
                     paid_at=moment if status == "paid" else None,
                     paid_on=day if status == "paid" else None,
                     payment_reference="PAY-1" if status == "paid" else None)
    db.session.add(row)
    db.session.flush()
    return row


def _quarter(period: Period, status: str) -> Quarter:
    moment = clock.now()
    quarter = db.session.scalars(select(Quarter).where(
        Quarter.year == period.year, Quarter.quarter == period.quarter)).one_or_none()
    if quarter is None:
        quarter = Quarter(year=period.year, quarter=period.quarter, scheme_id=1, status=status,
                          published_at=None if status == "draft" else moment,
                          appeal_deadline_at=None if status == "draft"
                          else moment + timedelta(days=7))
        db.session.add(quarter)
        db.session.flush()
    return quarter


def _result(agency, quarter, score, grade, status, warning=False) -> Result:
    row = Result(agency_id=agency.id, quarter_id=quarter.id, region_id=agency.region_id,
                 tier_at=agency.tier, agency_status_at=agency.status, score=score, grade=grade,
                 status=status, elimination_warning=warning, previous_grade="D",
                 rank_national=3, rank_national_of=3, rank_region=2, rank_region_of=2)
    db.session.add(row)
    db.session.flush()
    return row


def _certified_engineer(agency, line):
    engineer = Engineer(agency_id=agency.id, name="王工", id_number=f"3101{next(_seq):014d}",
                        hire_date=date(2020, 1, 1))
    db.session.add(engineer)
    db.session.flush()
    program = db.session.scalars(select(Program).where(Program.product_line_id == line.id,
                                                       Program.level == 2)).first()
    if program is None:
        program = Program(product_line_id=line.id, level=2)
        db.session.add(program)
        db.session.flush()
    today = clock.local_today()
    db.session.add(Certificate(agency_id=agency.id, engineer_id=engineer.id,
                               program_id=program.id, product_line_id=line.id, level=2,
                               number=f"C360-{next(_seq)}", verification_code="ABCD1234",
                               valid_from=today - timedelta(days=300),
                               valid_to=today + timedelta(days=30)))


def _item(user, *, subject_type, subject_id, event="settlement.submitted", label="A-OWN"):
    db.session.add(InboxItem(recipient_id=user.id, agency_id=user.agency_id, event=event,
                             category="settlement", kind="task", subject_type=subject_type,
                             subject_id=subject_id, label=label, params={},
                             due_at=clock.now() + timedelta(days=2)))


def build(world, *, orders=1) -> Net:
    """The small network (`orders` > 1: many times the work, for the query counts)."""
    today = clock.local_today()
    latest = clock.current_quarter().previous()
    earlier = latest.previous()
    a, b, line = world.a, world.b, world.line
    db.session.get(Agency, a.id).status = AgencyStatus.PROBATION
    for _n in range(orders):
        for _k in range(3):
            _order(a, line, day=today)
        for _k in range(2):
            _order(a, line, day=_months_ago(today, 1))
        _order(a, line, status="open", received_days_ago=10)
        _order(a, line, status="open", received_days_ago=1)
        _order(a, line, status="cancelled", day=today)
        _order(b, line, status="open")
    _complaint(a, status="open", hours_ago=72)
    _complaint(a, status="responded", hours_ago=100)
    _complaint(b, status="open", hours_ago=72)
    _return(a, line, due_on=today - timedelta(days=3))  # overdue: 2 × ¥100.00
    _return(a, line, due_on=today + timedelta(days=3))  # due, not late
    _return(b, line, due_on=today - timedelta(days=3), price="777.77")
    _settlement(a, _months_ago(today, 1), "paid", "1000.00", "900.00")
    a_open = _settlement(a, _months_ago(today, 0), "submitted", "500.55")
    b_open = _settlement(b, _months_ago(today, 1), "submitted", "7777.77")
    _certified_engineer(a, line)
    published, draft = _quarter(earlier, "published"), _quarter(latest, "draft")
    _result(a, published, PUBLISHED_SCORE, "D", "published")
    draft_result = _result(a, draft, DRAFT_SCORE, "D", "draft", warning=True)
    _result(b, published, Decimal("93.33"), "A", "published")
    admin = world.user(Role.HQ_ADMIN)
    _item(admin, subject_type="settlements", subject_id=a_open.id, label="A-OWN ST-OPEN")
    _item(admin, subject_type="settlements", subject_id=b_open.id, label="B-FOR ST-OPEN")
    db.session.flush()
    return Net(latest, earlier, draft_result.id, a_open.id, b_open.id)


@pytest.fixture
def net(app, world) -> Net:
    with app.app_context(), unscoped("the test builds a small network"):
        g._audit_actor = None
        built = build(world)
        db.session.commit()
    return built


def _page(client, agency_id) -> str:
    response = client.get(f"/agencies/{agency_id}")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def _status_of(app, agency_id) -> str:
    with app.app_context(), unscoped("the test reads the status"):
        return db.session.scalar(select(Agency.status).where(Agency.id == agency_id))


# --- the panels and their figures ---------------------------------------------------------------


def _panels(app, world, role: Role, agency_id: int) -> dict:
    """{template: context} of the panels `role` reads on the agency's page."""
    from portal.profile import panels_for

    user = world.user(role)
    with app.test_request_context(), unscoped("the test loads the panels as HQ would"):
        agency = db.session.get(Agency, agency_id)
        return dict(panels_for(agency, user))


def test_each_panel_counts_the_agency_figures(app, world, net):
    panels = _panels(app, world, Role.HQ_ADMIN, world.a.id)
    assert list(panels) == ["evaluation/_profile_grades.html", "evaluation/_profile_kpis.html",
                            "service/_profile_orders.html",
                            "certification/_profile_coverage.html",
                            "settlement/_profile_settlements.html",
                            "inbox/_profile_items.html"]
    orders = panels["service/_profile_orders.html"]
    assert (orders["open_orders"], orders["stale_orders"]) == (2, 1)
    assert (orders["complaints_open"], orders["complaints_responded"]) == (1, 1)
    assert (orders["overdue_returns"], orders["overdue_value"]) == (1, Decimal("200.00"))
    # The charts' rows: the last twelve months, oldest first.
    volume = [row[1] for row in orders["chart"].rows]
    assert len(volume) == 12
    today = clock.local_today()
    this, last = ((d.year, d.month) for d in (today, _months_ago(today, 1)))
    # Orders by service day (an open one's is its day of receipt); cancelled ones left out.
    opened = [(d.year, d.month) for d in (
        clock.local_day(clock.now() - timedelta(days=n)) for n in (10, 1))]
    assert volume[-1] == str(3 + opened.count(this))
    assert volume[-2] == str(2 + opened.count(last))

    settlements = panels["settlement/_profile_settlements.html"]
    by_month = [row[1:] for row in settlements["chart"].rows]
    assert by_month[-2] == ("CN¥1,000.00", "CN¥900.00")
    assert by_month[-1] == ("CN¥500.55", "CN¥0.00")
    assert by_month[0] == ("CN¥0.00", "CN¥0.00")
    assert settlements["open_count"] == 1
    assert {s: (n, c, a) for s, n, c, a in settlements["statuses"]} == {
        "paid": (1, Decimal("1000.00"), Decimal("900.00")),
        "submitted": (1, Decimal("500.55"), Decimal("0.00"))}

    coverage = panels["certification/_profile_coverage.html"]
    assert [(r.holders, r.required, r.gap) for r in coverage["rows"]] == [(1, 1, 0)]
    assert (coverage["engineers"], coverage["expiring"]) == (1, 1)

    grades = panels["evaluation/_profile_grades.html"]
    assert grades["latest"].id == net.draft_result and grades["latest"].elimination_warning
    assert [row[1] for row in grades["chart"].rows] == ["61.29", "55.17"]
    kpis = panels["evaluation/_profile_kpis.html"]
    quarter = clock.current_quarter()
    assert kpis["period"] == quarter
    done = 3 + (2 if _months_ago(today, 1) >= quarter.first_day else 0)  # completed in it
    counted = {r["kpi"].code: (r["numerator"], r["denominator"]) for r in kpis["rows"]}
    assert counted["first_time_fix"][1] == done and "inspection" not in counted

    items = panels["inbox/_profile_items.html"]
    assert [title for _item, title, _link in items["items"]] == ["Review settlement A-OWN ST-OPEN"]
    assert items["count"] == 1 and items["late_complaints"] == 1


def test_hq_admin_reads_the_360_with_charts_and_links_to_filtered_lists(client, world, net):
    sign_in(client, world.user(Role.HQ_ADMIN))
    body = _page(client, world.a.id)
    assert body.count('src="data:image/svg+xml;base64,') == 3  # grades, orders, settlements
    for text in ("Elimination warning (淘汰预警)", "Draft", "CN¥1,000.00", "CN¥500.55", "CN¥200.00",
                 "Review settlement A-OWN ST-OPEN", "1 complaint is unanswered after 48 hours",
                 f"KPIs of {clock.current_quarter().label} so far"):
        assert text in body, text
    hrefs = [h.replace("&amp;", "&") for h in re.findall(r'href="([^"]+)"', body)]
    for path in ("/service/orders/", "/service/complaints/", "/service/returns/",
                 "/settlements/"):
        narrowed = [h for h in hrefs if h.startswith(path + "?")]
        assert narrowed and all("agency_code=A-OWN" in h for h in narrowed), path
    assert f"/certification/agencies/{world.a.id}/coverage" in hrefs
    assert f"/evaluation/results/{net.draft_result}" in hrefs
    assert "B-FOR ST-OPEN" not in body and "7,777.77" not in body and "777.77" not in body
    assert 'href="tel:13800000000"' in body  # the contact phone through |phone


def test_amounts_never_wrap(client, world, net):
    sign_in(client, world.user(Role.HQ_ADMIN))
    body = _page(client, world.a.id).split('id="lifecycle"')[0]  # the panels' figures
    for amount in ("CN¥1,000.00", "CN¥500.55", "CN¥200.00"):
        for match in re.finditer(re.escape(amount), body):
            opening = body.rfind("<", 0, match.start())
            assert "text-nowrap" in body[opening:match.start()], amount


# --- who sees what ------------------------------------------------------------------------------


def test_an_agency_member_sees_only_their_own_360(client, world, net):
    sign_in(client, world.user(Role.AGENCY_OWNER))
    response = client.get("/my-agency")
    assert response.status_code == 302 and response.headers["Location"].endswith(
        f"/agencies/{world.a.id}")
    body = _page(client, world.a.id)
    assert "Work orders and quality" in body and "Settlements" in body
    assert "CANARY-B" not in body and "7,777.77" not in body and "B-FOR" not in body
    assert "agency_code=" not in body  # the agency's own lists are its own already
    assert "Your open tasks about this agency" not in body  # HQ's
    for foreign in (world.b.id, world.a2.id, 987654321):
        assert client.get(f"/agencies/{foreign}").status_code == 404


def test_drafts_are_hidden_from_roles_that_may_not_read_them(client, world, net):
    sign_in(client, world.user(Role.AGENCY_OWNER))
    body = _page(client, world.a.id)
    assert net.earlier.label in body and "61.29" in body
    assert net.latest.label not in body and "55.17" not in body
    assert "Elimination warning" not in body
    for role, panels in ((Role.AGENCY_STAFF, ("Work orders and quality",)),
                         (Role.ENGINEER, ())):
        client.post("/auth/sign-out")
        sign_in(client, world.user(role))
        body = _page(client, world.a.id)
        assert "Quarterly evaluation" not in body and "61.29" not in body, role
        assert "55.17" not in body and net.latest.label not in body, role
        for title in panels:
            assert title in body, (role, title)
    client.post("/auth/sign-out")
    sign_in(client, world.user(Role.REGIONAL_MANAGER))  # enters the inspection scores
    body = _page(client, world.a.id)
    assert "55.17" in body and "Elimination warning (淘汰预警)" in body


def test_an_engineer_reads_no_panel(app, world, net):
    assert _panels(app, world, Role.ENGINEER, world.a.id) == {}


# --- the lifecycle change against the evidence ------------------------------------------------


def test_no_status_is_preselected(client, world, net):
    sign_in(client, world.user(Role.HQ_ADMIN))
    body = _page(client, world.a.id)
    select_html = re.search(r'<select[^>]*name="to_status".*?</select>', body, re.S).group(0)
    options = re.findall(r"<option[^>]*>", select_html)
    assert options[0] == '<option selected value="">' or 'value=""' in options[0]
    assert "Choose the new status" in select_html
    assert not any("selected" in o for o in options[1:]), options
    response = client.post(f"/agencies/{world.a.id}/status", data={"reason": "复查不合格"})
    assert response.status_code == 422 and b"This field is required." in response.data
    assert re.search(r'<select[^>]*class="[^"]*is-invalid', response.get_data(as_text=True))
    assert _status_of(client.application, world.a.id) == "probation"


def test_promoting_against_an_elimination_warning_needs_a_confirmation(app, client, world, net):
    sign_in(client, world.user(Role.HQ_ADMIN))
    body = _page(client, world.a.id)
    warning = (f"The latest evaluation of A-OWN ({net.latest.label}, Draft) carries an "
               "elimination warning (淘汰预警)")
    assert warning in body  # shown on the form before anything is chosen
    refused = client.post(f"/agencies/{world.a.id}/status",
                          data={"to_status": "active", "reason": "试运营期满"})
    assert refused.status_code == 422
    text = refused.get_data(as_text=True)
    assert warning in text and "Activating A-OWN authorizes it fully" in text
    assert "Read the warnings, then tick the box to confirm this change." in text
    assert 'name="confirmed_status" type="hidden" value="active"' in text
    assert _status_of(app, world.a.id) == "probation"  # nothing changed

    done = client.post(f"/agencies/{world.a.id}/status",
                       data={"to_status": "active", "reason": "试运营期满",
                             "confirm": "y", "confirmed_status": "active"})
    assert done.status_code == 302 and _status_of(app, world.a.id) == "active"
    with app.app_context(), unscoped("the test reads the audit"):
        entry = db.session.scalars(select(AuditEntry).where(
            AuditEntry.action == "agency.status_changed").order_by(AuditEntry.id.desc())).first()
        assert any("elimination warning" in c for c in entry.after["confirmed_concerns"])


def test_terminating_with_open_settlements_warns_and_names_the_consequence(app, client, world,
                                                                         net):
    sign_in(client, world.user(Role.HQ_ADMIN))
    refused = client.post(f"/agencies/{world.a.id}/status",
                          data={"to_status": "terminated", "reason": "考核不合格"})
    text = refused.get_data(as_text=True)
    assert refused.status_code == 422
    assert "A-OWN has 1 open settlement (CN¥500.55 claimed)" in text
    assert "A-OWN has 2 open work orders" in text
    assert "Terminating A-OWN stops its users from signing in" in text
    assert _status_of(app, world.a.id) == "probation"
    # A box ticked for another status does not confirm this one.
    stale = client.post(f"/agencies/{world.a.id}/status",
                        data={"to_status": "terminated", "reason": "考核不合格",
                              "confirm": "y", "confirmed_status": "suspended"})
    assert stale.status_code == 422 and _status_of(app, world.a.id) == "probation"
    done = client.post(f"/agencies/{world.a.id}/status",
                       data={"to_status": "terminated", "reason": "考核不合格",
                             "confirm": "y", "confirmed_status": "terminated"})
    assert done.status_code == 302 and _status_of(app, world.a.id) == "terminated"


def test_suspending_with_open_work_warns(app, client, world, net):
    sign_in(client, world.user(Role.HQ_ADMIN))
    refused = client.post(f"/agencies/{world.a.id}/status",
                          data={"to_status": "suspended", "reason": "停业整改"})
    assert refused.status_code == 422 and b"open settlement" in refused.data
    assert _status_of(app, world.a.id) == "probation"


def test_a_clean_change_needs_no_confirmation_but_a_termination_always_does(app, client, world):
    sign_in(client, world.user(Role.HQ_ADMIN))  # A2 has no open work, no evaluation
    assert client.post(f"/agencies/{world.a2.id}/status",
                       data={"to_status": "suspended", "reason": "停业整改"}).status_code == 302
    refused = client.post(f"/agencies/{world.a2.id}/status",
                          data={"to_status": "terminated", "reason": "取消授权"})
    assert refused.status_code == 422
    assert b"Tick the box to confirm the termination." in refused.data
    assert _status_of(app, world.a2.id) == "suspended"


def test_the_concerns_translate(client, world, net):
    sign_in(client, world.user(Role.HQ_ADMIN))
    client.post("/locale", data={"locale": "zh_CN"})
    refused = client.post(f"/agencies/{world.a.id}/status",
                          data={"to_status": "terminated", "reason": "考核不合格"})
    assert refused.status_code == 422  # a translated page, never a 500


# --- a constant number of queries ---------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.HQ_ADMIN, Role.AGENCY_OWNER, Role.REGIONAL_MANAGER])
def test_the_360_runs_a_constant_number_of_queries(app, client, world, net, query_counter,
                                                    role):
    sign_in(client, world.user(role))
    with query_counter:
        _page(client, world.a.id)
    few = query_counter.count
    with app.app_context(), unscoped("the test adds many times the work"):
        g._audit_actor = None
        today = clock.local_today()
        build_more(world, today)
        db.session.commit()
    with query_counter:
        _page(client, world.a.id)
    assert query_counter.count == few, (few, query_counter.count)
    print(f"agency 360 as {role.value}: {few} queries")


def build_more(world, today):
    for _n in range(40):
        _order(world.a, world.line, day=_months_ago(today, _n % 12))
        _order(world.a, world.line, status="open", received_days_ago=_n)
        _complaint(world.a, hours_ago=_n + 1)
        _return(world.a, world.line, due_on=today - timedelta(days=_n + 1))
    for n in range(2, 10):
        _settlement(world.a, _months_ago(today, n), "approved", "10.00", "9.00")
    for back in range(2, 6):
        period = clock.current_quarter()
        for _k in range(back + 1):
            period = period.previous()
        _result(world.a, _quarter(period, "published"), Decimal("70.00"), "C", "published")
    _certified_engineer(world.a, world.line)
    for role in (Role.HQ_ADMIN, Role.REGIONAL_MANAGER):
        for _n in range(12):
            _item(world.user(role), subject_type="agencies", subject_id=world.a.id)
    make_user(Role.AGENCY_STAFF, agency=world.a)
