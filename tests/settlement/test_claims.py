"""Building a claim: each fee rule with worked examples through the database, the one-live-
claim rule, deductions and bonuses, and totals that are the SQL sums of the lines."""
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from portal.audit.models import AuditEntry
from portal.errors_domain import DomainError
from portal.extensions import db
from settlement import building, config, rules, services, statement
from settlement.cli import mismatched_totals
from settlement.models import Claim, Decision, LineKind, Settlement, Status
from tenants.models import Agency
from tests.settlement import factories as f

D = Decimal
SHANGHAI = ZoneInfo("Asia/Shanghai")


def order_line(settlement):
    return next(ln for ln in settlement.lines if ln.kind == LineKind.ORDER)


# --- fee rules, worked through the database -------------------------------------------------


def test_labor_is_repair_code_hours_times_the_agency_tier_rate(stl):
    """Tier 3 pays 80.00/h: (1.50 + 0.75) h × 80.00 = 180.00; at tier 5, 2.25 × 100 = 225."""
    stl.order(repairs=[stl.code("1.50"), stl.code("0.75")], service_type="carry_in")
    s = stl.open()
    line = order_line(s)
    assert (line.labor_hours, line.hourly_rate, line.tier, line.labor_fee) == (
        D("2.25"), D("80.00"), 3, D("180.00"))
    assert line.claimed_amount == D("50.00") + D("180.00")  # call-out + labor (carry-in)
    with stl.fixture():
        db.session.execute(update(Agency).where(Agency.id == stl.world.a.id).values(tier=5))
    with stl.agency():
        services.refresh_settlement(s, acting_user=stl.owner, seen_version=s.version,
                                    today=stl.today)
    assert (line.hourly_rate, line.labor_fee) == (D("100.00"), D("225.00"))
    assert s.claimed_total == D("275.00")


def test_distance_allowance_is_capped_and_flagged(stl):
    """95 km, 10 free, cap 60: (60 − 10) × 1.50 = 75.00, and the line goes to a reviewer."""
    stl.order(distance="95.00", repairs=[stl.code("1.00")])
    line = order_line(stl.open())
    assert (line.paid_km, line.distance_fee) == (D("50.00"), D("75.00"))
    assert rules.RULE_DISTANCE_CAPPED in line.rules
    assert line.codes == [rules.DISTANCE_OVER_CAP] and line.disposition == "review"


def test_parts_handling_fee_rounds_half_up_at_line_level(stl):
    """12.5 % of 0.20 is 0.025: 0.03 half up (Babel's half-even would show 0.02)."""
    with stl.fixture():
        f.rate_card([stl.world.line], effective=stl.day - timedelta(days=5), pct="12.50")
        cheap = f.part(stl.world.line, "0.20")
    stl.order(service_type="carry_in", repairs=[stl.code()], parts=[(cheap, 1)])
    line = order_line(stl.open())
    assert (line.parts_value, line.parts_handling_pct, line.parts_handling_fee) == (
        D("0.20"), D("12.50"), D("0.03"))


def test_parts_handling_uses_the_value_of_parts_used(stl):
    """3 × 10.13 = 30.39 at 8 %: 2.4312 → 2.43."""
    with stl.fixture():
        p = f.part(stl.world.line, "10.13")
    stl.order(service_type="carry_in", repairs=[stl.code()], parts=[(p, 3)])
    line = order_line(stl.open())
    assert (line.parts_value, line.parts_handling_fee) == (D("30.39"), D("2.43"))


def test_rework_pays_no_labor(stl):
    code = stl.code("2.00")
    first = stl.order(day=stl.day - timedelta(days=5), repairs=[code], serial="SN-REWORK-1")
    stl.order(repairs=[code], serial="SN-REWORK-1", rework_of=first)
    s = stl.open()
    with stl.agency():
        rework = next(ln for ln in s.lines if ln.work_order.is_rework)
    assert rework.labor_fee == D("0.00") and rules.RULE_REWORK in rework.rules
    assert rework.claimed_amount == D("50.00") + D("3.00")  # call-out + 2 km beyond the free 10


