"""HQ's review of a claim at volume: decisions on a selection (set-based, audited, refused
cleanly), the dense table of lines (filters, order, pages, a fixed number of queries at 50 and
at 5,000 lines), who sees which action, the approvers' summary of what changed, and the ageing
of the HQ list against the workplace's review limit."""
import html
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, insert, select, update

from portal import clock
from portal.audit.models import AuditEntry
from portal.auth.roles import Role
from portal.errors_domain import DomainError
from portal.extensions import db
from portal.tenancy import unscoped
from service.models import WorkOrder
from settlement import config, queries, review, rules, services
from settlement.models import (
    Decision,
    LineDecisionRecord,
    LineKind,
    Settlement,
    SettlementLine,
)
from tests.factories import make_user
from tests.settlement import factories as f
from tests.settlement.test_views import (
    as_user,
    lines_of,
    post,
    settlement_of,
    submitted_and_forwarded,
)

D = Decimal
BIG = "distance_over_cap,hours_over_standard,missing_evidence"  # the 6.25 h, 90 km line


# --- a claim with a line for each rule -----------------------------------------------------------


def _save_settings(stl, **values):
    with stl.hq():
        data = {n: getattr(config.current_settings(), n) for n in config.SETTING_NAMES}
        config.save_settings(config.settings_record(), {**data, **values},
                             acting_user=stl.admin, seen_version=config.settings_version())


@pytest.fixture
def claim(stl):
    """Agency A's claim in HQ review: a clean line, two over the standard hours (one also over
    the km cap), one of an uncertified engineer paid at half labor, and a substantiated
    complaint (a deduction, decided as it is made)."""
    _save_settings(stl, uncertified_share_pct=D("50.00"))
    stl.order(repairs=[stl.code("1.00")], service_type="carry_in")
    stl.order(repairs=[stl.code("5.00")], service_type="carry_in")
    stl.order(repairs=[stl.code("6.25")], distance="90.00")
    stl.order(repairs=[stl.code("2.00")], service_type="carry_in", certified=False)
    with stl.fixture():
        f.substantiated_complaint(stl.world.a)
    s = stl.open()
    stl.submit(s)
    stl.forward(s)
    return s


def by_codes(s) -> dict:
    """The claim's order lines by their exception codes ("" for the clean one)."""
    with unscoped("the test reads the lines"):
        return {ln.exception_codes: ln for ln in db.session.scalars(
            select(SettlementLine).where(SettlementLine.settlement_id == s.id,
                                         SettlementLine.kind == LineKind.ORDER))}


def audits(action: str) -> list[AuditEntry]:
    with unscoped("the test reads the audit"):
        return list(db.session.scalars(select(AuditEntry).where(AuditEntry.action == action)
                                       .order_by(AuditEntry.id)))


def decision_records(s) -> int:
    with unscoped("the test counts decisions"):
        return db.session.scalar(select(func.count(LineDecisionRecord.id)).where(
            LineDecisionRecord.settlement_id == s.id))


def snapshot(s) -> tuple:
    """Everything a refused request must leave as it was."""
    with unscoped("the test reads the claim"):
        db.session.expire_all()
        lines = db.session.execute(select(
            SettlementLine.id, SettlementLine.decision, SettlementLine.approved_amount,
            SettlementLine.version).where(SettlementLine.settlement_id == s.id)
            .order_by(SettlementLine.id)).all()
        row = db.session.execute(select(Settlement.version, Settlement.approved_total).where(
            Settlement.id == s.id)).one()
        entries = db.session.scalar(select(func.count(AuditEntry.id)))
    return tuple(lines), tuple(row), entries, decision_records(s)


def decide(stl, s, selection, action, **kw):
    with stl.hq():  # in a scope: under row-level security an expired row reloads there only
        kw.setdefault("seen_version", s.version)
        return review.decide_lines(s, selection, action, acting_user=kw.pop("actor", stl.reviewer),
                                   **kw)


# --- decisions on a selection --------------------------------------------------------------------


