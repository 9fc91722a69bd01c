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

from flask_babel import lazy_gettext as _l
from sqlalchemy import String, and_, cast, exists, func, insert, literal, select, union
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
from inbox.models import DIGEST, QUEUED, InboxItem, MailMessage, Preference
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
)


def tick() -> dict[str, int]:
    """Raise every reminder and escalation that is due, queue the digests (the caller
    commits: the CLI command, or the demo's transaction)."""
    from inbox.settings import current

    made: dict[str, int] = {}
    with unscoped("the tick reminds every recipient in the network"):
        settings = current()
        moment, today = now(), local_today()
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

