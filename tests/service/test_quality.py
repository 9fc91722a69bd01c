"""Customer revisits and complaints."""
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from portal import clock
from portal.audit.models import AuditEntry
from portal.errors_domain import DomainError
from portal.extensions import db
from portal.tenancy import agency_scope, scoped, unscoped
from service import quality
from service.models import Complaint, ComplaintStatus, Revisit, Verdict
from tests.service import factories as f


@pytest.fixture
def hq(ctx, world):
    with unscoped("HQ sees the network"):
        yield world


def _audits(prefix: str) -> int:
    return db.session.scalar(select(func.count(AuditEntry.id)).where(
        AuditEntry.action.like(prefix + "%")))


def test_revisit_scores_completed_orders_from_1_to_5(hq):
    open_order = f.make_order(hq.a, hq.line)
    with pytest.raises(DomainError):
        quality.record_revisit(open_order, 5, "", acting_user=f.service_desk())
    order = f.make_order(hq.a, hq.line, completed=True)
    for score in (0, 6, -1, None, "5", 4.5):
        with pytest.raises(DomainError):
            quality.record_revisit(order, score, "", acting_user=f.service_desk())
    with pytest.raises(DomainError):
        quality.record_revisit(order, 3, "", order.completed_at - timedelta(hours=1),
                               acting_user=f.service_desk())
    before = _audits("revisit")
    revisit = quality.record_revisit(order, 4, "师傅很专业", acting_user=f.service_desk())
    assert (revisit.score, revisit.agency_id) == (4, hq.a.id)
    quality.record_revisit(order, 4, "师傅很专业",
                           acting_user=f.service_desk())  # the same again changes nothing
    quality.record_revisit(order, 2, "后来又坏了", acting_user=f.service_desk())
    assert db.session.scalar(select(func.count(Revisit.id)).where(
        Revisit.work_order_id == order.id)) == 1
    assert revisit.score == 2
    assert _audits("revisit") == before + 3  # one per call, the unchanged one too


def test_complaint_lifecycle(hq):
    order = f.make_order(hq.a, hq.line, completed=True)
    complaint = f.make_complaint(hq.a, order_number=order.number)
    assert (complaint.status, complaint.work_order_id) == (ComplaintStatus.OPEN, order.id)
    with scoped(agency_scope(hq.a.id)):
        with pytest.raises(DomainError):
            quality.respond_to_complaint(complaint, "  ", acting_user=f.staff(complaint.agency))
        quality.respond_to_complaint(complaint, "已联系客户并致歉",
                                     acting_user=f.staff(complaint.agency))
        with pytest.raises(DomainError):
            quality.respond_to_complaint(complaint, "第二次回复",
                                         acting_user=f.staff(complaint.agency))
    assert complaint.status == ComplaintStatus.RESPONDED
    assert complaint.responded_at >= complaint.received_at
    with pytest.raises(DomainError):
        quality.give_verdict(complaint, "guilty", "理由充分", acting_user=f.service_desk())
    with pytest.raises(DomainError):
        quality.give_verdict(complaint, Verdict.SUBSTANTIATED, "", acting_user=f.service_desk())
    quality.give_verdict(complaint, Verdict.SUBSTANTIATED, "上门迟到属实",
                         acting_user=f.service_desk())
    assert complaint.status == ComplaintStatus.CLOSED and complaint.closed_at
    with pytest.raises(DomainError):
        quality.give_verdict(complaint, Verdict.NOT_SUBSTANTIATED, "改判",
                             acting_user=f.service_desk())
    actions = list(db.session.scalars(select(AuditEntry.action).where(
        AuditEntry.object_type == "Complaint", AuditEntry.object_id == str(complaint.id))))
    assert actions == ["complaint.recorded", "complaint.responded", "complaint.closed"]


def test_hq_may_close_a_complaint_the_agency_let_lie(hq):
    complaint = f.make_complaint(hq.a)
    quality.give_verdict(complaint, Verdict.NOT_SUBSTANTIATED, "客户误解",
                         acting_user=f.service_desk())
    assert complaint.status == ComplaintStatus.CLOSED and complaint.response is None


@pytest.mark.parametrize("changes, field", [
    ({"channel": "pigeon"}, "channel"),
    ({"severity": "apocalyptic"}, "severity"),
    ({"description": ""}, "description"),
    ({"description": "x" * 4001}, "description"),
    ({"order_number": "NO-SUCH"}, "order_number"),
])
def test_bad_complaints_are_refused(hq, changes, field):
    data = {"channel": "hotline", "severity": "minor", "description": "服务态度差", **changes}
    with pytest.raises(DomainError) as error:
        quality.create_complaint(hq.a, data, acting_user=f.service_desk())
    assert error.value.field == field
    assert db.session.scalar(select(func.count(Complaint.id))) == 0


def test_a_complaint_cannot_name_another_agencys_order(hq):
    foreign = f.make_order(hq.b, hq.line, number="B-ONLY-1")
    with pytest.raises(DomainError):
        quality.create_complaint(hq.a, {"channel": "hotline", "severity": "minor",
                                        "description": "服务态度差",
                                        "order_number": foreign.number},
                                        acting_user=f.service_desk())


def test_a_complaint_typed_minutes_ahead_can_be_answered_at_once(hq):
    """Clocks drift: a receipt time a few minutes ahead is taken as now, so that the
    agency's response (stamped by the server) never lands before it."""
    ahead = clock.now() + timedelta(minutes=5)
    complaint = quality.create_complaint(hq.a, {"channel": "hotline", "severity": "minor",
                                                "description": "电话一直占线",
                                                "received_at": ahead}, acting_user=f.service_desk())
    assert complaint.received_at <= clock.now()
    with scoped(agency_scope(hq.a.id)):
        quality.respond_to_complaint(complaint, "已增加坐席", acting_user=f.staff(complaint.agency))
    assert complaint.received_at <= complaint.responded_at
    with pytest.raises(DomainError) as error:
        quality.create_complaint(hq.a, {"channel": "hotline", "severity": "minor",
                                        "description": "未来的投诉",
                                        "received_at": clock.now() + timedelta(hours=2)},
                                        acting_user=f.service_desk())
    assert error.value.field == "received_at"
