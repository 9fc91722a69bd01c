"""The declared table: which transition tells whom what (§2.7 of PRODUCT.md).

One declaration per event; :mod:`inbox.reminders` declares what the tick adds. Every
transition of the write path is either here or listed silent with the reason.
"""
from flask import url_for
from flask_babel import lazy_gettext as _l
from sqlalchemy import String, cast, func, literal, select

from inbox.registry import (
    Context,
    account,
    agency_users,
    event,
    fanout,
    hq,
    only_if,
    region_manager,
    silent,
    task,
)
from portal.auth.models import User
from portal.auth.roles import Role
from portal.extensions import db

OWNER, STAFF = Role.AGENCY_OWNER, Role.AGENCY_STAFF


def _link(endpoint: str, arg: str):
    def make(item, role=None):
        if item.subject_id is None:
            return None
        return url_for(endpoint, **{arg: item.subject_id})
    return make


def _page(endpoint: str):
    """A link to a page about no one row (a list the item sends its reader to)."""
    return lambda item, role=None: url_for(endpoint)


def _number(ctx: Context):
    return getattr(ctx.record, "number", None)


def complaint_label():
    """SQL: a complaint as the agency knows it: its work order's number, else "#<its id>"
    (the items of its events and of the tick's reminders alike)."""
    from service.models import Complaint, WorkOrder

    order = select(WorkOrder.number).where(WorkOrder.id == Complaint.work_order_id) \
        .scalar_subquery()
    return func.coalesce(order, literal("#", String) + cast(Complaint.id, String))


def _complaint_label(ctx: Context) -> str:
    from portal.extensions import db
    from service.models import Complaint

    return db.session.scalar(select(complaint_label()).where(Complaint.id == ctx.record.id))


def _return_label(ctx: Context) -> str:
    """A defective-part return: the part's number."""
    from portal.extensions import db
    from service.models import Part

    return db.session.scalar(select(Part.part_number).where(Part.id == ctx.record.part_id))


def _settlement(attr="settlement_id"):
    """The settlement a record belongs to (a line, an appeal) or is."""
    def subject(ctx):
        record = ctx.record
        return "settlements", getattr(record, attr, None) or record.id
    return subject


SETTLEMENT = _link("settlement.settlement", "settlement_id")

# --- settlements ---------------------------------------------------------------------------


def _settlement_number(ctx: Context):
    """The agency's code and the settlement's number: numbers repeat across agencies, and HQ
    reads everyone's ("SH-C01 ST202608-01")."""
    from portal.extensions import db
    from settlement.models import Settlement
    from tenants.models import Agency

    record = ctx.record
    settlement_id = record.id if isinstance(record, Settlement) else record.settlement_id
    row = db.session.execute(select(Agency.code, Settlement.number)
                             .join(Settlement, Settlement.agency_id == Agency.id)
                             .where(Settlement.id == settlement_id)).one()
    return f"{row.code} {row.number}"


def _regional_first(ctx: Context) -> bool:
    return bool(getattr(ctx.record, "awaits_regional_review", False))


def _hq_next(ctx: Context) -> bool:
    return not _regional_first(ctx)


def _review_due(ctx: Context):
    from datetime import timedelta

    from inbox.settings import current
    from portal.models import utcnow

    return utcnow() + timedelta(days=current().settlement_review_days)


task("settlement.submitted", "settlement", _l("Review settlement %(label)s"),
     only_if(_regional_first, region_manager()),
     only_if(_hq_next, hq(Role.HQ_SETTLEMENT)),
     link=SETTLEMENT, label=_settlement_number, due=_review_due,
     closes=("settlement.returned",))
task("settlement.regional_forwarded", "settlement",
     _l("Review settlement %(label)s (the regional manager forwarded it)"),
     hq(Role.HQ_SETTLEMENT), link=SETTLEMENT, label=_settlement_number, due=_review_due,
     closes=("settlement.submitted",))
