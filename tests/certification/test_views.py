"""Engineer, nomination and program pages: permissions, forms, bad input, query counts."""
from datetime import timedelta

import pytest
from sqlalchemy import select

from certification.models import Engineer, EngineerStatus, Nomination, Program
from portal.auth.roles import Role
from portal.extensions import db
from portal.tenancy import unscoped
from tests.certification import factories as f
from tests.certification.conftest import build, count, local_day
from tests.factories import sign_in


def _engineer_form(world, **changes):
    data = {"name": "张伟", "id_number": f.id_number(), "phone": "13800001111",
            "education": "college", "hire_date": "2020-03-01",
            "product_line_ids": [world.line.id], "user_id": 0}
    data.update(changes)
    return data


def test_owner_registers_and_edits_an_engineer(app, client, world):
    sign_in(client, world.user(Role.AGENCY_OWNER))
    response = client.post("/certification/engineers/new", data=_engineer_form(world))
    assert response.status_code == 302
    assert count(app, Engineer, Engineer.name == "张伟", Engineer.agency_id == world.a.id) == 1
    engineer_id = int(response.headers["Location"].rstrip("/").split("/")[-1])
    page = client.get(f"/certification/engineers/{engineer_id}").get_data(as_text=True)
    assert "张伟" in page and "*" * 11 in page   # the ID number shown masked
    edit = _engineer_form(world, name="张伟伟", id_number="")
    assert client.post(f"/certification/engineers/{engineer_id}/edit",
                       data=edit).status_code == 302
    assert count(app, Engineer, Engineer.name == "张伟伟") == 1


def test_the_full_id_number_is_never_shown(app, client, world):
    number = f.id_number()
    build(app, lambda: f.make_engineer(world.a, lines=[world.line], id_number=number))
    for role in (Role.AGENCY_OWNER, Role.HQ_CERTIFIER):
        reader = app.test_client()
        sign_in(reader, world.user(role))
        assert number not in reader.get("/certification/engineers/").get_data(as_text=True)


@pytest.mark.parametrize("changes,message", [
    ({"name": ""}, b"This field is required"),
    ({"id_number": ""}, b"Enter the ID number"),
    ({"id_number": "110105194912310021"}, b"not a valid ID number"),
    ({"phone": "<script>"}, b"valid phone"),
    ({"education": "phd"}, b"Not a valid choice"),
    ({"hire_date": "yesterday"}, b"Not a valid date"),
    ({"hire_date": "2999-01-01"}, b"must be a past date"),
    ({"product_line_ids": []}, b"at least one product line"),
    ({"product_line_ids": [987654]}, b"not a valid choice"),
    ({"user_id": 987654}, b"Not a valid choice"),
    ({"name": "x" * 100}, b"longer than 64"),
])
def test_bad_engineer_input_is_refused_and_writes_nothing(app, client, world, changes,
                                                          message):
    sign_in(client, world.user(Role.AGENCY_OWNER))
    before = count(app, Engineer)
    response = client.post("/certification/engineers/new", data=_engineer_form(world, **changes))
    assert response.status_code == 200
    assert message in response.data, response.data[:3000]
    assert count(app, Engineer) == before


def test_staff_reads_and_engineers_do_not_manage(app, client, world):
    engineer = build(app, lambda: f.make_engineer(world.a, lines=[world.line]).id)
    sign_in(client, world.user(Role.AGENCY_STAFF))
    assert client.get("/certification/engineers/").status_code == 200
    assert client.get(f"/certification/engineers/{engineer}").status_code == 200
    assert client.get("/certification/engineers/new").status_code == 403
    assert client.post(f"/certification/engineers/{engineer}/leave",
                       data={"left_on": "2026-01-01"}).status_code == 403
    other = app.test_client()
    sign_in(other, world.user(Role.ENGINEER))
    assert other.get("/certification/engineers/").status_code == 403


def test_owner_records_leaving_and_bad_dates_are_refused(app, client, world):
    engineer = build(app, lambda: f.make_engineer(world.a, lines=[world.line]).id)
    sign_in(client, world.user(Role.AGENCY_OWNER))
    today = local_day(app)
    url = f"/certification/engineers/{engineer}/leave"
    for bad in ("", "not-a-date", (today + timedelta(days=3)).isoformat()):
        page = client.post(url, data={"left_on": bad}, follow_redirects=True)
        assert page.status_code == 200 and b"alert-danger" in page.data
        assert count(app, Engineer, Engineer.status == EngineerStatus.LEFT) == 0
    assert client.post(url, data={"left_on": today.isoformat()}).status_code == 302
    assert count(app, Engineer, Engineer.status == EngineerStatus.LEFT) == 1


