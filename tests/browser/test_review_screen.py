"""HQ works a 200-line claim in a real browser: the table of exceptions, the keyboard (j/k to
move, a to approve, d to deny, x to select), decisions on a selection and on every line of a
filter, then the second approver reads what changed from claimed to approved and approves.

The demo network has no claim of 200 lines: the test adds 200 completed orders of last month
to SH-C01 in the live portal's database (its own tables and column types, one bulk INSERT
each), and the owner claims them through the portal (opening the month, or recalculating the
draft the demo left open).
"""
import re
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from sqlalchemy import create_engine, func, insert, select

from portal.clock import local_today

OWNER = "owner@sh-c01.demo"
MANAGER = "east.manager@hq.demo"
REVIEWER = "settlement@hq.demo"
APPROVER = "settlement2@hq.demo"
ADMIN = "admin@hq.demo"
AGENCY = "SH-C01"
ORDERS = 200
PREFIX = "WO-RV-"


def _submit(page, selector: str) -> None:
    with page.expect_navigation():
        page.click(selector)


def _last_month(today: date) -> date:
    """The last day of the month before `today`'s: inside the 60-day claim window."""
    return today.replace(day=1) - timedelta(days=1)


def _live_database(tmp_path_factory):
    found = sorted(tmp_path_factory.getbasetemp().glob("live*/live.sqlite3"))
    assert found, "the live portal's database was not found"
    return create_engine(f"sqlite:///{found[-1]}")


def _add_orders(engine, day: date) -> int:
    """200 completed in-warranty orders of SH-C01 serviced on `day`: every 10th over the
    standard hours, every 7th an on-site call beyond the km cap, every 9th by an engineer
    without a valid certificate; returns the agency's id."""
    from certification.models import Engineer
    from service.models import RepairCode, WorkOrder, WorkOrderRepair
    from tenants.models import Agency, AgencyProductLine, ProductLine, ProductModel

    with engine.begin() as conn:
        agency_id = conn.scalar(select(Agency.id).where(Agency.code == AGENCY))
        if conn.scalar(select(func.count(WorkOrder.id)).where(
                WorkOrder.agency_id == agency_id, WorkOrder.number.like(PREFIX + "%"))):
            return agency_id  # a rerun on a prebuilt database (PORTAL_LIVE_DEMO)
        line_id = conn.scalar(
            select(ProductLine.id).join(AgencyProductLine,
                                        AgencyProductLine.product_line_id == ProductLine.id)
            .where(AgencyProductLine.agency_id == agency_id).order_by(ProductLine.code))
        model_id = conn.scalar(select(ProductModel.id).where(
            ProductModel.product_line_id == line_id).order_by(ProductModel.id))
        codes = conn.execute(select(RepairCode.id, RepairCode.standard_hours).where(
            RepairCode.product_line_id == line_id).order_by(
            RepairCode.standard_hours.desc())).all()
        engineer_id = conn.scalar(select(Engineer.id).where(
            Engineer.agency_id == agency_id).order_by(Engineer.id))
        stamp = datetime.combine(day, time(2), tzinfo=UTC)
        rows = []
        for i in range(ORDERS):
            onsite = i % 2 == 0 or i % 7 == 0
            rows.append({
                "agency_id": agency_id, "number": f"{PREFIX}{i:04d}", "status": "completed",
                "service_type": "onsite" if onsite else "carry_in",
                "customer_name": "测试客户", "customer_phone": "13800009999",
                "product_line_id": line_id, "product_model_id": model_id,
                "serial_number": f"SN-RV-{day:%Y%m}-{i:04d}",
                "purchase_date": day - timedelta(days=120), "is_in_warranty": True,
                "received_at": stamp, "responded_at": stamp + timedelta(minutes=20),
                "arrived_at": stamp + timedelta(hours=1) if onsite else None,
                "completed_at": stamp + timedelta(hours=3), "service_date": day,
                "distance_km": (Decimal("95.00") if i % 7 == 0 else Decimal("14.00"))
                if onsite else None,
                "engineer_id": engineer_id, "is_engineer_certified": i % 9 != 0,
                "resolution": "已修复(浏览器测试)"})
        conn.execute(insert(WorkOrder), rows)
        ids = conn.execute(select(WorkOrder.id, WorkOrder.number).where(
            WorkOrder.agency_id == agency_id, WorkOrder.number.like(PREFIX + "%"))).all()
        repairs = []
        for order_id, number in ids:
            n = int(number[len(PREFIX):])
            chosen = [codes[0], codes[1]] if n % 10 == 0 else [codes[-2]]
            repairs += [{"agency_id": agency_id, "work_order_id": order_id,
                         "repair_code_id": code_id, "standard_hours": hours}
                        for code_id, hours in chosen]
        conn.execute(insert(WorkOrderRepair), repairs)
    return agency_id


