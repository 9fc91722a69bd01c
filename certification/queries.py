"""Reads of the certification area: lists, coverage and reminders, in SQL with a fixed number
of queries; and the check other areas rely on (is an engineer certified on a day?)."""
from datetime import date, timedelta

from flask import abort, request
from sqlalchemy import and_, case, distinct, exists, func, not_, or_, select
from sqlalchemy.orm import aliased, joinedload, selectinload

from certification.models import (
    Certificate,
    Engineer,
    EngineerProductLine,
    EngineerStatus,
    ExamSeat,
    ExamSession,
    Nomination,
    NominationStatus,
    Program,
    SessionStatus,
)
from certification.states import EXPIRING_DAYS, CertificateState
from portal.audit.models import AuditEntry
from portal.auth.models import User
from portal.auth.roles import Role
from portal.extensions import db
from portal.listing import int_arg
from portal.tenancy import get_or_404, unscoped
from portal.text import query_text
from tenants.models import Agency, AgencyProductLine, AgencyStatus, ProductLine


def valid_certificate_exists(engineer_id, product_line_id, day, *, min_level: int = 1):
    """A SQL EXISTS clause: the engineer holds a certificate of `min_level` or higher for the
    product line, valid on `day` and not revoked by then (each argument a value or column)."""
    return exists(
        select(Certificate.id).where(
            Certificate.engineer_id == engineer_id,
            Certificate.product_line_id == product_line_id,
            Certificate.level >= min_level,
            Certificate.valid_from <= day,
            Certificate.valid_to >= day,
            or_(Certificate.revoked_on.is_(None), Certificate.revoked_on > day),
        )
    )


# --- certificate states in SQL (the same rules as states.state_of) ---------------------------


def _renewed(cert=Certificate):
    later = aliased(Certificate)
    return exists(select(later.id).where(later.agency_id == cert.agency_id,
                                         later.renewal_of_id == cert.id))


def _not_revoked(day: date, cert=Certificate):
    return or_(cert.revoked_on.is_(None), cert.revoked_on > day)


def state_condition(state: str, today: date, cert=Certificate):
    """A WHERE clause for certificates in `state` on `today`, or None for an unknown state."""
    soon = today + timedelta(days=EXPIRING_DAYS)
    live = and_(_not_revoked(today, cert), not_(_renewed(cert)))
    return {
        CertificateState.REVOKED: cert.revoked_on <= today,
        CertificateState.RENEWED: and_(_not_revoked(today, cert), _renewed(cert)),
        CertificateState.EXPIRED: and_(live, cert.valid_to < today),
        CertificateState.NOT_YET_VALID: and_(live, cert.valid_from > today),
        CertificateState.EXPIRING: and_(live, cert.valid_from <= today,
                                        cert.valid_to.between(today, soon)),
        CertificateState.VALID: and_(live, cert.valid_from <= today, cert.valid_to > soon),
    }.get(state)


def standing_rank(today: date, cert=Certificate):
    """The list's order of states on `today` (the rules of states.state_of): 0 valid or
    expiring, 1 not yet valid, 2 expired, 3 revoked or renewed (superseded)."""
    return case((cert.revoked_on <= today, 3), (_renewed(cert), 3), (cert.valid_to < today, 2),
                (cert.valid_from > today, 1), else_=0)


def certificate_order(today: date) -> tuple:
    """The tie-breakers after a list's chosen sort; after the default sort by `standing_rank`
    they make the whole order: valid certificates first, the one expiring soonest first; then
    those not valid yet; then expired ones, the latest expired first; then superseded ones."""
    running = case((Certificate.valid_to >= today, Certificate.valid_to))
    # The unique number last, so that pages never overlap (SQLite sorts it faster than the id).
    return running.asc().nulls_last(), Certificate.valid_to.desc(), Certificate.number


# --- lists --------------------------------------------------------------------------------


def engineer_certificates():
    """Loader options: an engineer's certificates with what their badges and states need."""
    certs = selectinload(Engineer.certificates)
    return (certs.joinedload(Certificate.program).joinedload(Program.product_line),
            certs.selectinload(Certificate.renewed_by))


def engineer_list_statement():
    stmt = select(Engineer).options(joinedload(Engineer.agency),
                                    selectinload(Engineer.product_lines),
                                    *engineer_certificates())
    args = request.args
    status = args.get("status", "active")
    if status in (EngineerStatus.ACTIVE, EngineerStatus.LEFT):
        stmt = stmt.where(Engineer.status == status)
    if agency := int_arg("agency", None):
        stmt = stmt.where(Engineer.agency_id == agency)
    if line := int_arg("line", None):
        stmt = stmt.where(Engineer.id.in_(select(EngineerProductLine.engineer_id)
                                          .where(EngineerProductLine.product_line_id == line)))
    if q := query_text():
        stmt = stmt.where(or_(Engineer.name.ilike(f"%{q}%"), Engineer.phone.ilike(f"%{q}%")))
    return stmt


