"""The workflow: regional review, line decisions, four eyes, the second approval above the
threshold, returns, payment, appeals, delegations, and requests that must not count twice."""
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select, update

from portal.audit.models import AuditEntry
from portal.auth.models import User
from portal.auth.roles import Role
from portal.errors_domain import DomainError
from portal.extensions import db
from settlement import config, delegation, review, services
from settlement.models import AppealStatus, Decision, Status
from tests.factories import make_user

D = Decimal


@pytest.fixture
def submitted(stl):
    """A submitted claim of agency A with a clean line and a line routed to review."""
    stl.order(repairs=[stl.code("1.00")], service_type="carry_in")          # 130.00, clean
    stl.order(repairs=[stl.code("5.00")], service_type="carry_in")          # 450.00, > 4 h
    s = stl.open()
    stl.submit(s)
    return s


def lines_by_disposition(s):
    return {ln.disposition: ln for ln in s.lines}


def test_the_regional_manager_reviews_first(stl, submitted):
    s = submitted
    assert s.needs_regional_review and s.awaits_regional_review
    with stl.hq(), pytest.raises(DomainError, match="regional manager reviews"):
        review.approve_clean_lines(s, acting_user=stl.reviewer, seen_version=s.version)
    with stl.hq(), pytest.raises(DomainError, match="region's manager"):
        review.regional_review(s, True, "", acting_user=stl.reviewer, seen_version=s.version)
    stl.forward(s)
    assert not s.awaits_regional_review and s.regional_reviewed_by_id == stl.manager.id


def test_no_regional_manager_no_regional_step(stl):
    stl.order(agency=stl.world.b, repairs=[stl.code()])
    s = stl.open(agency=stl.world.b, actor=stl.world.b_users[Role.AGENCY_OWNER])
    stl.submit(s)
    assert not s.needs_regional_review  # region 2 has no regional manager


def test_the_regional_manager_returns_with_a_comment(stl, submitted):
    s = submitted
    with stl.region(), pytest.raises(DomainError, match="between"):
        review.regional_review(s, False, "", acting_user=stl.manager, seen_version=s.version)
    with stl.region():
        review.regional_review(s, False, "Photos missing.", acting_user=stl.manager,
                               seen_version=s.version)
    assert s.status == Status.RETURNED


def test_lines_are_approved_adjusted_or_denied_with_a_reason(stl, submitted):
    s = submitted
    stl.forward(s)
    clean, flagged = lines_by_disposition(s)["pay"], lines_by_disposition(s)["review"]
    with stl.hq():
        assert review.approve_clean_lines(s, acting_user=stl.reviewer, seen_version=s.version) == 1
        assert clean.decision == Decision.APPROVED and flagged.decision == Decision.PENDING
        for kwargs, message in (
                ({"decision": "adjusted", "amount": "500.00", "reason_code": "rate_mismatch"},
                 "between"),
                ({"decision": "adjusted", "amount": "1.234", "reason_code": "rate_mismatch"},
                 "between"),
                ({"decision": "adjusted", "amount": "x", "reason_code": "rate_mismatch"},
                 "between"),
                ({"decision": "adjusted", "amount": "100.00", "reason_code": ""}, "reason code"),
                ({"decision": "denied", "reason_code": "other", "reason_text": ""}, "between"),
                ({"decision": "maybe"}, "approve, adjust or deny")):
            decision = kwargs.pop("decision")
            with pytest.raises(DomainError, match=message):
                review.decide_line(s, flagged, decision, acting_user=stl.reviewer,
                                   seen_version=s.version, **kwargs)
        review.decide_line(s, flagged, "adjusted", acting_user=stl.reviewer, seen_version=s.version,
                           amount="320.00", reason_code="rate_mismatch",
                           reason_text="5 h is too much.")
    assert (flagged.decision, flagged.approved_amount, flagged.reason_code) == (
        Decision.ADJUSTED, D("320.00"), "rate_mismatch")
    assert s.approved_total == D("130.00") + D("320.00")


