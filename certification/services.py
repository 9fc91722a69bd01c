"""The rules for engineers, programs, nominations and revocations (exams: see exams.py)."""
import re
from datetime import date

from flask_babel import gettext as _
from sqlalchemy import func, select

from certification import eligibility
from certification.models import (
    EDUCATION_RANK,
    Certificate,
    Engineer,
    EngineerProductLine,
    EngineerStatus,
    Nomination,
    NominationStatus,
    Program,
)
from portal.audit.services import changes, record, snapshot
from portal.auth.models import User
from portal.auth.roles import Role
from portal.clock import local_today
from portal.errors_domain import DomainError
from portal.extensions import db
from portal.models import utcnow
from tenants.models import AgencyProductLine, ProductLine

ENGINEER_FIELDS = ("name", "phone", "education", "hire_date", "user_id")
PROGRAM_FIELDS = ("product_line_id", "level", "validity_months", "theory_pass_mark",
                  "practical_pass_mark", "retake_wait_days", "max_attempts",
                  "min_experience_years", "min_education", "is_active")

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def normalize_id_number(raw: str) -> str:
    return re.sub(r"\s", "", raw or "").upper()


def id_number_is_valid(number: str) -> bool:
    """A mainland resident ID: 17 digits and a check character (ISO 7064 MOD 11-2)."""
    if not re.fullmatch(r"\d{17}[\dX]", number):
        return False
    total = sum(int(d) * w for d, w in zip(number[:17], _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11] == number[17]


# --- engineers ----------------------------------------------------------------------------


def _check_engineer(agency_id: int, data: dict, product_line_ids, *, engineer=None,
                    today: date) -> None:
    if not (data.get("name") or "").strip():
        raise DomainError(_("Enter the engineer's name."), field="name")
    if data.get("education") not in {e.value for e in EDUCATION_RANK}:
        raise DomainError(_("Choose an education level."), field="education")
    hire = data.get("hire_date")
    if hire is None or hire > today or hire < date(1950, 1, 1):
        raise DomainError(_("The hire date must be a past date."), field="hire_date")
    number = data.get("id_number")
    if number is not None:
        if not id_number_is_valid(number):
            raise DomainError(_("This is not a valid ID number (18 characters, check digit "
                                "included)."), field="id_number")
        stmt = select(func.count(Engineer.id)).where(Engineer.agency_id == agency_id,
                                                     Engineer.id_number == number)
        if engineer is not None:
            stmt = stmt.where(Engineer.id != engineer.id)
        if db.session.scalar(stmt):
            raise DomainError(_("An engineer with this ID number is already registered."),
                              field="id_number")
    authorized = set(db.session.scalars(
        select(AgencyProductLine.product_line_id).where(AgencyProductLine.agency_id == agency_id)))
    if not product_line_ids:
        raise DomainError(_("Choose at least one product line."), field="product_line_ids")
    if set(product_line_ids) - authorized:
        raise DomainError(_("The agency is not authorized for this product line."),
                          field="product_line_ids")
    _check_account(agency_id, data.get("user_id"), engineer)


def _check_account(agency_id: int, user_id, engineer) -> None:
    if not user_id:
        return
    user = db.session.scalars(select(User).where(User.id == user_id)).one_or_none()
    if user is None or user.agency_id != agency_id or user.role != Role.ENGINEER:
        raise DomainError(_("Choose an engineer account of this agency."), field="user_id")
    stmt = select(func.count(Engineer.id)).where(Engineer.user_id == user_id)
    if engineer is not None:
        stmt = stmt.where(Engineer.id != engineer.id)
    if db.session.scalar(stmt):
        raise DomainError(_("This account already belongs to another engineer."),
                          field="user_id")


def _set_lines(engineer: Engineer, product_line_ids) -> None:
    current = {link.product_line_id: link for link in db.session.scalars(
        select(EngineerProductLine).where(EngineerProductLine.engineer_id == engineer.id))}
    for line_id, link in current.items():
        if line_id not in product_line_ids:
            db.session.delete(link)
    for line_id in sorted(set(product_line_ids) - current.keys()):
        db.session.add(EngineerProductLine(agency_id=engineer.agency_id,
                                           engineer_id=engineer.id, product_line_id=line_id))


def create_engineer(agency_id: int, data: dict, product_line_ids, *, today=None) -> Engineer:
    """Register an engineer of `agency_id`. Raises DomainError for bad or duplicate data."""
    data = {**data, "id_number": normalize_id_number(data.get("id_number", ""))}
    _check_engineer(agency_id, data, product_line_ids, today=today or local_today())
    engineer = Engineer(agency_id=agency_id, id_number=data["id_number"],
                        status=EngineerStatus.ACTIVE,
                        **{k: data.get(k) for k in ENGINEER_FIELDS})
    engineer.name = engineer.name.strip()
    db.session.add(engineer)
    db.session.flush()
    _set_lines(engineer, product_line_ids)
    record("engineer.created", engineer, after={**snapshot(engineer),
                                                "product_line_ids": sorted(product_line_ids)})
    db.session.flush()
    return engineer


def update_engineer(engineer: Engineer, data: dict, product_line_ids, *, today=None) -> None:
    """Change an engineer's profile; an empty ID number keeps the stored one."""
    data = dict(data)
    data["id_number"] = normalize_id_number(data.get("id_number", "")) or None
    _check_engineer(engineer.agency_id, data, product_line_ids, engineer=engineer,
                    today=today or local_today())
    before = {**snapshot(engineer), "product_line_ids": sorted(p.id for p in
                                                               engineer.product_lines)}
    for key in ENGINEER_FIELDS:
        setattr(engineer, key, data.get(key))
    engineer.name = engineer.name.strip()
    if data["id_number"]:
        engineer.id_number = data["id_number"]
    _set_lines(engineer, product_line_ids)
    db.session.flush()
    db.session.expire(engineer, ["product_lines"])
    old, new = changes(before, {**snapshot(engineer),
                                "product_line_ids": sorted(product_line_ids)})
    record("engineer.updated", engineer, before=old,
           after={**new, "id_number_changed": bool(data["id_number"])})
    db.session.flush()


def engineer_leaves(engineer: Engineer, left_on: date | None, *, today=None) -> list[int]:
    """Mark an engineer as gone; their waiting nominations are withdrawn (ids returned).

    Raises DomainError when they already left or the date is outside hire date … today.
    """
    today = today or local_today()
    if engineer.status == EngineerStatus.LEFT:
        raise DomainError(_("This engineer has already left."))
    left_on = left_on or today
    if left_on > today or left_on < engineer.hire_date:
        raise DomainError(_("The leaving date must lie between the hire date and today."),
                          field="left_on")
    withdrawn = []
    for nomination in db.session.scalars(select(Nomination).where(
            Nomination.engineer_id == engineer.id,
            Nomination.status == NominationStatus.PENDING)):
        nomination.status, nomination.closed_at = NominationStatus.WITHDRAWN, utcnow()
        withdrawn.append(nomination.id)
    engineer.status, engineer.left_on = EngineerStatus.LEFT, left_on
    record("engineer.left", engineer, before={"status": EngineerStatus.ACTIVE.value},
           after={"status": EngineerStatus.LEFT.value, "left_on": left_on,
                  "withdrawn_nomination_ids": withdrawn})
    db.session.flush()
    return withdrawn


# --- programs -----------------------------------------------------------------------------


def save_program(program: Program, data: dict) -> Program:
    """Create or change a program. Raises DomainError for a duplicate product line × level."""
    if data["level"] not in (1, 2, 3):
        raise DomainError(_("Choose level 1, 2 or 3."), field="level")
    if db.session.scalar(select(func.count(ProductLine.id))
                         .where(ProductLine.id == data["product_line_id"])) == 0:
        raise DomainError(_("Unknown product line."), field="product_line_id")
    taken = select(func.count(Program.id)).where(Program.product_line_id ==
                                                  data["product_line_id"],
                                                  Program.level == data["level"])
    if program.id is not None:
        taken = taken.where(Program.id != program.id)
    if db.session.scalar(taken):
        raise DomainError(_("This product line already has a program at this level."),
                          field="level")
    before = snapshot(program) if program.id else None
    for key in PROGRAM_FIELDS:
        setattr(program, key, data[key])
    db.session.add(program)
    db.session.flush()
    if before is None:
        record("program.created", program, after=snapshot(program))
    else:
        old, new = changes(before, snapshot(program))
        record("program.updated", program, before=old, after=new)
    db.session.flush()
    return program


# --- nominations --------------------------------------------------------------------------


def nominate_engineer(engineer: Engineer, program: Program, *, note: str = "",
                      actor_id=None, today=None) -> Nomination:
    """Nominate an engineer for a program's exam.

    Raises DomainError explaining every unmet prerequisite (education, experience, the
    certificate of the level below, retake waiting period, attempts left, an open nomination).
    """
    today = today or local_today()
    history = eligibility.load_history(engineer)
    unmet = eligibility.problems(engineer, program, history, today)
    if unmet:
        raise DomainError(" ".join(unmet), field="program_id")
    nomination = Nomination(agency_id=engineer.agency_id, engineer_id=engineer.id,
                            program_id=program.id, status=NominationStatus.PENDING,
                            note=(note or "").strip()[:2000], nominated_by_id=actor_id)
    db.session.add(nomination)
    db.session.flush()
    record("nomination.created", nomination, after=snapshot(nomination))
    db.session.flush()
    return nomination


def withdraw_nomination(nomination: Nomination) -> None:
    """Withdraw a nomination that is still waiting for a seat (DomainError otherwise)."""
    if nomination.status != NominationStatus.PENDING:
        raise DomainError(_("Only a nomination waiting for a seat can be withdrawn."))
    nomination.status, nomination.closed_at = NominationStatus.WITHDRAWN, utcnow()
    record("nomination.withdrawn", nomination, before={"status": "pending"},
           after={"status": "withdrawn"})
    db.session.flush()


# --- certificates -------------------------------------------------------------------------


def revoke_certificate(certificate: Certificate, reason: str, revoked_on: date | None = None,
                       *, today=None) -> None:
    """Revoke a certificate from `revoked_on` (default today) with a reason.

    Raises DomainError when it is already revoked, the reason is missing or the day lies
    before the certificate's start or after today.
    """
    today = today or local_today()
    if certificate.revoked_at is not None:
        raise DomainError(_("This certificate is already revoked."))
    reason = (reason or "").strip()
    if len(reason) < 3:
        raise DomainError(_("Give the reason for the revocation."), field="reason")
    revoked_on = revoked_on or today
    if revoked_on > today or revoked_on < certificate.valid_from:
        raise DomainError(_("The revocation must take effect between the start of the "
                            "certificate and today."), field="revoked_on")
    certificate.revoked_at, certificate.revoked_on = utcnow(), revoked_on
    certificate.revoke_reason = reason
    record("certificate.revoked", certificate, before={"revoked_on": None},
           after={"revoked_on": revoked_on, "number": certificate.number}, reason=reason)
    db.session.flush()
