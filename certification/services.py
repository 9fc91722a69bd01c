"""The rules for engineers, programs, nominations and revocations (exams: see exams.py)."""
import re
from datetime import date

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from certification import eligibility, policy
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
from certification.states import NOMINATION_LABELS, STATE_LABELS, certificate_state
from portal.audit.services import changes, snapshot
from portal.auth.models import User
from portal.auth.roles import Role
from portal.clock import local_today
from portal.errors_domain import DomainError
from portal.extensions import db
from portal.models import utcnow
from portal.text import clean
from portal.transitions import describe, transition
from portal.transitions import note as audit_note
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


describe(Engineer, _l("engineer"))
describe(Nomination, _l("nomination"), lambda n: NOMINATION_LABELS.get(n.status, n.status))
describe(Program, _l("program"))
describe(Certificate, _l("certificate"),
         lambda c: STATE_LABELS[certificate_state(c, local_today())])


def note_changes(before: dict, record, **extra) -> None:
    """Inside an edit: its audit entry holds only the fields that changed (`extra`: values
    that are not columns, e.g. the product lines)."""
    old, new = changes(before, {**snapshot(record), **extra})
    audit_note(before=old, after=new)


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


@transition("engineer.created", Engineer, label=_l("Engineer registered"),
            permission=policy.ENGINEER_REGISTER, creates=True)
def create_engineer(agency_id: int, data: dict, product_line_ids, *, acting_user,
                    today=None) -> Engineer:
    """Register an engineer of `agency_id`. Raises DomainError for bad or duplicate data."""
    data = {**data, "id_number": normalize_id_number(data.get("id_number", ""))}
    _check_engineer(agency_id, data, product_line_ids, today=today or local_today())
    engineer = Engineer(agency_id=agency_id, id_number=data["id_number"],
                        status=EngineerStatus.ACTIVE,
                        **{k: data.get(k) for k in ENGINEER_FIELDS})
    engineer.name = clean(engineer.name)
    db.session.add(engineer)
    db.session.flush()
    _set_lines(engineer, product_line_ids)
    audit_note(after={**snapshot(engineer), "product_line_ids": sorted(product_line_ids)})
    return engineer


@transition("engineer.updated", Engineer, label=_l("Engineer changed"),
            permission=policy.ENGINEER_EDIT)
def update_engineer(engineer: Engineer, data: dict, product_line_ids, *, acting_user,
                    today=None) -> None:
    """Change an engineer's profile; an empty ID number keeps the stored one."""
    data = dict(data)
    data["id_number"] = normalize_id_number(data.get("id_number", "")) or None
    _check_engineer(engineer.agency_id, data, product_line_ids, engineer=engineer,
                    today=today or local_today())
    before = {**snapshot(engineer), "product_line_ids": sorted(p.id for p in
                                                               engineer.product_lines)}
    for key in ENGINEER_FIELDS:
        setattr(engineer, key, data.get(key))
    engineer.name = clean(engineer.name)
    if data["id_number"]:
        engineer.id_number = data["id_number"]
    _set_lines(engineer, product_line_ids)
    db.session.flush()
    db.session.expire(engineer, ["product_lines"])
    note_changes(before, engineer, product_line_ids=sorted(product_line_ids))
    audit_note(after={"id_number_changed": bool(data["id_number"])})


@transition("engineer.left", Engineer, label=_l("Engineer left the agency"),
            permission=policy.ENGINEER_LEAVE, source={EngineerStatus.ACTIVE},
            target=EngineerStatus.LEFT, audit=lambda e: {"status": e.status},
            wrong_state=_l("This engineer has already left."))
def engineer_leaves(engineer: Engineer, left_on: date | None, *, acting_user,
                    today=None) -> list[int]:
    """Mark an engineer as gone; their waiting nominations are withdrawn (ids returned).

    Raises DomainError when they already left or the date is outside hire date … today.
    """
    today = today or local_today()
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
    engineer.left_on = left_on
    audit_note(after={"left_on": left_on, "withdrawn_nomination_ids": withdrawn})
    return withdrawn