def test_four_eyes_the_adjuster_never_approves(stl, submitted):
    s = submitted
    stl.forward(s)
    colleague = _colleague(stl, Role.HQ_SETTLEMENT)
    with stl.hq():
        review.approve_clean_lines(s, acting_user=stl.reviewer, seen_version=s.version)
        flagged = lines_by_disposition(s)["review"]
        review.decide_line(s, flagged, "denied", acting_user=stl.reviewer, seen_version=s.version,
                           reason_code="insufficient_evidence")
        with pytest.raises(DomainError, match="four eyes"):
            review.approve_settlement(s, acting_user=stl.reviewer, seen_version=s.version,
                                      today=stl.today)
        assert review.approve_settlement(s, acting_user=colleague, seen_version=s.version,
                                         today=stl.today)
    assert s.status == Status.APPROVED and s.approved_total == D("130.00")


def test_nothing_is_approved_while_a_line_waits(stl, submitted):
    s = submitted
    stl.forward(s)
    with stl.hq(), pytest.raises(DomainError, match="wait for a decision"):
        review.approve_settlement(s, acting_user=stl.reviewer, seen_version=s.version,
                                  today=stl.today)


def _colleague(stl, role):
    with stl.fixture():
        return make_user(role)


def _set_threshold(stl, amount):
    with stl.hq():
        data = {n: getattr(config.current_settings(), n) for n in config.SETTING_NAMES}
        config.save_settings(config.settings_record(),
                             {**data, "second_approval_threshold": D(amount)},
                             acting_user=stl.admin, seen_version=config.settings_version())


def _decided(stl, s):
    stl.forward(s)
    with stl.hq():
        review.approve_clean_lines(s, acting_user=stl.reviewer, seen_version=s.version)
        review.decide_line(s, lines_by_disposition(s)["review"], "approved",
                           acting_user=stl.reviewer, seen_version=s.version)


def test_above_the_threshold_hq_admin_gives_a_second_approval(stl, submitted):
    _set_threshold(stl, "500.00")
    s = submitted
    _decided(stl, s)
    assert s.approved_total == D("580.00")
    second_admin = _colleague(stl, Role.HQ_ADMIN)
    with stl.hq():
        assert review.approve_settlement(s, acting_user=stl.reviewer, seen_version=s.version,
                                         today=stl.today) is False
        assert s.status == Status.SUBMITTED and s.awaits_second_approval
        with pytest.raises(DomainError, match="second approval by HQ admin"):
            review.approve_settlement(s, acting_user=_colleague(stl, Role.HQ_SETTLEMENT),
                                      seen_version=s.version, today=stl.today)
        assert review.approve_settlement(s, acting_user=second_admin, seen_version=s.version,
                                         today=stl.today)
    assert s.status == Status.APPROVED
    assert s.second_approved_by_id == second_admin.id != s.first_approved_by_id


def test_at_the_threshold_one_approval_is_enough(stl, submitted):
    _set_threshold(stl, "580.00")
    s = submitted
    _decided(stl, s)
    with stl.hq():
        assert review.approve_settlement(s, acting_user=stl.reviewer, seen_version=s.version,
                                         today=stl.today)


def test_a_money_change_voids_the_first_approval(stl, submitted):
    _set_threshold(stl, "100.00")
    s = submitted
    _decided(stl, s)
    with stl.hq():
        review.approve_settlement(s, acting_user=stl.reviewer, seen_version=s.version,
                                  today=stl.today)
        colleague = _colleague(stl, Role.HQ_SETTLEMENT)
        review.decide_line(s, lines_by_disposition(s)["pay"], "approved", acting_user=colleague,
                           seen_version=s.version)
    assert s.first_approved_at is None


