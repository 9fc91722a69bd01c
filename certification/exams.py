"""The rules of exam sessions: creation, admission within capacity, scores and issuing.

A session belongs to HQ; its seats belong to the nominees' agencies. Admission re-counts the
seats after locking the session row, and the database refuses a seat number beyond capacity
(seats reference the session's (id, capacity) and check seat_no <= capacity). Scores for the
whole session are validated first, then written in the caller's one transaction; before that,
`preview_scores` says what they would issue, writing nothing, and fingerprints the sheet the
person confirms (`ScorePreview.digest`).
"""
import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import date, timedelta

from flask_babel import format_date, ngettext
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select, update

from certification import eligibility, policy
from certification.models import (
    Certificate,
    Engineer,
    ExamResult,
    ExamSeat,
    ExamSession,
    Nomination,
    NominationStatus,
    Program,
    SessionStatus,
)
from certification.services import note_changes
from certification.states import SESSION_LABELS, is_valid_on, validity_end
from portal.audit.services import snapshot
from portal.clock import local_today
from portal.errors_domain import DomainError
from portal.extensions import db
from portal.models import utcnow
from portal.text import clean
from portal.transitions import describe, transition
from portal.transitions import note as audit_note

SESSION_FIELDS = ("program_id", "exam_date", "place", "capacity")
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: easy to read and type
CODE_LENGTH = 8
MAX_CAPACITY = 500
# The session's scores are final once recorded: the messages of the refused changes.
SCORED_NO_CHANGE = _l("The scores of this session are recorded; it can no longer change.")
SCORED_NO_ADMISSION = _l("The scores of this session are recorded; it takes no more nominees.")
ALREADY_SCORED = _l("The scores of this session are already recorded.")

describe(ExamSession, _l("exam session"), lambda s: SESSION_LABELS.get(s.status, s.status))
describe(ExamSeat, _l("seat"))


@dataclass(frozen=True)
class ScoreRow:
    seat_id: int
    theory: int | None
    practical: int | None
    absent: bool = False


@dataclass(frozen=True)
class ScoreOutcome:
    passed: int
    failed: int
    absent: int
    certificates: list


@dataclass(frozen=True)
class ScorePreview:
    """What recording a sheet would do: one certificate per pass (`renewals` of them extend a
    still-valid certificate), and the fingerprint of exactly this sheet."""

    passed: int
    failed: int
    absent: int
    renewals: int
    digest: str
    results: dict = field(default_factory=dict)  # {seat_id: ExamResult}

    @property
    def certificates(self) -> int:
        return self.passed


def new_verification_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def _program(program_id) -> Program:
    program = db.session.scalars(select(Program).where(Program.id == program_id)).one_or_none()
    if program is None:
        raise DomainError(_("Unknown program."), field="program_id")
    return program


def _check_session_data(data: dict) -> None:
    data["place"] = clean(data.get("place"))
    if not data["place"]:
        raise DomainError(_("Enter the place of the exam."), field="place")
    capacity = data.get("capacity")
    if not isinstance(capacity, int) or not 1 <= capacity <= MAX_CAPACITY:
        raise DomainError(_("The capacity must be between 1 and %(max)s.", max=MAX_CAPACITY),
                          field="capacity")
    if data.get("exam_date") is None or data["exam_date"] < date(2000, 1, 1):
        raise DomainError(_("Enter the exam date."), field="exam_date")


@transition("exam_session.created", ExamSession, label=_l("Exam session created"),
            permission=policy.SESSION_CREATE, creates=True)
def create_session(data: dict, *, acting_user) -> ExamSession:
    """Open an exam session of an active program. Raises DomainError for bad data."""
    data = dict(data)
    _check_session_data(data)
    if not _program(data["program_id"]).is_active:
        raise DomainError(_("This program is closed."), field="program_id")
    session = ExamSession(**{k: data[k] for k in SESSION_FIELDS}, status=SessionStatus.OPEN,
                          created_by_id=getattr(acting_user, "id", None))
    db.session.add(session)
    db.session.flush()
    audit_note(after=snapshot(session))
    return session


def _seats(session: ExamSession) -> list[ExamSeat]:
    return list(db.session.scalars(select(ExamSeat).where(ExamSeat.session_id == session.id)
                                   .order_by(ExamSeat.seat_no)))


@transition("exam_session.updated", ExamSession, label=_l("Exam session changed"),
            permission=policy.SESSION_EDIT, source={SessionStatus.OPEN},
            wrong_state=SCORED_NO_CHANGE)