task("settlement.returned", "settlement",
     _l("Settlement %(label)s was returned: correct it and submit it again"),
     agency_users(OWNER), link=SETTLEMENT, label=_settlement_number,
     params=lambda ctx: {"comment": ctx.reason} if ctx.reason else {},
     closes=("settlement.submitted", "settlement.regional_forwarded", "settlement.appealed",
             "escalation.settlement_review", "escalation.settlement_review_admin"))
event("settlement.line_decided", "settlement",
      _l("A line of settlement %(label)s was adjusted by HQ"),
      agency_users(OWNER), link=SETTLEMENT, label=_settlement_number,
      subject=_settlement(),
      when=lambda ctx: (ctx.after or {}).get("line_decision") in ("adjusted", "denied"))
event("settlement.lines_decided", "settlement",
      _l("Lines of settlement %(label)s were adjusted by HQ"),
      agency_users(OWNER), link=SETTLEMENT, label=_settlement_number,
      subject=_settlement(),
      when=lambda ctx: (ctx.after or {}).get("decision") in ("adjust", "deny")
      and bool((ctx.after or {}).get("changed")))
event("settlement.approved", "settlement", _l("Settlement %(label)s was approved"),
      agency_users(OWNER), link=SETTLEMENT, label=_settlement_number,
      closes=("settlement.submitted", "settlement.regional_forwarded", "settlement.appealed",
              "escalation.settlement_review", "escalation.settlement_review_admin"))
event("settlement.paid", "settlement", _l("Settlement %(label)s was paid"),
      agency_users(OWNER), link=SETTLEMENT, label=_settlement_number)
task("settlement.appealed", "settlement", _l("Decide the appeal on settlement %(label)s"),
     hq(Role.HQ_SETTLEMENT), link=SETTLEMENT, label=_settlement_number,
     subject=_settlement(), due=_review_due)
event("settlement.appeal_resolved", "settlement",
      _l("Your appeal on settlement %(label)s was decided"),
      agency_users(OWNER), link=SETTLEMENT, label=_settlement_number, subject=_settlement(),
      closes=("settlement.appealed",))
event("settlement.withdrawn", "settlement", _l("Settlement %(label)s was withdrawn"),
      hq(Role.HQ_SETTLEMENT), when=lambda ctx: bool(ctx.record.submission_count),
      link=SETTLEMENT, label=_settlement_number,
      closes=("settlement.returned",))
silent(_l("the agency's own drafting: nobody else acts on a draft"),
       "settlement.opened", "settlement.recalculated", "settlement.order_added",
       "settlement.line_removed", "settlement.evidence_added", "settlement.evidence_deleted")
silent(_l("a step inside HQ's own review; the final approval or return tells the agency"),
       "settlement.first_approved", "settlement.clean_lines_approved")
silent(_l("HQ's configuration, seen on its page and in the audit log"),
       "settlement.settings_changed", "settlement.rate_card_created",
       "settlement.rate_card_changed", "settlement.dispositions_changed",
       "settlement.delegation_created", "settlement.delegation_ended")
silent(_l("HQ's configuration, seen on its page and in the audit log"),
       "calendar.hours_changed", "calendar.exception_saved", "calendar.exception_removed")
def _coverage_label(ctx: Context) -> str:
    return " ".join(p for p in (ctx.record.city, ctx.record.district) if p)


COVERAGE = _page("dispatch.coverage_list")
task("coverage.declared", "dispatch", _l("Decide coverage area %(label)s"),
     hq(Role.HQ_ADMIN), link=COVERAGE, label=_coverage_label)
event("coverage.decided", "dispatch",
      lambda params: _l("Coverage area %(label)s was approved")
      if params.get("decision") == "approved" else _l("Coverage area %(label)s was rejected"),
      agency_users(OWNER), link=COVERAGE, label=_coverage_label,
      params=lambda ctx: {"decision": ctx.record.status}, closes=("coverage.declared",))
silent(_l("the agency owner withdraws an area themselves; an HQ withdrawal shows on the "
          "agency's coverage page and in the audit log"), "coverage.withdrawn")
silent(_l("the hotline's own queue: the dispatchers work the requests on their console; offers "
          "will tell the agencies"),
       "service_request.created", "service_request.call_linked", "service_request.cancelled")