def test_a_bulk_denial_is_one_insert_one_update_and_one_audit_entry(stl, claim, query_counter):
    s, lines = claim, by_codes(claim)
    chosen = [lines["hours_over_standard"], lines[BIG]]
    claimed = sum((ln.claimed_amount for ln in chosen), D(0))
    before_total = s.approved_total
    with query_counter as counter:
        outcome = decide(stl, s, review.Selection(tuple(ln.id for ln in chosen)), "deny",
                         reason_code="insufficient_evidence", reason_text="No photos.")
    writes = [st for st in counter.statements
              if re.match(r"\s*(UPDATE settlement_lines|INSERT INTO settlement_line_decisions)",
                          st)]
    assert len(writes) == 2, writes  # set-based: not one statement per line
    assert (outcome.count, outcome.changed, outcome.claimed, outcome.after) == (
        2, 2, claimed, D("0.00"))
    for line in chosen:
        assert (line.decision, line.approved_amount, line.reason_code, line.reason_text,
                line.decided_by_id) == (Decision.DENIED, D("0.00"), "insufficient_evidence",
                                        "No photos.", stl.reviewer.id)
    assert decision_records(s) == 2
    (entry,) = audits("settlement.lines_decided")
    assert entry.object_id == str(s.id) and entry.agency_id == s.agency_id
    assert entry.after["lines"] == sorted(ln.id for ln in chosen)
    assert entry.after["lines_claimed"] == str(claimed)
    assert D(entry.after["change"]) == D("0.00")  # pending lines counted nothing before
    assert entry.before["approved_total"] == str(before_total)
    assert D(entry.after["approved_total"]) == s.approved_total
    assert entry.reason == "No photos."


def test_the_money_change_is_audited_and_the_totals_follow(stl, claim):
    s, lines = claim, by_codes(claim)
    clean = lines[""]
    decide(stl, s, review.Selection((clean.id,)), "approve", reason_text="Checked.")
    entry = audits("settlement.lines_decided")[-1]
    assert D(entry.after["lines_approved_before"]) == D("0.00")
    assert D(entry.after["lines_approved_after"]) == clean.claimed_amount
    assert D(entry.after["change"]) == clean.claimed_amount
    with stl.hq():
        assert s.approved_total == db.session.scalar(select(func.sum(
            SettlementLine.approved_amount)).where(SettlementLine.settlement_id == s.id))


@pytest.mark.parametrize("rule", [rules.CAP_STANDARD, rules.DEDUCT_UNCERTIFIED,
                                  rules.PAY_PERCENT])
def test_adjusting_by_a_rule_pays_what_the_python_rule_pays(stl, claim, rule):
    s = claim
    order_lines = list(by_codes(s).values())
    settings = config.current_settings()
    pct = D("87.50")
    expected = {}
    for ln in order_lines:
        if rule == rules.CAP_STANDARD:
            amount = rules.capped_to_standard(ln.claimed_amount, ln.labor_fee, ln.labor_hours,
                                              ln.hourly_rate, ln.labor_share_pct,
                                              settings.max_order_hours)
        elif rule == rules.DEDUCT_UNCERTIFIED:
            amount = rules.without_uncertified_labor(ln.claimed_amount, ln.labor_fee, ln.codes)
        else:
            amount = rules.percent_paid(ln.claimed_amount, pct)
        expected[ln.id] = amount
    outcome = decide(stl, s, review.Selection(tuple(expected)), "adjust", rule=rule,
                     percent=str(pct), reason_code="rate_mismatch", reason_text="")
    changed = {i for i, ln in ((ln.id, ln) for ln in order_lines)
               if expected[i] != ln.claimed_amount}
    assert changed, "the rule changes at least one line of the fixture"
    with stl.hq():
        db.session.expire_all()
        for ln in by_codes(s).values():
            assert ln.approved_amount == expected[ln.id], (rule, ln.exception_codes)
            if ln.id in changed:
                assert (ln.decision, ln.reason_code) == (Decision.ADJUSTED, "rate_mismatch")
            else:  # the rule leaves it at its claim: approved as claimed
                assert (ln.decision, ln.reason_code) == (Decision.APPROVED, None)
    assert outcome.changed == len(changed)


def test_the_sql_rules_round_like_the_python_rules_on_many_amounts(stl, claim):
    """Half-up rounding of the integer SQL against Decimal, over thousands of cases."""
    from sqlalchemy import BigInteger, literal

    cases = [(D(c) / 100, D(p) / 100) for c in range(0, 200001, 997)
             for p in (1, 3333, 5000, 6667, 8750, 9999, 10000)]
    with stl.hq():
        got = db.session.execute(select(*(
            rules.percent_paid_sql(literal(int(c * 100), BigInteger), p)
            for c, p in cases[:900]))).one()
    assert [D(v) / 100 for v in got] == [rules.percent_paid(c, p) for c, p in cases[:900]]


