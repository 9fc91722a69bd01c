"""Consequences: what a result proposes, and HQ admin's decision applied through the network's
own lifecycle."""
from datetime import timedelta
from decimal import Decimal

import pytest
from flask import g
from sqlalchemy import select

from evaluation import services
from evaluation.consequences import propose
from evaluation.models import Proposal
from portal.audit.models import AuditEntry
from portal.auth.roles import Role
from portal.errors_domain import DomainError
from portal.extensions import db
from portal.tenancy import unscoped
from tenants.models import Agency, AgencyStatusChange
from tests.evaluation import factories as f
from tests.evaluation.test_compute import build_worked_example
from tests.factories import sign_in

D = Decimal


def _agency(agency_id) -> Agency:
    return db.session.scalars(select(Agency).where(Agency.id == agency_id)).one()


def _kinds(**kw):
    base = {"grade": "B", "previous_grade": "B", "scores": [D(85)], "tier": 3,
            "status": "active", "coverage_gaps": 0}
    return [(p.kind, p.to_tier or p.to_status, p.reasons) for p in propose(**{**base, **kw})]


def test_second_d_proposes_termination():
    assert _kinds(grade="D", previous_grade="D") == [("terminate", "terminated", ("two_d",))]


def test_first_d_proposes_probation_and_demotion():
    assert _kinds(grade="D", previous_grade="C") == [
        ("probation", "probation", ("grade_d",)), ("demote", 2, ("grade_d",))]
    # already on probation, lowest tier: nothing more to propose but what applies
    assert _kinds(grade="D", previous_grade="B", status="probation", tier=1) == []


def test_c_falling_or_short_of_engineers_proposes_demotion():
    falling = [D("72"), D("78"), D("85")]
    assert _kinds(grade="C", scores=falling) == [("demote", 2, ("grade_c_declining",))]
    assert _kinds(grade="C", scores=[D("75"), D("74"), D("73")]) == []
    assert _kinds(grade="C", scores=[D("75")], coverage_gaps=1) == [
        ("demote", 2, ("coverage_gap",))]


def test_sustained_a_with_full_certification_proposes_promotion():
    assert _kinds(grade="A", previous_grade="B") == [("promote", 4, ("grade_a_sustained",))]
    assert _kinds(grade="A", previous_grade="C") == []
    assert _kinds(grade="A", previous_grade="A", coverage_gaps=2) == []
    assert _kinds(grade="A", previous_grade="A", tier=5) == []
    assert _kinds(grade=None) == []


@pytest.fixture
def final_d(hq, fast_pdfs):
    """Agency A graded D (the worked example's data without inspection), published."""

    build_worked_example(hq)
    quarter = f.published()
    result = f.result_of(quarter, hq.a)
    assert result.grade == "D"
    proposals = db.session.scalars(select(Proposal).where(Proposal.agency_id == hq.a.id)
                                   .order_by(Proposal.id)).all()
    return result, {p.kind: p for p in proposals}


def test_publication_stores_the_proposals(final_d):
    _result, proposals = final_d
    assert set(proposals) == {"probation", "demote"}
    assert proposals["demote"].from_tier == 3 and proposals["demote"].to_tier == 2


def test_accepting_waits_for_a_final_result(hq, final_d):
    result, proposals = final_d
    with pytest.raises(DomainError, match="once the result is final"):
        services.decide_proposal(proposals["probation"], True, "",
                                 acting_user=f.person(Role.HQ_ADMIN))


def test_accepting_a_status_change_runs_the_agency_lifecycle(hq, final_d):
    result, proposals = final_d
    services.acknowledge_result(result, acting_user=None)
    before = db.session.query(AuditEntry).count()
    services.decide_proposal(proposals["probation"], True, "As proposed.",
                             acting_user=f.person(Role.HQ_ADMIN))
    db.session.flush()
    assert db.session.query(AuditEntry).count() == before + 1  # the lifecycle's own entry
    assert _agency(hq.a.id).status == "probation"
    assert proposals["probation"].status == "accepted"
    change = db.session.scalars(select(AgencyStatusChange).where(
        AgencyStatusChange.agency_id == hq.a.id).order_by(AgencyStatusChange.id.desc())).first()
    assert "2026Q2" in change.reason and "grade D" in change.reason
    with pytest.raises(DomainError, match="already decided"):
        services.decide_proposal(proposals["probation"], True, "",
                                 acting_user=f.person(Role.HQ_ADMIN))


def test_accepting_a_tier_change_is_audited_with_the_evaluation(hq, final_d):
    result, proposals = final_d
    services.acknowledge_result(result, acting_user=None)
    services.decide_proposal(proposals["demote"], True, "", acting_user=f.person(Role.HQ_ADMIN))
    db.session.flush()
    assert _agency(hq.a.id).tier == 2
    entry = db.session.scalars(select(AuditEntry).where(
        AuditEntry.action == "agency.tier_changed")).one()
    assert entry.before == {"tier": 3} and entry.after == {"tier": 2} and "2026Q2" in entry.reason


