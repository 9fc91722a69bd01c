"""Saving a score sheet takes two steps: the first submit says how many certificates saving
would issue and writes nothing; only a confirmation of exactly that sheet records it, once."""
import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from certification.models import Certificate, ExamSeat, ExamSession, Nomination, Program
from portal.auth.roles import Role
from portal.extensions import db
from tests.certification import factories as f
from tests.certification.conftest import audits, build, count, local_day
from tests.certification.test_views_exams import _scores, _session, _sheet, _waiting
from tests.factories import sign_in


@pytest.fixture
def sheet(app, client, world):
    """A session of today with four admitted nominees, the certifier signed in: (session id,
    seat ids in sheet order)."""
    program, nominations = _waiting(app, world, 4)
    session = _session(app, program)
    sign_in(client, world.user(Role.HQ_CERTIFIER))
    client.post(f"/certification/sessions/{session}/admit",
                data={"nomination_ids": nominations})
    return session, _sheet(client, session)


# Two pass, one fails, one was absent.
def mixed(i):
    return [("80", "75", False), ("61", "90", False), ("40", "90", False), (None, None, True)][i]


def _data(seats, rule=mixed, confirm=None) -> dict:
    data = {k: v for k, v in _scores(seats, rule).items() if v is not None}
    if confirm is not None:
        data["confirm"] = confirm
    return data


def _confirmation(page: str) -> str:
    return re.search(r'name="confirm" value="([0-9a-f]+)"', page).group(1)


def _nothing_written(app, session) -> bool:
    with app.app_context():
        return (count(app, Certificate) == 0
                and count(app, ExamSeat, ExamSeat.result.is_not(None)) == 0
                and count(app, ExamSession, ExamSession.id == session,
                          ExamSession.status == "open") == 1
                and count(app, Nomination, Nomination.status == "admitted") == 4
                and audits("exam_session.scored") == 0)


def test_the_first_submit_states_the_count_and_writes_nothing(app, client, sheet):
    session, seats = sheet
    response = client.post(f"/certification/sessions/{session}/scores", data=_data(seats))
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Saving will issue 2 certificates (2 passed, 1 failed, 1 absent)." in page
    assert "Confirm: record the scores and issue 2 certificates" in page
    assert _confirmation(page)
    # the typed scores stay on the sheet, each row with what it would come to
    assert page.count('value="90"') == 2 and page.count("Not passed") == 1
    assert _nothing_written(app, session)


def test_confirming_issues_exactly_the_announced_certificates_once(app, client, sheet):
    session, seats = sheet
    url = f"/certification/sessions/{session}/scores"
    digest = _confirmation(client.post(url, data=_data(seats)).get_data(as_text=True))
    response = client.post(url, data=_data(seats, confirm=digest))
    assert response.status_code == 302
    page = client.get(response.location).get_data(as_text=True)
    assert "Scores recorded: 2 passed, 1 failed, 1 absent. 2 certificates issued." in page
    assert count(app, Certificate) == 2
    with app.app_context():
        assert audits("exam_session.scored") == 1
    # A replayed confirmation (double click, back button, resent form) issues nothing more.
    for _ in range(2):
        again = client.post(url, data=_data(seats, confirm=digest), follow_redirects=True)
        assert again.status_code == 200
        assert "already recorded" in again.get_data(as_text=True)
    assert count(app, Certificate) == 2
    with app.app_context():
        assert audits("exam_session.scored") == 1


def test_a_sheet_changed_after_the_summary_is_summed_up_again(app, client, sheet):
    session, seats = sheet
    url = f"/certification/sessions/{session}/scores"
    digest = _confirmation(client.post(url, data=_data(seats)).get_data(as_text=True))

    def all_pass(i):
        return ("90", "90", False)
    response = client.post(url, data=_data(seats, all_pass, confirm=digest))
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "The scores changed since the summary" in page
    assert "Saving will issue 4 certificates (4 passed, 0 failed, 0 absent)." in page
    assert _nothing_written(app, session)
    fresh = _confirmation(page)
    assert fresh != digest
    assert client.post(url, data=_data(seats, all_pass, confirm=fresh)).status_code == 302
    assert count(app, Certificate) == 4


def test_one_certificate_is_worded_in_the_singular(app, client, sheet):
    session, seats = sheet

    def one_pass(i):
        return ("90", "90", False) if i == 0 else (None, None, True)
    page = client.post(f"/certification/sessions/{session}/scores",
                       data=_data(seats, one_pass)).get_data(as_text=True)
    assert "Saving will issue 1 certificate (1 passed, 0 failed, 3 absent)." in page
    assert "issue 1 certificate</button>" in page


def test_the_summary_counts_renewals(app, client, world, sheet):
    session, seats = sheet

    def holder():
        seat = db.session.scalars(select(ExamSeat).where(ExamSeat.id == int(seats[0]))).one()
        program = db.session.scalars(select(Program).where(Program.id == seat.program_id)).one()
        from certification.models import Engineer
        engineer = db.session.scalars(select(Engineer).where(
            Engineer.id == seat.engineer_id)).one()
        today = local_day(app)
        f.make_certificate(engineer, program, valid_from=today - timedelta(days=300),
                           valid_to=today + timedelta(days=30))
    build(app, holder)
    page = client.post(f"/certification/sessions/{session}/scores",
                       data=_data(seats)).get_data(as_text=True)
    assert "Saving will issue 2 certificates" in page
    assert "1 of them extends a certificate that is still valid." in page


@pytest.mark.parametrize("bad,message", [
    (("", "70", False), "Enter both scores, or tick absent"),
    (("abc", "70", False), "Not a valid integer"),
    (("101", "70", False), "from 0 to 100"),
    (("80", "70", True), "An absent nominee has no scores"),
])
@pytest.mark.parametrize("with_confirm", [False, True], ids=["check", "forged-confirm"])
def test_bad_input_is_refused_and_nothing_is_written(app, client, sheet, bad, message,
                                                     with_confirm):
    session, seats = sheet
    url = f"/certification/sessions/{session}/scores"
    confirm = None
    if with_confirm:  # a confirmation of the good sheet, sent with a bad row
        confirm = _confirmation(client.post(url, data=_data(seats)).get_data(as_text=True))

    def rule(i):
        return bad if i == 1 else mixed(i)
    response = client.post(url, data=_data(seats, rule, confirm=confirm))
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and message in page
    assert "nothing was recorded" in page and "Saving will issue" not in page
    assert 'name="confirm"' not in page
    assert _nothing_written(app, session)


def test_a_sheet_for_other_seats_is_refused(app, client, sheet):
    session, seats = sheet
    url = f"/certification/sessions/{session}/scores"
    data = _data(seats[:3], lambda i: ("90", "90", False))
    page = client.post(url, data=data).get_data(as_text=True)
    assert "The seats changed" in page and 'name="confirm"' not in page
    data["confirm"] = "0" * 32
    page = client.post(url, data=data).get_data(as_text=True)
    assert "The seats changed" in page
    assert _nothing_written(app, session)


def test_an_auditor_cannot_check_or_confirm(app, client, world, sheet):
    session, seats = sheet
    url = f"/certification/sessions/{session}/scores"
    digest = _confirmation(client.post(url, data=_data(seats)).get_data(as_text=True))
    auditor = app.test_client()
    sign_in(auditor, world.user(Role.AUDITOR))
    assert auditor.post(url, data=_data(seats)).status_code == 403
    assert auditor.post(url, data=_data(seats, confirm=digest)).status_code == 403
    assert _nothing_written(app, session)