def test_submitting_or_approving_twice_changes_money_once(stl, submitted):
    s = submitted
    seen = s.version - 1  # the page the owner clicked twice on
    with stl.agency(), pytest.raises(DomainError, match="out of date"):
        services.submit_settlement(s, acting_user=stl.owner, seen_version=seen, today=stl.today)
    _decided(stl, s)
    page = s.version
    with stl.hq():
        review.approve_settlement(s, acting_user=stl.reviewer, seen_version=page, today=stl.today)
        total = s.approved_total
        audits = db.session.scalar(select(func.count(AuditEntry.id)))
        with pytest.raises(DomainError, match="out of date"):
            review.approve_settlement(s, acting_user=stl.reviewer, seen_version=page,
                                      today=stl.today)
        assert db.session.scalar(select(func.count(AuditEntry.id))) == audits
    assert s.status == Status.APPROVED and s.approved_total == total


def test_a_stale_line_decision_is_refused(stl, submitted):
    s = submitted
    stl.forward(s)
    page = s.version
    line = lines_by_disposition(s)["review"]
    with stl.hq():
        review.decide_line(s, line, "approved", acting_user=stl.reviewer, seen_version=page)
        with pytest.raises(DomainError, match="out of date"):
            review.decide_line(s, line, "denied", acting_user=stl.reviewer, seen_version=page,
                               reason_code="duplicate")
    assert line.decision == Decision.APPROVED


def test_return_and_resubmit(stl, submitted):
    s = submitted
    stl.forward(s)
    with stl.hq():
        with pytest.raises(DomainError, match="between"):
            review.return_settlement(s, "  ", acting_user=stl.reviewer, seen_version=s.version)
        review.return_settlement(s, "Add the invoice of line 2.", acting_user=stl.reviewer,
                                 seen_version=s.version)
    assert s.status == Status.RETURNED
    stl.submit(s)
    assert s.status == Status.SUBMITTED and s.submission_count == 2
    assert s.awaits_regional_review  # a new submission is reviewed again


def test_pay_only_approved_with_a_reference(stl, submitted):
    s = submitted
    _decided(stl, s)
    with stl.hq():
        with pytest.raises(DomainError, match="Not possible"):
            review.mark_paid(s, "CMB-1", None, acting_user=stl.reviewer, seen_version=s.version,
                             today=stl.today)
        review.approve_settlement(s, acting_user=_colleague(stl, Role.HQ_SETTLEMENT),
                                  seen_version=s.version, today=stl.today)
        for reference, paid_on, message in (
                ("x", None, "payment reference"),
                ("CMB-2026-001", stl.today + timedelta(days=1), "future"),
                ("CMB-2026-001", stl.today - timedelta(days=30), "before the approval")):
            with pytest.raises(DomainError, match=message):
                review.mark_paid(s, reference, paid_on, acting_user=stl.reviewer,
                                 seen_version=s.version, today=stl.today)
        with pytest.raises(DomainError, match="record payments"):
            review.mark_paid(s, "CMB-2026-001", None, acting_user=stl.admin, seen_version=s.version,
                             today=stl.today)
        review.mark_paid(s, "CMB-2026-001", None, acting_user=stl.reviewer, seen_version=s.version,
                         today=stl.today)
    assert s.status == Status.PAID and s.payment_reference == "CMB-2026-001"


