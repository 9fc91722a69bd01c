"""Exam session pages: planning, admission, the score sheet, and the whole flow in both
languages, as the training department and the agency owner live it."""
import io
import re

import pytest
from pypdf import PdfReader
from sqlalchemy import select

from certification import services
from certification.models import Certificate, ExamSeat, ExamSession, Nomination, Program
from portal.auth.roles import Role
from portal.extensions import db
from portal.tenancy import unscoped
from tests.certification import factories as f
from tests.certification.conftest import build, count, local_day, owner
from tests.factories import sign_in


def _waiting(app, world, n, agencies=None):
    """`n` nominations for the world's L1 program; returns (program id, nomination ids)."""
    def make():
        l1 = f.get_program(world.line, 1)
        ids = []
        for i in range(n):
            agency = (agencies or (world.a, world.a2, world.b))[i % len(agencies or (1, 2, 3))]
            engineer = f.make_engineer(agency, lines=[world.line])
            ids.append(services.nominate_engineer(engineer, l1, acting_user=owner()).id)
        return l1.id, ids
    return build(app, make)


def _session(app, program_id, capacity=30, exam_date=None):
    day = exam_date or local_day(app)

    def make():
        program = db.session.scalars(select(Program).where(Program.id == program_id)).one()
        return f.make_session(program, capacity=capacity, exam_date=day).id
    return build(app, make)


def _session_form(program, **changes):
    data = {"program_id": program, "exam_date": "2026-12-01", "place": "上海培训中心",
            "capacity": 30}
    data.update(changes)
    return data


def test_certifier_creates_and_edits_a_session(app, client, world):
    program = build(app, lambda: f.get_program(world.line, 1).id)
    sign_in(client, world.user(Role.HQ_CERTIFIER))
    response = client.post("/certification/sessions/new", data=_session_form(program))
    assert response.status_code == 302
    with app.app_context(), unscoped("test"):
        session = db.session.scalars(select(ExamSession)).one()
    response = client.post(f"/certification/sessions/{session.id}/edit",
                           data=_session_form(program, capacity=40, place="广州"))
    assert response.status_code == 302
    assert count(app, ExamSession, ExamSession.capacity == 40) == 1


@pytest.mark.parametrize("changes,message", [
    ({"capacity": 0}, b"from 1 to 500"),
    ({"capacity": "many"}, b"Not a valid integer"),
    ({"place": ""}, b"This field is required"),
    ({"place": "x" * 300}, b"longer than 200"),
    ({"exam_date": "31/12/2026"}, b"Not a valid date"),
    ({"program_id": 987654}, b"Not a valid choice"),
])
def test_bad_session_input_is_refused(app, client, world, changes, message):
    program = build(app, lambda: f.get_program(world.line, 1).id)
    sign_in(client, world.user(Role.HQ_CERTIFIER))
    response = client.post("/certification/sessions/new",
                           data={**_session_form(program), **changes})
    assert response.status_code == 200 and message in response.data
    assert count(app, ExamSession) == 0


def test_capacity_below_the_seats_taken_is_explained(app, client, world):
    program, nominations = _waiting(app, world, 3)
    session = _session(app, program, capacity=5)
    sign_in(client, world.user(Role.HQ_CERTIFIER))
    client.post(f"/certification/sessions/{session}/admit",
                data={"nomination_ids": nominations})
    response = client.post(f"/certification/sessions/{session}/edit",
                           data=_session_form(program, capacity=2))
    assert b"3 seats are taken" in response.data
    assert count(app, ExamSession, ExamSession.capacity == 5) == 1


def test_admitting_more_than_the_seats_left_admits_nobody(app, client, world):
    program, nominations = _waiting(app, world, 4)
    session = _session(app, program, capacity=3)
    sign_in(client, world.user(Role.HQ_CERTIFIER))
    page = client.get(f"/certification/sessions/{session}").get_data(as_text=True)
    assert len(re.findall(r'name="nomination_ids" value="\d+"[^>]*checked', page)) == 3
    page = client.post(f"/certification/sessions/{session}/admit",
                       data={"nomination_ids": nominations}, follow_redirects=True)
    assert b"Only 3 of 3 seats are left" in page.data
    assert count(app, ExamSeat) == 0
    for junk in ({"nomination_ids": ["x"]}, {}, {"nomination_ids": [987654]}):
        page = client.post(f"/certification/sessions/{session}/admit", data=junk,
                           follow_redirects=True)
        assert page.status_code == 200 and b"alert-danger" in page.data
    assert count(app, ExamSeat) == 0


