"""Exam sessions: admission within capacity, the whole-session score sheet, issuing."""
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.attributes import set_committed_value

from certification import exams, services
from certification.exams import ScoreRow
from certification.models import (
    Certificate,
    Engineer,
    ExamResult,
    ExamSeat,
    Nomination,
    NominationStatus,
    SessionStatus,
)
from certification.states import validity_end
from portal.errors_domain import DomainError
from portal.extensions import db
from tests.certification import factories as f
from tests.certification.conftest import TODAY, audits, certifier, owner


def _nominees(world, program, n, agency=None):
    out = []
    for i in range(n):
        engineer = f.make_engineer(agency or (world.a, world.a2, world.b)[i % 3],
                                   lines=[world.line])
        out.append(services.nominate_engineer(engineer, program, today=TODAY, acting_user=owner()))
    return out


def _session(program, capacity=5, exam_date=TODAY):
    return exams.create_session({"program_id": program.id, "exam_date": exam_date,
                                 "place": "上海培训中心", "capacity": capacity},
                                acting_user=certifier())


def _count(model, *where):
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def test_create_session_checks_its_data(hq, cast):
    for bad, field in [({"capacity": 0}, "capacity"), ({"capacity": 501}, "capacity"),
                       ({"place": " "}, "place"), ({"exam_date": None}, "exam_date"),
                       ({"program_id": 987654}, "program_id")]:
        data = {"program_id": cast.l1.id, "exam_date": TODAY, "place": "x", "capacity": 5,
                **bad}
        with pytest.raises(DomainError) as caught:
            exams.create_session(data, acting_user=certifier())
        assert caught.value.field == field
    session = _session(cast.l1)
    assert session.status == SessionStatus.OPEN and audits("exam_session.created") == 1


def test_admission_fills_seats_in_order_and_audits_once(hq, cast):
    session = _session(cast.l1, capacity=5)
    nominations = _nominees(hq, cast.l1, 3)
    seats = exams.admit_nominations(session, [n.id for n in nominations], acting_user=certifier())
    assert [s.seat_no for s in seats] == [1, 2, 3]
    assert {n.status for n in nominations} == {NominationStatus.ADMITTED}
    assert {s.agency_id for s in seats} == {hq.a.id, hq.a2.id, hq.b.id}
    assert audits("exam_session.admitted") == 1


def test_admission_never_goes_beyond_capacity(hq, cast):
    session = _session(cast.l1, capacity=3)
    nominations = _nominees(hq, cast.l1, 4)
    exams.admit_nominations(session, [nominations[0].id], acting_user=certifier())
    with pytest.raises(DomainError, match="Only 2 of 3 seats"):
        exams.admit_nominations(session, [n.id for n in nominations[1:]], acting_user=certifier())
    assert _count(ExamSeat, ExamSeat.session_id == session.id) == 1   # nothing half-admitted
    exams.admit_nominations(session, [n.id for n in nominations[1:3]], acting_user=certifier())
    with pytest.raises(DomainError, match="Only 0 of 3"):
        exams.admit_nominations(session, [nominations[3].id], acting_user=certifier())


def test_the_database_refuses_a_seat_beyond_capacity(hq, cast):
    session = _session(cast.l1, capacity=2)
    engineer = f.make_engineer(hq.a, lines=[hq.line])
    with pytest.raises(IntegrityError):
        with db.session.begin_nested():
            f.make_seat(session, engineer, seat_no=3)
    with pytest.raises(IntegrityError):   # the session's capacity travels with the seat
        with db.session.begin_nested():
            f.make_seat(session, engineer, seat_no=2, session_capacity=99)
    f.make_seat(session, engineer, seat_no=2)
    other = f.make_engineer(hq.a2, lines=[hq.line])
    with pytest.raises(IntegrityError):   # one nominee per seat
        with db.session.begin_nested():
            f.make_seat(session, other, seat_no=2)


def test_capacity_cannot_drop_below_the_seats_taken(hq, cast):
    session = _session(cast.l1, capacity=4)
    nominations = _nominees(hq, cast.l1, 3)
    seats = exams.admit_nominations(session, [n.id for n in nominations], acting_user=certifier())
    exams.release_seat(seats[0], acting_user=certifier())
    data = {"program_id": cast.l1.id, "exam_date": TODAY, "place": "x", "capacity": 1}
    with pytest.raises(DomainError, match="2 seats are taken"):
        exams.update_session(session, data, acting_user=certifier())
    exams.update_session(session, {**data, "capacity": 2},
                         acting_user=certifier())   # seats 2, 3 become 1, 2
    assert sorted(db.session.scalars(select(ExamSeat.seat_no)
                                     .where(ExamSeat.session_id == session.id))) == [1, 2]
    assert set(db.session.scalars(select(ExamSeat.session_capacity))) == {2}
    assert audits("exam_session.updated") == 1 and audits("exam_seat.released") == 1