def test_uncertified_engineer_is_paid_the_configured_share(stl):
    stl.order(repairs=[stl.code("1.00")], certified=False, service_type="carry_in")
    s = stl.open()
    line = order_line(s)
    assert line.labor_fee == D("0.00") and line.labor_share_pct == D("0.00")
    assert line.codes == [rules.UNCERTIFIED] and line.disposition == "pay"
    with stl.hq():
        data = {n: getattr(config.current_settings(), n) for n in config.SETTING_NAMES}
        config.save_settings(config.settings_record(),
                             {**data, "uncertified_share_pct": D("50.00")}, acting_user=stl.admin,
                             seen_version=0)
    with stl.agency():
        services.refresh_settlement(s, acting_user=stl.owner, seen_version=s.version,
                                    today=stl.today)
    assert line.labor_fee == D("40.00")  # 1 h × 80.00 × 50 %


def test_an_order_past_the_claim_window_is_refused_with_its_reason(stl):
    old_day = stl.today - timedelta(days=75)
    stl.order(day=old_day, repairs=[stl.code()])
    s = stl.open(year=old_day.year, month=old_day.month)
    line = order_line(s)
    assert line.codes == [rules.LATE] and line.disposition == "deny"
    stl.submit(s)
    assert (line.decision, line.approved_amount, line.reason_code, line.reason_text) == (
        Decision.DENIED, D("0.00"), "other", rules.LATE)
    assert s.approved_total == D("0.00") and s.claimed_total == line.claimed_amount


def test_no_rate_card_in_force_is_a_review_exception(stl):
    stl.order(day=date(2019, 6, 1), repairs=[stl.code()])
    line = order_line(stl.open(year=2019, month=6))
    assert line.claimed_amount == D("0.00") and line.rate_card_id is None
    assert rules.NO_RATE_CARD in line.codes


def test_the_rate_card_in_force_on_the_service_date_is_used(stl):
    with stl.fixture():
        newer = f.rate_card([stl.world.line], effective=stl.day + timedelta(days=1),
                            callout="70.00")
    stl.order(repairs=[stl.code()], day=stl.day)
    stl.order(repairs=[stl.code()], day=stl.day + timedelta(days=1))
    s = stl.open()
    with stl.agency():
        fees = sorted((ln.work_order.service_date, ln.callout_fee, ln.rate_card_id == newer.id)
                      for ln in s.lines)
    assert [(fee, is_new) for _day, fee, is_new in fees] == [(D("50.00"), False),
                                                               (D("70.00"), True)]


def test_a_rate_change_never_alters_a_submitted_settlement(stl):
    stl.order(repairs=[stl.code()])
    s = stl.open()
    stl.submit(s)
    with stl.agency():
        before = (s.claimed_total, [(ln.callout_fee, ln.rate_card_id) for ln in s.lines])
        card = order_line(s).rate_card
    with stl.hq():
        with pytest.raises(DomainError, match="history"):
            config.change_rate_card(card, {"effective_from": card.effective_from, "note": "",
                                           "tier_rates": dict(f.TIERS),
                                           "fees": f.fee_rows([stl.world.line], callout="99.00")},
                                    acting_user=stl.admin, seen_version=card.version)
    with stl.fixture():
        f.rate_card([stl.world.line], effective=stl.day - timedelta(days=1), callout="99.00")
    db.session.expire_all()
    with stl.agency():
        assert (s.claimed_total, [(ln.callout_fee, ln.rate_card_id) for ln in s.lines]) == before


# --- opening rules -----------------------------------------------------------------------------


def test_opening_refuses_a_future_month_a_second_draft_and_an_empty_month(stl):
    stl.order(repairs=[stl.code()])
    nxt = stl.today.replace(day=28) + timedelta(days=5)
    with pytest.raises(DomainError, match="month that has ended"):
        stl.open(year=nxt.year, month=nxt.month)
    stl.open()
    with pytest.raises(DomainError, match="already open"):
        stl.open()
    with pytest.raises(DomainError, match="Nothing to claim"):
        stl.open(year=2021, month=3)


def _written(stl) -> tuple[int, int, int]:
    with stl.hq():
        return tuple(db.session.scalar(select(func.count(model.id)))
                     for model in (Settlement, Claim, AuditEntry))


