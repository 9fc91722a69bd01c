"""The tick: reminders before deadlines, escalations of HQ work that waits, the daily digest.

``flask --app wsgi workplace tick`` runs it (cron every few minutes, or an RQ scheduler). It is
idempotent: every reminder names its occurrence (``dedupe_key``), and a recipient holds one
item per key (a unique index), so running it twice creates nothing twice. Each reminder is
one INSERT … SELECT whatever the network's size.
"""
from dataclasses import dataclass
from datetime import datetime, timedelta
from datetime import time as dtime
from typing import Callable

from blinker import Namespace
from flask import url_for
from flask_babel import lazy_gettext as _l
from sqlalchemy import String, and_, cast, exists, func, insert, literal, select, union, update
from sqlalchemy.orm import aliased

from inbox import outbox, registry
from inbox.events import (
    COMPLAINT,
    OWNER,
    RESULT,
    SETTLEMENT,
    STAFF,
    _link,
    _page,
    complaint_label,
)
from inbox.models import DIGEST, QUEUED, TASK, InboxItem, MailMessage, Preference
from inbox.notify import close_tasks, create
from inbox.registry import Context, event, task
from portal.auth.models import User
from portal.auth.roles import Role
from portal.clock import from_local, local_now, local_today, now
from portal.extensions import db
from portal.tenancy import unscoped

CERTIFICATE = _link("certification.certificate", "certificate_id")
RETURN = _link("service.part_return", "return_id")

# --- the events the tick raises (declared like the transitions' ones) -----------------------
for days in (60, 30, 7):
    event(f"reminder.certificate_{days}", "certification",
          _l("Certificate %(label)s expires in %(days)s days: plan the renewal exam"),
          link=CERTIFICATE, params=lambda ctx, d=days: {"days": d}, scheduled=True)
event("reminder.certificate_expired", "certification",
      _l("Certificate %(label)s has expired: the engineer is no longer certified"),
      link=CERTIFICATE, scheduled=True)
event("reminder.coverage_gap", "certification",
      _l("Coverage gap: %(label)s has fewer certified engineers than required"),
      link=_page("certification.coverage"), scheduled=True)
event("reminder.evaluation_deadline", "evaluation",
      _l("Two days left to acknowledge or appeal your evaluation for %(label)s"),
      link=RESULT, scheduled=True, legal=True)
task("reminder.return_due", "parts", _l("Ship back the defective part %(label)s by its due date"),
     link=RETURN, scheduled=True, legal=True)
task("reminder.return_overdue", "parts",
     _l("Defective part %(label)s is overdue: ship it back, or it is deducted from your "
        "settlement"),
     link=RETURN, scheduled=True, legal=True, closes=("reminder.return_due",))
event("reminder.complaint_response", "quality",
      _l("Complaint %(label)s still waits for your answer"), link=COMPLAINT,
      scheduled=True, legal=True)
event("reminder.claim_window", "settlement",
      _l("%(label)s completed orders must be claimed within 7 days"),
      link=_page("settlement.settlements"), scheduled=True)
task("escalation.settlement_review", "escalation",
     _l("Settlement %(label)s has waited in HQ's review longer than agreed"),
     link=SETTLEMENT, scheduled=True)
task("escalation.settlement_review_admin", "escalation",
     _l("Settlement %(label)s has waited in HQ's review twice as long as agreed"),
     link=SETTLEMENT, scheduled=True)
task("escalation.complaint_verdict", "escalation",
     _l("Complaint %(label)s has waited for HQ's verdict longer than agreed"), link=COMPLAINT,
     scheduled=True)
task("escalation.complaint_verdict_admin", "escalation",
     _l("Complaint %(label)s has waited for HQ's verdict twice as long as agreed"),
     link=COMPLAINT,
     scheduled=True)


# --- SLA clocks (dispatch): warning → the agency, breach → the region, 150 % → HQ -------------
def _clock_link(item, role=None):
    """An order clock's item opens the dispatched order (its subject is the clock). The
    occurrence's key ends with the order's id ("sla_warning:<clock>:<order>"): no query per
    item on the inbox page."""
    tail = (item.dedupe_key or "").rsplit(":", 2)
    if len(tail) != 3 or not tail[2].isdigit():
        return None
    return url_for("dispatch.order", work_order_id=int(tail[2]))


