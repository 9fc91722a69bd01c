"""The quarter's lifecycle: inspection scores, publication, acknowledgement, appeals within
7 days, HQ's decisions, finalization and the grade settlement reads — one audit entry each."""
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from evaluation import publication, services
from evaluation.models import Proposal, Quarter, RankingReport, Report, Result
from portal.audit.models import AuditEntry
from portal.auth.roles import Role
from portal.errors_domain import DomainError
from portal.extensions import db
from portal.tenancy import region_scope, scoped
from tests.evaluation import factories as f
from tests.evaluation.test_compute import build_worked_example

pytestmark = pytest.mark.usefixtures("fast_pdfs")


def _entries() -> int:
    return db.session.scalar(select(func.count(AuditEntry.id)))


def _one_entry(action, *args, **kwargs):
    """Run a service and check it wrote exactly one audit entry."""
    before = _entries()
    out = action(*args, **kwargs)
    db.session.flush()
    assert _entries() == before + 1, action.__name__
    return out


@pytest.fixture
def example(hq):
    build_worked_example(hq)
    for _n in range(12):
        f.order(hq.b, hq.line, hours=1)
    return hq


def _shift(quarter: Quarter, days: int) -> None:
    quarter.published_at -= timedelta(days=days)
    quarter.appeal_deadline_at -= timedelta(days=days)
    db.session.flush()


# --- inspection -----------------------------------------------------------------------------------


def test_inspection_rescores_the_draft(example):
    quarter = f.computed()
    result = f.result_of(quarter, example.a)
    assert result.score == Decimal("61.85")  # without the inspection KPI
    _one_entry(services.enter_inspection, result, 88, "ok", acting_user=f.person(Role.HQ_SERVICE))
    assert result.score == Decimal("64.61")  # the worked example
    _one_entry(services.enter_inspection, result, 40, "corrected",
               acting_user=f.person(Role.HQ_SERVICE))  # re-entry corrects
    assert f.values_of(result)["inspection"].points == Decimal("40.00")
    with pytest.raises(DomainError):
        services.enter_inspection(result, 101, "", acting_user=f.person(Role.HQ_SERVICE))
    with pytest.raises(DomainError):
        services.enter_inspection(result, "88", "", acting_user=f.person(Role.HQ_SERVICE))


def test_regional_manager_scope_refuses_another_regions_agency(example):
    from portal.tenancy import TenancyViolation

    quarter = f.computed()
    foreign = f.result_of(quarter, example.b)
    manager = f.person(Role.REGIONAL_MANAGER)
    with scoped(region_scope(example.region1.id)):
        with pytest.raises(TenancyViolation):
            services.enter_inspection(foreign, 70, "", acting_user=manager)
            db.session.flush()
    db.session.rollback()


def test_no_inspection_after_publication(example):
    quarter = f.published()
    with pytest.raises(DomainError, match="before the quarter is published"):
        services.enter_inspection(f.result_of(quarter, example.a), 80, "",
                                  acting_user=f.person(Role.HQ_SERVICE))


# --- publication ----------------------------------------------------------------------------------


def test_publication_stores_every_report_and_records_their_hashes(example):
    quarter = f.computed()
    _one_entry(publication.publish_quarter, quarter)
    assert quarter.status == "published"
    assert quarter.appeal_deadline_at - quarter.published_at == timedelta(days=7)
    reports = db.session.scalars(select(Report)).all()
    assert len(reports) == 3 * 2 and {r.locale for r in reports} == {"zh_CN", "en"}
    rankings = db.session.scalars(select(RankingReport)).all()
    assert len(rankings) == 2
    entry = db.session.scalars(select(AuditEntry).where(
        AuditEntry.action == "evaluation.published")).one()
    assert entry.after["reports"] == {r.number: r.sha256 for r in reports}
    assert entry.after["ranking"] == {r.number: r.sha256 for r in rankings}
    statuses = set(db.session.scalars(select(Result.status)))
    assert statuses == {"published"}
    with pytest.raises(DomainError, match="already published"):
        publication.publish_quarter(quarter)


def test_a_render_failure_leaves_the_quarter_unpublished_and_retryable(example, monkeypatch):
    from portal import jobs
    from portal.tenancy import ALL

    quarter = f.computed()
    from evaluation import reports

    calls = []
    real = reports.render_report

    def flaky(figures, locale):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("font missing")
        return real(figures, locale)

    monkeypatch.setattr(reports, "render_report", flaky)
    job = jobs.start("evaluation.publish", {"quarter_id": quarter.id}, scope=ALL)
    db.session.commit()
    finished = jobs.run(job.id)
    assert finished.status == jobs.FAILED and "font missing" in finished.error
    db.session.expire_all()
    assert db.session.scalars(select(Quarter)).one().status == "draft"
    assert db.session.scalar(select(func.count(Report.id))) == 0
    assert db.session.scalar(select(func.count(Proposal.id))) == 0
    assert set(db.session.scalars(select(Result.status))) == {"draft"}
    monkeypatch.setattr(reports, "render_report", real)
    assert jobs.run(job.id).status == jobs.SUCCEEDED
    assert db.session.scalars(select(Quarter)).one().status == "published"