def test_every_line_matching_the_filter_is_decided(stl, claim):
    s = claim
    view = queries.LineView(code=rules.HOURS_OVER_STANDARD, sort="n")
    outcome = decide(stl, s, review.Selection(view=view), "adjust", rule=rules.CAP_STANDARD,
                     reason_code="rate_mismatch")
    assert outcome.count == 2 == outcome.changed
    lines = by_codes(s)
    assert lines[""].decision == Decision.PENDING
    assert {lines["hours_over_standard"].decision,
            lines[BIG].decision} == {Decision.ADJUSTED}


def test_refusals_change_nothing(stl, claim):
    s, lines = claim, by_codes(claim)
    line_id = lines["hours_over_standard"].id  # ids: a refusal expires the loaded rows
    stl.order(agency=stl.world.b, repairs=[stl.code("1.00")])  # agency B's claim
    foreign = stl.open(agency=stl.world.b, actor=stl.world.b_users[Role.AGENCY_OWNER])
    with stl.fixture():
        foreign_id = db.session.scalar(select(SettlementLine.id).where(
            SettlementLine.settlement_id == foreign.id))
    before = snapshot(s)
    good = {"reason_code": "duplicate", "reason_text": "Same repair twice."}
    refused = [
        (review.Selection(()), "deny", good, "Select at least one line"),
        (review.Selection((foreign_id,)), "deny", good, "not lines of this settlement"),
        (review.Selection((line_id, foreign_id)), "deny", good,
         "not lines of this settlement"),
        (review.Selection((987654,)), "deny", good, "not lines of this settlement"),
        (review.Selection((line_id,)), "deny", {"reason_code": None}, "reason code"),
        (review.Selection((line_id,)), "deny", {"reason_code": "other", "reason_text": " "},
         "Write between"),
        (review.Selection((line_id,)), "approve", {"reason_text": ""}, "Write between"),
        (review.Selection((line_id,)), "adjust", {**good, "rule": None}, "rule to apply"),
        (review.Selection((line_id,)), "adjust", {**good, "rule": rules.PAY_PERCENT,
                                                  "percent": "120"}, "percentage"),
        (review.Selection((line_id,)), "adjust", {**good, "rule": rules.PAY_PERCENT,
                                                  "percent": "x"}, "percentage"),
        (review.Selection((line_id,)), "maybe", good, "approve, adjust or deny"),
        (review.Selection(view=queries.LineView(code=rules.LATE)), "deny", good,
         "No line matches"),
        (review.Selection(tuple(range(1, review.MAX_SELECTED + 2))), "deny", good,
         "at most"),
    ]
    for selection, action, kwargs, message in refused:
        with pytest.raises(DomainError, match=message):
            decide(stl, s, selection, action, **kwargs)
        assert snapshot(s) == before, (action, kwargs)
    with pytest.raises(DomainError, match="out of date"):
        decide(stl, s, review.Selection((line_id,)), "deny", seen_version=s.version - 1, **good)
    with pytest.raises(DomainError, match="cannot do this|Your role"):
        decide(stl, s, review.Selection((line_id,)), "deny", actor=stl.admin, **good)
    assert snapshot(s) == before


def test_a_rule_on_a_deduction_and_a_line_under_appeal_are_refused(stl, claim):
    s, lines = claim, by_codes(claim)
    clean_id, line_id = lines[""].id, lines["hours_over_standard"].id
    with stl.hq():
        complaint = db.session.scalar(select(SettlementLine.id).where(
            SettlementLine.settlement_id == s.id, SettlementLine.kind == LineKind.COMPLAINT))
    before = snapshot(s)
    with pytest.raises(DomainError, match="work order lines"):
        decide(stl, s, review.Selection((complaint, clean_id)), "adjust",
               rule=rules.PAY_PERCENT, percent="50", reason_code="other", reason_text="Half.")
    assert snapshot(s) == before
    decide(stl, s, review.Selection((line_id,)), "deny", reason_code="duplicate")
    with stl.hq():
        review.approve_clean_lines(s, acting_user=stl.reviewer, seen_version=s.version)
        rest = [ln.id for ln in by_codes(s).values() if ln.decision == Decision.PENDING]
    decide(stl, s, review.Selection(tuple(rest)), "approve", reason_text="Checked.")
    with stl.fixture():
        colleague = make_user(Role.HQ_SETTLEMENT)
    with stl.hq():
        review.approve_settlement(s, acting_user=colleague, seen_version=s.version,
                                  today=stl.today)
    with stl.agency():
        line = db.session.scalars(select(SettlementLine).where(
            SettlementLine.id == line_id)).one()
        review.lodge_appeal(s, line, "The photos were sent by mail.", acting_user=stl.owner,
                            seen_version=s.version)
    before = snapshot(s)
    with pytest.raises(DomainError, match="open appeal"):
        decide(stl, s, review.Selection((line_id, clean_id)), "approve", reason_text="Again.")
    assert snapshot(s) == before