def _sheet(client, session):
    page = client.get(f"/certification/sessions/{session}/scores").get_data(as_text=True)
    return re.findall(r'name="rows-\d+-seat_id" type="hidden" value="(\d+)"', page)


def _scores(seat_ids, rule):
    data = {}
    for i, seat in enumerate(seat_ids):
        theory, practical, absent = rule(i)
        data.update({f"rows-{i}-seat_id": seat, f"rows-{i}-theory": theory,
                     f"rows-{i}-practical": practical})
        if absent:
            data[f"rows-{i}-absent"] = "y"
    return data


@pytest.mark.parametrize("bad,message", [
    (("", "70", False), b"Enter both scores, or tick absent"),
    (("abc", "70", False), b"Not a valid integer"),
    (("101", "70", False), b"from 0 to 100"),
    (("80", "70", True), b"An absent nominee has no scores"),
])
def test_a_bad_row_keeps_the_whole_sheet_unwritten(app, client, world, bad, message):
    program, nominations = _waiting(app, world, 3)
    session = _session(app, program)
    sign_in(client, world.user(Role.HQ_CERTIFIER))
    client.post(f"/certification/sessions/{session}/admit",
                data={"nomination_ids": nominations})
    seats = _sheet(client, session)
    data = _scores(seats, lambda i: bad if i == 2 else ("90", "90", False))
    response = client.post(f"/certification/sessions/{session}/scores", data=data)
    assert response.status_code == 200 and message in response.data
    assert b"nothing was recorded" in response.data
    assert count(app, Certificate) == 0
    assert count(app, ExamSeat, ExamSeat.result.is_not(None)) == 0
    # the typed scores stay on the sheet
    assert response.data.count(b'value="90"') == 4


def test_a_stale_sheet_is_refused(app, client, world):
    program, nominations = _waiting(app, world, 2)
    session = _session(app, program)
    sign_in(client, world.user(Role.HQ_CERTIFIER))
    client.post(f"/certification/sessions/{session}/admit",
                data={"nomination_ids": nominations})
    response = client.post(f"/certification/sessions/{session}/scores", data={})
    assert b"The seats changed" in response.data and count(app, Certificate) == 0


