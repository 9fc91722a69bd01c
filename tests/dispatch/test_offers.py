"""Offers (派单), service level: who may be offered a request (approved coverage, dispatchable,
authorized line and type) and nothing written otherwise; the offer holds nothing personal; the
answer window runs in business time; accept makes the agency's work order with the customer
and starts its clocks from the call; refuse with its reason; expiry by the tick; withdraw and
the cancelled request's offer; one open offer per request; an audit entry per transition.

The helpers at the top (``Net``, ``as_hq``, ``as_agency``, ``local``) are shared with the
appointment, SLA and race tests of this folder."""
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from sqlalchemy import func, select

from dispatch import calendar, coverage, network_calendar, sla
from dispatch.coverage import CoverageStatus
from dispatch.offers import (
    REFUSAL_REASONS,
    Offer,
    OfferStatus,
    accept_offer,
    declined_agencies,
    expire_offer,
    expire_offers,
    make_offer,
    offers_of_request,
    open_offer,
    refuse_offer,
    withdraw_offer,
)
from dispatch.requests import RequestStatus, ServiceRequest, cancel_service_request, take_call
from portal.audit.models import AuditEntry
from portal.auth.roles import Role
from portal.errors_domain import DomainError
from portal.extensions import db
from portal.tenancy import agency_scope, scoped, unscoped
from service.models import WorkOrder
from tenants.models import Agency, AgencyProductLine, AgencyStatus, ProductModel

SHANGHAI = ZoneInfo("Asia/Shanghai")
NAME, PHONE, STREET = "CANARY-NAME 王小明", "13912345678", "CANARY-STREET 科技园路 1 号"


def local(year, month, day, hour, minute=0, second=0) -> datetime:
    """A local (Asia/Shanghai) wall time as the UTC instant the database stores."""
    return datetime(year, month, day, hour, minute, second, tzinfo=SHANGHAI).astimezone(UTC)


# Friday 20 November 2026 (no holiday, the Saturday after an ordinary one).
FRIDAY_1700 = local(2026, 11, 20, 17, 0)
FRIDAY_1720 = local(2026, 11, 20, 17, 20)
SATURDAY_0920 = local(2026, 11, 21, 9, 20)


@contextmanager
def as_hq():
    with unscoped("the test acts as HQ's dispatcher"):
        yield


@contextmanager
def as_agency(user):
    with scoped(agency_scope(user.agency_id, user.id)):
        yield


def audit(action_prefix: str, object_id=None) -> list[AuditEntry]:
    with unscoped("the test reads the audit log"):
        stmt = select(AuditEntry).where(AuditEntry.action.like(f"{action_prefix}%"))
        if object_id is not None:
            stmt = stmt.where(AuditEntry.object_id == str(object_id))
        return list(db.session.scalars(stmt.order_by(AuditEntry.id)))


def count(model, *where) -> int:
    with unscoped("the test counts rows"):
        return db.session.scalar(select(func.count()).select_from(model).where(*where))


class Net:
    """Agency A (world.a) with approved coverage of its own city for the world's line and
    every service type; the dispatcher, A's owner and staff; calls taken in A's city."""

    def __init__(self, world):
        self.world = world
        self.dispatcher = world.user(Role.HQ_DISPATCHER)
        self.owner, self.staff = world.user(Role.AGENCY_OWNER), world.user(Role.AGENCY_STAFF)
        with unscoped("test fixtures"):
            self.a = db.session.get(Agency, world.a.id)
            self.province_id, self.city = self.a.province_id, self.a.city
            self.model_id = db.session.scalar(select(ProductModel.id).where(
                ProductModel.product_line_id == world.line.id).limit(1))
            for service_type in ("onsite", "carry_in", "phone"):
                self.cover(self.a, service_type=service_type)
            db.session.flush()
        self._serial = 0

    def cover(self, agency, *, service_type="onsite", status=CoverageStatus.APPROVED):
        with unscoped("test fixtures"):
            agency = db.session.get(Agency, agency.id)
            row = coverage.declare_coverage(
                agency, province_id=self.province_id, city=self.city, district="",
                product_line_id=self.world.line.id, service_type=service_type,
                acting_user=None)
            if status == CoverageStatus.APPROVED:
                coverage.decide_coverage(row, approve=True, acting_user=None,
                                         seen_version=row.version)
            db.session.flush()
            return row

    def call(self, *, service_type="onsite", **changes) -> ServiceRequest:
        """A call taken now (the clock's now: travel first) by the dispatcher."""
        self._serial += 1
        data = {"customer_name": NAME, "customer_phone": PHONE,
                "province_id": self.province_id, "city": self.city, "district": "南山区",
                "street": STREET, "product_line_id": self.world.line.id,
                "product_model_id": self.model_id, "serial_number": f"SN-OFF-{self._serial}",
                "purchase_date": None, "service_type": service_type,
                "fault_description": "不制冷", "note": "", **changes}
        with as_hq():
            return take_call(data, acting_user=self.dispatcher).request

    def offer(self, request, agency=None) -> Offer:
        with as_hq():
            return make_offer(request, (agency or self.a).id, acting_user=self.dispatcher)

    def accept(self, offer, user=None):
        user = user or self.owner
        with as_agency(user):
            return accept_offer(offer, acting_user=user, seen_version=offer.version)

    def accepted_order(self, *, service_type="onsite", at=None):
        """A call at `at` (default: now), offered and accepted at once: (request, offer, order)."""
        request = self.call(service_type=service_type)
        offer = self.offer(request)
        return request, offer, self.accept(offer)


