"""Certificates: lists, revocation, the PDF, the public check, coverage and reminders."""
import io
import re
from datetime import timedelta

import pytest
from pypdf import PdfReader
from sqlalchemy import select

from certification.models import Certificate
from portal.audit.models import AuditEntry
from portal.auth.roles import Role
from portal.extensions import db
from portal.tenancy import unscoped
from tests.certification import factories as f
from tests.certification.conftest import build, count, local_day
from tests.factories import sign_in


def _certificate(app, world, agency=None, name="王小明", **kw):
    today = local_day(app)

    def make():
        engineer = f.make_engineer(agency or world.a, lines=[world.line], name=name,
                                   id_number=f.id_number())
        kw.setdefault("valid_from", today - timedelta(days=100))
        kw.setdefault("valid_to", today + timedelta(days=600))
        cert = f.make_certificate(engineer, f.get_program(world.line, 2),
                                  verification_code="K7PQ2M9X", **kw)
        return cert.id, cert.number, engineer.id_number
    return build(app, make)


# --- lists and detail ---------------------------------------------------------------------


def test_an_engineer_account_sees_only_its_own_certificates(app, client, world):
    mine, my_number, _ = _certificate(app, world, name="本人工程师")
    theirs, their_number, _ = _certificate(app, world, name="同事工程师")

    def link():
        from certification.models import Engineer

        cert = db.session.scalars(select(Certificate).where(Certificate.id == mine)).one()
        engineer = db.session.scalars(select(Engineer).where(
            Engineer.id == cert.engineer_id)).one()
        engineer.user_id = world.user(Role.ENGINEER).id
    build(app, link)
    sign_in(client, world.user(Role.ENGINEER))
    listing = client.get("/certification/certificates/").get_data(as_text=True)
    assert my_number in listing and their_number not in listing
    assert client.get(f"/certification/certificates/{mine}").status_code == 200
    assert client.get(f"/certification/certificates/{theirs}").status_code == 404
    assert client.get(f"/certification/certificates/{mine}/pdf").status_code == 200
    assert client.get(f"/certification/certificates/{theirs}/pdf").status_code == 404
    home = client.get("/").get_data(as_text=True)   # the home card
    assert my_number in home and their_number not in home


@pytest.mark.parametrize("state,shown", [("expiring", False), ("valid", True),
                                         ("revoked", False), ("junk", True)])
def test_the_state_filter(app, client, world, state, shown):
    _cert, number, _ = _certificate(app, world)
    sign_in(client, world.user(Role.HQ_CERTIFIER))
    page = client.get(f"/certification/certificates/?state={state}").get_data(as_text=True)
    assert (number in page) is shown


def test_certifier_revokes_with_a_reason(app, client, world):
    cert, number, _ = _certificate(app, world)
    sign_in(client, world.user(Role.HQ_CERTIFIER))
    url = f"/certification/certificates/{cert}/revoke"
    today = local_day(app)
    for bad, message in [({"reason": ""}, b"This field is required"),
                         ({"reason": "ab"}, b"between 3 and 2000"),
                         ({"reason": "fraud", "revoked_on": "soon"}, b"Not a valid date"),
                         ({"reason": "fraud", "revoked_on": (today + timedelta(days=1))
                           .isoformat()}, b"between the start")]:
        page = client.post(url, data=bad, follow_redirects=True)
        assert message in page.data, bad
        assert count(app, Certificate, Certificate.revoked_at.is_not(None)) == 0
    page = client.post(url, data={"reason": "考试舞弊"}, follow_redirects=True)
    assert "考试舞弊".encode() in page.data and b"Revoked" in page.data
    with app.app_context(), unscoped("test"):
        revoked = db.session.scalars(select(Certificate).where(Certificate.id == cert)).one()
        assert revoked.revoked_on == today and revoked.revoked_at is not None
        assert db.session.scalar(select(AuditEntry.id).where(
            AuditEntry.action == "certificate.revoked")) is not None
    page = client.post(url, data={"reason": "again"}, follow_redirects=True)
    assert b"already revoked" in page.data


@pytest.mark.parametrize("role", [Role.AGENCY_OWNER, Role.AUDITOR, Role.REGIONAL_MANAGER])
def test_others_cannot_revoke(app, client, world, role):
    cert, _number, _ = _certificate(app, world)
    sign_in(client, world.user(role))
    assert client.post(f"/certification/certificates/{cert}/revoke",
                       data={"reason": "fraud"}).status_code == 403
    assert count(app, Certificate, Certificate.revoked_at.is_not(None)) == 0