def test_an_appeal_once_before_payment_reopens_the_review(stl, submitted):
    s = submitted
    stl.forward(s)
    with stl.hq():
        review.approve_clean_lines(s, acting_user=stl.reviewer, seen_version=s.version)
        flagged = lines_by_disposition(s)["review"]
        review.decide_line(s, flagged, "denied", acting_user=stl.reviewer, seen_version=s.version,
                           reason_code="insufficient_evidence")
        review.approve_settlement(s, acting_user=_colleague(stl, Role.HQ_SETTLEMENT),
                                  seen_version=s.version, today=stl.today)
    clean = lines_by_disposition(s)["pay"]
    with stl.agency():
        with pytest.raises(DomainError, match="adjusted or denied"):
            review.lodge_appeal(s, clean, "Please pay this line in full.", acting_user=stl.owner,
                                seen_version=s.version)
        with pytest.raises(DomainError, match="between"):
            review.lodge_appeal(s, flagged, "pay", acting_user=stl.owner, seen_version=s.version)
        appeal = review.lodge_appeal(s, flagged, "The photos are uploaded now.",
                                     acting_user=stl.owner, seen_version=s.version)
        with pytest.raises(DomainError, match="appealed once"):
            review.lodge_appeal(s, flagged, "And once more, please.", acting_user=stl.owner,
                                seen_version=s.version)
    assert s.status == Status.SUBMITTED and s.approved_at is None
    with stl.hq():
        with pytest.raises(DomainError, match="open appeal"):
            review.decide_line(s, flagged, "approved", acting_user=stl.reviewer,
                               seen_version=s.version)
        with pytest.raises(DomainError, match="open appeals"):
            review.approve_settlement(s, acting_user=_colleague(stl, Role.HQ_SETTLEMENT),
                                      seen_version=s.version, today=stl.today)
        with pytest.raises(DomainError, match="new amount"):
            review.resolve_appeal(s, appeal, True, "9999.00", "Too much.", acting_user=stl.reviewer,
                                  seen_version=s.version)
        review.resolve_appeal(s, appeal, True, "450.00", "Photos verified.",
                              acting_user=stl.reviewer, seen_version=s.version)
    assert appeal.status == AppealStatus.UPHELD and flagged.decision == Decision.APPROVED
    assert s.approved_total == D("580.00")


def test_a_paid_settlement_cannot_be_appealed(stl, submitted):
    s = submitted
    stl.forward(s)
    with stl.hq():
        review.approve_clean_lines(s, acting_user=stl.reviewer, seen_version=s.version)
        flagged = lines_by_disposition(s)["review"]
        review.decide_line(s, flagged, "adjusted", acting_user=stl.reviewer, seen_version=s.version,
                           amount="100.00", reason_code="rate_mismatch")
        review.approve_settlement(s, acting_user=_colleague(stl, Role.HQ_SETTLEMENT),
                                  seen_version=s.version, today=stl.today)
        review.mark_paid(s, "CMB-9", None, acting_user=stl.reviewer, seen_version=s.version,
                         today=stl.today)
    with stl.agency(), pytest.raises(DomainError, match="Not possible"):
        review.lodge_appeal(s, flagged, "We disagree with the cut.", acting_user=stl.owner,
                            seen_version=s.version)


# --- delegation --------------------------------------------------------------------------------


def test_a_regional_manager_away_delegates_the_review(stl, submitted):
    s = submitted
    stand_in = _colleague(stl, Role.HQ_SETTLEMENT)
    with stl.hq(), pytest.raises(DomainError, match="region's manager"):
        review.regional_review(s, True, "", acting_user=stand_in, seen_version=s.version)
    with stl.region():
        d = delegation.create_delegation(stl.manager, stand_in.id, stl.today,
                                         stl.today + timedelta(days=7), "Holiday", stl.today,
                                         acting_user=stl.manager)
    with stl.hq():
        review.regional_review(s, True, "", acting_user=stand_in, seen_version=s.version,
                               today=stl.today)
    assert s.regional_reviewed_by_id == stand_in.id
    with stl.region():
        delegation.end_delegation(d, acting_user=stl.manager)
        assert not delegation.regional_review_power(stand_in, stl.world.region1.id,
                                                    stl.today).allowed