@pytest.fixture
def net(ctx, world):
    return Net(world)


@pytest.fixture
def friday(ctx):
    with time_machine.travel(FRIDAY_1700, tick=False) as traveller:
        yield traveller


# --- who may be offered -----------------------------------------------------------------------


def test_an_offer_copies_the_non_personal_facts_and_puts_the_request_on_offered(net, friday):
    request = net.call(preferred_from=FRIDAY_1700 + timedelta(days=1),
                       preferred_to=FRIDAY_1700 + timedelta(days=1, hours=2))
    friday.move_to(FRIDAY_1720)
    offer = net.offer(request)
    assert (offer.status, offer.agency_id, offer.request_id) == (OfferStatus.OPEN, net.a.id,
                                                                 request.id)
    assert request.status == RequestStatus.OFFERED
    assert (offer.request_number, offer.received_at, offer.offered_at) == (
        request.number, FRIDAY_1700, FRIDAY_1720)
    for key in ("province_id", "city", "district", "product_line_id", "product_model_id",
                "service_type", "fault_description", "preferred_from", "preferred_to"):
        assert getattr(offer, key) == getattr(request, key), key
    assert offer.offered_by_id == net.dispatcher.id and offer.answered_at is None
    assert open_offer(request.id).id == offer.id
    [entry] = audit("dispatch_offer.made", offer.id)
    assert entry.actor_id == net.dispatcher.id and entry.agency_id == net.a.id
    assert entry.after["status"] == "open" and entry.after["request_number"] == request.number


def test_the_offer_row_holds_no_customer_name_phone_or_street(net, friday):
    request = net.call()
    offer = net.offer(request)
    with unscoped("the test reads the row as stored"):
        row = db.session.execute(select(Offer.__table__).where(
            Offer.__table__.c.id == offer.id)).mappings().one()
    assert not {c for c in row.keys() if "customer" in c or "street" in c or "phone" in c}
    for column, value in row.items():
        text = str(value)
        for secret in (NAME, "王小明", PHONE, STREET, "科技园路"):
            assert secret not in text, (column, value)
    for entry in audit("dispatch_offer.", offer.id):
        for secret in (NAME, PHONE, STREET):
            assert secret not in repr((entry.before, entry.after, entry.reason))


def test_the_answer_window_runs_in_business_time_friday_evening_to_saturday_morning(
        net, friday):
    request = net.call()
    friday.move_to(FRIDAY_1720)
    offer = net.offer(request)
    # Ten minutes to Friday's 17:30 close, twenty from Saturday's 09:00 opening.
    assert offer.expires_at == SATURDAY_0920
    assert offer.expires_at.astimezone(SHANGHAI).strftime("%a %H:%M") == "Sat 09:20"
    cal = network_calendar.load()
    assert cal.hours[4] == (FRIDAY_1700.astimezone(SHANGHAI).replace(hour=8, minute=30).time(),
                            FRIDAY_1700.astimezone(SHANGHAI).replace(hour=17, minute=30).time())
    assert calendar.business_seconds(cal, FRIDAY_1720, offer.expires_at) == 30 * 60