# --- acknowledge, appeal, decide ---------------------------------------------------------------


def test_acknowledgement_makes_the_result_final(example):
    quarter = f.published()
    result = f.result_of(quarter, example.a)
    _one_entry(services.acknowledge_result, result, acting_user=None)
    assert result.status == "final" and result.final_reason == "acknowledged"
    with pytest.raises(DomainError):
        services.acknowledge_result(result, acting_user=None)
    with pytest.raises(DomainError):
        services.lodge_appeal(result, "I changed my mind about it.", None, acting_user=None)


def test_the_appeal_deadline_is_seven_days_to_the_second(example, monkeypatch):
    quarter = f.published()
    result = f.result_of(quarter, example.a)
    deadline = quarter.appeal_deadline_at
    monkeypatch.setattr(services, "utcnow", lambda: deadline + timedelta(seconds=1))
    with pytest.raises(DomainError, match="7 days"):
        services.lodge_appeal(result, "Too late, but here is my reason.", None, acting_user=None)
    with pytest.raises(DomainError, match="7 days"):
        services.acknowledge_result(result, acting_user=None)
    monkeypatch.setattr(services, "utcnow", lambda: deadline)
    appeal = _one_entry(services.lodge_appeal, result, "Just in time: two revisits are "
                        "another agency's.", "satisfaction", acting_user=None)
    assert result.status == "appealed" and appeal.status == "open"


@pytest.mark.parametrize("reason, code", [("short", None), ("", None), ("x" * 4001, None),
                                          ("A perfectly fine reason.", "nope")])
def test_bad_appeals_are_refused_and_write_nothing(example, reason, code):
    quarter = f.published()
    result = f.result_of(quarter, example.a)
    before = _entries()
    with pytest.raises(DomainError):
        services.lodge_appeal(result, reason, code, acting_user=None)
    db.session.flush()
    assert _entries() == before and result.status == "published"
    assert db.session.scalar(select(func.count(f.Appeal.id))) == 0


def test_rejected_appeal_keeps_the_result_with_the_reason(example):
    quarter = f.published()
    result = f.result_of(quarter, example.a)
    appeal = services.lodge_appeal(result, "The late orders were rescheduled by customers.",
                                   "timeliness", acting_user=None)
    with pytest.raises(DomainError):
        services.resolve_appeal(appeal, upheld=False, note="no",
                                acting_user=f.person(Role.HQ_SERVICE))
    _one_entry(services.resolve_appeal, appeal, upheld=False,
               note="The time records are right; rescheduling was not the customer's wish.",
                   acting_user=f.person(Role.HQ_SERVICE))
    assert appeal.status == "rejected" and "time records" in appeal.resolution_note
    assert result.status == "final" and result.final_reason == "appeal_rejected"
    assert result.score == Decimal("61.85") and result.report_version == 1
    with pytest.raises(DomainError, match="already decided"):
        services.resolve_appeal(appeal, upheld=False, note="again and again",
                                acting_user=f.person(Role.HQ_SERVICE))


def test_upheld_appeal_recomputes_and_issues_a_new_version(example):
    quarter = f.published()
    result = f.result_of(quarter, example.a)
    v1 = {r.number: r.content for r in db.session.scalars(select(Report).where(
        Report.agency_id == example.a.id))}
    appeal = services.lodge_appeal(result, "Two of our late orders were on site in time.",
                                   "timeliness", acting_user=None)
    # the data is corrected in the service area meanwhile: every order in time
    for order in db.session.scalars(select(f.WorkOrder).where(
            f.WorkOrder.agency_id == example.a.id)):
        order.responded_at = order.arrived_at = order.received_at + timedelta(hours=1)
    db.session.flush()
    _one_entry(services.resolve_appeal, appeal, upheld=True, resolution="recompute",
               note="The arrival times were corrected; recomputed.",
                   acting_user=f.person(Role.HQ_SERVICE))
    assert f.values_of(result)["timeliness"].numerator == 20
    assert result.score > Decimal("61.85") and result.report_version == 2
    assert result.status == "final" and result.final_reason == "appeal_upheld"
    reports = db.session.scalars(select(Report).where(Report.agency_id == example.a.id)).all()
    assert len(reports) == 4 and {r.version for r in reports} == {1, 2}
    for report in reports:  # the old version stays, unchanged
        if report.number in v1:
            assert report.content == v1[report.number]
    assert db.session.scalar(select(func.max(RankingReport.version))) == 2


