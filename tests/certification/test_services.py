"""Engineers, programs, nominations and their prerequisites, revocation: the rules."""
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from certification import services
from certification.models import (
    Education,
    Engineer,
    EngineerStatus,
    ExamResult,
    Nomination,
    NominationStatus,
)
from portal.errors_domain import DomainError
from portal.extensions import db
from portal.tenancy import TenancyViolation, agency_scope, scoped
from tests.certification import factories as f
from tests.certification.conftest import TODAY, audits, certifier, owner


def _data(**changes):
    data = {"name": "张伟", "id_number": f.id_number(), "phone": "13800001111",
            "education": "college", "hire_date": date(2020, 3, 1), "user_id": None}
    data.update(changes)
    return data


# --- engineers ------------------------------------------------------------------------------


def test_owner_registers_an_engineer_of_their_agency(hq):
    world = hq
    with scoped(agency_scope(world.a.id)):
        engineer = services.create_engineer(world.a.id, _data(), [world.line.id], today=TODAY,
                                            acting_user=owner())
    assert engineer.agency_id == world.a.id
    assert [p.id for p in engineer.product_lines] == [world.line.id]
    assert audits("engineer.created") == 1
    assert engineer.masked_id_number.startswith("310") and "*" in engineer.masked_id_number


@pytest.mark.parametrize("changes,field", [
    ({"name": "  "}, "name"),
    ({"id_number": "110105194912310021"}, "id_number"),
    ({"id_number": "12345"}, "id_number"),
    ({"education": "phd"}, "education"),
    ({"hire_date": TODAY + timedelta(days=1)}, "hire_date"),
    ({"hire_date": None}, "hire_date"),
])
def test_bad_engineer_data_is_refused(hq, changes, field):
    with pytest.raises(DomainError) as caught:
        services.create_engineer(hq.a.id, _data(**changes), [hq.line.id], today=TODAY,
                                 acting_user=owner())
    assert caught.value.field == field
    assert audits("engineer.created") == 0


def test_id_numbers_are_unique_within_an_agency(hq):
    number = f.id_number()
    services.create_engineer(hq.a.id, _data(id_number=number), [hq.line.id], today=TODAY,
                             acting_user=owner())
    with pytest.raises(DomainError, match="already registered"):
        services.create_engineer(hq.a.id, _data(id_number=number.lower()), [hq.line.id],
                                 today=TODAY, acting_user=owner())
    services.create_engineer(hq.b.id, _data(id_number=number), [hq.line.id], today=TODAY,
                             acting_user=owner())


def test_product_lines_must_be_authorized_for_the_agency(hq):
    from tests.factories import make_product_line

    other = make_product_line()
    with pytest.raises(DomainError, match="not authorized"):
        services.create_engineer(hq.a.id, _data(), [other.id], today=TODAY, acting_user=owner())
    with pytest.raises(DomainError, match="at least one"):
        services.create_engineer(hq.a.id, _data(), [], today=TODAY, acting_user=owner())


def test_an_owner_cannot_register_for_another_agency(hq):
    with scoped(agency_scope(hq.a.id)), pytest.raises((TenancyViolation, DomainError)):
        services.create_engineer(hq.b.id, _data(), [hq.line.id], today=TODAY, acting_user=owner())


def test_the_account_must_be_an_engineer_of_the_agency(hq):
    from portal.auth.roles import Role

    staff = hq.users[Role.AGENCY_STAFF]
    foreign = hq.b_users[Role.ENGINEER]
    for user in (staff, foreign):
        with pytest.raises(DomainError, match="engineer account"):
            services.create_engineer(hq.a.id, _data(user_id=user.id), [hq.line.id],
                                     today=TODAY, acting_user=owner())
    own = hq.users[Role.ENGINEER]
    services.create_engineer(hq.a.id, _data(user_id=own.id), [hq.line.id], today=TODAY,
                             acting_user=owner())
    with pytest.raises(DomainError, match="another engineer"):
        services.create_engineer(hq.a.id, _data(user_id=own.id), [hq.line.id], today=TODAY,
                                 acting_user=owner())


def test_editing_keeps_the_id_number_unless_a_new_one_is_given(hq, cast):
    old = cast.engineer.id_number
    services.update_engineer(cast.engineer, _data(id_number="", name="李强"), [hq.line.id],
                             today=TODAY, acting_user=owner())
    assert cast.engineer.id_number == old and cast.engineer.name == "李强"
    new = f.id_number()
    services.update_engineer(cast.engineer, _data(id_number=new), [hq.line.id], today=TODAY,
                             acting_user=owner())
    assert cast.engineer.id_number == new
    assert audits("engineer.updated") == 2