def _nothing_offered(request, before_status):
    assert count(Offer, Offer.request_id == request.id) == 0
    assert request.status == before_status
    assert audit("dispatch_offer.made") == []


def test_an_agency_without_approved_coverage_is_refused_with_nothing_written(net, friday):
    request = net.call()
    with pytest.raises(DomainError) as refused:
        net.offer(request, net.world.a2)  # no coverage at all
    assert refused.value.field == "agency_id" and "A-SIB" in str(refused.value)
    net.cover(net.world.a2, status=CoverageStatus.PROPOSED)  # declared, not approved
    with pytest.raises(DomainError):
        net.offer(request, net.world.a2)
    net.cover(net.world.a2, service_type="carry_in")  # approved, for another service type
    with pytest.raises(DomainError):
        net.offer(request, net.world.a2)
    _nothing_offered(request, RequestStatus.NEW)


@pytest.mark.parametrize("status", [AgencyStatus.SUSPENDED, AgencyStatus.TERMINATED,
                                    AgencyStatus.APPLICANT])
def test_an_agency_not_in_service_is_refused(net, friday, status):
    request = net.call()
    with unscoped("the test changes the agency"):
        net.a.status = status
        db.session.flush()
    with pytest.raises(DomainError) as refused:
        net.offer(request)
    assert refused.value.field == "agency_id"
    _nothing_offered(request, RequestStatus.NEW)


def test_a_probation_agency_may_be_offered(net, friday):
    request = net.call()
    with unscoped("the test changes the agency"):
        net.a.status = AgencyStatus.PROBATION
        db.session.flush()
    assert net.offer(request).status == OfferStatus.OPEN


def test_an_authorization_withdrawn_after_the_approval_ends_the_coverage(net, friday):
    request = net.call()
    with unscoped("the test withdraws the line"):
        db.session.execute(AgencyProductLine.__table__.delete().where(
            AgencyProductLine.agency_id == net.a.id))
        db.session.expire(net.a)
    with pytest.raises(DomainError):
        net.offer(request)
    _nothing_offered(request, RequestStatus.NEW)


def test_a_service_type_withdrawn_after_the_approval_ends_the_coverage(net, friday):
    request = net.call()
    with unscoped("the test withdraws the type"):
        net.a.service_types = "carry_in,phone"
        db.session.flush()
    with pytest.raises(DomainError):
        net.offer(request)
    _nothing_offered(request, RequestStatus.NEW)


def test_an_unknown_agency_is_refused(net, friday):
    request = net.call()
    for agency_id in (None, 0, 987654):
        with pytest.raises(DomainError) as refused, as_hq():
            make_offer(request, agency_id, acting_user=net.dispatcher)
        assert refused.value.field == "agency_id"
    _nothing_offered(request, RequestStatus.NEW)


def test_only_a_new_request_is_offered_and_one_open_offer_per_request(net, friday):
    request = net.call()
    net.cover(net.world.a2)
    first = net.offer(request)
    with pytest.raises(DomainError, match="Only a request waiting for dispatch"):
        net.offer(request, net.world.a2)
    assert count(Offer, Offer.request_id == request.id) == 1
    with as_hq():
        assert [o.id for o in offers_of_request(request.id)] == [first.id]
    cancelled = net.call(serial_number="SN-CANCELLED")
    with as_hq():
        cancel_service_request(cancelled, "客户取消", acting_user=net.dispatcher,
                               seen_version=cancelled.version)
    with pytest.raises(DomainError):
        net.offer(cancelled)
    assert count(Offer, Offer.request_id == cancelled.id) == 0


def test_agency_roles_cannot_make_offers(net, friday):
    request = net.call()
    with pytest.raises(DomainError), as_agency(net.owner):
        make_offer(request, net.a.id, acting_user=net.owner)
    _nothing_offered(request, RequestStatus.NEW)


# --- accept -----------------------------------------------------------------------------------