# --- the PDF --------------------------------------------------------------------------------


@pytest.mark.parametrize("lang,words", [
    ("zh_CN", ["工程师资格证书", "培训认证部", "兹证明", "王小明", "中级", "验证码"]),
    ("en", ["Engineer certificate", "Training and Certification", "王小明", "Intermediate",
            "Verification code"]),
])
def test_the_certificate_pdf_reads_back_in_its_language(app, client, world, lang, words):
    cert, number, id_number = _certificate(app, world)
    sign_in(client, world.user(Role.AGENCY_OWNER))
    response = client.get(f"/certification/certificates/{cert}/pdf?lang={lang}")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert "attachment" in response.headers["Content-Disposition"]
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(response.data)).pages)
    flat = re.sub(r"\s+", "", text)
    for word in [*words, number, "K7PQ2M9X", "A-OWN"]:
        assert re.sub(r"\s+", "", word) in flat, (word, text)
    assert id_number not in flat                      # only the masked number
    assert id_number[:3] + "*" * 11 + id_number[-4:] in flat


def test_the_pdf_follows_the_readers_language_and_marks_revocation(app, client, world):
    today = local_day(app)
    cert, _number, _ = _certificate(app, world, revoked_on=today - timedelta(days=1),
                                    revoked_at=None)
    sign_in(client, world.user(Role.HQ_CERTIFIER))
    client.post("/locale", data={"locale": "zh_CN"})
    text = PdfReader(io.BytesIO(client.get(f"/certification/certificates/{cert}/pdf")
                                .data)).pages[0].extract_text()
    assert "工程师资格证书" in text and "吊销" in text


def test_user_text_in_the_pdf_is_escaped_and_fetches_nothing(app, client, world):
    cert, _number, _ = _certificate(app, world, name='<img src="file:///etc/passwd">李')
    sign_in(client, world.user(Role.HQ_CERTIFIER))
    response = client.get(f"/certification/certificates/{cert}/pdf?lang=en")
    text = PdfReader(io.BytesIO(response.data)).pages[0].extract_text()
    assert "<img" in text


# --- the public check -------------------------------------------------------------------------


def _check(client, number, code):
    return client.post("/certification/verify", data={"number": number, "code": code})


def test_the_public_check_shows_the_masked_name_program_agency_and_status(app, client, world):
    cert, number, id_number = _certificate(app, world, name="王小明")
    response = _check(client, number, "k7pq-2m9x")      # case and separators do not matter
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "王*明" in page and "Valid" in page and "Agency" in page and "CANARY-A" in page
    for secret in ("王小明", id_number, "1390000", "K7PQ2M9X", "A-OWN"):
        assert secret not in page, secret


@pytest.mark.parametrize("kind,label", [("revoked", "Revoked"), ("expired", "Expired"),
                                        ("expiring", "Expiring")])
def test_the_public_check_tells_the_state(app, client, world, kind, label):
    today = local_day(app)
    dates = {"revoked": {"revoked_on": today - timedelta(days=3), "revoke_reason": "SECRET"},
             "expired": {"valid_from": today - timedelta(days=800),
                         "valid_to": today - timedelta(days=1)},
             "expiring": {"valid_to": today + timedelta(days=30)}}[kind]
    _cert, number, _ = _certificate(app, world, **dates)
    page = _check(client, number, "K7PQ2M9X").get_data(as_text=True)
    assert label in page and "SECRET" not in page


def test_a_wrong_code_reveals_nothing(app, client, world):
    _cert, number, _ = _certificate(app, world)
    wrong = _check(client, number, "K7PQ2M9Y").get_data(as_text=True)
    unknown = _check(client, "NO-SUCH-NUMBER", "K7PQ2M9X").get_data(as_text=True)
    for page in (wrong, unknown):
        assert "No certificate matches" in page and "王*明" not in page
    empty = _check(client, "", "")
    assert empty.status_code == 200 and b"This field is required" in empty.data