OFFER = _link("dispatch.offer", "offer_id")


def _request_link(item, role=None):
    """HQ's items about an offer open its request (the offer's subject is the offer)."""
    from dispatch.offers import Offer

    if item.subject_id is None:
        return None
    request_id = db.session.scalar(select(Offer.request_id).where(Offer.id == item.subject_id))
    return url_for("dispatch.request_detail", service_request_id=request_id) if request_id else None


def _offer_label(ctx: Context) -> str:
    return f"{ctx.record.request_number} {ctx.record.city} {ctx.record.district}".strip()


def _earlier_offers(ctx: Context):
    """A new offer of a request answers the dispatchers' "dispatch it again" tasks."""
    from dispatch.offers import Offer

    return "dispatch_offers", select(Offer.id).where(Offer.request_id == ctx.record.request_id)


task("dispatch_offer.made", "dispatch",
     _l("New dispatch offer %(label)s: accept or refuse before it expires"),
     agency_users(OWNER, STAFF), link=OFFER, label=_offer_label,
     due=lambda ctx: ctx.record.expires_at, legal=True,
     closes=("dispatch_offer.refused", "dispatch_offer.expired"),
     closes_subjects=_earlier_offers)
event("dispatch_offer.accepted", "dispatch", _l("Offer %(label)s was accepted"),
      hq(Role.HQ_DISPATCHER), link=_request_link, label=_offer_label,
      closes=("dispatch_offer.made",))
task("dispatch_offer.refused", "dispatch",
     _l("Offer %(label)s was refused: dispatch the request again"),
     hq(Role.HQ_DISPATCHER), link=_request_link, label=_offer_label,
     closes=("dispatch_offer.made",))
task("dispatch_offer.expired", "dispatch",
     _l("Offer %(label)s expired unanswered: dispatch the request again"),
     hq(Role.HQ_DISPATCHER), link=_request_link, label=_offer_label,
     closes=("dispatch_offer.made",))
event("dispatch_offer.withdrawn", "dispatch", _l("Offer %(label)s was withdrawn by HQ"),
      agency_users(OWNER, STAFF), link=OFFER, label=_offer_label,
      closes=("dispatch_offer.made",))
silent(_l("the agency's own scheduling, shown on the dispatched order's page and in the audit "
          "log"), "appointment.booked", "appointment.rescheduled")
silent(_l("HQ's configuration, seen on its page and in the audit log"), "sla.target_set")

# --- certification -------------------------------------------------------------------------


def _engineers_of_session(statuses):
    """Every agency owner with an engineer in the session, and those engineers' accounts."""
    def rows(ctx: Context):
        from sqlalchemy import String, literal, union

        from certification.models import Engineer, ExamSeat

        seats = select(ExamSeat.agency_id, ExamSeat.engineer_id).where(
            ExamSeat.session_id == ctx.record.id)
        if statuses:
            seats = seats.where(ExamSeat.result.in_(statuses))
        seats = seats.subquery()
        owners = (select(User.id, User.agency_id, literal(ctx.record.id),
                         literal(None, String))
                  .where(User.agency_id.in_(select(seats.c.agency_id)),
                         User.role == str(OWNER), User.is_active_account.is_(True)))
        engineers = (select(User.id, User.agency_id, literal(ctx.record.id),
                            literal(None, String))
                     .join(Engineer, Engineer.user_id == User.id)
                     .where(Engineer.id.in_(select(seats.c.engineer_id)),
                            User.is_active_account.is_(True)))
        return union(owners, engineers)
    return rows


SESSION = _link("certification.session", "exam_session_id")
event("exam_session.admitted", "certification",
      _l("Your engineers were admitted to an exam session"),
      fanout(_engineers_of_session(None), "owners and engineers with a seat"),
      link=SESSION)
event("exam_session.scored", "certification",
      _l("Exam scores were recorded: certificates are issued to those who passed"),
      fanout(_engineers_of_session(None), "owners and engineers with a seat"),
      link=SESSION)