def _milestone_title(text):
    """The title of an order clock's item: its label is "<agency code> <order number>
    <milestone>" (SQL), and the milestone is named in the reader's language."""
    def title(params):
        from dispatch.sla import MILESTONE_LABELS

        order, _sep, milestone = str(params.get("label") or "").rpartition(" ")
        name = MILESTONE_LABELS.get(milestone)
        if name is None or not order:
            return SLA_CLOCK_FALLBACK
        said = str(text) % {"milestone": name, "order": order}
        # item_title formats a title holding "%(" once more: keep the text as it is.
        return said.replace("%", "%%") if "%(" in said else said
    return title


SLA_CLOCK_FALLBACK = _l("SLA clock %(label)s")
REQUEST = _link("dispatch.request_detail", "service_request_id")
SLA_ORDER_EVENTS = ("sla.warning", "sla.breached", "sla.escalated")
SLA_REQUEST_EVENTS = ("sla.accept_warning", "sla.accept_breached")
task("sla.warning", "dispatch",
     _milestone_title(_l("Milestone “%(milestone)s” of order %(order)s is due soon")),
     link=_clock_link, scheduled=True)
task("sla.breached", "escalation",
     _milestone_title(_l("Milestone “%(milestone)s” of order %(order)s is overdue")),
     link=_clock_link, scheduled=True)
task("sla.escalated", "escalation",
     _milestone_title(_l("Milestone “%(milestone)s” of order %(order)s is far overdue: "
                         "past one and a half times its target")),
     link=_clock_link, scheduled=True)
task("sla.accept_warning", "dispatch",
     _l("Service request %(label)s is not accepted yet: its accept time runs out"),
     link=REQUEST, scheduled=True)
task("sla.accept_breached", "dispatch",
     _l("Service request %(label)s was not accepted within its target"),
     link=REQUEST, scheduled=True, closes=("sla.accept_warning",))
# No one is told that a clock stopped: its items close (the milestone met, the order closed,
# the request accepted or cancelled), see _close_stopped_clocks.
event("sla.clock_stopped", "dispatch", _l("The SLA clock stopped"), scheduled=True,
      closes=(*SLA_ORDER_EVENTS, *SLA_REQUEST_EVENTS))

@dataclass(frozen=True)
class Reminder:
    event: str
    # (settings, now, today) -> SELECT of (user_id, agency_id, subject_id, label, due_at, key)
    rows: Callable


def _key(prefix: str, *columns):
    key = literal(prefix, String)
    for column in columns:
        key = key + literal(":", String) + cast(column, String)
    return key


def _agency_people(agency_id, roles):
    return and_(User.agency_id == agency_id, User.role.in_([str(r) for r in roles]),
                User.is_active_account.is_(True))


def _certificates(days_low: int | None, days_high: int | None, name: str):
    def rows(_settings, _now, today):
        from certification.models import Certificate, Engineer, EngineerStatus

        live = [Certificate.revoked_at.is_(None), Certificate.engineer_id.in_(
            select(Engineer.id).where(Engineer.status == EngineerStatus.ACTIVE))]
        if days_high is None:  # expired within the last 30 days
            live += [Certificate.valid_to < today, Certificate.valid_to >= today - timedelta(30)]
        else:
            live += [Certificate.valid_to > today + timedelta(days_low),
                     Certificate.valid_to <= today + timedelta(days_high)]
        not_renewed = ~Certificate.id.in_(select(Certificate.renewal_of_id).where(
            Certificate.renewal_of_id.isnot(None)))
        key = _key(name, Certificate.id)
        owners = (select(User.id, User.agency_id, Certificate.id, Certificate.number,
                         literal(None, InboxItem.due_at.type), key)
                  .join(Certificate, _agency_people(Certificate.agency_id, [OWNER]))
                  .where(*live, not_renewed))
        engineers = (select(User.id, User.agency_id, Certificate.id, Certificate.number,
                            literal(None, InboxItem.due_at.type), key)
                     .join(Engineer, Engineer.user_id == User.id)
                     .join(Certificate, Certificate.engineer_id == Engineer.id)
                     .where(*live, not_renewed, User.is_active_account.is_(True),
                            User.role == str(Role.ENGINEER)))
        return union(owners, engineers)
    return rows