# --- programs -----------------------------------------------------------------------------


def _check_program(data: dict, program: Program | None = None) -> None:
    if data["level"] not in (1, 2, 3):
        raise DomainError(_("Choose level 1, 2 or 3."), field="level")
    if db.session.scalar(select(func.count(ProductLine.id))
                         .where(ProductLine.id == data["product_line_id"])) == 0:
        raise DomainError(_("Unknown product line."), field="product_line_id")
    taken = select(func.count(Program.id)).where(Program.product_line_id ==
                                                  data["product_line_id"],
                                                  Program.level == data["level"])
    if program is not None:
        taken = taken.where(Program.id != program.id)
    if db.session.scalar(taken):
        raise DomainError(_("This product line already has a program at this level."),
                          field="level")


@transition("program.created", Program, label=_l("Program created"),
            permission=policy.PROGRAM_CREATE, creates=True)
def create_program(data: dict, *, acting_user) -> Program:
    """A new program. Raises DomainError for a duplicate product line × level."""
    _check_program(data)
    program = Program(**{key: data[key] for key in PROGRAM_FIELDS})
    db.session.add(program)
    db.session.flush()
    audit_note(after=snapshot(program))
    return program


@transition("program.updated", Program, label=_l("Program changed"),
            permission=policy.PROGRAM_EDIT)
def update_program(program: Program, data: dict, *, acting_user) -> Program:
    """Change a program's rules. Raises DomainError for a duplicate product line × level."""
    _check_program(data, program)
    before = snapshot(program)
    for key in PROGRAM_FIELDS:
        setattr(program, key, data[key])
    db.session.flush()
    note_changes(before, program)
    return program


# --- nominations --------------------------------------------------------------------------


@transition("nomination.created", Nomination, label=_l("Engineer nominated"),
            permission=policy.NOMINATE, creates=True)
def nominate_engineer(engineer: Engineer, program: Program, *, acting_user, note: str = "",
                      today=None) -> Nomination:
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
                            note=clean(note, multiline=True, limit=2000),
                            nominated_by_id=getattr(acting_user, "id", None))
    db.session.add(nomination)
    db.session.flush()
    audit_note(after=snapshot(nomination))
    return nomination


@transition("nomination.withdrawn", Nomination, label=_l("Nomination withdrawn"),
            permission=policy.WITHDRAW, source={NominationStatus.PENDING},
            target=NominationStatus.WITHDRAWN, audit=lambda n: {"status": n.status},
            wrong_state=_l("Only a nomination waiting for a seat can be withdrawn."))
def withdraw_nomination(nomination: Nomination, *, acting_user) -> None:
    """Withdraw a nomination that is still waiting for a seat (DomainError otherwise)."""
    nomination.closed_at = utcnow()


# --- certificates -------------------------------------------------------------------------


# From "not revoked" (no revocation time) only; the body sets the revocation.
@transition("certificate.revoked", Certificate, label=_l("Certificate revoked"),
            permission=policy.REVOKE, state_attr="revoked_at", source={None},
            audit=lambda c: {"revoked_on": c.revoked_on},
            wrong_state=_l("This certificate is already revoked."))
def revoke_certificate(certificate: Certificate, reason: str, revoked_on: date | None = None,
                       *, acting_user, today=None) -> None:
    """Revoke a certificate from `revoked_on` (default today) with a reason.

    Raises DomainError when it is already revoked, the reason is missing or the day lies
    before the certificate's start or after today.
    """
    today = today or local_today()
    reason = clean(reason, multiline=True)
    if len(reason) < 3:
        raise DomainError(_("Give the reason for the revocation."), field="reason")
    revoked_on = revoked_on or today
    if revoked_on > today or revoked_on < certificate.valid_from:
        raise DomainError(_("The revocation must take effect between the start of the "
                            "certificate and today."), field="revoked_on")
    certificate.revoked_at, certificate.revoked_on = utcnow(), revoked_on
    certificate.revoke_reason = reason
    audit_note(after={"number": certificate.number}, reason=reason)