def test_failed_checks_are_throttled_but_successes_are_not_counted(app, client, world):
    _cert, number, _ = _certificate(app, world)
    for _ in range(10):
        assert _check(client, number, "K7PQ2M9X").status_code == 200   # never counted
    for _ in range(5):
        assert _check(client, number, "WRONG123").status_code == 200
    assert _check(client, number, "WRONG123").status_code == 429
    assert _check(client, number, "K7PQ2M9X").status_code == 429        # this number rests


def test_a_strangers_wrong_codes_do_not_block_the_holders_check(app, client, world):
    """The limit per number counts one address's failures: anyone may otherwise block the
    check of any certificate with five wrong codes."""
    _cert, number, _ = _certificate(app, world)
    stranger = {"REMOTE_ADDR": "203.0.113.9"}
    for _ in range(5):
        client.post("/certification/verify", data={"number": number, "code": "WRONG123"},
                    environ_base=stranger)
    assert client.post("/certification/verify", data={"number": number, "code": "K7PQ2M9X"},
                       environ_base=stranger).status_code == 429
    holder = client.post("/certification/verify", data={"number": number, "code": "K7PQ2M9X"},
                         environ_base={"REMOTE_ADDR": "198.51.100.4"})
    assert holder.status_code == 200 and "王*明" in holder.get_data(as_text=True)


def test_the_public_check_needs_no_sign_in_and_writes_nothing(app, client, world):
    _cert, number, _ = _certificate(app, world)
    before = count(app, AuditEntry)
    assert client.get("/certification/verify").status_code == 200
    _check(client, number, "K7PQ2M9X")
    assert count(app, AuditEntry) == before


# --- coverage, widgets and reminders ------------------------------------------------------------


def test_coverage_pages_show_gaps_and_expiring_certificates(app, client, world):
    today = local_day(app)
    _cert, number, _ = _certificate(app, world, valid_to=today + timedelta(days=20))
    sign_in(client, world.user(Role.HQ_CERTIFIER))
    page = client.get("/certification/coverage").get_data(as_text=True)
    assert "A-SIB" in page and "B-FOR" in page and "A-OWN" not in page  # A is covered
    assert "A-OWN" in client.get("/certification/coverage?all=1").get_data(as_text=True)
    page = client.get(f"/certification/agencies/{world.a.id}/coverage").get_data(as_text=True)
    assert number in page and "Covered" in page
    owner = app.test_client()
    sign_in(owner, world.user(Role.AGENCY_OWNER))
    assert owner.get("/certification/coverage").status_code == 302
    assert owner.get(f"/certification/agencies/{world.b.id}/coverage").status_code == 404
    home = owner.get("/").get_data(as_text=True)
    assert "Certified engineer coverage" in home and number not in home.split("Expiring")[0]


def test_hq_home_card_counts(app, client, world):
    _certificate(app, world)
    sign_in(client, world.user(Role.HQ_CERTIFIER))
    home = client.get("/").get_data(as_text=True)
    assert "Training and certification" in home and "1/3" in home


@pytest.mark.parametrize("path", ["/certification/certificates/", "/certification/coverage",
                                  "/certification/coverage?all=1", "/"])
def test_pages_run_a_constant_number_of_queries(app, client, world, query_counter, path):
    def more(n):
        def make():
            from tests.factories import make_agency

            for _ in range(n):
                agency = make_agency(world.region1, product_lines=[world.line])
                engineer = f.make_engineer(agency, lines=[world.line])
                old = f.make_certificate(engineer, f.get_program(world.line, 2))
                f.make_certificate(engineer, f.get_program(world.line, 2),
                                   renewal_of_id=old.id)
        build(app, make)

    more(1)
    sign_in(client, world.user(Role.HQ_CERTIFIER))
    with query_counter as counter:
        assert client.get(path).status_code == 200
    few = counter.count
    more(8)
    with query_counter as counter:
        assert client.get(path).status_code == 200
    many = counter.count
    assert many == few, (few, many)


def test_the_reminders_command(app, world):
    today = local_day(app)
    _certificate(app, world, valid_to=today + timedelta(days=10))
    result = app.test_cli_runner().invoke(args=["certification", "reminders", "--csv"])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert lines[0] == "kind,agency,subject,detail,due"
    assert any(line.startswith("expiring,A-OWN,王小明") for line in lines)
    assert any(line.startswith("coverage_gap,B-FOR") for line in lines)
    bad = app.test_cli_runner().invoke(args=["certification", "reminders", "--on", "x"])
    assert bad.exit_code != 0