def update_session(session: ExamSession, data: dict, *, acting_user) -> None:
    """Change date, place or capacity of an open session (the program only while empty).

    Raises DomainError when the session is scored or the capacity is below the seats taken.
    """
    data = dict(data)
    _check_session_data(data)
    seats = _seats(session)
    if data["program_id"] != session.program_id and seats:
        raise DomainError(_("Release every seat before changing the program."),
                          field="program_id")
    _program(data["program_id"])
    if data["capacity"] < len(seats):
        raise DomainError(ngettext("%(num)s seat is taken; the capacity cannot be lower.",
                                   "%(num)s seats are taken; the capacity cannot be lower.",
                                   len(seats)), field="capacity")
    before = snapshot(session)
    if seats and seats[-1].seat_no > data["capacity"]:
        _compact(seats)
    for key in SESSION_FIELDS:
        setattr(session, key, data[key])
    db.session.flush()
    db.session.expire_all()  # seats follow the new capacity (ON UPDATE CASCADE)
    note_changes(before, session)


def _compact(seats: list[ExamSeat]) -> None:
    """Renumber seats 1..n in order (one flush per seat keeps the unique key satisfied)."""
    for number, seat in enumerate(seats, start=1):
        if seat.seat_no != number:
            seat.seat_no = number
            db.session.flush()


def _lock_open(session: ExamSession) -> None:
    """Lock the session row for this transaction, and check it is still open."""
    locked = db.session.execute(
        update(ExamSession).where(ExamSession.id == session.id,
                                  ExamSession.status == SessionStatus.OPEN)
        .values(status=SessionStatus.OPEN).execution_options(synchronize_session=False))
    if locked.rowcount != 1:
        raise DomainError(str(SCORED_NO_ADMISSION))


@transition("exam_session.admitted", ExamSession, label=_l("Nominees admitted"),
            permission=policy.ADMIT, source={SessionStatus.OPEN},
            wrong_state=SCORED_NO_ADMISSION)
def admit_nominations(session: ExamSession, nomination_ids, *, acting_user) -> list[ExamSeat]:
    """Give seats in `session` to waiting nominations of its program, never beyond capacity.

    Raises DomainError (nothing admitted) when a nomination is unknown, not waiting, of
    another program, no longer meets the prerequisites on the exam date, or the seats left
    are fewer than the nominations.
    """
    ids = sorted({int(i) for i in nomination_ids})
    if not ids:
        raise DomainError(_("Choose the nominees to admit."), field="nomination_ids")
    _lock_open(session)
    nominations = list(db.session.scalars(select(Nomination).where(Nomination.id.in_(ids))
                                          .order_by(Nomination.nominated_at, Nomination.id)))
    if len(nominations) != len(ids) or any(
            n.status != NominationStatus.PENDING or n.program_id != session.program_id
            for n in nominations):
        raise DomainError(_("Some of these nominations were admitted, withdrawn or changed "
                            "meanwhile. Reload the page and choose again."),
                          field="nomination_ids")
    taken = {seat_no for seat_no in db.session.scalars(
        select(ExamSeat.seat_no).where(ExamSeat.session_id == session.id))}
    free = [n for n in range(1, session.capacity + 1) if n not in taken]
    if len(nominations) > len(free):
        raise DomainError(ngettext("Only %(num)s of %(capacity)s seats is left; choose at "
                                   "most %(num)s nominee.",
                                   "Only %(num)s of %(capacity)s seats are left; choose at "
                                   "most %(num)s nominees.", len(free),
                                   capacity=session.capacity), field="nomination_ids")
    _check_prerequisites(session, nominations)
    seats = []
    for nomination, seat_no in zip(nominations, free, strict=False):
        seat = ExamSeat(agency_id=nomination.agency_id, session_id=session.id,
                        session_capacity=session.capacity, seat_no=seat_no,
                        nomination_id=nomination.id, engineer_id=nomination.engineer_id,
                        program_id=session.program_id, exam_date=session.exam_date)
        nomination.status = NominationStatus.ADMITTED
        db.session.add(seat)
        seats.append(seat)
    db.session.flush()
    audit_note(after={"nomination_ids": [n.id for n in nominations],
                      "seat_nos": [s.seat_no for s in seats]})
    return seats