def test_leaving_withdraws_waiting_nominations(hq, cast):
    waiting = f.make_nomination(cast.engineer, cast.l1)
    withdrawn = services.engineer_leaves(cast.engineer, TODAY, today=TODAY, acting_user=owner())
    assert withdrawn == [waiting.id] and waiting.status == NominationStatus.WITHDRAWN
    assert cast.engineer.status == EngineerStatus.LEFT and cast.engineer.left_on == TODAY
    with pytest.raises(DomainError, match="already left"):
        services.engineer_leaves(cast.engineer, TODAY, today=TODAY, acting_user=owner())
    assert audits("engineer.left") == 1


@pytest.mark.parametrize("left_on", [TODAY + timedelta(days=1), date(2017, 1, 1)])
def test_leaving_date_lies_between_hire_and_today(hq, cast, left_on):
    with pytest.raises(DomainError, match="between"):
        services.engineer_leaves(cast.engineer, left_on, today=TODAY, acting_user=owner())


# --- programs -------------------------------------------------------------------------------


def _program_data(world, **changes):
    data = {"product_line_id": world.line.id, "level": 1, "validity_months": 24,
            "theory_pass_mark": 60, "practical_pass_mark": 60, "retake_wait_days": 30,
            "max_attempts": 3, "min_experience_years": 1, "min_education": "college",
            "is_active": True}
    data.update(changes)
    return data


def test_one_program_per_product_line_and_level(hq):
    program = services.create_program(_program_data(hq), acting_user=certifier())
    with pytest.raises(DomainError, match="already has a program"):
        services.create_program(_program_data(hq), acting_user=certifier())
    services.update_program(program, _program_data(hq, validity_months=36),
                            acting_user=certifier())
    assert program.validity_months == 36
    with pytest.raises(DomainError):
        services.create_program(_program_data(hq, level=4), acting_user=certifier())
    assert audits("program.created") == 1 and audits("program.updated") == 1


# --- nominations and prerequisites ------------------------------------------------------------


def test_l1_nomination_is_audited_and_unique_while_open(hq, cast):
    nomination = services.nominate_engineer(cast.engineer, cast.l1, today=TODAY,
                                            acting_user=owner())
    assert nomination.status == NominationStatus.PENDING
    assert audits("nomination.created") == 1
    with pytest.raises(DomainError, match="already nominated"):
        services.nominate_engineer(cast.engineer, cast.l1, today=TODAY, acting_user=owner())
    services.withdraw_nomination(nomination, acting_user=owner())
    services.nominate_engineer(cast.engineer, cast.l1, today=TODAY, acting_user=owner())


def test_l1_needs_college_education(hq):
    engineer = f.make_engineer(hq.a, lines=[hq.line], education=Education.SECONDARY)
    l1 = f.get_program(hq.line, 1)
    with pytest.raises(DomainError, match="education of at least") as caught:
        services.nominate_engineer(engineer, l1, today=TODAY, acting_user=owner())
    assert caught.value.field == "program_id"
    assert db.session.scalar(select(Nomination.id)) is None


def test_l1_needs_one_full_year_of_experience(hq):
    l1 = f.get_program(hq.line, 1)
    engineer = f.make_engineer(hq.a, lines=[hq.line], hire_date=TODAY - timedelta(days=365))
    engineer.hire_date = date(TODAY.year - 1, TODAY.month, TODAY.day + 1)
    with pytest.raises(DomainError, match="qualifies from"):
        services.nominate_engineer(engineer, l1, today=TODAY, acting_user=owner())
    engineer.hire_date = date(TODAY.year - 1, TODAY.month, TODAY.day)   # exactly one year
    services.nominate_engineer(engineer, l1, today=TODAY, acting_user=owner())


def test_l2_needs_a_valid_l1_of_the_same_line(hq, cast):
    with pytest.raises(DomainError, match="valid level 1 certificate"):
        services.nominate_engineer(cast.engineer, cast.l2, today=TODAY, acting_user=owner())
    f.make_certificate(cast.engineer, cast.l1, valid_from=TODAY - timedelta(days=800),
                       valid_to=TODAY - timedelta(days=1))                       # expired
    revoked = f.make_certificate(cast.engineer, cast.l1, valid_from=TODAY - timedelta(days=9),
                                 revoked_on=TODAY)                                # revoked
    with pytest.raises(DomainError, match="valid level 1 certificate"):
        services.nominate_engineer(cast.engineer, cast.l2, today=TODAY, acting_user=owner())
    revoked.revoked_on = None
    services.nominate_engineer(cast.engineer, cast.l2, today=TODAY, acting_user=owner())