def certificate_list_statement(today: date, *, user=None):
    """Certificates the reader may list; an engineer's account lists only its own. What the
    rows show is loaded per page (selectin): the sort then handles narrow rows (a third less
    time at 40,000 certificates on SQLite)."""
    stmt = select(Certificate).join(Certificate.engineer).options(
        selectinload(Certificate.engineer).joinedload(Engineer.agency),
        selectinload(Certificate.program).joinedload(Program.product_line),
        selectinload(Certificate.renewed_by))
    if user is not None:
        stmt = stmt.where(Engineer.user_id == user.id)
    args = request.args
    if (condition := state_condition(args.get("state", ""), today)) is not None:
        stmt = stmt.where(condition)
    if line := int_arg("line", None):
        stmt = stmt.where(Certificate.product_line_id == line)
    if level := int_arg("level", None, high=3):
        stmt = stmt.where(Certificate.level == level)
    if agency := int_arg("agency", None):
        stmt = stmt.where(Certificate.agency_id == agency)
    if q := query_text():
        stmt = stmt.where(or_(Certificate.number.ilike(f"%{q}%"), Engineer.name.ilike(f"%{q}%")))
    return stmt


def nomination_list_statement():
    stmt = select(Nomination).join(Nomination.engineer).options(
        joinedload(Nomination.engineer).joinedload(Engineer.agency),
        joinedload(Nomination.program).joinedload(Program.product_line),
        selectinload(Nomination.seat).joinedload(ExamSeat.session))
    status = request.args.get("status", "open")
    if status == "open":
        stmt = stmt.where(Nomination.status.in_((NominationStatus.PENDING,
                                                 NominationStatus.ADMITTED)))
    elif status in set(NominationStatus):
        stmt = stmt.where(Nomination.status == status)
    if program := int_arg("program", None):
        stmt = stmt.where(Nomination.program_id == program)
    if q := query_text():
        stmt = stmt.where(Engineer.name.ilike(f"%{q}%"))
    return stmt


def session_list_statement():
    stmt = select(ExamSession).options(joinedload(ExamSession.program)
                                       .joinedload(Program.product_line))
    status = request.args.get("status", "")
    if status in set(SessionStatus):
        stmt = stmt.where(ExamSession.status == status)
    if program := int_arg("program", None):
        stmt = stmt.where(ExamSession.program_id == program)
    return stmt


def seat_counts(session_ids) -> dict[int, int]:
    """Seats taken per session, in one query (the guard limits what a region manager sees)."""
    rows = db.session.execute(select(ExamSeat.session_id, func.count(ExamSeat.id))
                              .where(ExamSeat.session_id.in_(list(session_ids) or [0]))
                              .group_by(ExamSeat.session_id))
    return dict(rows.all())


def session_seats(session: ExamSession) -> list[ExamSeat]:
    return list(db.session.scalars(
        select(ExamSeat).where(ExamSeat.session_id == session.id)
        .options(joinedload(ExamSeat.engineer).joinedload(Engineer.agency),
                 selectinload(ExamSeat.certificate))
        .order_by(ExamSeat.seat_no)))


def certifier_name(certificate: Certificate) -> str | None:
    """Who certified: the person who recorded the scores of the exam session that issued
    `certificate` (the actor of that session's "exam_session.scored" audit entry, written in
    the same transaction as the certificate). None when no person did (the demo loader or
    another command acting as the system) or no exam issued it."""
    if certificate.seat_id is None:
        return None
    session_id = db.session.scalar(select(ExamSeat.session_id).where(
        ExamSeat.agency_id == certificate.agency_id, ExamSeat.id == certificate.seat_id))
    if session_id is None:
        return None
    # HQ's accounts and the audit log are visible in the whole network's scope only; the
    # reader may see the certificate, and this reads one name of the person who issued it.
    with unscoped("a certificate names the certifier who recorded its exam's scores"):
        return db.session.scalar(
            select(User.name).join(AuditEntry, AuditEntry.actor_id == User.id)
            .where(AuditEntry.object_type == "ExamSession",
                   AuditEntry.object_id == str(session_id),
                   AuditEntry.action == "exam_session.scored")
            .order_by(AuditEntry.id).limit(1))


def waiting_nominations(session: ExamSession) -> list[Nomination]:
    """Nominations of the session's program waiting for a seat, oldest first."""
    return list(db.session.scalars(
        select(Nomination).where(Nomination.program_id == session.program_id,
                                 Nomination.status == NominationStatus.PENDING)
        .options(joinedload(Nomination.engineer).joinedload(Engineer.agency))
        .order_by(Nomination.nominated_at, Nomination.id)))


def programs() -> list[Program]:
    return list(db.session.scalars(select(Program).join(Program.product_line)
                                   .options(joinedload(Program.product_line))
                                   .order_by(ProductLine.code, Program.level)))