def _check_prerequisites(session: ExamSession, nominations: list[Nomination]) -> None:
    engineers = {e.id: e for e in db.session.scalars(
        select(Engineer).where(Engineer.id.in_([n.engineer_id for n in nominations])))}
    histories = eligibility.load_histories(engineers)
    unmet = []
    for nomination in nominations:
        engineer = engineers[nomination.engineer_id]
        problems = eligibility.problems(engineer, session.program, histories[engineer.id],
                                        session.exam_date, nomination_id=nomination.id)
        unmet.extend(problems)
    if unmet:
        raise DomainError(_("Nobody was admitted: %(problems)s", problems=" ".join(unmet)),
                          field="nomination_ids")


@transition("exam_seat.released", ExamSeat, label=_l("Seat released"),
            permission=policy.SEAT_RELEASE)
def release_seat(seat: ExamSeat, *, acting_user) -> None:
    """Give a seat back before the scores are recorded; the nomination waits again."""
    session = db.session.scalars(select(ExamSession)
                                 .where(ExamSession.id == seat.session_id)).one()
    if not session.is_open or seat.result is not None:
        raise DomainError(_("The scores of this session are recorded; the seat stays."))
    nomination = db.session.scalars(select(Nomination)
                                    .where(Nomination.id == seat.nomination_id)).one()
    nomination.status = NominationStatus.PENDING
    audit_note(after={"session_id": session.id, "seat_no": seat.seat_no,
                      "nomination_id": nomination.id})
    db.session.delete(seat)


def check_score_rows(rows: list[ScoreRow]) -> list[str | None]:
    """One message per row (None when the row is complete): both scores 0–100, or absent."""
    out = []
    for row in rows:
        scores = (row.theory, row.practical)
        if row.absent:
            out.append(None if scores == (None, None) else
                       _("An absent nominee has no scores: clear them or untick absent."))
        elif None in scores:
            out.append(_("Enter both scores, or tick absent."))
        elif not all(0 <= s <= 100 for s in scores):
            out.append(_("Scores run from 0 to 100."))
        else:
            out.append(None)
    return out


def sheet_digest(session: ExamSession, rows: list[ScoreRow]) -> str:
    """The fingerprint of a score sheet as typed: a confirmation holds for exactly these
    scores of exactly this session."""
    text = ";".join(f"{r.seat_id}:{r.theory}:{r.practical}:{int(r.absent)}"
                    for r in sorted(rows, key=lambda r: r.seat_id))
    return hashlib.sha256(f"{session.id}|{text}".encode()).hexdigest()[:32]


def _check_sheet(session: ExamSession, rows: list[ScoreRow], today) -> dict[int, ExamSeat]:
    """The session's seats by id, once the sheet may be recorded; raises DomainError when the
    scores are recorded already, the exam has not taken place yet, the sheet does not match
    the seats or a row is incomplete."""
    if session.status != SessionStatus.OPEN:
        raise DomainError(str(ALREADY_SCORED))
    if session.exam_date > today:
        raise DomainError(_("The exam takes place on %(date)s; record the scores from that "
                            "day on.", date=format_date(session.exam_date)))
    seats = {s.id: s for s in _seats(session)}
    if not seats:
        raise DomainError(_("Nobody is admitted to this session yet."))
    if sorted(r.seat_id for r in rows) != sorted(seats):
        raise DomainError(_("The seats changed since the sheet was opened. Reload it."))
    if any(check_score_rows(rows)):
        raise DomainError(_("Some rows are incomplete; nothing was recorded."))
    return seats


def preview_scores(session: ExamSession, rows: list[ScoreRow], *, today=None) -> ScorePreview:
    """What `record_scores` would record and issue for `rows`, writing nothing (a few reads).

    Raises DomainError for the same reasons as `record_scores`.
    """
    seats = _check_sheet(session, rows, today or local_today())
    program = session.program
    results = {row.seat_id: _result(program, row) for row in rows}
    passed = [seats[i] for i, r in results.items() if r == ExamResult.PASSED]
    held = _held_certificates([s.engineer_id for s in passed], program.id)
    renewals = sum(1 for seat in passed
                   if _renewed_certificate(held.get(seat.engineer_id), seat.exam_date))
    counts = {r: list(results.values()).count(r) for r in ExamResult}
    return ScorePreview(counts[ExamResult.PASSED], counts[ExamResult.FAILED],
                        counts[ExamResult.ABSENT], renewals, sheet_digest(session, rows),
                        results)