def test_accept_makes_the_agencys_order_with_the_customer_and_starts_its_clocks(net, friday):
    request = net.call()
    friday.move_to(FRIDAY_1720)
    offer = net.offer(request)
    answered = FRIDAY_1720 + timedelta(minutes=7)
    friday.move_to(answered)
    order = net.accept(offer, net.staff)

    assert isinstance(order, WorkOrder) and order.agency_id == net.a.id
    assert (order.customer_name, order.customer_phone) == (NAME, PHONE)
    assert STREET in order.customer_address and net.city in order.customer_address
    assert (order.received_at, order.responded_at) == (FRIDAY_1700, answered)
    assert (order.service_type, order.product_model_id, order.serial_number) == (
        "onsite", request.product_model_id, request.serial_number)
    assert order.status == "open" and order.number.startswith("WO20261120-")
    assert (offer.status, offer.work_order_id, offer.answered_at, offer.answered_by_id) == (
        OfferStatus.ACCEPTED, order.id, answered, net.staff.id)
    assert (request.status, request.accepted_at) == (RequestStatus.ACCEPTED, answered)
    assert request.accept_state == sla.ClockState.MET
    assert open_offer(request.id) is None

    cal = network_calendar.load()
    with as_agency(net.staff):
        clocks = sla.order_clocks(net.a.id, order.id)
    assert [c.milestone for c in clocks] == ["appointment", "arrival", "completion"]
    for found in clocks:
        seconds = sla.DEFAULT_MINUTES["onsite"][found.milestone] * 60
        assert (found.started_at, found.target_seconds, found.met_at, found.request_id) == (
            FRIDAY_1700, seconds, None, request.id)
        assert found.due_at == calendar.add_business(cal, FRIDAY_1700, seconds)
        assert found.warn_at == calendar.add_business(cal, FRIDAY_1700, seconds * 3 // 4)
        assert found.escalate_at == calendar.add_business(cal, FRIDAY_1700, seconds * 3 // 2)
    # 240 business minutes from Friday 17:00: 30 on Friday, then Saturday 09:00 + 210.
    assert clocks[0].due_at == local(2026, 11, 21, 12, 30)

    [entry] = audit("dispatch_offer.accepted", offer.id)
    assert entry.actor_id == net.staff.id and entry.agency_id == net.a.id
    assert (entry.before["status"], entry.after["status"]) == ("open", "accepted")
    assert entry.after["work_order"] == order.number
    assert entry.after["work_order_id"] == order.id
    assert len(audit("work_order.created", order.id)) == 1


@pytest.mark.parametrize("service_type,milestones", [
    ("carry_in", ["appointment", "diagnosis", "completion"]), ("phone", ["completion"])])
def test_each_service_type_gets_the_clocks_of_its_milestones(net, friday, service_type,
                                                             milestones):
    _request, _offer, order = net.accepted_order(service_type=service_type)
    with as_agency(net.owner):
        assert [c.milestone for c in sla.order_clocks(net.a.id, order.id)] == milestones


def test_hq_and_the_agencys_engineer_cannot_answer(net, friday):
    request = net.call()
    offer = net.offer(request)
    with pytest.raises(DomainError), as_hq():
        accept_offer(offer, acting_user=net.dispatcher, seen_version=offer.version)
    engineer = net.world.user(Role.ENGINEER)
    with pytest.raises(DomainError), as_agency(engineer):
        accept_offer(offer, acting_user=engineer, seen_version=offer.version)
    with pytest.raises(DomainError), as_agency(engineer):
        refuse_offer(offer, "capacity", acting_user=engineer, seen_version=offer.version)
    assert offer.status == OfferStatus.OPEN and request.status == RequestStatus.OFFERED
    assert count(WorkOrder) == 0


def test_accept_after_the_window_is_refused_and_writes_nothing(net, friday):
    request = net.call()
    friday.move_to(FRIDAY_1720)
    offer = net.offer(request)
    friday.move_to(SATURDAY_0920)  # the first second past the window
    with pytest.raises(DomainError, match="time to answer this offer has passed"):
        net.accept(offer)
    with pytest.raises(DomainError, match="time to answer this offer has passed"):
        with as_agency(net.owner):
            refuse_offer(offer, "capacity", acting_user=net.owner, seen_version=offer.version)
    assert offer.status == OfferStatus.OPEN and request.status == RequestStatus.OFFERED
    assert count(WorkOrder) == 0 and audit("dispatch_offer.accepted") == []
    assert audit("dispatch_offer.refused") == []


def test_accept_one_second_before_the_end_of_the_window_is_taken(net, friday):
    request = net.call()
    friday.move_to(FRIDAY_1720)
    offer = net.offer(request)
    friday.move_to(SATURDAY_0920 - timedelta(seconds=1))
    order = net.accept(offer)
    assert order.responded_at == SATURDAY_0920 - timedelta(seconds=1)


def test_a_stale_answer_changes_nothing(net, friday):
    request = net.call()
    offer = net.offer(request)
    with pytest.raises(DomainError, match="Someone else changed"), as_agency(net.owner):
        accept_offer(offer, acting_user=net.owner, seen_version=offer.version + 1)
    assert offer.status == OfferStatus.OPEN and count(WorkOrder) == 0


def test_an_answered_offer_cannot_be_answered_again(net, friday):
    request, offer, _order = net.accepted_order()
    with pytest.raises(DomainError), as_agency(net.owner):
        refuse_offer(offer, "capacity", acting_user=net.owner, seen_version=offer.version)
    with pytest.raises(DomainError):
        net.accept(offer)
    assert count(WorkOrder) == 1 and len(audit("dispatch_offer.accepted")) == 1


# --- refuse -----------------------------------------------------------------------------------


@pytest.mark.parametrize("reason,note_text", [("", ""), ("nonsense", ""), (None, ""),
                                              ("other", ""), ("other", " x ")])
def test_refuse_needs_a_known_reason_and_a_note_for_other(net, friday, reason, note_text):
    request = net.call()
    offer = net.offer(request)
    with pytest.raises(DomainError), as_agency(net.owner):
        refuse_offer(offer, reason, note_text, acting_user=net.owner,
                     seen_version=offer.version)
    assert offer.status == OfferStatus.OPEN and request.status == RequestStatus.OFFERED
    assert audit("dispatch_offer.refused") == []


def test_refuse_returns_the_request_to_new_with_the_reason_in_the_audit_log(net, friday):
    request = net.call()
    offer = net.offer(request)
    friday.move_to(FRIDAY_1720)
    with as_agency(net.staff):
        refuse_offer(offer, "parts", "压缩机缺货", acting_user=net.staff,
                     seen_version=offer.version)
    assert (offer.status, offer.refusal_reason, offer.refusal_note) == (
        OfferStatus.REFUSED, "parts", "压缩机缺货")
    assert (offer.answered_at, offer.answered_by_id) == (FRIDAY_1720, net.staff.id)
    assert request.status == RequestStatus.NEW and open_offer(request.id) is None
    [entry] = audit("dispatch_offer.refused", offer.id)
    assert entry.reason == f"{REFUSAL_REASONS['parts']}: 压缩机缺货"
    assert entry.actor_id == net.staff.id and entry.after["status"] == "refused"
    with as_hq():
        assert db.session.scalars(declined_agencies(request.id)).all() == [net.a.id]
    # The request may be offered again (here: to the same agency, the dispatcher's choice).
    again = net.offer(request)
    assert again.status == OfferStatus.OPEN and request.status == RequestStatus.OFFERED


def test_refuse_for_another_reason_keeps_the_note(net, friday):
    request = net.call()
    offer = net.offer(request)
    with as_agency(net.owner):
        refuse_offer(offer, "other", "客户要求指定品牌工程师", acting_user=net.owner,
                     seen_version=offer.version)
    [entry] = audit("dispatch_offer.refused", offer.id)
    assert entry.reason.endswith("客户要求指定品牌工程师") and offer.refusal_reason == "other"


# --- expiry, withdrawal, cancellation ---------------------------------------------------------


def test_expire_offers_expires_only_overdue_open_offers(net, friday):
    overdue_request = net.call()
    overdue = net.offer(overdue_request)  # Friday 17:00 → expires at Friday's 17:30 close
    friday.move_to(FRIDAY_1720)
    later_request = net.call()
    later = net.offer(later_request)  # expires Saturday 09:20
    answered_request, answered, _order = net.accepted_order()
    friday.move_to(local(2026, 11, 21, 9, 10))
    assert overdue.expires_at == local(2026, 11, 20, 17, 30)
    with unscoped("the tick"):
        expired = expire_offers()
    assert expired == 1
    assert (overdue.status, overdue.answered_at) == (OfferStatus.EXPIRED,
                                                      local(2026, 11, 21, 9, 10))
    assert overdue_request.status == RequestStatus.NEW
    assert later.status == OfferStatus.OPEN and later_request.status == RequestStatus.OFFERED
    assert answered.status == OfferStatus.ACCEPTED
    assert answered_request.status == RequestStatus.ACCEPTED
    [entry] = audit("dispatch_offer.expired")
    assert (entry.object_id, entry.actor_id, entry.agency_id) == (str(overdue.id), None,
                                                                  net.a.id)
    assert (entry.before["status"], entry.after["status"]) == ("open", "expired")
    # The next tick finds nothing more; an explicit now reaches the later one.
    with unscoped("the tick"):
        assert expire_offers() == 0
        assert expire_offers(SATURDAY_0920) == 1
    assert later.status == OfferStatus.EXPIRED and later_request.status == RequestStatus.NEW
    assert len(audit("dispatch_offer.expired")) == 2


def test_an_offer_cannot_be_expired_before_its_time(net, friday):
    request = net.call()
    offer = net.offer(request)
    with pytest.raises(DomainError), unscoped("the tick"):
        expire_offer(offer, acting_user=None, seen_version=offer.version)
    assert offer.status == OfferStatus.OPEN


def test_withdraw_returns_the_request_to_new(net, friday):
    request = net.call()
    offer = net.offer(request)
    friday.move_to(FRIDAY_1720)
    with as_hq():
        withdraw_offer(offer, acting_user=net.dispatcher, seen_version=offer.version)
    assert (offer.status, offer.answered_at, offer.answered_by_id) == (
        OfferStatus.WITHDRAWN, FRIDAY_1720, net.dispatcher.id)
    assert request.status == RequestStatus.NEW
    [entry] = audit("dispatch_offer.withdrawn", offer.id)
    assert entry.actor_id == net.dispatcher.id
    with pytest.raises(DomainError), as_agency(net.owner):
        accept_offer(offer, acting_user=net.owner, seen_version=offer.version)
    assert count(WorkOrder) == 0


def test_the_agency_cannot_withdraw(net, friday):
    request = net.call()
    offer = net.offer(request)
    with pytest.raises(DomainError), as_agency(net.owner):
        withdraw_offer(offer, acting_user=net.owner, seen_version=offer.version)
    assert offer.status == OfferStatus.OPEN


def test_cancelling_an_offered_request_withdraws_its_open_offer(net, friday):
    request = net.call()
    offer = net.offer(request)
    with as_hq():
        cancel_service_request(request, "客户已自行修好", acting_user=net.dispatcher,
                               seen_version=request.version)
    assert request.status == RequestStatus.CANCELLED
    assert offer.status == OfferStatus.WITHDRAWN and open_offer(request.id) is None
    actions = [e.action for e in audit("dispatch_offer.")] + [
        e.action for e in audit("service_request.cancelled")]
    assert sorted(actions) == ["dispatch_offer.made", "dispatch_offer.withdrawn",
                               "service_request.cancelled"]
    [entry] = audit("dispatch_offer.withdrawn", offer.id)
    assert entry.actor_id == net.dispatcher.id


def test_every_transition_of_an_offer_is_audited_once(net, friday):
    made = []
    for _ in range(4):
        made.append(net.offer(net.call()))
    accepted, refused, withdrawn, expired = made
    net.accept(accepted)
    with as_agency(net.owner):
        refuse_offer(refused, "capacity", acting_user=net.owner, seen_version=refused.version)
    with as_hq():
        withdraw_offer(withdrawn, acting_user=net.dispatcher, seen_version=withdrawn.version)
    with unscoped("the tick"):
        assert expire_offers(expired.expires_at) == 1
    for offer, action in zip(made, ("accepted", "refused", "withdrawn", "expired"),
                             strict=True):
        assert [e.action for e in audit("dispatch_offer.", offer.id)] == [
            "dispatch_offer.made", f"dispatch_offer.{action}"]


def test_the_agency_reads_its_own_offers_only(net, friday):
    offer = net.offer(net.call())
    with as_agency(net.owner):
        assert db.session.scalars(select(Offer.id)).all() == [offer.id]
    with as_agency(net.world.b_users[Role.AGENCY_OWNER]):
        assert db.session.scalars(select(Offer.id)).all() == []