def product_lines() -> list[ProductLine]:
    return list(db.session.scalars(select(ProductLine).order_by(ProductLine.code)))


# --- coverage and reminders -----------------------------------------------------------------


def _holders(today: date):
    """Per agency and product line: active engineers with a valid certificate of level >= 2."""
    return (select(Certificate.agency_id, Certificate.product_line_id,
                   func.count(distinct(Certificate.engineer_id)).label("holders"))
            .join(Engineer, and_(Engineer.agency_id == Certificate.agency_id,
                                 Engineer.id == Certificate.engineer_id))
            .where(Engineer.status == EngineerStatus.ACTIVE, Certificate.level >= 2,
                   Certificate.valid_from <= today, Certificate.valid_to >= today,
                   _not_revoked(today))
            .group_by(Certificate.agency_id, Certificate.product_line_id)
            .subquery("holders"))


def coverage_statement(today: date, *, agency_id: int | None = None, gaps_only=False):
    """One row per agency × authorized product line: holders, required, gap (set-based)."""
    holders = _holders(today)
    count = func.coalesce(holders.c.holders, 0)
    gap = case((Agency.required_l2_engineers > count, Agency.required_l2_engineers - count),
               else_=0)
    stmt = (select(Agency.id.label("agency_id"), Agency.code, Agency.legal_name,
                   Agency.required_l2_engineers.label("required"),
                   ProductLine.id.label("product_line_id"), ProductLine.code.label("line_code"),
                   ProductLine.name_zh, ProductLine.name_en, count.label("holders"),
                   gap.label("gap"))
            .select_from(AgencyProductLine)
            .join(Agency, Agency.id == AgencyProductLine.agency_id)
            .join(ProductLine, ProductLine.id == AgencyProductLine.product_line_id)
            .outerjoin(holders, and_(holders.c.agency_id == AgencyProductLine.agency_id,
                                     holders.c.product_line_id ==
                                     AgencyProductLine.product_line_id))
            .where(Agency.status != AgencyStatus.TERMINATED))
    if agency_id is not None:
        stmt = stmt.where(AgencyProductLine.agency_id == agency_id)
    if gaps_only:
        stmt = stmt.where(gap > 0)
    return stmt.order_by(gap.desc(), Agency.code, ProductLine.code)


def coverage_summary(today: date) -> dict:
    """Network (or region) totals in one query: agency-lines, covered, gaps, agencies short."""
    rows = coverage_statement(today).order_by(None).subquery()
    total, short_lines, agencies_short = db.session.execute(
        select(func.count(), func.count(case((rows.c.gap > 0, 1))),
               func.count(distinct(case((rows.c.gap > 0, rows.c.agency_id)))))).one()
    return {"lines": total, "covered": total - short_lines, "short_lines": short_lines,
            "agencies_short": agencies_short}


def expiring_statement(today: date, days: int = EXPIRING_DAYS, *, agency_id=None):
    """Live certificates (not revoked, not renewed) whose last day is within `days`."""
    stmt = (select(Certificate).join(Certificate.engineer)
            .options(joinedload(Certificate.engineer).joinedload(Engineer.agency),
                     joinedload(Certificate.program).joinedload(Program.product_line))
            .where(_not_revoked(today), not_(_renewed()), Certificate.valid_from <= today,
                   Certificate.valid_to.between(today, today + timedelta(days=days)),
                   Engineer.status == EngineerStatus.ACTIVE)
            .order_by(Certificate.valid_to, Certificate.number))
    if agency_id is not None:
        stmt = stmt.where(Certificate.agency_id == agency_id)
    return stmt


def count_of(stmt) -> int:
    return db.session.scalar(select(func.count()).select_from(
        stmt.order_by(None).options().subquery()))


def hq_dashboard(today: date) -> dict:
    """The HQ card: coverage, expiring certificates, open sessions, waiting nominations."""
    summary = coverage_summary(today)
    expiring = db.session.scalar(select(func.count()).select_from(
        expiring_statement(today).with_only_columns(Certificate.id).order_by(None).subquery()))
    sessions, waiting = db.session.execute(select(
        select(func.count(ExamSession.id)).where(ExamSession.status == SessionStatus.OPEN)
        .scalar_subquery(),
        select(func.count(Nomination.id)).where(Nomination.status == NominationStatus.PENDING)
        .scalar_subquery())).one()
    return {**summary, "expiring": expiring, "open_sessions": sessions, "waiting": waiting}


def readable_certificate(user, certificate_id) -> Certificate:
    """A certificate the user may read (the agency's scope decides; an engineer's account
    reads only its own); any other is a 404."""
    cert = get_or_404(Certificate, certificate_id)
    if user.role == Role.ENGINEER and cert.engineer.user_id != user.id:
        abort(404)
    return cert