def _open_today(stl, year, month):
    """Open a claim as the web does: on the network's day by the clock (no `today=`)."""
    with stl.agency():
        settlement = services.open_settlement(stl.world.a, year, month, acting_user=stl.owner)
        assert settlement.lines is not None  # loaded in scope (PostgreSQL's row security)
        return settlement


def test_only_a_month_that_has_ended_can_be_claimed(stl):
    """On 5 December December cannot be claimed yet: a clear error on the month, nothing
    written (the claim used to open as ST-A-OWN-202612-01); November opens."""
    code = stl.code()
    november = stl.order(day=date(2026, 11, 20), repairs=[code])
    stl.order(day=date(2026, 12, 2), repairs=[code])
    before = _written(stl)
    with time_machine.travel(datetime(2026, 12, 5, 10, tzinfo=SHANGHAI), tick=False):
        with pytest.raises(DomainError) as refused:
            _open_today(stl, 2026, 12)
        assert refused.value.field == "period" and refused.value.message == (
            "A settlement covers a month that has ended: 2026-12 can be claimed from "
            "January 1, 2027.")
        assert _written(stl) == before
        claim = _open_today(stl, 2026, 11)
    assert claim.number == "ST-A-OWN-202611-01"
    assert [ln.work_order_id for ln in claim.lines] == [november.id]


def test_a_month_ends_at_local_midnight(stl):
    """At 00:30 on 1 December in Shanghai (16:30 UTC on 30 November) November has ended;
    half an hour before local midnight (23:30, 15:30 UTC) it has not."""
    stl.order(day=date(2026, 11, 20), repairs=[stl.code()])
    with time_machine.travel(datetime(2026, 11, 30, 15, 30, tzinfo=UTC), tick=False):
        with pytest.raises(DomainError, match="month that has ended: 2026-11 can be claimed"):
            _open_today(stl, 2026, 11)
    with time_machine.travel(datetime(2026, 11, 30, 16, 30, tzinfo=UTC), tick=False):
        assert _open_today(stl, 2026, 11).number == "ST-A-OWN-202611-01"


def test_a_draft_of_a_month_not_over_cannot_be_submitted(stl):
    """A draft of the current month (opened before the rule, e.g. ST-A-OWN-202612-01 on 5 December)
    stays a draft until the month is over: submitting it says why and changes nothing."""
    stl.order(day=stl.today, repairs=[stl.code()])
    next_month = (stl.today.replace(day=28) + timedelta(days=5)).replace(day=1)
    draft = stl.open(year=stl.today.year, month=stl.today.month, today=next_month)
    version = draft.version
    with pytest.raises(DomainError, match="month that has ended"):
        stl.submit(draft)
    assert (draft.status, draft.version, draft.submitted_at) == (Status.DRAFT, version, None)
    stl.submit(draft, today=next_month)
    assert draft.status == Status.SUBMITTED


def test_only_completed_in_warranty_unclaimed_orders_of_the_month_are_lines(stl):
    code = stl.code()
    wanted = stl.order(repairs=[code])
    stl.order(repairs=[code], in_warranty=False)
    stl.order(repairs=[code], day=stl.day - timedelta(days=40))  # another month
    stl.order(agency=stl.world.a2, repairs=[code])  # another agency
    s = stl.open()
    assert [ln.work_order_id for ln in s.lines] == [wanted.id]


def test_an_earlier_or_out_of_warranty_order_can_be_added_by_number(stl):
    code = stl.code()
    stl.order(repairs=[code])
    out = stl.order(repairs=[code], in_warranty=False)
    s = stl.open()
    with stl.agency():
        line = services.add_order(s, out.number, acting_user=stl.owner, seen_version=s.version,
                                  today=stl.today)
        assert line.codes == [rules.OUT_OF_WARRANTY] and line.disposition == "deny"
        for bad, message in (("NOPE", "has no order"), (out.number, "already in a settlement")):
            with pytest.raises(DomainError, match=message):
                services.add_order(s, bad, acting_user=stl.owner, seen_version=s.version,
                                   today=stl.today)
    foreign = stl.order(agency=stl.world.b, repairs=[code])
    with stl.agency(), pytest.raises(DomainError, match="has no order"):
        services.add_order(s, foreign.number, acting_user=stl.owner, seen_version=s.version,
                           today=stl.today)