def test_a_double_submit_changes_money_once(stl, claim):
    s, lines = claim, by_codes(claim)
    page = s.version
    selection = review.Selection((lines[""].id,))
    decide(stl, s, selection, "approve", reason_text="Checked.", seen_version=page)
    before = snapshot(s)
    with pytest.raises(DomainError, match="out of date"):
        decide(stl, s, selection, "approve", reason_text="Checked.", seen_version=page)
    assert snapshot(s) == before and len(audits("settlement.lines_decided")) == 1


def test_nothing_is_decided_before_the_regional_review(stl):
    stl.order(repairs=[stl.code("5.00")], service_type="carry_in")
    s = stl.open()
    stl.submit(s)
    line = s.lines[0]
    with pytest.raises(DomainError, match="regional manager reviews"):
        decide(stl, s, review.Selection((line.id,)), "deny", reason_code="duplicate")


# --- the page ------------------------------------------------------------------------------------


@pytest.fixture
def screen(web, monkeypatch):
    """The web world with three more orders (an uncertified engineer, one over the hours and
    the km cap, one clean), the claim submitted and passed to HQ; two lines per page."""
    monkeypatch.setitem(web.app.config, "SETTLEMENT_REVIEW_PAGE_SIZE", 2)
    with web.app.app_context(), unscoped("test fixtures"):
        world = web.world
        f.order(world.a, world.line, day=web.day, repairs=[f.repair_code(world.line, "2.00")],
                service_type="carry_in", certified=False)
        f.order(world.a, world.line, day=web.day, repairs=[f.repair_code(world.line, "6.25")],
                distance="90.00")
        f.order(world.a, world.line, day=web.day, repairs=[f.repair_code(world.line, "1.00")],
                service_type="carry_in")
        db.session.commit()
    web.sid = submitted_and_forwarded(web)
    return web


def rows(page: str) -> list[tuple[int, int]]:
    """(line number on the statement, line id) of the table's rows, in page order."""
    found = re.findall(r'<tbody id="line-(\d+)"[^>]*>\s*<tr[^>]*>.*?<td class="text-muted">(\d+)'
                       r'</td>', page, re.S)
    return [(int(n), int(line_id)) for line_id, n in found]