def _claim_id(engine, agency_id: int, day: date) -> int | None:
    from settlement.models import Settlement

    with engine.connect() as conn:
        return conn.scalar(select(Settlement.id).where(
            Settlement.agency_id == agency_id, Settlement.year == day.year,
            Settlement.month == day.month,
            Settlement.status.in_(("draft", "returned", "submitted"))))


def _lines(engine, settlement_id: int) -> dict[int, tuple]:
    """{line id: (decision, approved amount, reason code)} as the database holds them."""
    from settlement.models import SettlementLine

    with engine.connect() as conn:
        return {row[0]: tuple(row[1:]) for row in conn.execute(select(
            SettlementLine.id, SettlementLine.decision, SettlementLine.approved_amount,
            SettlementLine.reason_code).where(SettlementLine.settlement_id == settlement_id))}


def _focused(page) -> str | None:
    return page.evaluate("() => { const b = document.querySelector('tbody.rv-focus');"
                         " return b ? b.dataset.line : null; }")


def _owner_claims(journey, engine, agency_id: int, day: date) -> str:
    base = journey.base
    owner = journey.as_user(OWNER, "zh_CN")
    draft = _claim_id(engine, agency_id, day)
    if draft:  # the draft the demo left open: recalculating adds the new orders
        owner.goto(f"{base}/settlements/{draft}")
        if owner.locator("form[action$='/refresh'] button").count():
            _submit(owner, "form[action$='/refresh'] button")
    else:
        owner.goto(f"{base}/settlements/new")
        owner.fill("input[name=period]", f"{day:%Y-%m}")
        _submit(owner, "form [type=submit][name=submit]")
        assert re.search(r"/settlements/\d+$", owner.url), owner.inner_text("main")[:500]
    url = owner.url.split("?")[0].split("#")[0]
    assert owner.locator("form[action$='/submit'] button").count(), "no claim to submit"
    _submit(owner, "form[action$='/submit'] button")
    manager = journey.as_user(MANAGER, "zh_CN")
    manager.goto(url)
    if manager.locator("form[action$='/regional-review']").count():
        manager.check("input[name=outcome][value=forward]")
        _submit(manager, "form[action$='/regional-review'] [type=submit]")
    return url