def test_nomination_explains_unmet_prerequisites(app, client, world):
    def make():
        f.get_program(world.line, 1)
        l2 = f.get_program(world.line, 2)
        return f.make_engineer(world.a, lines=[world.line]).id, l2.id

    engineer, l2 = build(app, make)
    sign_in(client, world.user(Role.AGENCY_OWNER))
    page = client.get(f"/certification/engineers/{engineer}/nominate").get_data(as_text=True)
    assert "needs a valid level 1 certificate" in page
    response = client.post(f"/certification/engineers/{engineer}/nominate",
                           data={"program_id": l2})
    assert response.status_code == 200
    assert b"needs a valid level 1 certificate" in response.data
    assert count(app, Nomination) == 0
    response = client.post(f"/certification/engineers/{engineer}/nominate",
                           data={"program_id": 987654})
    assert response.status_code == 200 and b"Not a valid choice" in response.data


def test_owner_nominates_and_withdraws(app, client, world):
    engineer, l1 = build(app, lambda: (f.make_engineer(world.a, lines=[world.line]).id,
                                       f.get_program(world.line, 1).id))
    sign_in(client, world.user(Role.AGENCY_OWNER))
    response = client.post(f"/certification/engineers/{engineer}/nominate",
                           data={"program_id": l1, "note": "年度计划"})
    assert response.status_code == 302
    assert count(app, Nomination, Nomination.status == "pending") == 1
    again = client.post(f"/certification/engineers/{engineer}/nominate",
                        data={"program_id": l1})   # a double submit
    assert b"already nominated" in again.data and count(app, Nomination) == 1
    with app.app_context(), unscoped("test"):
        nomination = db.session.scalar(select(Nomination.id))
    assert client.post(f"/certification/nominations/{nomination}/withdraw").status_code == 302
    assert count(app, Nomination, Nomination.status == "withdrawn") == 1
    page = client.post(f"/certification/nominations/{nomination}/withdraw",
                       follow_redirects=True)
    assert b"Only a nomination waiting" in page.data


def _program_form(world, **changes):
    data = {"product_line_id": world.line.id, "level": 2, "validity_months": 24,
            "theory_pass_mark": 70, "practical_pass_mark": 70, "retake_wait_days": 60,
            "max_attempts": 3, "min_education": "college", "min_experience_years": 2,
            "is_active": "y"}
    data.update(changes)
    return data


def test_certifier_maintains_programs(app, client, world):
    sign_in(client, world.user(Role.HQ_CERTIFIER))
    assert client.post("/certification/programs/new", data=_program_form(world)).status_code \
        == 302
    with app.app_context(), unscoped("test"):
        program = db.session.scalars(select(Program)).one()
    assert program.level == 2 and program.retake_wait_days == 60
    response = client.post(f"/certification/programs/{program.id}/edit",
                           data=_program_form(world, validity_months=36))
    assert response.status_code == 302
    assert b"Programs" in client.get("/certification/programs/").data


@pytest.mark.parametrize("changes,message", [
    ({"validity_months": 0}, b"from 1 to 120"),
    ({"validity_months": "x"}, b"Not a valid integer"),
    ({"theory_pass_mark": 101}, b"from 0 to 100"),
    ({"practical_pass_mark": -1}, b"from 0 to 100"),
    ({"retake_wait_days": 400}, b"from 0 to 365"),
    ({"max_attempts": 0}, b"from 1 to 10"),
    ({"level": 4}, b"Not a valid choice"),
    ({"product_line_id": 987654}, b"Not a valid choice"),
    ({"min_education": "none"}, b"Not a valid choice"),
])
def test_bad_program_input_is_refused(app, client, world, changes, message):
    sign_in(client, world.user(Role.HQ_ADMIN))
    response = client.post("/certification/programs/new", data=_program_form(world, **changes))
    assert response.status_code == 200 and message in response.data
    assert count(app, Program) == 0


def test_a_duplicate_program_is_explained(app, client, world):
    build(app, lambda: f.get_program(world.line, 2))
    sign_in(client, world.user(Role.HQ_CERTIFIER))
    response = client.post("/certification/programs/new", data=_program_form(world))
    assert b"already has a program at this level" in response.data
    assert count(app, Program) == 1


@pytest.mark.parametrize("role", [Role.AGENCY_OWNER, Role.AUDITOR, Role.REGIONAL_MANAGER,
                                  Role.HQ_SETTLEMENT])
def test_only_certifiers_change_programs(app, client, world, role):
    sign_in(client, world.user(role))
    assert client.post("/certification/programs/new",
                       data=_program_form(world)).status_code == 403
    assert client.get("/certification/programs/").status_code == 200


@pytest.mark.parametrize("path", ["/certification/engineers/", "/certification/nominations/",
                                  "/certification/nominations/?status=all"])
def test_lists_run_a_constant_number_of_queries(app, client, world, query_counter, path):
    def make(n):
        def run():
            l1 = f.get_program(world.line, 1)
            for agency in (world.a, world.a2, world.b):
                for _ in range(n):
                    engineer = f.make_engineer(agency, lines=[world.line])
                    f.make_certificate(engineer, l1)
                    f.make_nomination(engineer, l1)
        return run

    build(app, make(1))
    sign_in(client, world.user(Role.HQ_CERTIFIER))
    with query_counter as counter:
        assert client.get(path).status_code == 200
    few = counter.count
    build(app, make(6))
    with query_counter as counter:
        assert client.get(path).status_code == 200
    many = counter.count
    assert many == few, (few, many)