def _coverage_gaps(_settings, _now, today):
    """An authorized product line without enough certified engineers: the agency's owner and
    the region's manager, once per gap (the gap is named by its line and the last day a
    certificate of that line was valid there, so a gap that closes and opens again is new)."""
    from certification.models import Certificate
    from certification.queries import coverage_statement
    from tenants.models import Agency

    gaps = coverage_statement(today, gaps_only=True).order_by(None).subquery()
    last_end = (select(func.max(Certificate.valid_to))
                .where(Certificate.agency_id == gaps.c.agency_id,
                       Certificate.product_line_id == gaps.c.product_line_id)
                .scalar_subquery())
    label = gaps.c.code + literal(" ", String) + gaps.c.line_code
    key = (literal("coverage_gap:", String) + cast(gaps.c.agency_id, String)
           + literal(":", String) + cast(gaps.c.product_line_id, String) + literal(":", String)
           + func.coalesce(cast(last_end, String), literal("never", String)))
    owners = (select(User.id, User.agency_id, gaps.c.agency_id, label,
                     literal(None, InboxItem.due_at.type), key)
              .join(gaps, _agency_people(gaps.c.agency_id, [OWNER])))
    managers = (select(User.id, User.agency_id, gaps.c.agency_id, label,
                       literal(None, InboxItem.due_at.type), key)
                .join(Agency, Agency.region_id == User.region_id)
                .join(gaps, gaps.c.agency_id == Agency.id)
                .where(User.role == str(Role.REGIONAL_MANAGER),
                       User.is_active_account.is_(True)))
    return union(owners, managers)


def _evaluation_deadline(_settings, moment, _today):
    from evaluation.models import Quarter, Result

    return (select(User.id, User.agency_id, Result.id, Quarter.year.cast(String) + "Q"
                   + Quarter.quarter.cast(String), Quarter.appeal_deadline_at,
                   _key("evaluation_deadline", Result.id))
            .join(Result, _agency_people(Result.agency_id, [OWNER]))
            .join(Quarter, Quarter.id == Result.quarter_id)
            .where(Result.status == "published", Quarter.appeal_deadline_at > moment,
                   Quarter.appeal_deadline_at <= moment + timedelta(days=2)))


def _returns(overdue: bool):
    def rows(_settings, _now, today):
        from service.models import PartReturn

        when = PartReturn.due_on < today if overdue else and_(
            PartReturn.due_on >= today, PartReturn.due_on <= today + timedelta(days=3))
        from service.models import Part

        part_number = select(Part.part_number).where(Part.id == PartReturn.part_id) \
            .scalar_subquery()
        return (select(User.id, User.agency_id, PartReturn.id, part_number,
                       literal(None, InboxItem.due_at.type),
                       _key("return_overdue" if overdue else "return_due", PartReturn.id))
                .join(PartReturn, _agency_people(PartReturn.agency_id, [OWNER, STAFF]))
                .where(PartReturn.status == "due", when))
    return rows


def _complaint_response(settings, moment, _today):
    from service.models import Complaint

    # Twelve hours before the answer is due, and after.
    limit = moment - timedelta(hours=max(settings.complaint_response_hours - 12, 0))
    return (select(User.id, User.agency_id, Complaint.id, complaint_label(),
                   literal(None, InboxItem.due_at.type), _key("complaint_response", Complaint.id))
            .join(Complaint, _agency_people(Complaint.agency_id, [OWNER, STAFF]))
            .where(Complaint.status == "open", Complaint.received_at <= limit))


def _claim_window(_settings, _now, today):
    from service.models import WorkOrder
    from settlement.api import claim_window_days, claimed

    window = claim_window_days()
    closing = and_(WorkOrder.service_date >= today - timedelta(days=window),
                   WorkOrder.service_date <= today - timedelta(days=window - 7))
    per_agency = (select(WorkOrder.agency_id, func.count().label("n"))
                  .where(WorkOrder.status == "completed", WorkOrder.is_in_warranty.is_(True),
                         closing, ~claimed(WorkOrder, "work_order_id"))
                  .group_by(WorkOrder.agency_id).subquery())
    week = today.isocalendar()
    return (select(User.id, User.agency_id, literal(None, InboxItem.subject_id.type),
                   cast(per_agency.c.n, String), literal(None, InboxItem.due_at.type),
                   _key(f"claim_window:{week.year}-{week.week}", User.agency_id))
            .join(per_agency, _agency_people(per_agency.c.agency_id, [OWNER])))