def test_admission_rechecks_the_nominations(hq, cast):
    session = _session(cast.l1)
    l2_session = _session(cast.l2)
    nomination = _nominees(hq, cast.l1, 1)[0]
    with pytest.raises(DomainError, match="Reload"):
        exams.admit_nominations(l2_session, [nomination.id],
                                acting_user=certifier())     # another program
    with pytest.raises(DomainError, match="Reload"):
        exams.admit_nominations(session, [nomination.id, 987654], acting_user=certifier())
    services.withdraw_nomination(nomination, acting_user=owner())
    with pytest.raises(DomainError, match="Reload"):
        exams.admit_nominations(session, [nomination.id], acting_user=certifier())
    with pytest.raises(DomainError, match="Choose"):
        exams.admit_nominations(session, [], acting_user=certifier())


def test_admission_checks_prerequisites_on_the_exam_date(hq, cast):
    f.make_certificate(cast.engineer, cast.l1, valid_from=TODAY - timedelta(days=600),
                       valid_to=TODAY + timedelta(days=20))
    nomination = services.nominate_engineer(cast.engineer, cast.l2, today=TODAY,
                                            acting_user=owner())
    late = _session(cast.l2, exam_date=TODAY + timedelta(days=30))   # the L1 has expired
    with pytest.raises(DomainError, match="Nobody was admitted"):
        exams.admit_nominations(late, [nomination.id], acting_user=certifier())
    exams.admit_nominations(_session(cast.l2, exam_date=TODAY + timedelta(days=10)),
                            [nomination.id], acting_user=certifier())


def _admitted(world, program, n, capacity=30):
    session = _session(program, capacity=capacity)
    seats = exams.admit_nominations(session, [x.id for x in _nominees(world, program, n)],
                                    acting_user=certifier())
    return session, seats


def test_scores_issue_certificates_to_those_who_pass(hq, cast):
    session, seats = _admitted(hq, cast.l1, 4)
    rows = [ScoreRow(seats[0].id, 60, 60), ScoreRow(seats[1].id, 59, 100),
            ScoreRow(seats[2].id, 100, 59), ScoreRow(seats[3].id, None, None, absent=True)]
    outcome = exams.record_scores(session, rows, today=TODAY, acting_user=certifier())
    assert (outcome.passed, outcome.failed, outcome.absent) == (1, 2, 1)
    assert [s.result for s in seats] == [ExamResult.PASSED, ExamResult.FAILED,
                                         ExamResult.FAILED, ExamResult.ABSENT]
    statuses = db.session.scalars(select(Nomination.status).order_by(Nomination.id)).all()
    assert statuses == ["passed", "failed", "failed", "absent"]
    cert = db.session.scalars(select(Certificate)).one()
    assert cert.seat_id == seats[0].id and cert.engineer_id == seats[0].engineer_id
    assert cert.valid_from == TODAY and cert.valid_to == validity_end(TODAY, 24)
    assert cert.number == outcome.certificates[0] and cert.number.startswith(hq.line.code)
    assert len(cert.verification_code) == 8 and cert.verification_code.isalnum()
    assert session.status == SessionStatus.SCORED
    assert audits("exam_session.scored") == 1


def test_the_sheet_is_checked_whole_before_anything_is_written(hq, cast):
    session, seats = _admitted(hq, cast.l1, 3)
    good = [ScoreRow(s.id, 80, 80) for s in seats]
    for rows in ([*good[:2], ScoreRow(seats[2].id, 80, None)],
                 [*good[:2], ScoreRow(seats[2].id, 80, 101)],
                 [*good[:2], ScoreRow(seats[2].id, 80, 80, absent=True)],
                 good[:2],
                 [*good[:2], ScoreRow(987654, 80, 80)]):
        with pytest.raises(DomainError):
            exams.record_scores(session, rows, today=TODAY, acting_user=certifier())
        assert _count(Certificate) == 0 and session.status == SessionStatus.OPEN
        assert {s.result for s in seats} == {None}