event("certificate.revoked", "certification", _l("Certificate %(label)s was revoked"),
      agency_users(OWNER),
      account(lambda ctx: _engineer_user(ctx.record.engineer_id), "the engineer's account"),
      link=_link("certification.certificate", "certificate_id"), label=_number)
silent(_l("the agency's or HQ's own bookkeeping of engineers and sessions"),
       "engineer.created", "engineer.updated", "engineer.left", "exam_session.created",
       "exam_session.updated", "exam_seat.released", "nomination.withdrawn",
       "nomination.created")
silent(_l("HQ's catalogue of programmes"), "program.created", "program.updated")


def _engineer_user(engineer_id):
    from certification.models import Engineer

    return select(Engineer.user_id).where(Engineer.id == engineer_id).scalar_subquery()


# --- parts, returns, complaints ----------------------------------------------------------

PARTS_REQUEST = _link("service.parts_request", "request_id")
task("parts_request.submitted", "parts", _l("Decide parts request %(label)s"),
     hq(Role.HQ_PARTS), link=PARTS_REQUEST, label=_number)
event("parts_request.decided", "parts",
      lambda params: _l("Parts request %(label)s was approved")
      if params.get("decision") == "approved" else _l("Parts request %(label)s was rejected"),
      agency_users(OWNER, STAFF), link=PARTS_REQUEST, label=_number,
      params=lambda ctx: {"decision": ctx.record.status},
      closes=("parts_request.submitted",))
event("parts_request.shipped", "parts", _l("Parts request %(label)s was shipped"),
      agency_users(OWNER, STAFF), link=PARTS_REQUEST, label=_number)
silent(_l("the agency confirms receipt itself; nobody else acts"), "parts_request.received")
event("part_return.inspected", "parts", _l("HQ inspected the returned part %(label)s"),
      agency_users(OWNER, STAFF), link=_link("service.part_return", "return_id"),
      label=_return_label)
# Shipping the part closes the agency's reminders; HQ inspects from its list.
event("part_return.shipped", "parts", _l("Part shipped back"),
      closes=("reminder.return_due", "reminder.return_overdue"))

COMPLAINT = _link("service.complaint", "complaint_id")


def _response_due(ctx: Context):
    from datetime import timedelta

    from inbox.settings import current

    return ctx.record.received_at + timedelta(hours=current().complaint_response_hours)


task("complaint.recorded", "quality", _l("Answer complaint %(label)s by its deadline"),
     agency_users(OWNER, STAFF), link=COMPLAINT, due=_response_due, legal=True,
     label=_complaint_label)
task("complaint.responded", "quality",
     _l("Give the verdict on complaint %(label)s: the agency answered"),
     hq(Role.HQ_SERVICE), link=COMPLAINT, label=_complaint_label,
     closes=("complaint.recorded", "reminder.complaint_response"))
event("complaint.closed", "quality", _l("HQ gave its verdict on complaint %(label)s"),
      agency_users(OWNER), link=COMPLAINT, label=_complaint_label,
      closes=("complaint.recorded", "complaint.responded", "reminder.complaint_response",
              "escalation.complaint_verdict",
              "escalation.complaint_verdict_admin"))
silent(_l("the agency's own work orders: their figures feed the evaluation"),
       "work_order.created", "work_order.updated", "work_order.completed",
       "work_order.cancelled", "work_order.imported", "revisit.recorded", "revisit.corrected",
       "revisit.imported")
silent(_l("HQ's catalogue of parts and codes"),
       "part.created", "part.updated", "part.imported", "fault_code.created",
       "fault_code.updated", "fault_code.imported", "repair_code.created",
       "repair_code.updated", "repair_code.imported")

# --- evaluation ----------------------------------------------------------------------------


def _published_results(ctx: Context):
    """Every agency's owner with that agency's published result: one SELECT."""
    from sqlalchemy import String, literal

    from evaluation.models import Result

    return (select(User.id, User.agency_id, Result.id, literal(ctx.record.label, String))
            .join(Result, Result.agency_id == User.agency_id)
            .where(Result.quarter_id == ctx.record.id, User.role == str(OWNER),
                   User.is_active_account.is_(True)))