def test_a_reviewer_works_a_200_line_claim_by_keyboard_and_the_second_approver_reads_the_changes(
        journey, shot, tmp_path_factory):
    engine = _live_database(tmp_path_factory)
    day = _last_month(local_today())
    agency_id = _add_orders(engine, day)
    url = _owner_claims(journey, engine, agency_id, day)
    sid = int(url.rsplit("/", 1)[1])
    assert len(_lines(engine, sid)) >= ORDERS

    # The reviewer: exceptions only, a dense table, a hundred lines a page at most.
    reviewer = journey.as_user(REVIEWER, "en")
    reviewer.goto(url)
    table = reviewer.locator("table[data-review-table]")
    assert table.count() == 1
    rows = reviewer.locator("tbody[data-line]")
    assert 0 < rows.count() <= 100
    assert reviewer.locator("a.btn[aria-current=true]").inner_text().startswith(
        "Exceptions only")
    first_order = rows.first.locator("tr.rv-row a[href^='/service/orders/']")
    assert first_order.count() == 1  # the work order's number links to its page
    shot(reviewer, "01-reviewer-exceptions")

    # j, j, k: the second row has the keyboard's focus.
    ids = [rows.nth(i).get_attribute("data-line") for i in range(min(rows.count(), 4))]
    for key in ("j", "j", "k", "j"):
        reviewer.keyboard.press(key)
    assert _focused(reviewer) == ids[1]
    reviewer.keyboard.press("k")
    assert _focused(reviewer) == ids[0]

    # a: the focused line is approved as claimed; the keyboard goes on at the next line.
    with reviewer.expect_navigation():
        reviewer.keyboard.press("a")
    approved = int(ids[0])
    assert _lines(engine, sid)[approved][0] == "approved"
    assert reviewer.locator(".alert-success").count()
    assert _focused(reviewer) == ids[1]
    shot(reviewer, "02-approved-by-key")

    # d: the focused line opens with "deny" chosen and the reason code to give.
    denied = int(_focused(reviewer))
    reviewer.keyboard.press("d")
    row = reviewer.locator(f"tbody#line-{denied}")
    decide = row.locator("form[action*='/decide']").last
    assert decide.locator("select[name=decision]").input_value() == "denied"
    assert reviewer.evaluate("() => document.activeElement.name") == "reason_code"
    decide.locator("select[name=reason_code]").select_option("insufficient_evidence")
    shot(reviewer, "03-deny-by-key")
    with reviewer.expect_navigation():
        decide.locator("[type=submit]").click()
    assert _lines(engine, sid)[denied][:3:2] == ("denied", "insufficient_evidence")

    # x selects two lines; one decision with one reason for both.
    reviewer.goto(url + "?code=distance_over_cap")
    reviewer.locator("tbody[data-line]").first.wait_for()
    picked = [reviewer.locator("tbody[data-line]").nth(i).get_attribute("data-line")
              for i in range(2)]
    for key in ("j", "x", "j", "x"):
        reviewer.keyboard.press(key)
    assert reviewer.locator("[data-select-line]:checked").count() == 2
    reviewer.select_option("#bulk-action", "adjust")
    reviewer.select_option("#bulk-rule", "pay_percent")
    reviewer.fill("#bulk-percent", "80")
    reviewer.select_option("#bulk-reason-code", "rate_mismatch")
    reviewer.fill("#bulk-reason-text", "远程距离超出上限，按 80% 结算(浏览器测试)")
    shot(reviewer, "04-two-selected")
    _submit(reviewer, "#bulk-form [type=submit]")
    lines = _lines(engine, sid)
    assert {lines[int(i)][0] for i in picked} == {"adjusted"}

    # Every line over the standard hours, on every page: capped by the rule.
    reviewer.goto(url + "?code=hours_over_standard")
    reviewer.check("#bulk-all")
    reviewer.select_option("#bulk-action", "adjust")
    reviewer.select_option("#bulk-rule", "cap_standard_hours")
    reviewer.select_option("#bulk-reason-code", "rate_mismatch")
    _submit(reviewer, "#bulk-form [type=submit]")
    assert reviewer.locator(".alert-success").count()
    journey.step(reviewer, "reviewer-after-the-rule")

    # The rest, approved together with a reason; the reviewer may not approve (four eyes).
    reviewer.goto(url + "?lines=all&state=pending")
    reviewer.check("#bulk-all")
    reviewer.select_option("#bulk-action", "approve")
    reviewer.fill("#bulk-reason-text", "其余明细已核对(浏览器测试)")
    _submit(reviewer, "#bulk-form [type=submit]")
    assert "pending" not in {d for d, _a, _r in _lines(engine, sid).values()}
    assert reviewer.locator(f"form[action='/settlements/{sid}/approve']").count() == 0
    shot(reviewer, "05-all-decided")

    # A colleague gives the first approval (the claim is above the threshold).
    approver = journey.as_user(APPROVER, "zh_CN")
    approver.goto(url)
    _submit(approver, f"form[action='/settlements/{sid}/approve'] button")

    # HQ admin reads what changed, grouped, with the totals by reason, and approves.
    admin = journey.as_user(ADMIN, "zh_CN")
    admin.goto(url)
    summary = admin.locator("section#changes")
    assert summary.count() == 1
    text = summary.inner_text()
    assert "张结算" in text and "80%" in text  # who decided, and why
    assert summary.locator("tbody tr").count() >= 3
    shot(admin, "06-second-approver-summary")
    journey.step(admin, "admin-summary")
    _submit(admin, f"form[action='/settlements/{sid}/approve'] button")
    assert admin.locator(".alert-success").count()
    shot(admin, "07-approved")
    journey.finish()
