"""Isolation-test parameters of the certification area (see tests/isolation_params.py)."""
from sqlalchemy import select

from certification.models import ExamSession
from portal.extensions import db
from tests.certification import factories as f

# Imported by tests/isolation_params.py once it has defined these two (never import this module
# first: the isolation parameters import it back).
from tests.isolation_params import Owned, Reference  # noqa: E402,I001


def _engineer(world, agency):
    return f.make_engineer(agency, lines=[world.line]).id


def _certificate(world, agency):
    engineer = f.make_engineer(agency, lines=[world.line])
    return f.make_certificate(engineer, f.get_program(world.line, 1)).id


def _nomination(world, agency):
    engineer = f.make_engineer(agency, lines=[world.line])
    return f.make_nomination(engineer, f.get_program(world.line, 1)).id


def _session(world):
    """One open session of the world's L1 program (made once, shared by every route)."""
    program = f.get_program(world.line, 1)
    found = db.session.scalar(select(ExamSession.id).where(ExamSession.program_id == program.id)
                              .order_by(ExamSession.id))
    return found or f.make_session(program, capacity=50).id


def _seat(world, agency):
    session = db.session.scalars(select(ExamSession)
                                 .where(ExamSession.id == _session(world))).one()
    return f.make_seat(session, f.make_engineer(agency, lines=[world.line])).id


def _program(world):
    return f.get_program(world.line, 1).id


PARAMS: dict = {
    "engineer_id": Owned(_engineer),
    "certificate_id": Owned(_certificate),
    "nomination_id": Owned(_nomination),
    "seat_id": Owned(_seat),
    "exam_session_id": Reference(_session),
    "program_id": Reference(_program),
}