def test_a_stale_tier_proposal_is_refused(hq, final_d):
    result, proposals = final_d
    services.acknowledge_result(result, acting_user=None)
    _agency(hq.a.id).tier = 4
    with pytest.raises(DomainError, match="tier changed"):
        services.decide_proposal(proposals["demote"], True, "", acting_user=f.person(Role.HQ_ADMIN))


def test_rejecting_needs_no_final_result(hq, final_d):
    _result, proposals = final_d
    services.decide_proposal(proposals["demote"], False, "Give them a quarter.",
                             acting_user=f.person(Role.HQ_ADMIN))
    assert proposals["demote"].status == "rejected" and _agency(hq.a.id).tier == 3


def test_termination_proposal_after_a_second_d(hq, fast_pdfs):
    for period in (f.Q.previous(), f.Q):
        for _n in range(12):
            f.order(hq.a, hq.line, day=period.first_day + timedelta(days=3), hours=40,
                    first_time_fix=False, certified=False)
        f.published(period)
    kinds = set(db.session.scalars(select(Proposal.kind).where(Proposal.agency_id == hq.a.id)))
    assert "terminate" in kinds


# --- HQ admin's decision on the consequences page ----------------------------------------------


@pytest.fixture
def proposed(app, world, fast_pdfs):
    """Agency A graded D and published: probation and demotion proposed (ids by kind)."""
    with app.app_context(), unscoped("test publishes a quarter"):
        g._audit_actor = None
        build_worked_example(world)
        quarter = f.published()
        ids = {p.kind: p.id for p in db.session.scalars(select(Proposal).where(
            Proposal.agency_id == world.a.id))}
        result_id = f.result_of(quarter, world.a).id
        db.session.commit()
    return {"ids": ids, "quarter": quarter.id, "result": result_id}


def _state(app, world, proposal_id):
    with app.app_context(), unscoped("test reads back"):
        proposal = db.session.scalars(select(Proposal).where(Proposal.id == proposal_id)).one()
        agency = _agency(world.a.id)
        return proposal.status, agency.status, agency.tier


def _acknowledge(app, world, proposed):
    owner = app.test_client()
    sign_in(owner, world.user(Role.AGENCY_OWNER))
    assert owner.post(f"/evaluation/results/{proposed['result']}/acknowledge").status_code \
        == 302


def test_hq_admin_accepts_a_proposal_and_the_agency_lifecycle_applies_it(app, client, world,
                                                                          proposed):
    probation = proposed["ids"]["probation"]
    url = f"/evaluation/proposals/{probation}/decide"
    sign_in(client, world.user(Role.HQ_ADMIN))
    assert "Tier demotion" in client.get("/evaluation/proposals/").get_data(as_text=True)
    # not final yet: refused with the reason, nothing changed
    response = client.post(url, data={"decision": "accept", "note": "now"})
    assert response.status_code == 422
    assert "once the result is final" in response.get_data(as_text=True)
    assert _state(app, world, probation) == ("proposed", "active", 3)
    _acknowledge(app, world, proposed)
    response = client.post(url, data={"decision": "accept", "note": "As proposed."})
    assert response.status_code == 302
    assert _state(app, world, probation) == ("accepted", "probation", 3)
    response = client.post(url, data={"decision": "accept"})
    assert response.status_code == 422 and "already decided" in response.get_data(as_text=True)


def test_hq_admin_rejects_a_proposal_and_nothing_changes(app, client, world, proposed):
    demote = proposed["ids"]["demote"]
    url = f"/evaluation/proposals/{demote}/decide"
    sign_in(client, world.user(Role.HQ_ADMIN))
    for bad in ({}, {"decision": "maybe"}, {"decision": "accept", "note": "x" * 4001}):
        response = client.post(url, data=bad)
        assert response.status_code == 422, bad
        assert _state(app, world, demote) == ("proposed", "active", 3)
    assert client.post(url, data={"decision": "reject", "note": "One more quarter."}
                       ).status_code == 302
    assert _state(app, world, demote) == ("rejected", "active", 3)


def test_only_hq_admin_decides_proposals(app, world, proposed):
    _acknowledge(app, world, proposed)
    demote = proposed["ids"]["demote"]
    for role in (Role.HQ_SERVICE, Role.AUDITOR, Role.REGIONAL_MANAGER, Role.AGENCY_OWNER):
        other = app.test_client()
        sign_in(other, world.user(role))
        assert other.post(f"/evaluation/proposals/{demote}/decide",
                          data={"decision": "accept"}).status_code in (403, 404), role
    assert _state(app, world, demote) == ("proposed", "active", 3)


def test_a_result_unanswered_for_seven_days_stands_final_for_its_proposals(hq, final_d):
    result, proposals = final_d
    quarter = db.session.scalars(select(f.Quarter).where(f.Quarter.id == result.quarter_id)
                                 ).one()
    quarter.published_at -= timedelta(days=8)
    quarter.appeal_deadline_at -= timedelta(days=8)
    db.session.flush()
    assert result.status == "published"  # nobody answered, nobody finalized the quarter yet
    services.decide_proposal(proposals["demote"], True, "", acting_user=f.person(Role.HQ_ADMIN))
    assert _agency(hq.a.id).tier == 2
