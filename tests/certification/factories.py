"""Small factories of the certification area (run them in a scope that may write the rows)."""
import itertools
from datetime import date, timedelta

from sqlalchemy import select

from certification.models import (
    Certificate,
    Education,
    Engineer,
    EngineerProductLine,
    ExamSeat,
    ExamSession,
    Nomination,
    NominationStatus,
    Program,
    SessionStatus,
)
from portal.clock import local_today
from portal.extensions import db

_seq = itertools.count(1)
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def id_number(n: int | None = None) -> str:
    """A well-formed resident ID number (with its check character), different each call."""
    body = f"31010119900101{(n or next(_seq)) % 1000:03d}"
    total = sum(int(d) * w for d, w in zip(body, _ID_WEIGHTS, strict=True))
    return body + "10X98765432"[total % 11]


def canary(agency) -> str:
    """The canary string the standard world put into the agency's name (or its code)."""
    word = agency.legal_name.split()[-1]
    return word if word.startswith("CANARY") else agency.code


def make_engineer(agency, *, lines=(), name=None, education=Education.COLLEGE,
                  hire_date=None, **kw) -> Engineer:
    n = next(_seq)
    engineer = Engineer(agency_id=agency.id, name=name or f"工程师{n} {canary(agency)}",
                        id_number=kw.pop("id_number", None) or f"ID{n:016d}",
                        phone=f"1390000{n:04d}", education=education,
                        hire_date=hire_date or date(2018, 3, 1), **kw)
    db.session.add(engineer)
    db.session.flush()
    for line in lines:
        db.session.add(EngineerProductLine(agency_id=agency.id, engineer_id=engineer.id,
                                           product_line_id=line.id))
    db.session.flush()
    return engineer


def get_program(line, level: int, **kw) -> Program:
    """The program of `line` × `level`, created on first use."""
    program = db.session.scalars(select(Program).where(Program.product_line_id == line.id,
                                                       Program.level == level)).first()
    if program is None:
        program = Program(product_line_id=line.id, level=level, validity_months=24,
                          theory_pass_mark=60, practical_pass_mark=60, retake_wait_days=30,
                          max_attempts=3, min_experience_years=1,
                          min_education=Education.COLLEGE, is_active=True)
        db.session.add(program)
    for key, value in kw.items():
        setattr(program, key, value)
    db.session.flush()
    return program


def make_certificate(engineer, program, *, valid_from=None, valid_to=None, **kw) -> Certificate:
    n = next(_seq)
    valid_from = valid_from or local_today() - timedelta(days=100)
    cert = Certificate(agency_id=engineer.agency_id, engineer_id=engineer.id,
                       program_id=program.id, product_line_id=program.product_line_id,
                       level=program.level, number=kw.pop("number", f"T-{n:08d}"),
                       verification_code=kw.pop("verification_code", "ABCD2345"),
                       valid_from=valid_from,
                       valid_to=valid_to or valid_from + timedelta(days=700), **kw)
    db.session.add(cert)
    db.session.flush()
    return cert


def make_session(program, *, exam_date=None, capacity=30, place=None, **kw) -> ExamSession:
    session = ExamSession(program_id=program.id, exam_date=exam_date or local_today(),
                          place=place or f"Training centre {next(_seq)}", capacity=capacity,
                          status=kw.pop("status", SessionStatus.OPEN), **kw)
    db.session.add(session)
    db.session.flush()
    return session


def make_nomination(engineer, program, *, status=NominationStatus.PENDING) -> Nomination:
    nomination = Nomination(agency_id=engineer.agency_id, engineer_id=engineer.id,
                            program_id=program.id, status=status, note="")
    db.session.add(nomination)
    db.session.flush()
    return nomination


def make_seat(session, engineer, *, seat_no=None, **kw) -> ExamSeat:
    nomination = make_nomination(engineer, session.program,
                                 status=NominationStatus.ADMITTED)
    taken = set(db.session.scalars(select(ExamSeat.seat_no)
                                   .where(ExamSeat.session_id == session.id)))
    seat = ExamSeat(agency_id=engineer.agency_id, session_id=session.id,
                    session_capacity=kw.pop("session_capacity", session.capacity),
                    seat_no=seat_no or min(set(range(1, session.capacity + 1)) - taken),
                    nomination_id=nomination.id, engineer_id=engineer.id,
                    program_id=session.program_id, exam_date=session.exam_date, **kw)
    db.session.add(seat)
    db.session.flush()
    return seat