def test_a_second_submit_changes_nothing(hq, cast):
    session, seats = _admitted(hq, cast.l1, 2)
    rows = [ScoreRow(s.id, 90, 90) for s in seats]
    exams.record_scores(session, rows, today=TODAY, acting_user=certifier())
    with pytest.raises(DomainError, match="already recorded"):
        exams.record_scores(session, rows, today=TODAY, acting_user=certifier())
    set_committed_value(session, "status", SessionStatus.OPEN)   # a racing request's view
    with pytest.raises(DomainError, match="already recorded"):
        exams.record_scores(session, rows, today=TODAY, acting_user=certifier())
    assert _count(Certificate) == 2


def test_one_certificate_per_passed_attempt_in_the_database(hq, cast):
    session, seats = _admitted(hq, cast.l1, 1)
    exams.record_scores(session, [ScoreRow(seats[0].id, 90, 90)], today=TODAY,
                        acting_user=certifier())
    engineer = db.session.scalars(select(Engineer).where(
        Engineer.id == seats[0].engineer_id)).one()
    with pytest.raises(IntegrityError):
        with db.session.begin_nested():
            f.make_certificate(engineer, cast.l1, seat_id=seats[0].id)


def test_scores_wait_for_the_exam_day(hq, cast):
    session = _session(cast.l1, exam_date=TODAY + timedelta(days=1))
    nomination = _nominees(hq, cast.l1, 1)[0]
    seats = exams.admit_nominations(session, [nomination.id], acting_user=certifier())
    with pytest.raises(DomainError, match="takes place on"):
        exams.record_scores(session, [ScoreRow(seats[0].id, 90, 90)], today=TODAY,
                            acting_user=certifier())


def test_an_empty_session_takes_no_scores(hq, cast):
    with pytest.raises(DomainError, match="Nobody is admitted"):
        exams.record_scores(_session(cast.l1), [], today=TODAY, acting_user=certifier())


def test_passing_again_before_expiry_renews(hq, cast):
    old = f.make_certificate(cast.engineer, cast.l1, valid_from=TODAY - timedelta(days=700),
                             valid_to=TODAY + timedelta(days=30))
    nomination = services.nominate_engineer(cast.engineer, cast.l1, today=TODAY,
                                            acting_user=owner())
    session = _session(cast.l1)
    seats = exams.admit_nominations(session, [nomination.id], acting_user=certifier())
    exams.record_scores(session, [ScoreRow(seats[0].id, 75, 75)], today=TODAY,
                        acting_user=certifier())
    new = db.session.scalars(select(Certificate).where(Certificate.seat_id.is_not(None))).one()
    assert new.renewal_of_id == old.id and new.valid_from == TODAY
    assert new.valid_to == validity_end(old.valid_to + timedelta(days=1), 24)
    db.session.expire(old)
    assert old.renewed_by.id == new.id


def test_failing_allows_a_retake_after_the_wait(hq, cast):
    session, seats = _admitted(hq, cast.l1, 1)
    exams.record_scores(session, [ScoreRow(seats[0].id, 10, 10)], today=TODAY,
                        acting_user=certifier())
    engineer = seats[0].engineer
    with pytest.raises(DomainError, match="retake"):
        services.nominate_engineer(engineer, cast.l1, today=TODAY + timedelta(days=29),
                                   acting_user=owner())
    services.nominate_engineer(engineer, cast.l1, today=TODAY + timedelta(days=30),
                               acting_user=owner())


def test_released_seats_wait_again_and_scored_seats_stay(hq, cast):
    session, seats = _admitted(hq, cast.l1, 2)
    exams.release_seat(seats[0], acting_user=certifier())
    assert db.session.scalars(select(Nomination.status).order_by(Nomination.id)).all() == [
        "pending", "admitted"]
    exams.record_scores(session, [ScoreRow(seats[1].id, 90, 90)], today=TODAY,
                        acting_user=certifier())
    with pytest.raises(DomainError, match="seat stays"):
        exams.release_seat(seats[1], acting_user=certifier())
    with pytest.raises(DomainError, match="no more nominees"):
        exams.admit_nominations(session, [db.session.scalars(
            select(Nomination.id).where(Nomination.status == "pending")).one()],
            acting_user=certifier())


def test_thirty_nominees_from_admission_to_certificates(hq, cast):
    session, seats = _admitted(hq, cast.l1, 30, capacity=30)
    rows = [ScoreRow(s.id, 55 + i, 70) for i, s in enumerate(seats)]
    outcome = exams.record_scores(session, rows, today=TODAY, acting_user=certifier())
    assert outcome.passed == 25 and outcome.failed == 5
    numbers = db.session.scalars(select(Certificate.number)).all()
    codes = db.session.scalars(select(Certificate.verification_code)).all()
    assert len(set(numbers)) == 25 and len(set(codes)) == 25