# The target (scored) is set by the body's conditional UPDATE, which also stops a second
# sheet racing this one; the certificates it issues and renews are part of this one change.
@transition("exam_session.scored", ExamSession, label=_l("Scores recorded"),
            permission=policy.SCORE, source={SessionStatus.OPEN}, wrong_state=ALREADY_SCORED)
def record_scores(session: ExamSession, rows: list[ScoreRow], *, acting_user,
                  today=None) -> ScoreOutcome:
    """Record the whole session's scores at once, issue certificates to those who passed.

    Validates every row before writing anything. Raises DomainError when the exam has not
    taken place yet, the sheet does not match the seats, a row is incomplete, or the scores
    were already recorded (a second submit changes nothing).
    """
    seats = _check_sheet(session, rows, today or local_today())
    claimed = db.session.execute(
        update(ExamSession).where(ExamSession.id == session.id,
                                  ExamSession.status == SessionStatus.OPEN)
        .values(status=SessionStatus.SCORED, scored_at=utcnow())
        .execution_options(synchronize_session=False))
    if claimed.rowcount != 1:
        raise DomainError(str(ALREADY_SCORED))
    outcome = _write_results(session, seats, rows)
    db.session.expire(session)
    audit_note(after={"passed": outcome.passed, "failed": outcome.failed,
                      "absent": outcome.absent, "certificates": outcome.certificates})
    return outcome


def _result(program: Program, row: ScoreRow) -> ExamResult:
    if row.absent:
        return ExamResult.ABSENT
    if row.theory >= program.theory_pass_mark and row.practical >= program.practical_pass_mark:
        return ExamResult.PASSED
    return ExamResult.FAILED


def _write_results(session: ExamSession, seats: dict, rows: list[ScoreRow]) -> ScoreOutcome:
    program = session.program
    nominations = {n.id: n for n in db.session.scalars(
        select(Nomination).where(Nomination.id.in_([s.nomination_id for s in seats.values()])))}
    results = {row.seat_id: _result(program, row) for row in rows}
    passed_engineers = [seats[i].engineer_id for i, r in results.items()
                        if r == ExamResult.PASSED]
    held = _held_certificates(passed_engineers, program.id)
    now, numbers = utcnow(), []
    for row in rows:
        seat, result = seats[row.seat_id], results[row.seat_id]
        seat.theory_score, seat.practical_score = row.theory, row.practical
        seat.result, seat.scored_at = result, now
        nominations[seat.nomination_id].status = NominationStatus(result.value)
        nominations[seat.nomination_id].closed_at = now
        if result == ExamResult.PASSED:
            numbers.append(_issue(seat, program, held.get(seat.engineer_id)).number)
    db.session.flush()
    counts = {r: list(results.values()).count(r) for r in ExamResult}
    return ScoreOutcome(counts[ExamResult.PASSED], counts[ExamResult.FAILED],
                        counts[ExamResult.ABSENT], numbers)


def _held_certificates(engineer_ids, program_id) -> dict[int, list[Certificate]]:
    out: dict[int, list[Certificate]] = {}
    for cert in db.session.scalars(select(Certificate).where(
            Certificate.engineer_id.in_(engineer_ids or [0]),
            Certificate.program_id == program_id)):
        out.setdefault(cert.engineer_id, []).append(cert)
    return out


def _renewed_certificate(held: list[Certificate] | None, day: date) -> Certificate | None:
    """The still-valid certificate (not renewed yet) a pass on `day` renews, if any."""
    held = held or []
    renewed = {c.renewal_of_id for c in held}
    return max((c for c in held if is_valid_on(c, day) and c.id not in renewed),
               key=lambda c: c.valid_to, default=None)


def _issue(seat: ExamSeat, program: Program, held: list[Certificate] | None) -> Certificate:
    """The certificate of a passed attempt; it renews a still-valid one of the same program."""
    current = _renewed_certificate(held, seat.exam_date)
    if current is not None:
        valid_to = validity_end(current.valid_to + timedelta(days=1), program.validity_months)
    else:
        valid_to = validity_end(seat.exam_date, program.validity_months)
    certificate = Certificate(
        agency_id=seat.agency_id, engineer_id=seat.engineer_id, program_id=program.id,
        product_line_id=program.product_line_id, level=program.level,
        number=f"{program.product_line.code}-L{program.level}-{seat.exam_date.year}-"
               f"{seat.id:06d}",
        verification_code=new_verification_code(), valid_from=seat.exam_date,
        valid_to=valid_to, seat_id=seat.id,
        renewal_of_id=current.id if current is not None else None)
    db.session.add(certificate)
    return certificate