def test_hq_admin_away_delegates_the_second_approval(stl, submitted):
    _set_threshold(stl, "100.00")
    s = submitted
    _decided(stl, s)
    stand_in = _colleague(stl, Role.HQ_SETTLEMENT)
    with stl.hq():
        review.approve_settlement(s, acting_user=stl.reviewer, seen_version=s.version,
                                  today=stl.today)
        with pytest.raises(DomainError, match="second approval"):
            review.approve_settlement(s, acting_user=stand_in, seen_version=s.version,
                                      today=stl.today)
        delegation.create_delegation(stl.admin, stand_in.id, stl.today, stl.today, "", stl.today,
                                     acting_user=stl.admin)
        other_admin = _colleague(stl, Role.HQ_ADMIN)
        delegation.create_delegation(other_admin, stl.reviewer.id, stl.today, stl.today, "",
                                     stl.today, acting_user=other_admin)
        with pytest.raises(DomainError, match="second person"):
            review.approve_settlement(s, acting_user=stl.reviewer, seen_version=s.version,
                                      today=stl.today)
        assert review.approve_settlement(s, acting_user=stand_in, seen_version=s.version,
                                         today=stl.today)
        # the next day the delegation is over
        assert not delegation.second_approval_power(stand_in, stl.today + timedelta(
            days=1)).allowed


def test_delegation_input_is_checked(stl):
    with stl.hq():
        for delegate, start, end, message in (
                (stl.owner.id, stl.today, stl.today, "HQ settlement colleague"),
                (stl.admin.id, stl.today, stl.today, "HQ settlement colleague"),
                (stl.reviewer.id, stl.today - timedelta(days=1), stl.today, "past"),
                (stl.reviewer.id, stl.today, stl.today - timedelta(days=1), "before the start"),
                (stl.reviewer.id, stl.today, stl.today + timedelta(days=200), "at most")):
            with pytest.raises(DomainError, match=message):
                delegation.create_delegation(stl.admin, delegate, start, end, "", stl.today,
                                             acting_user=stl.admin)
        delegation.create_delegation(stl.admin, stl.reviewer.id, stl.today, stl.today, "",
                                     stl.today, acting_user=stl.admin)
        with pytest.raises(DomainError, match="already delegated"):
            delegation.create_delegation(stl.admin, stl.reviewer.id, stl.today, stl.today, "",
                                         stl.today, acting_user=stl.admin)
    with stl.agency(), pytest.raises(DomainError, match="no approval powers"):
        delegation.create_delegation(stl.owner, stl.reviewer.id, stl.today, stl.today, "",
                                     stl.today, acting_user=stl.owner)


def test_a_delegation_holds_only_on_the_days_of_its_range(stl, submitted):
    s = submitted
    stand_in = _colleague(stl, Role.HQ_SETTLEMENT)
    start = stl.today + timedelta(days=3)
    with stl.region():
        delegation.create_delegation(stl.manager, stand_in.id, start, start + timedelta(days=4),
                                     "Training", stl.today, acting_user=stl.manager)
    region_id = stl.world.region1.id
    with stl.hq():
        days = {n: delegation.regional_review_power(stand_in, region_id,
                                                    stl.today + timedelta(days=n))
                for n in (0, 2, 3, 7, 8)}
        assert {n: p.allowed for n, p in days.items()} == {0: False, 2: False, 3: True,
                                                           7: True, 8: False}
        assert days[3].on_behalf_of_id == stl.manager.id
        with pytest.raises(DomainError, match="region's manager"):
            review.regional_review(s, True, "", acting_user=stand_in, seen_version=s.version,
                                   today=stl.today)
        review.regional_review(s, True, "", acting_user=stand_in, seen_version=s.version,
                               today=start)
    assert s.regional_reviewed_by_id == stand_in.id


def test_a_claim_never_waits_for_a_regional_manager_who_left(stl, submitted):
    s = submitted
    assert s.awaits_regional_review
    with stl.hq():
        with pytest.raises(DomainError, match="region's manager"):
            review.regional_review(s, True, "", acting_user=stl.reviewer, seen_version=s.version)
        db.session.execute(update(User).where(User.id == stl.manager.id)
                           .values(is_active_account=False))  # the manager left
        review.regional_review(s, True, "", acting_user=stl.reviewer, seen_version=s.version,
                               today=stl.today)
    assert not s.awaits_regional_review and s.regional_reviewed_by_id == stl.reviewer.id