# --- one live settlement per work order --------------------------------------------------------


def test_a_work_order_sits_in_at_most_one_live_claim(stl):
    o = stl.order(repairs=[stl.code()])
    s = stl.open()
    stl.submit(s)
    with pytest.raises(DomainError, match="Nothing to claim"):
        stl.open()  # the order is in a live settlement
    with stl.fixture(), pytest.raises(IntegrityError):
        with db.session.begin_nested():
            db.session.add(Claim(agency_id=o.agency_id, settlement_id=s.id,
                                 work_order_id=o.id))
            db.session.flush()


def test_withdrawing_or_removing_releases_the_claim(stl):
    o = stl.order(repairs=[stl.code()])
    s = stl.open()
    with stl.agency():
        services.withdraw_settlement(s, acting_user=stl.owner, seen_version=s.version)
    assert s.status == Status.WITHDRAWN
    again = stl.open()
    assert [ln.work_order_id for ln in again.lines] == [o.id]
    with stl.agency():
        services.remove_line(again, again.lines[0], acting_user=stl.owner,
                             seen_version=again.version, today=stl.today)
        db.session.expire(again, ["lines"])
        assert again.lines == [] and again.claimed_total == D("0.00")
        claims = db.session.scalars(select(Claim).where(Claim.work_order_id == o.id)).all()
        assert [c.is_live for c in claims] == [False, False]


def test_a_claim_race_is_a_clear_error_not_a_500(stl):
    o = stl.order(repairs=[stl.code()])
    s = stl.open()
    with stl.fixture(), pytest.raises(DomainError, match="just claimed"):
        with db.session.begin_nested():  # what a second request racing the first would do
            building.insert_lines(s, [("work_order_id", o.id, {
                "kind": "order", "kind_order": 0, "work_order_id": o.id,
                "claimed_amount": D("0.00")})])


# --- deductions and bonuses --------------------------------------------------------------------


def test_overdue_returns_and_substantiated_complaints_are_deducted_once(stl):
    with stl.fixture():
        p = f.part(stl.world.line, "88.80", returnable=True)
    done = stl.order(day=stl.today - timedelta(days=100), parts=[(p, 2)],
                     repairs=[stl.code()])
    with stl.fixture():
        f.overdue_return(done, p, quantity=2, due=stl.today - timedelta(days=10))
        f.substantiated_complaint(stl.world.a)
    stl.order(repairs=[stl.code()])
    s = stl.open()
    kinds = {ln.kind: ln for ln in s.lines}
    assert kinds[LineKind.PART_RETURN].claimed_amount == D("-177.60")
    assert kinds[LineKind.COMPLAINT].claimed_amount == D("-200.00")
    assert all(kinds[k].decision == Decision.APPROVED for k in (LineKind.PART_RETURN,
                                                                 LineKind.COMPLAINT))
    stl.submit(s)
    stl.order(repairs=[stl.code()], day=stl.day + timedelta(days=1))
    later = stl.open(actor=stl.owner)
    assert {ln.kind for ln in later.lines} == {LineKind.ORDER}


def test_the_quarterly_grade_is_a_percentage_of_the_quarters_labor(stl, grade_source):
    (quarter,) = rules.grade_quarters(stl.year, stl.month, 1)
    day = quarter.first_day + timedelta(days=4)
    stl.order(day=day, repairs=[stl.code("2.00")], service_type="carry_in")
    early = stl.open(year=quarter.year, month=day.month, today=day + timedelta(days=30))
    assert order_line(early).labor_fee == D("160.00")
    grade_source(lambda agency_id, y, q: "D" if (y, q) == (quarter.year,
                                                                          quarter.quarter)
                                else None)
    stl.order(repairs=[stl.code()])
    s = stl.open()
    grade = next(ln for ln in s.lines if ln.kind == LineKind.GRADE)
    assert (grade.grade, grade.rate_pct, grade.basis_amount, grade.claimed_amount) == (
        "D", D("-8.00"), D("160.00"), D("-12.80"))
    assert grade.grade_period == quarter.label  # "2026Q3": the one spelling
    with stl.agency():  # the page and the statement name the line alike
        assert statement.line_subject(grade, "en") == f"{quarter.label} grade D"
    with stl.agency():
        services.withdraw_settlement(s, acting_user=stl.owner, seen_version=s.version)
    again = stl.open()
    assert sum(1 for ln in again.lines if ln.kind == LineKind.GRADE) == 1  # released, re-used