def _settlement_review(level: int):
    def rows(settings, moment, _today):
        from settlement.models import Settlement
        from tenants.models import Agency

        waited = moment - timedelta(days=settings.settlement_review_days * level)
        base = [Settlement.status == "submitted", Settlement.submitted_at <= waited]
        key = _key(f"settlement_review_{level}", Settlement.id, Settlement.submission_count)
        if level == 1:
            # The region's manager; in a region without one, HQ settlement.
            managers = (select(User.id, User.agency_id, Settlement.id, Settlement.number,
                               literal(None, InboxItem.due_at.type), key)
                        .join(Agency, Agency.region_id == User.region_id)
                        .join(Settlement, Settlement.agency_id == Agency.id)
                        .where(*base, User.role == str(Role.REGIONAL_MANAGER),
                               User.is_active_account.is_(True)))
            outer = aliased(User)
            unmanaged = exists().where(outer.role == str(Role.REGIONAL_MANAGER),
                                       outer.region_id == Agency.region_id,
                                       outer.is_active_account.is_(True))
            hq_settlement = (select(User.id, User.agency_id, Settlement.id, Settlement.number,
                                    literal(None, InboxItem.due_at.type), key)
                             .join(Settlement, and_(*base))
                             .join(Agency, Agency.id == Settlement.agency_id)
                             .where(User.role == str(Role.HQ_SETTLEMENT),
                                    User.is_active_account.is_(True), ~unmanaged))
            return union(managers, hq_settlement)
        return (select(User.id, User.agency_id, Settlement.id, Settlement.number,
                       literal(None, InboxItem.due_at.type), key)
                .join(Settlement, and_(*base))
                .where(User.role == str(Role.HQ_ADMIN), User.is_active_account.is_(True)))
    return rows


def _complaint_verdict(level: int):
    """HQ's verdict is awaited once the agency has answered: counted from the answer."""
    def rows(settings, moment, _today):
        from service.models import Complaint

        waited = moment - timedelta(days=settings.complaint_verdict_days * level)
        role = Role.HQ_SERVICE if level == 1 else Role.HQ_ADMIN
        return (select(User.id, User.agency_id, Complaint.id, complaint_label(),
                       literal(None, InboxItem.due_at.type),
                       _key(f"complaint_verdict_{level}", Complaint.id))
                .join(Complaint, and_(Complaint.status == "responded",
                                      Complaint.responded_at <= waited))
                .where(User.role == str(role), User.is_active_account.is_(True)))
    return rows



def _order_clocks(level: str):
    """Open work orders' running clocks past their warning (the agency's owner and staff),
    their due time (the region's manager; HQ service where the region has none) or one and
    a half times their target (HQ's dispatchers). A clock inside a pause is not chased."""
    def rows(_settings, moment, _today):
        from dispatch.board import paused_now
        from dispatch.sla import SlaClock
        from service.models import WorkOrder
        from tenants.models import Agency

        instant = {"warning": SlaClock.warn_at, "breached": SlaClock.due_at,
                   "escalated": SlaClock.escalate_at}[level]
        due = {"warning": SlaClock.due_at, "breached": SlaClock.escalate_at,
               "escalated": literal(None, InboxItem.due_at.type)}[level]
        live = and_(SlaClock.met_at.is_(None), instant <= moment, ~paused_now(moment),
                    exists().where(WorkOrder.agency_id == SlaClock.agency_id,
                                   WorkOrder.id == SlaClock.work_order_id,
                                   WorkOrder.status == "open"))
        order_number = (select(WorkOrder.number).where(
            WorkOrder.agency_id == SlaClock.agency_id, WorkOrder.id == SlaClock.work_order_id)
            .scalar_subquery())
        label = (Agency.code + literal(" ", String) + order_number + literal(" ", String)
                 + SlaClock.milestone)
        key = _key(f"sla_{level}", SlaClock.id, SlaClock.work_order_id)
        columns = (User.id, User.agency_id, SlaClock.id, label, due, key)
        if level == "warning":
            return (select(*columns).select_from(User)
                    .join(SlaClock, _agency_people(SlaClock.agency_id, [OWNER, STAFF]))
                    .join(Agency, Agency.id == SlaClock.agency_id).where(live))
        if level == "breached":
            managers = (select(*columns).select_from(User)
                        .join(Agency, Agency.region_id == User.region_id)
                        .join(SlaClock, SlaClock.agency_id == Agency.id)
                        .where(live, User.role == str(Role.REGIONAL_MANAGER),
                               User.is_active_account.is_(True)))
            outer = aliased(User)
            unmanaged = exists().where(outer.role == str(Role.REGIONAL_MANAGER),
                                       outer.region_id == Agency.region_id,
                                       outer.is_active_account.is_(True))
            hq_service = (select(*columns).select_from(User)
                          .join(SlaClock, live)
                          .join(Agency, Agency.id == SlaClock.agency_id)
                          .where(User.role == str(Role.HQ_SERVICE),
                                 User.is_active_account.is_(True), ~unmanaged))
            return union(managers, hq_service)
        return (select(*columns).select_from(User)
                .join(SlaClock, live)
                .join(Agency, Agency.id == SlaClock.agency_id)
                .where(User.role == str(Role.HQ_DISPATCHER), User.is_active_account.is_(True)))
    return rows