def test_the_engineer_must_work_on_the_line_and_be_active(hq):
    from tests.factories import make_product_line

    l1_other = f.get_program(make_product_line(), 1)
    engineer = f.make_engineer(hq.a, lines=[hq.line], status=EngineerStatus.LEFT)
    with pytest.raises(DomainError) as caught:
        services.nominate_engineer(engineer, l1_other, today=TODAY, acting_user=owner())
    assert "has left" in caught.value.message and "does not work on" in caught.value.message


def test_renewal_opens_sixty_days_before_expiry(hq, cast):
    f.make_certificate(cast.engineer, cast.l1, valid_from=TODAY - timedelta(days=600),
                       valid_to=TODAY + timedelta(days=61))
    with pytest.raises(DomainError, match="renewal opens on"):
        services.nominate_engineer(cast.engineer, cast.l1, today=TODAY, acting_user=owner())
    services.nominate_engineer(cast.engineer, cast.l1, today=TODAY + timedelta(days=1),
                               acting_user=owner())


def _failed_attempt(cast, exam_date, result=ExamResult.FAILED):
    session = f.make_session(cast.l1, exam_date=exam_date, status="scored")
    f.make_seat(session, cast.engineer, result=result, theory_score=10, practical_score=10)
    for n in db.session.scalars(select(Nomination).where(
            Nomination.engineer_id == cast.engineer.id,
            Nomination.status == NominationStatus.ADMITTED)):
        n.status = NominationStatus(result.value)


def test_retake_after_the_waiting_period(hq, cast):
    _failed_attempt(cast, TODAY - timedelta(days=29))
    with pytest.raises(DomainError, match="retake is possible from"):
        services.nominate_engineer(cast.engineer, cast.l1, today=TODAY, acting_user=owner())
    services.nominate_engineer(cast.engineer, cast.l1, today=TODAY + timedelta(days=1),
                               acting_user=owner())


def test_attempts_are_limited(hq, cast):
    for n, result in enumerate([ExamResult.FAILED, ExamResult.ABSENT, ExamResult.FAILED]):
        _failed_attempt(cast, TODAY - timedelta(days=300 - 100 * n), result)
    with pytest.raises(DomainError, match="all 3 attempts"):
        services.nominate_engineer(cast.engineer, cast.l1, today=TODAY + timedelta(days=60),
                                   acting_user=owner())


def test_only_attempts_since_the_last_pass_count(hq, cast):
    _failed_attempt(cast, TODAY - timedelta(days=800), ExamResult.PASSED)
    for days in (400, 300, 200):
        _failed_attempt(cast, TODAY - timedelta(days=days))
    with pytest.raises(DomainError, match="attempts"):
        services.nominate_engineer(cast.engineer, cast.l1, today=TODAY, acting_user=owner())
    _failed_attempt(cast, TODAY - timedelta(days=150), ExamResult.PASSED)
    _failed_attempt(cast, TODAY - timedelta(days=100))
    services.nominate_engineer(cast.engineer, cast.l1, today=TODAY, acting_user=owner())


# --- revocation -----------------------------------------------------------------------------


def test_revocation_records_day_time_and_reason_once(hq, cast):
    cert = f.make_certificate(cast.engineer, cast.l2, valid_from=TODAY - timedelta(days=100))
    with pytest.raises(DomainError, match="reason"):
        services.revoke_certificate(cert, " x ", today=TODAY, acting_user=certifier())
    with pytest.raises(DomainError, match="between"):
        services.revoke_certificate(cert, "fraud", TODAY + timedelta(days=1), today=TODAY,
                                    acting_user=certifier())
    with pytest.raises(DomainError, match="between"):
        services.revoke_certificate(cert, "fraud", TODAY - timedelta(days=101), today=TODAY,
                                    acting_user=certifier())
    services.revoke_certificate(cert, "考试舞弊", TODAY - timedelta(days=3), today=TODAY,
                                acting_user=certifier())
    assert cert.revoked_on == TODAY - timedelta(days=3) and cert.revoked_at is not None
    assert cert.revoke_reason == "考试舞弊"
    with pytest.raises(DomainError, match="already revoked"):
        services.revoke_certificate(cert, "again", today=TODAY, acting_user=certifier())
    assert audits("certificate.revoked") == 1


def test_engineers_of_other_agencies_are_invisible_to_an_owner(hq, cast):
    with scoped(agency_scope(hq.a.id)):
        names = set(db.session.scalars(select(Engineer.name)))
    assert cast.engineer.name in names and cast.other.name not in names