def test_no_grade_source_no_grade_line(stl):
    stl.order(repairs=[stl.code()])
    assert all(ln.kind != LineKind.GRADE for ln in stl.open().lines)


# --- totals and the audit ----------------------------------------------------------------------


def test_every_service_call_writes_exactly_one_audit_entry(stl):
    stl.order(repairs=[stl.code()])
    later = stl.order(repairs=[stl.code()], in_warranty=False)

    def entries():
        with stl.hq():
            return db.session.scalar(select(func.count(AuditEntry.id)))

    start = entries()
    s = stl.open()
    assert entries() == start + 1
    with stl.agency():
        services.refresh_settlement(s, acting_user=stl.owner, seen_version=s.version,
                                    today=stl.today)
        assert entries() == start + 2
        line = services.add_order(s, later.number, acting_user=stl.owner, seen_version=s.version,
                                  today=stl.today)
        assert entries() == start + 3
        services.remove_line(s, line, acting_user=stl.owner, seen_version=s.version,
                             today=stl.today)
        assert entries() == start + 4
    stl.submit(s)
    assert entries() == start + 5
    with stl.hq():
        last = db.session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc())).first()
    assert last.action == "settlement.submitted"
    assert last.before["status"] == "draft" and last.after["status"] == "submitted"
    assert last.after["claimed_total"] == str(s.claimed_total)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(orders=st.lists(st.tuples(st.integers(0, 800), st.integers(0, 20000),
                                 st.integers(0, 500000), st.integers(1, 5), st.booleans(),
                                 st.booleans()), min_size=1, max_size=8),
       callout=st.integers(0, 50000), per_km=st.integers(0, 999), pct=st.integers(0, 2000))
def test_stored_totals_equal_sql_sums_and_python_sums(stl, orders, callout, per_km, pct):
    """Random orders and rates: every stored total is the SQL sum, and the Python sum, of the
    lines' amounts computed independently by the pure rules."""
    savepoint = db.session.begin_nested()
    try:
        with stl.fixture():
            card = f.rate_card([stl.world.line], effective=stl.day - timedelta(days=1),
                               callout=str(D(callout).scaleb(-2)),
                               per_km=str(D(per_km).scaleb(-2)), pct=str(D(pct).scaleb(-2)))
        expected = []
        for hours, km, price, quantity, rework, certified in orders:
            code = stl.code(str(D(hours).scaleb(-2)))
            with stl.fixture():
                p = f.part(stl.world.line, str(D(price).scaleb(-2)))
            origin = stl.order(repairs=[code], day=stl.day - timedelta(days=20)) if rework \
                else None
            stl.order(repairs=[code], parts=[(p, quantity)], distance=str(D(km).scaleb(-2)),
                      certified=certified, rework_of=origin)
            terms = rules.Terms(card.id, D(callout).scaleb(-2), D("80.00"), D("10.00"),
                                D(per_km).scaleb(-2), D("60.00"), D(pct).scaleb(-2))
            facts = rules.OrderFacts("onsite", D(hours).scaleb(-2), D(km).scaleb(-2),
                                     D(price).scaleb(-2) * quantity, rework, certified)
            expected.append(rules.compute_order(facts, terms, D("0")).total)
        s = stl.open()
        amounts = [ln.claimed_amount for ln in s.lines]
        assert sorted(amounts) == sorted(expected)
        assert s.claimed_total == sum(amounts, D("0.00")) == sum(expected, D("0.00"))
        with stl.agency():
            assert building.totals_in_sql(s)[0] == s.claimed_total
        with stl.hq():
            assert mismatched_totals() == []
    finally:
        savepoint.rollback()
        db.session.expunge_all()  # SQLite reuses the rolled-back ids