def _accept_clocks(level: str):
    """Requests no agency has accepted past their accept clock's warning or due time: HQ's
    dispatchers."""
    def rows(_settings, moment, _today):
        from dispatch.requests import RequestStatus, ServiceRequest

        instant = ServiceRequest.accept_warn_at if level == "warning" \
            else ServiceRequest.accept_due_at
        due = ServiceRequest.accept_due_at if level == "warning" \
            else literal(None, InboxItem.due_at.type)
        waiting = and_(ServiceRequest.status.in_([RequestStatus.NEW, RequestStatus.OFFERED]),
                       ServiceRequest.accepted_at.is_(None), instant <= moment)
        return (select(User.id, User.agency_id, ServiceRequest.id, ServiceRequest.number, due,
                       _key(f"sla_accept_{level}", ServiceRequest.id))
                .select_from(User).join(ServiceRequest, waiting)
                .where(User.role == str(Role.HQ_DISPATCHER), User.is_active_account.is_(True)))
    return rows


def _close_stopped_clocks() -> int:
    """The SLA items whose clock no longer runs close: the milestone was met, the order
    closed or went away, the request was accepted or cancelled. Correlated on the open
    items (few), not on every clock ever met."""
    from dispatch.requests import RequestStatus, ServiceRequest
    from dispatch.sla import SlaClock
    from service.models import WorkOrder

    running_clock = exists().where(
        SlaClock.id == InboxItem.subject_id, SlaClock.met_at.is_(None),
        exists().where(WorkOrder.agency_id == SlaClock.agency_id,
                       WorkOrder.id == SlaClock.work_order_id, WorkOrder.status == "open"))
    waiting_request = exists().where(
        ServiceRequest.id == InboxItem.subject_id, ServiceRequest.accepted_at.is_(None),
        ServiceRequest.status.in_([RequestStatus.NEW, RequestStatus.OFFERED]))
    closed = 0
    for events, subject_type, running in ((SLA_ORDER_EVENTS, "sla_clocks", running_clock),
                                          (SLA_REQUEST_EVENTS, "service_requests",
                                           waiting_request)):
        closed += db.session.execute(
            update(InboxItem)
            .where(InboxItem.event.in_(events), InboxItem.subject_type == subject_type,
                   InboxItem.kind == TASK, InboxItem.closed_at.is_(None), ~running)
            .values(closed_at=now(), closed_by="sla.clock_stopped")
            .execution_options(synchronize_session=False)).rowcount
    return closed

REMINDERS = (
    Reminder("reminder.certificate_60", _certificates(30, 60, "certificate_60")),
    Reminder("reminder.certificate_30", _certificates(7, 30, "certificate_30")),
    Reminder("reminder.certificate_7", _certificates(-1, 7, "certificate_7")),
    Reminder("reminder.certificate_expired", _certificates(None, None, "certificate_expired")),
    Reminder("reminder.coverage_gap", _coverage_gaps),
    Reminder("reminder.evaluation_deadline", _evaluation_deadline),
    Reminder("reminder.return_due", _returns(False)),
    Reminder("reminder.return_overdue", _returns(True)),
    Reminder("reminder.complaint_response", _complaint_response),
    Reminder("reminder.claim_window", _claim_window),
    Reminder("escalation.settlement_review", _settlement_review(1)),
    Reminder("escalation.settlement_review_admin", _settlement_review(2)),
    Reminder("escalation.complaint_verdict", _complaint_verdict(1)),
    Reminder("escalation.complaint_verdict_admin", _complaint_verdict(2)),
    Reminder("sla.warning", _order_clocks("warning")),
    Reminder("sla.breached", _order_clocks("breached")),
    Reminder("sla.escalated", _order_clocks("escalated")),
    Reminder("sla.accept_warning", _accept_clocks("warning")),
    Reminder("sla.accept_breached", _accept_clocks("breached")),
)