RESULT = _link("evaluation.result", "result_id")
task("evaluation.published", "evaluation",
     _l("Your evaluation for %(label)s is published: acknowledge it or appeal"),
     fanout(_published_results, "every agency's owner, with its own result"),
     link=RESULT, subject=lambda ctx: ("evaluation_results", None),
     due=lambda ctx: ctx.record.appeal_deadline_at, legal=True)
task("evaluation.appealed", "evaluation", _l("Decide an agency's appeal of its evaluation"),
     hq(Role.HQ_SERVICE, Role.HQ_ADMIN), link=_page("evaluation.appeals"),
     subject=lambda ctx: ("evaluation_results", ctx.record.result_id),
     closes=("evaluation.published",))
# Acknowledging is the agency's own answer: it closes the agency's task, tells nobody.
event("evaluation.acknowledged", "evaluation", _l("Evaluation acknowledged"),
      subject=lambda ctx: ("evaluation_results", ctx.record.id),
      closes=("evaluation.published", "reminder.evaluation_deadline"))
event("evaluation.appeal_upheld", "evaluation", _l("Your evaluation appeal was upheld"),
      agency_users(OWNER), link=RESULT,
      subject=lambda ctx: ("evaluation_results", ctx.record.result_id),
      closes=("evaluation.appealed",))
event("evaluation.appeal_rejected", "evaluation", _l("Your evaluation appeal was rejected"),
      agency_users(OWNER), link=RESULT,
      subject=lambda ctx: ("evaluation_results", ctx.record.result_id),
      closes=("evaluation.appealed",))
def _results_of_quarter(ctx: Context):
    from evaluation.models import Result

    return "evaluation_results", select(Result.id).where(Result.quarter_id == ctx.record.id)


event("evaluation.finalized", "evaluation",
      _l("Consequence proposals of %(label)s wait for your decision"),
      hq(Role.HQ_ADMIN), link=_page("evaluation.proposals"),
      label=lambda ctx: ctx.record.label,
      closes=("evaluation.published", "reminder.evaluation_deadline"),
      closes_subjects=_results_of_quarter)
event("agency.tier_changed", "evaluation", _l("Your agency's tier was changed by HQ"),
      agency_users(OWNER), subject=lambda ctx: ("evaluation_proposals", ctx.record.id))
silent(_l("HQ's own evaluation work; publication tells the agencies"),
       "evaluation.compute_requested", "evaluation.computed", "evaluation.publish_requested",
       "evaluation.scheme_created", "evaluation.inspection_entered", "evaluation.hq_rated",
       "evaluation.proposal_rejected")

# --- network, accounts, jobs -----------------------------------------------------------------
silent(_l("HQ's records of the network, visible on their pages and in the audit log"),
       "agency.created", "agency.updated", "agency.status_changed", "region.created",
       "region.updated", "province.created", "province.updated", "product.line.created",
       "product.line.updated", "product.model.created", "product.model.updated",
       "issuer.changed")
silent(_l("a person's own account: they did it themselves or were told by the person who "
          "did"),
       "auth.sign_in", "auth.sign_out", "auth.password_changed", "user.locale_changed",
       "user.created", "user.updated", "user.activated", "user.deactivated")
silent(_l("a retried job shows its own progress"), "job.retried")
silent(_l("the integration's own keys: a person makes or revokes their own API tokens, HQ admin "
          "a service account's; each shows on its page and in the audit log"),
       "api.token_created", "api.token_revoked", "api.service_account_created")
silent(_l("webhook endpoints are their managers' own configuration, seen on the Webhooks page "
          "and in the audit log"),
       "webhook.endpoint_created", "webhook.endpoint_updated", "webhook.endpoint_deactivated",
       "webhook.redelivered")
silent(_l("the workplace's own bookkeeping: a user reads or acknowledges their own items, sets "
          "their e-mail preferences; HQ admin resends an e-mail or changes the settings"),
       "inbox.read", "inbox.read_all", "inbox.acknowledged", "inbox.preferences_changed",
       "mail.resend", "workplace.settings_changed")