def test_the_migration_gives_submitted_lines_their_first_submission_day(stl):
    """Lines submitted before the column existed get the day of their first submission."""
    import importlib.util
    from pathlib import Path
    from zoneinfo import ZoneInfo

    from settlement.models import SettlementEvent, SettlementLine

    path = next(Path("migrations/versions").glob("*_settlement_first_submitted.py"))
    spec = importlib.util.spec_from_file_location("stl0002", path)
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    stl.order(repairs=[stl.code()])
    stl.order(repairs=[stl.code()], day=stl.day - timedelta(days=40))
    submitted = stl.open()
    stl.submit(submitted)
    draft = stl.open(year=(stl.day - timedelta(days=40)).year,
                     month=(stl.day - timedelta(days=40)).month)
    table, zone = SettlementLine.__table__, ZoneInfo("Asia/Shanghai")
    with stl.fixture():  # a migration runs outside the application's tenant guard
        db.session.execute(update(table).where(table.c.agency_id == stl.world.a.id)
                           .values(first_submitted_on=None))
        changed = migration.backfill(db.session.connection(), zone)
        sent = db.session.scalar(select(SettlementEvent.at).where(
            SettlementEvent.settlement_id == submitted.id, SettlementEvent.action == "submitted"))
    db.session.expire_all()
    assert changed == 1
    with stl.agency():
        assert [ln.first_submitted_on for ln in submitted.lines] == [sent.astimezone(zone).date()]
        assert [ln.first_submitted_on for ln in draft.lines] == [None]


def _migration(revision: str):
    import importlib.util
    from pathlib import Path

    path = next(Path("migrations/versions").glob(f"*_{revision}_*.py"))
    spec = importlib.util.spec_from_file_location(revision, path)
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    return migration


def test_the_migration_gives_stored_grade_lines_the_one_quarter_spelling(stl, grade_source):
    """A grade line stored as "2026-Q3" becomes "2026Q3" (claim and line): recalculating the
    claim then finds the quarter applied and adds no second grade line. The downgrade writes
    the old spelling back; two live claims of one quarter in both spellings stop it."""
    from settlement.models import SettlementLine

    migration = _migration("stl0003")
    (quarter,) = rules.grade_quarters(stl.year, stl.month, 1)
    grade_source(
        lambda agency_id, y, q: "B" if (y, q) == (quarter.year, quarter.quarter) else None)
    stl.order(repairs=[stl.code()])
    s = stl.open()
    dashed = f"{quarter.year}-Q{quarter.quarter}"
    tables = (Claim.__table__, SettlementLine.__table__)

    def stored():
        return [db.session.scalars(select(t.c.grade_period).where(
            t.c.agency_id == stl.world.a.id, t.c.grade_period.is_not(None))).all()
            for t in tables]

    with stl.fixture():  # a migration runs outside the application's tenant guard
        for t in tables:
            db.session.execute(update(t).where(t.c.agency_id == stl.world.a.id,
                                               t.c.grade_period.is_not(None))
                               .values(grade_period=dashed))
        connection = db.session.connection()
        assert migration.respell(connection, migration.DASHED, migration.TO_LABEL) == 2
        assert stored() == [[quarter.label], [quarter.label]]
    db.session.expire_all()
    with stl.agency():
        services.refresh_settlement(s, acting_user=stl.owner, seen_version=s.version,
                                    today=stl.today)
        grades = [ln for ln in s.lines if ln.kind == LineKind.GRADE]
        assert [(ln.grade_period, ln.claimed_amount) for ln in grades] == [
            (quarter.label, D("0.00"))]
    with stl.fixture():
        assert migration.respell(connection, migration.LABEL, migration.TO_DASHED) == 2
        assert stored() == [[dashed], [dashed]]
        db.session.add(Claim(agency_id=stl.world.a.id, settlement_id=s.id,
                             grade_period=quarter.label))
        db.session.flush()
        with pytest.raises(RuntimeError, match="both spellings"):
            migration.respell(connection, migration.DASHED, migration.TO_LABEL)
        assert sorted(stored()[0]) == sorted([dashed, quarter.label])