# Sent by every tick, inside its transaction (keyword `moment`).
ticked = Namespace().signal("workplace.tick")


def tick() -> dict[str, int]:
    """Raise every reminder and escalation that is due, queue the digests (the caller
    commits: the CLI command, or the demo's transaction)."""
    from dispatch.offers import expire_offers
    from inbox.settings import current

    made: dict[str, int] = {}
    with unscoped("the tick reminds every recipient in the network"):
        settings = current()
        moment, today = now(), local_today()
        # Offers past their answer window go back to the dispatcher first (each an audited
        # transition that tells the dispatchers), so the accept clocks below see them.
        made["offers_expired"] = expire_offers(moment)
        _close_stopped_clocks()
        for reminder in REMINDERS:
            declared = registry.get(reminder.event)
            rows = reminder.rows(settings, moment, today)
            subject_type = _subject_type(reminder.event)
            if declared.closes:  # an overdue reminder supersedes the "due soon" task
                subjects = select(rows.subquery().c[2])
                close_tasks(subject_type, subjects, declared.closes, by=declared.name)
            made[reminder.event] = create(declared, Context(None, None, None), subject_type,
                                          None, rows=rows)
        made["digest"] = queue_digests(settings)
        close_expired(moment)
        # Listeners above the workplace (the API's webhooks raise their SLA events) act in the
        # tick's transaction.
        ticked.send(None, moment=moment)
        db.session.flush()
    return made


def close_expired(moment) -> int:
    """Tasks nobody can act on any more close: an evaluation's answer after its deadline
    (the result stands final)."""
    from evaluation.models import Quarter, Result

    passed = (select(Result.id).join(Quarter, Quarter.id == Result.quarter_id)
              .where(Quarter.appeal_deadline_at < moment))
    return close_tasks("evaluation_results", passed,
                       ("evaluation.published", "reminder.evaluation_deadline"),
                       by="deadline_passed")


def _subject_type(name: str) -> str:
    if name in SLA_ORDER_EVENTS:
        return "sla_clocks"
    if name in SLA_REQUEST_EVENTS:
        return "service_requests"
    return {"certificate": "certificates", "evaluation": "evaluation_results",
            "return": "part_returns", "complaint": "complaints", "claim": "agencies",
            "coverage": "agencies",
            "settlement": "settlements"}[name.split(".", 1)[1].split("_", 1)[0]]


def digest_window(day, hour: int):
    """[start, end) in UTC of the digest sent on `day`: from the digest hour of the day
    before to that hour of `day`, so that every item falls in exactly one digest."""
    end = from_local(datetime.combine(day, dtime(hour)))
    return end - timedelta(days=1), end


def queue_digests(settings) -> int:
    """One digest e-mail per account that digests something and had items since the last
    digest hour: one INSERT … SELECT, never twice for a day (a unique key)."""
    if not outbox.enabled():
        return 0
    local = local_now()
    day = local.date() if local.hour >= settings.digest_hour else local.date() - timedelta(1)
    start, end = digest_window(day, settings.digest_hour)
    digested = exists().where(Preference.recipient_id == InboxItem.recipient_id,
                              Preference.category == InboxItem.category,
                              Preference.mode == DIGEST)
    sent = exists().where(MailMessage.recipient_id == InboxItem.recipient_id,
                          MailMessage.digest_day == day)
    moment = now()
    pick = (select(InboxItem.recipient_id, func.min(InboxItem.agency_id), literal("digest"),
                   literal(day, MailMessage.digest_day.type), literal(QUEUED), literal(0),
                   literal(moment, MailMessage.created_at.type),
                   literal(moment, MailMessage.created_at.type), func.min(User.email))
            .join(User, User.id == InboxItem.recipient_id)
            .where(InboxItem.created_at >= start, InboxItem.created_at < end, digested, ~sent,
                   User.is_active_account.is_(True))
            .group_by(InboxItem.recipient_id))
    made = db.session.execute(insert(MailMessage).from_select(
        ["recipient_id", "agency_id", "kind", "digest_day", "status", "attempts",
         "next_attempt_at", "created_at", "to_address"], pick)
        .execution_options(synchronize_session=False, preserve_rowcount=True)).rowcount
    return made