def text_of(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def test_the_reviewer_starts_with_the_exceptions_and_toggles_to_every_line(screen):
    app, sid = screen.app, screen.sid
    reviewer = as_user(app, screen.reviewer)
    first = reviewer.get(f"/settlements/{sid}")
    page = text_of(first)
    assert first.status_code == 200
    assert "Exceptions only (3)" in page and "All lines (5)" in page
    # Exceptions only, undecided and worst first, two per page.
    assert [n for n, _ in rows(page)] == [2, 4]
    page_2 = text_of(reviewer.get(f"/settlements/{sid}?page=2"))
    assert [n for n, _ in rows(page_2)] == [3]
    everything = text_of(reviewer.get(f"/settlements/{sid}?lines=all&sort=n&page=3"))
    assert [n for n, _ in rows(everything)] == [5]
    by_code = text_of(reviewer.get(f"/settlements/{sid}?code=uncertified_engineer"))
    assert [n for n, _ in rows(by_code)] == [3]
    by_state = text_of(reviewer.get(f"/settlements/{sid}?lines=all&state=pending&sort=-claimed"))
    assert [n for n, _ in rows(by_state)] == [4, 2]
    by_disposition = text_of(reviewer.get(f"/settlements/{sid}?disposition=pay&sort=n"))
    assert [n for n, _ in rows(by_disposition)] == [3]
    for junk in ("?lines=x", "?code=<script>", "?sort=bogus", "?sort=-", "?page=-1",
                 "?page=99", "?state=1&disposition=2&reason=3"):
        assert reviewer.get(f"/settlements/{sid}{junk}").status_code == 200, junk


def test_rows_link_their_order_and_open_inline(screen):
    app, sid = screen.app, screen.sid
    page = text_of(as_user(app, screen.reviewer).get(f"/settlements/{sid}?lines=all"))
    with app.app_context(), unscoped("the test reads the orders"):
        orders = list(db.session.scalars(select(WorkOrder).where(
            WorkOrder.agency_id == screen.world.a.id)))
    shown = [o for o in orders if f'href="/service/orders/{o.id}"' in page]
    assert shown and all(o.number in page for o in shown)
    assert page.count('<details class="rv-details"') == 2
    assert "Labor: 5.00 h" in page or "Labor: 6.25 h" in page  # the computation, inline
    assert f'/service/orders/{shown[0].id}#timeline' in page
    assert 'src="/static/js/review.js"' in page and "<script>" not in page
    assert "onclick" not in page and ' style="' not in page


def test_agency_users_read_cards_and_never_reach_the_review_actions(screen):
    app, sid = screen.app, screen.sid
    owner = as_user(app, screen.owner)
    page = text_of(owner.get(f"/settlements/{sid}"))
    assert "data-review-table" not in page and "bulk-form" not in page
    assert "review.js" not in page and "Possible duplicate" not in page
    line = lines_of(app, sid)[0]
    before = snapshot_of(app, sid)
    for user in (screen.owner, screen.staff, screen.world.b_users[Role.AGENCY_OWNER]):
        client = as_user(app, user)
        response = post(client, f"/settlements/{sid}/lines/decide", sid, app,
                        line_ids=[line.id], action="deny", reason_code="duplicate")
        assert response.status_code == 403, user.role
    for role in (Role.AUDITOR, Role.HQ_ADMIN, Role.REGIONAL_MANAGER):
        response = post(as_user(app, screen.world.user(role)),
                        f"/settlements/{sid}/lines/decide", sid, app, line_ids=[line.id],
                        action="deny", reason_code="duplicate")
        assert response.status_code in (400, 403), role
    assert snapshot_of(app, sid) == before
    assert as_user(app, screen.world.b_users[Role.AGENCY_OWNER]).get(
        f"/settlements/{sid}").status_code == 404


def snapshot_of(app, sid):
    with app.app_context(), unscoped("the test reads the claim"):
        lines = db.session.execute(select(SettlementLine.id, SettlementLine.decision,
                                          SettlementLine.approved_amount).where(
            SettlementLine.settlement_id == sid).order_by(SettlementLine.id)).all()
        entries = db.session.scalar(select(func.count(AuditEntry.id)).where(
            AuditEntry.action.like("settlement.%")))  # signing in is audited too
    s = settlement_of(app, sid)
    return tuple(lines), s.version, s.approved_total, entries


def test_a_bulk_form_decides_the_ticked_lines_and_keeps_the_view(screen):
    app, sid = screen.app, screen.sid
    reviewer = as_user(app, screen.reviewer)
    ids = [line_id for _n, line_id in rows(text_of(reviewer.get(f"/settlements/{sid}")))]
    url = f"/settlements/{sid}/lines/decide?code=hours_over_standard&sort=n"
    response = post(reviewer, url, sid, app, line_ids=ids, action="adjust",
                    rule=rules.CAP_STANDARD, reason_code="rate_mismatch", reason_text="")
    assert response.status_code == 302
    assert response.headers["Location"].endswith(
        f"/settlements/{sid}?code=hours_over_standard&sort=n")
    page = text_of(reviewer.get(response.headers["Location"]))
    assert "2 lines decided: CN¥" in page
    decided = {ln.id: ln for ln in lines_of(app, sid)}
    assert {decided[i].decision for i in ids} == {Decision.ADJUSTED}
    # Every line that matches the filter, on every page.
    response = post(reviewer, f"/settlements/{sid}/lines/decide?lines=all&state=pending", sid,
                    app, all_matching="y", action="approve", reason_text="Checked by phone.")
    assert response.status_code == 302
    assert {ln.decision for ln in lines_of(app, sid)} == {Decision.ADJUSTED, Decision.APPROVED}


def test_bad_bulk_input_is_refused_on_the_page(screen):
    app, sid = screen.app, screen.sid
    reviewer = as_user(app, screen.reviewer)
    line = lines_of(app, sid)[1]
    with app.app_context(), unscoped("a line of agency B"):
        f.order(screen.world.b, screen.world.line, day=screen.day,
                repairs=[f.repair_code(screen.world.line, "1.00")])
        other = services.open_settlement(screen.world.b, screen.year, screen.month,
                                         acting_user=None, today=screen.today)
        foreign = db.session.scalar(select(SettlementLine.id).where(
            SettlementLine.settlement_id == other.id))
        db.session.commit()
    before = snapshot_of(app, sid)
    url = f"/settlements/{sid}/lines/decide"
    for data, message in (
            ({"action": "deny", "reason_code": "duplicate"}, "Select at least one line"),
            ({"line_ids": [foreign], "action": "deny", "reason_code": "duplicate"},
             "not lines of this settlement"),
            ({"line_ids": ["x"], "action": "deny", "reason_code": "duplicate"}, "Invalid choice"),
            ({"line_ids": [line.id], "action": "deny"}, "Choose a reason code"),
            ({"line_ids": [line.id], "action": "approve"}, "Write between"),
            ({"line_ids": [line.id], "action": "adjust", "rule": "pay_percent", "percent": "-1",
              "reason_code": "other", "reason_text": "Less."}, "percentage from 0 to 100"),
            ({"line_ids": [line.id], "action": "bogus"}, "Not a valid choice"),
            ({"line_ids": [line.id], "action": "deny", "reason_code": "duplicate",
              "version": "1"}, "out of date")):
        response = post(reviewer, url, sid, app, **data)
        body = text_of(response)
        assert response.status_code == 400 and message in body, (data, message)
        assert "data-review-table" in body  # the same page, with the reason
    assert snapshot_of(app, sid) == before
    with app.app_context(), unscoped("the test counts"):
        assert db.session.scalar(select(func.count(LineDecisionRecord.id)).where(
            LineDecisionRecord.line_id == foreign)) == 0


def test_the_refusal_is_translated(screen):
    app, sid = screen.app, screen.sid
    reviewer = as_user(app, screen.reviewer)
    reviewer.post("/locale", data={"locale": "zh_CN"})
    response = post(reviewer, f"/settlements/{sid}/lines/decide", sid, app, action="deny",
                    reason_code="duplicate")
    assert response.status_code == 400
    assert re.search(r"[\u4e00-\u9fff]", text_of(response))


# --- who is offered the approval, and the threshold ---------------------------------------------

APPROVE_BUTTON = re.compile(r'action="/settlements/\d+/approve"')


def test_the_approve_button_is_shown_only_to_someone_who_may_approve(screen):
    app, sid = screen.app, screen.sid
    reviewer, colleague = as_user(app, screen.reviewer), as_user(app, screen.second_reviewer)
    page = text_of(colleague.get(f"/settlements/{sid}"))
    assert not APPROVE_BUTTON.search(page) and "5 lines still wait for a decision." in page
    assert post(reviewer, f"/settlements/{sid}/approve-clean", sid, app).status_code == 302
    pending = [ln.id for ln in lines_of(app, sid) if ln.decision == Decision.PENDING]
    assert post(reviewer, f"/settlements/{sid}/lines/decide", sid, app, line_ids=pending,
                action="adjust", rule=rules.PAY_PERCENT, percent="90",
                reason_code="rate_mismatch", reason_text="").status_code == 302
    mine = text_of(reviewer.get(f"/settlements/{sid}"))
    assert not APPROVE_BUTTON.search(mine) and "(four eyes)" in mine
    assert APPROVE_BUTTON.search(text_of(colleague.get(f"/settlements/{sid}")))
    for user in (screen.owner, screen.staff, screen.manager, screen.world.user(Role.AUDITOR),
                 screen.admin):
        assert not APPROVE_BUTTON.search(text_of(as_user(app, user).get(
            f"/settlements/{sid}"))), user.role


def test_the_threshold_warning_is_an_alert_and_the_admin_reads_the_changes(screen):
    app, sid = screen.app, screen.sid
    admin = as_user(app, screen.admin)
    with app.app_context(), unscoped("HQ admin lowers the threshold"):
        data = {n: getattr(config.current_settings(), n) for n in config.SETTING_NAMES}
        config.save_settings(config.settings_record(),
                             {**data, "second_approval_threshold": D("100.00")},
                             acting_user=screen.admin, seen_version=config.settings_version())
        db.session.commit()
    reviewer, colleague = as_user(app, screen.reviewer), as_user(app, screen.second_reviewer)
    lines = lines_of(app, sid)
    big = max(lines, key=lambda ln: ln.claimed_amount)
    post(reviewer, f"/settlements/{sid}/approve-clean", sid, app)
    assert post(reviewer, f"/settlements/{sid}/lines/decide", sid, app, line_ids=[big.id],
                action="deny", reason_code="duplicate", reason_text="Same as WO-1.",
                ).status_code == 302
    rest = [ln.id for ln in lines_of(app, sid) if ln.decision == Decision.PENDING]
    assert post(reviewer, f"/settlements/{sid}/lines/decide", sid, app, line_ids=rest,
                action="adjust", rule=rules.CAP_STANDARD, reason_code="rate_mismatch",
                reason_text="").status_code == 302
    page = text_of(colleague.get(f"/settlements/{sid}"))
    assert re.search(r'class="alert alert-warning[^"]*"[^>]*><strong>Second approval needed.',
                     page)
    assert 'class="text-warning"' not in page
    assert post(colleague, f"/settlements/{sid}/approve", sid, app).status_code == 302
    s = settlement_of(app, sid)
    assert s.awaits_second_approval
    page = text_of(admin.get(f"/settlements/{sid}"))
    assert APPROVE_BUTTON.search(page) and "Give the second approval" in page
    assert f"First approval by {screen.second_reviewer.name}" in page
    summary = page[page.index('id="changes"'):page.index("</section>")]
    assert "Duplicate claim" in summary and "Same as WO-1." in summary
    assert "Rate mismatch" in summary and screen.reviewer.name in summary
    lines = {ln.id: ln for ln in lines_of(app, sid)}
    cut = sum((ln.claimed_amount - ln.approved_amount for ln in lines.values()), D(0))
    assert s.claimed_total - s.approved_total == cut
    assert f"data-summary-cut>CN¥{cut:,.2f}<" in summary


def test_the_summary_figures_come_from_aggregate_sql(stl, claim):
    s, lines = claim, by_codes(claim)
    decide(stl, s, review.Selection((lines["hours_over_standard"].id,)), "deny",
           reason_code="duplicate", reason_text="Twice.")
    decide(stl, s, review.Selection((lines[BIG].id, lines["uncertified_engineer"].id)),
           "adjust", rule=rules.PAY_PERCENT, percent="50", reason_code="rate_mismatch")
    with stl.fixture():
        other = make_user(Role.HQ_SETTLEMENT, name="Second Reviewer")
    decide(stl, s, review.Selection((lines[""].id,)), "deny", reason_code="duplicate",
           reason_text="Twice.", actor=other)
    with stl.hq():
        summary = queries.change_summary(s)
    by_reason = {r["reason_code"]: r for r in summary["by_reason"]}
    assert by_reason["duplicate"]["count"] == 2
    assert by_reason["duplicate"]["cut"] == D("450.00") + D("130.00")
    assert by_reason["rate_mismatch"]["count"] == 2
    assert by_reason["rate_mismatch"]["cut"] == D("312.50") + D("65.00")
    groups = {(g["decision"], g["reason_code"], g["decided_by"]): g for g in summary["groups"]}
    assert set(groups) == {("denied", "duplicate", stl.reviewer.name),
                           ("denied", "duplicate", "Second Reviewer"),
                           ("adjusted", "rate_mismatch", stl.reviewer.name)}
    adjusted = groups[("adjusted", "rate_mismatch", stl.reviewer.name)]
    assert (adjusted["count"], adjusted["claimed"], adjusted["approved"]) == (
        2, D("755.00"), D("377.50"))
    assert sorted(row.claimed_amount for row in adjusted["lines"]) == [D("130.00"),
                                                                        D("625.00")]
    assert summary["changed_count"] == 4
    assert summary["cut"] == D("450.00") + D("130.00") + D("312.50") + D("65.00")


# --- ageing of the HQ list -----------------------------------------------------------------------


def test_the_hq_list_shows_days_in_review_and_flags_the_old_ones(web):
    from inbox.models import WorkplaceSettings

    app = web.app
    old = submitted_and_forwarded(web)
    with app.app_context(), unscoped("a second claim, a month earlier, and the setting"):
        first_day = web.day.replace(day=1)
        earlier = (first_day - timedelta(days=1)).replace(day=10)
        f.order(web.world.a, web.world.line, day=earlier,
                repairs=[f.repair_code(web.world.line, "1.00")])
        db.session.execute(update(Settlement).where(Settlement.id == old).values(
            submitted_at=clock.now() - timedelta(days=6, hours=1)))
        row = db.session.get(WorkplaceSettings, 1)
        row.settlement_review_days = 3
        db.session.commit()
    owner = as_user(app, web.owner)
    response = owner.post("/settlements/new",
                          data={"period": f"{earlier.year}-{earlier.month:02d}"})
    fresh = int(re.search(r"/settlements/(\d+)", response.headers["Location"]).group(1))
    assert post(owner, f"/settlements/{fresh}/submit", fresh, app).status_code == 302
    hq = as_user(app, web.reviewer)
    page = text_of(hq.get("/settlements/?status=submitted&sort=submitted"))
    numbers = [settlement_of(app, sid).number for sid in (old, fresh)]
    assert page.index(numbers[0]) < page.index(numbers[1])  # oldest first
    assert "6 days" in page and "0 days" in page
    assert page.count("Past the 3-day limit") == 1
    assert "Past the review limit (3 days)" in page
    overdue = text_of(hq.get("/settlements/?status=submitted&overdue=1"))
    assert numbers[0] in overdue and numbers[1] not in overdue
    assert "Days in review" not in text_of(owner.get("/settlements/"))


def test_the_limit_is_the_workplaces_setting(web):
    """The settlement area keeps no second limit: it asks the workplace (inbox/__init__.py)."""
    from inbox.models import WorkplaceSettings

    old = submitted_and_forwarded(web)
    with web.app.app_context(), unscoped("an old claim"):
        db.session.execute(update(Settlement).where(Settlement.id == old).values(
            submitted_at=clock.now() - timedelta(days=40)))
        db.session.commit()
    reviewer = as_user(web.app, web.reviewer)
    page = text_of(reviewer.get("/settlements/?overdue=1"))
    assert "40 days" in page and "Past the 5-day limit" in page
    with web.app.app_context(), unscoped("a longer limit"):
        db.session.get(WorkplaceSettings, 1).settlement_review_days = 60
        db.session.commit()
    page = text_of(reviewer.get("/settlements/?overdue=1"))
    assert "Past the 60-day limit" not in page and "No settlement matches" in page


# --- a fixed number of queries at 50 and at 5,000 lines ------------------------------------------


def bulk_orders(agency, line, day, count: int) -> None:
    """`count` completed orders of `agency` in two bulk INSERTs (the factory's one by one
    would take minutes for 5,000)."""
    from service.models import WorkOrderRepair

    code = f.repair_code(line, "1.50")
    model = f.model_of(line)
    stamp = f.at(day)
    prefix = f"BK{agency.id}-{next(f._seq)}-"
    db.session.execute(insert(WorkOrder), [{
        "agency_id": agency.id, "number": f"{prefix}{i:05d}", "status": "completed",
        "service_type": "onsite" if i % 3 else "carry_in", "customer_name": "张三",
        "customer_phone": "13800001111", "product_line_id": line.id,
        "product_model_id": model.id, "serial_number": f"{prefix}SN{i:06d}",
        "purchase_date": day - timedelta(days=30), "is_in_warranty": True,
        "received_at": stamp, "responded_at": stamp, "arrived_at": stamp if i % 3 else None,
        "completed_at": stamp, "service_date": day,
        "distance_km": (D("80.00") if i % 5 == 0 else D("12.00")) if i % 3 else None,
        "is_engineer_certified": i % 7 != 0, "resolution": "fixed"} for i in range(count)])
    ids = db.session.scalars(select(WorkOrder.id).where(
        WorkOrder.agency_id == agency.id, WorkOrder.number.like(f"{prefix}%")))
    db.session.execute(insert(WorkOrderRepair), [
        {"agency_id": agency.id, "work_order_id": order_id, "repair_code_id": code.id,
         "standard_hours": code.standard_hours} for order_id in ids])


def claim_in_review(env, agency, owner, count: int) -> int:
    with env.app.app_context(), unscoped("a claim of many orders"):
        bulk_orders(agency, env.world.line, env.day, count)
        s = services.open_settlement(agency, env.year, env.month, acting_user=owner,
                                     today=env.today)
        services.submit_settlement(s, acting_user=owner, seen_version=s.version,
                                   today=env.today)
        s.needs_regional_review = False  # straight to HQ
        db.session.commit()
        assert s.line_count == count
        return s.id


def test_the_review_page_runs_the_same_queries_at_50_and_at_5000_lines(web, query_counter):
    import time

    app = web.app
    started = time.perf_counter()
    small = claim_in_review(web, web.world.a2, web.world.a2_users[Role.AGENCY_OWNER], 50)
    big = claim_in_review(web, web.world.b, web.world.b_users[Role.AGENCY_OWNER], 5000)
    built = time.perf_counter() - started
    reviewer = as_user(app, web.reviewer)
    counts, pages = [], {}
    for sid in (small, big):
        for args in ("", "?lines=all&sort=-claimed&page=2",
                     "?code=distance_over_cap&state=pending"):
            with query_counter as counter:
                response = reviewer.get(f"/settlements/{sid}{args}")
            assert response.status_code == 200
            counts.append((args, counter.count))
            pages[sid, args] = text_of(response)
    assert counts[:3] == counts[3:], counts
    big_page = pages[big, "?lines=all&sort=-claimed&page=2"]
    assert len(rows(big_page)) == 100  # a page of a hundred lines
    assert "5,000" in big_page  # every line counted, none listed beyond the page
    print(f"\n5,050 lines built in {built:.1f} s; queries per page view: "
          f"{[c for _a, c in counts[:3]]}")