@pytest.mark.parametrize("language", ["en", "zh_CN"])
def test_thirty_nominees_from_admission_to_certificates(app, client, world, language):
    program, nominations = _waiting(app, world, 30, agencies=(world.a, world.b))
    session = _session(app, program, capacity=30)
    sign_in(client, world.user(Role.HQ_CERTIFIER))
    client.post("/locale", data={"locale": language})
    page = client.get(f"/certification/sessions/{session}").get_data(as_text=True)
    ticked = re.findall(r'name="nomination_ids" value="(\d+)"[^>]*checked', page)
    assert len(ticked) == 30
    page = client.post(f"/certification/sessions/{session}/admit",
                       data={"nomination_ids": ticked}, follow_redirects=True)
    assert ("30 nominees admitted" if language == "en" else "已录取 30 名") in \
        page.get_data(as_text=True)
    seats = _sheet(client, session)
    assert len(seats) == 30
    data = _scores(seats, lambda i: (None, None, True) if i == 0 else
                   (str(50 + i), "75", False))
    data = {k: v for k, v in data.items() if v is not None}
    url = f"/certification/sessions/{session}/scores"
    # The first submit states what saving would issue and writes nothing; the confirmation
    # carries that sheet's fingerprint.
    summary = client.post(url, data=data).get_data(as_text=True)
    assert count(app, Certificate) == 0
    data["confirm"] = re.search(r'name="confirm" value="([0-9a-f]+)"', summary).group(1)
    page = client.post(url, data=data, follow_redirects=True).get_data(as_text=True)
    expected = ("20 passed, 9 failed, 1 absent" if language == "en"
                else "20 人通过，9 人未通过，1 人缺考")
    assert expected in page
    assert count(app, Certificate) == 20
    again = client.post(f"/certification/sessions/{session}/scores", data=data,
                        follow_redirects=True)
    assert count(app, Certificate) == 20 and again.status_code == 200

    # The owner of agency A sees the results and the certificate PDF.
    owner = app.test_client()
    sign_in(owner, world.user(Role.AGENCY_OWNER))
    owner.post("/locale", data={"locale": language})
    listing = owner.get("/certification/certificates/").get_data(as_text=True)
    with app.app_context(), unscoped("test"):
        own = db.session.scalars(select(Certificate).where(
            Certificate.agency_id == world.a.id)).all()
        foreign = db.session.scalars(select(Certificate.number).where(
            Certificate.agency_id == world.b.id)).all()
    assert own and all(c.number in listing for c in own)
    assert not any(number in listing for number in foreign)
    nominations_page = owner.get("/certification/nominations/?status=all").get_data(
        as_text=True)
    assert ("Passed" if language == "en" else "通过") in nominations_page
    pdf = owner.get(f"/certification/certificates/{own[0].id}/pdf")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    text = PdfReader(io.BytesIO(pdf.data)).pages[0].extract_text()
    assert own[0].number in text and own[0].verification_code in text
    assert ("Engineer certificate" if language == "en" else "工程师资格证书") in text


@pytest.mark.parametrize("role", [Role.AGENCY_OWNER, Role.AGENCY_STAFF, Role.ENGINEER])
def test_agency_users_do_not_see_sessions(app, client, world, role):
    sign_in(client, world.user(role))
    assert client.get("/certification/sessions/").status_code == 403


def test_regional_manager_and_auditor_read_but_do_not_write(app, client, world):
    program, nominations = _waiting(app, world, 2)
    session = _session(app, program)
    for role in (Role.REGIONAL_MANAGER, Role.AUDITOR):
        reader = app.test_client()
        sign_in(reader, world.user(role))
        assert reader.get(f"/certification/sessions/{session}").status_code == 200
        assert reader.post(f"/certification/sessions/{session}/admit",
                           data={"nomination_ids": nominations}).status_code == 403
    assert count(app, ExamSeat) == 0 and count(app, Nomination) == 2


def test_session_list_runs_a_constant_number_of_queries(app, client, world, query_counter):
    program, nominations = _waiting(app, world, 3)
    sign_in(client, world.user(Role.HQ_CERTIFIER))

    def sessions(n):
        def make():
            p = db.session.scalars(select(Program).where(Program.id == program)).one()
            for _ in range(n):
                f.make_seat(f.make_session(p), f.make_engineer(world.a, lines=[world.line]))
        build(app, make)

    sessions(1)
    with query_counter as counter:
        assert client.get("/certification/sessions/").status_code == 200
    few = counter.count
    sessions(8)
    with query_counter as counter:
        assert client.get("/certification/sessions/").status_code == 200
    many = counter.count
    assert many == few, (few, many)


def test_session_page_and_score_sheet_run_a_constant_number_of_queries(app, client, world,
                                                                       query_counter):
    program, first = _waiting(app, world, 2)
    session = _session(app, program, capacity=40)
    sign_in(client, world.user(Role.HQ_CERTIFIER))
    client.post(f"/certification/sessions/{session}/admit", data={"nomination_ids": first[:1]})
    counts = []
    for more in (0, 12):
        if more:
            _p, ids = _waiting(app, world, more)
            client.post(f"/certification/sessions/{session}/admit",
                        data={"nomination_ids": ids[:8]})
        for path in (f"/certification/sessions/{session}",
                     f"/certification/sessions/{session}/scores"):
            with query_counter as counter:
                assert client.get(path).status_code == 200
            counts.append(counter.count)
    assert counts[:2] == counts[2:], counts