def test_upheld_correction_of_one_kpi_places_the_result_among_the_others(example):
    quarter = f.published()
    a, b = f.result_of(quarter, example.a), f.result_of(quarter, example.b)
    b_rank = (b.rank_national, b.rank_region)
    appeal = services.lodge_appeal(a, "The inspection happened on a public holiday.",
                                   "inspection", acting_user=None)
    with pytest.raises(DomainError):
        services.resolve_appeal(appeal, upheld=True, resolution="correct", note="fix it",
                                kpi_code="inspection", numerator=120, denominator=1,
                                    acting_user=f.person(Role.HQ_SERVICE))
    with pytest.raises(DomainError):
        services.resolve_appeal(appeal, upheld=True, resolution="sideways", note="fix it",
                                acting_user=f.person(Role.HQ_SERVICE))
    services.resolve_appeal(appeal, upheld=True, resolution="correct", note="Inspection redone.",
                            kpi_code="inspection", numerator=100, denominator=1,
                                acting_user=f.person(Role.HQ_SERVICE))
    assert f.values_of(a)["inspection"].correction_note == "Inspection redone."
    assert f.values_of(a)["inspection"].is_sufficient
    assert a.rank_national_of == 2 and a.rank_national in (1, 2)
    db.session.refresh(b)
    assert (b.rank_national, b.rank_region) == b_rank  # others keep their published ranks


def test_finalize_waits_for_appeals_and_the_deadline(example):
    quarter = f.published()
    a, b = f.result_of(quarter, example.a), f.result_of(quarter, example.b)
    appeal = services.lodge_appeal(a, "We dispute the complaint verdict entirely.",
                                   "complaints", acting_user=None)
    with pytest.raises(DomainError, match="1 appeal is still open: decide it first"):
        services.finalize_quarter(quarter, acting_user=None)
    services.resolve_appeal(appeal, upheld=False, note="The verdict stands as given.",
                            acting_user=f.person(Role.HQ_SERVICE))
    with pytest.raises(DomainError, match="may still acknowledge"):
        services.finalize_quarter(quarter, acting_user=None)
    _shift(quarter, 8)
    assert _one_entry(services.finalize_quarter, quarter,
                      acting_user=None) == 2  # A2 and B deemed accepted
    db.session.refresh(b)
    assert quarter.status == "final" and b.status == "final" and b.final_reason == "deadline"


def test_final_grades_feed_settlement(example):
    from settlement import rules

    quarter = f.published()
    a, b = f.result_of(quarter, example.a), f.result_of(quarter, example.b)
    assert rules.grade_for(a.agency_id, f.Q.year, f.Q.quarter) is None  # not final yet
    services.acknowledge_result(a, acting_user=None)
    assert rules.grade_for(a.agency_id, f.Q.year, f.Q.quarter) == "D"
    assert rules.grade_for(b.agency_id, f.Q.year, f.Q.quarter) is None
    _shift(quarter, 8)  # the 7 days passed without an appeal: final
    assert rules.grade_for(b.agency_id, f.Q.year, f.Q.quarter) == b.grade
    assert rules.grade_for(b.agency_id, 2020, 1) is None


def test_the_final_grade_becomes_a_line_of_the_next_settlement(ctx, world, fast_pdfs):
    """End to end with the settlement area: a D made final in a quarter gives the next
    month's settlement its grade line, −8 % of the quarter's labor fees (the default)."""
    from flask import g

    from portal.tenancy import unscoped
    from settlement import rules
    from settlement import services as settlement_services
    from settlement.models import LineKind
    from tests.settlement import factories as sf
    from tests.settlement.conftest import Env

    g._audit_actor = None
    env = Env(world)
    (period,) = rules.grade_quarters(env.year, env.month, 1)
    year, first_day = period.year, period.first_day
    with env.fixture():
        sf.rate_card([world.line])
    # July's claim: one carry-in repair of 2 standard hours at the tier's 80.00 an hour
    env.order(day=first_day + timedelta(days=4), repairs=[env.code("2.00")],
              service_type="carry_in")
    early = env.open(year=year, month=first_day.month, today=first_day + timedelta(days=34))
    labor = sum(ln.labor_fee for ln in early.lines if ln.kind == LineKind.ORDER)
    assert labor == Decimal("160.00")
    with unscoped("HQ evaluates the quarter"):
        for _n in range(12):  # late, not fixed, uncertified: a D
            f.order(world.a, world.line, day=first_day + timedelta(days=40), hours=40,
                    first_time_fix=False, certified=False)
        quarter_row = f.published(period)
        result = f.result_of(quarter_row, world.a)
        assert result.grade == "D"
    env.order(repairs=[env.code()])
    draft = env.open()
    assert not [ln for ln in draft.lines if ln.kind == LineKind.GRADE]  # not final yet
    with env.agency():
        settlement_services.withdraw_settlement(draft, acting_user=env.owner,
                                                seen_version=draft.version)
    with unscoped("the agency answers"):
        services.acknowledge_result(result, acting_user=None)
    settlement = env.open()
    (line,) = [ln for ln in settlement.lines if ln.kind == LineKind.GRADE]
    assert (line.grade, line.grade_period, line.rate_pct, line.basis_amount,
            line.claimed_amount) == ("D", period.label, Decimal("-8.00"), labor,
                                     Decimal("-12.80"))
