"""The certificate as an official document: a landscape page in both languages with the
issuer, the certifier, local dates, the seal and a QR code that opens the public check filled
in; the check's page takes the QR code's number and code.

The PDFs are read back (pypdf), drawn to PNG (pdftoppm) and the QR code decoded (zxing-cpp);
the PNGs stay in test-artifacts/documents/ for a person to look at.
"""
import io
import os
import re
import shutil
import subprocess
import tempfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest
import time_machine
import zxingcpp
from PIL import Image
from pypdf import PdfReader
from sqlalchemy import select

from certification import exams
from certification.exams import ScoreRow
from certification.models import Certificate
from portal.auth.roles import Role
from portal.extensions import db
from tenants import issuer
from tenants.demo import demo_logo_svg, demo_seal_svg
from tests.certification import factories as f
from tests.certification.conftest import build, local_day
from tests.factories import make_agency, make_user, sign_in

pytestmark = pytest.mark.usefixtures("own_upload_root")

SHANGHAI = ZoneInfo("Asia/Shanghai")
ARTIFACTS = Path(os.environ.get("PORTAL_TEST_ARTIFACTS",
                                Path(__file__).resolve().parents[2] / "test-artifacts"))
ISSUER = {"name_zh": "华东家电股份有限公司", "name_en": "East China Appliances Co., Ltd.",
          "address_zh": "上海市浦东新区张江路 88 号", "address_en": "88 Zhangjiang Road, Shanghai"}
HOLDER, CERTIFIER, SESSION_CREATOR = "王晓明", "赵敏华", "钱立新"
CHECK_SENTENCE = {"zh_CN": "查验本证书", "en": "Check this certificate at"}


@pytest.fixture
def artifacts() -> Path:
    folder = ARTIFACTS / "documents"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _issued(app, world, *, exam_day: date, with_issuer=True, certifier_name=CERTIFIER,
            acting=True, own_agency=False) -> dict:
    """A certificate issued the real way: a seat in an exam session on `exam_day` (set up by
    one HQ account) whose scores a certifier records now (the clock the caller set)."""
    def make():
        if with_issuer:
            row = issuer.current()
            issuer.save_issuer(row, ISSUER, {"logo": demo_logo_svg(),
                                             "seal": demo_seal_svg(ISSUER["name_zh"],
                                                                   "认证专用章")},
                               acting_user=None, seen_version=row.version)
        if own_agency:
            agency = world.a
        else:
            agency = make_agency(world.region1, "SH-C07", product_lines=[world.line])
            agency.legal_name = "上海申城家电服务有限公司"
        certifier = make_user(Role.HQ_CERTIFIER, name=certifier_name)
        engineer = f.make_engineer(agency, lines=[world.line], name=HOLDER,
                                   id_number=f.id_number())
        program = f.get_program(world.line, 2)
        creator = make_user(Role.HQ_ADMIN, name=SESSION_CREATOR)
        session = f.make_session(program, exam_date=exam_day, capacity=10,
                                 created_by_id=creator.id)
        seat = f.make_seat(session, engineer)
        exams.record_scores(session, [ScoreRow(seat.id, 88, 92)],
                            acting_user=certifier if acting else None)
        cert = db.session.scalars(select(Certificate).where(
            Certificate.seat_id == seat.id)).one()
        return {"id": cert.id, "number": cert.number, "code": cert.verification_code,
                "id_number": engineer.id_number, "valid_from": cert.valid_from,
                "valid_to": cert.valid_to, "issued_at": cert.issued_at}
    return build(app, make)


def _pdf(client, cert_id: int, lang: str) -> bytes:
    response = client.get(f"/certification/certificates/{cert_id}/pdf?lang={lang}")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    return response.data


def _text(pdf: bytes) -> tuple[PdfReader, str]:
    reader = PdfReader(io.BytesIO(pdf))
    return reader, re.sub(r"\s+", "", "".join(page.extract_text() for page in reader.pages))


def _png(pdf: bytes, path: Path) -> Path:
    """Page 1 at 150 dpi, as a person would look at it, written to `path`."""
    with tempfile.TemporaryDirectory() as work:
        source = Path(work) / "document.pdf"
        source.write_bytes(pdf)
        subprocess.run([shutil.which("pdftoppm") or "pdftoppm", "-r", "150", "-png",  # noqa: S603
                        "-f", "1", "-l", "1", "-singlefile", str(source),
                        str(Path(work) / "page")], check=True, timeout=60)
        shutil.copyfile(Path(work) / "page.png", path)
    return path


def _date(day: date, lang: str) -> str:
    if lang == "zh_CN":
        return f"{day.year}年{day.month}月{day.day}日"
    return f"{day:%B} {day.day}, {day.year}"


@pytest.mark.parametrize("lang,words", [
    ("zh_CN", ["工程师资格证书", "有效期", "兹证明", "认证人", "发证日期", "身份证号",
               "中级", "验证码", "扫码查验", ISSUER["name_zh"], ISSUER["address_zh"]]),
    ("en", ["Engineer certificate", "Validity", "This is to certify", "Certified by",
            "Date of issue", "ID number", "Intermediate", "Verification code",
            "Scan to verify", ISSUER["name_en"], ISSUER["address_en"]]),
])
def test_the_certificate_is_a_landscape_document_with_issuer_certifier_and_qr_code(
        app, client, world, artifacts, lang, words):
    today = local_day(app)
    cert = _issued(app, world, exam_day=today - timedelta(days=2))
    sign_in(client, world.user(Role.HQ_CERTIFIER))
    pdf = _pdf(client, cert["id"], lang)
    reader, flat = _text(pdf)

    assert len(reader.pages) == 1
    box = reader.pages[0].mediabox
    assert float(box.width) > float(box.height)                     # landscape
    assert abs(float(box.width) - 841.89) < 1 and abs(float(box.height) - 595.28) < 1  # A4
    for word in [*words, HOLDER, CERTIFIER, cert["number"], cert["code"], "SH-C07"]:
        assert re.sub(r"\s+", "", word) in flat, (word, flat)
    assert SESSION_CREATOR not in flat          # the certifier recorded the scores
    masked = cert["id_number"][:3] + "*" * 11 + cert["id_number"][-4:]
    assert masked in flat and cert["id_number"] not in flat
    validity = (_date(cert["valid_from"], lang), _date(cert["valid_to"], lang))
    assert re.sub(r"\s+", "", f"{validity[0]}{'至' if lang == 'zh_CN' else 'to'}"
                              f"{validity[1]}") in flat
    assert flat.count(re.sub(r"\s+", "", CHECK_SENTENCE[lang])) == 1   # printed once
    assert flat.count("/certification/verify") == 1

    png = _png(pdf, artifacts / f"certificate-{lang}.png")
    with Image.open(png) as picture:
        found = zxingcpp.read_barcodes(picture)
    assert len(found) == 1 and found[0].format == zxingcpp.BarcodeFormat.QRCode
    url = urlsplit(found[0].text)
    base = urlsplit(app.config["PORTAL_BASE_URL"])
    assert (url.scheme, url.netloc, url.path) == (base.scheme, base.netloc,
                                                  "/certification/verify")
    assert parse_qs(url.query) == {"number": [cert["number"]], "code": [cert["code"]]}


@pytest.mark.parametrize("lang", ["zh_CN", "en"])
def test_issued_at_half_past_midnight_local_the_issue_date_is_the_local_day(
        app, client, world, lang):
    """00:30 in Shanghai is 16:30 of the day before in UTC: the certificate issued then says
    the local day, which is also the exam's day and the first day of its validity."""
    moment = datetime(2026, 6, 15, 0, 30, tzinfo=SHANGHAI)
    with time_machine.travel(moment, tick=False):
        cert = _issued(app, world, exam_day=date(2026, 6, 15))
        assert cert["issued_at"].astimezone(UTC).date() == date(2026, 6, 14)
        sign_in(client, world.user(Role.HQ_CERTIFIER))
        _reader, flat = _text(_pdf(client, cert["id"], lang))
    assert cert["valid_from"] == date(2026, 6, 15)
    pattern = (r"发证日期(\d{4}年\d{1,2}月\d{1,2}日)" if lang == "zh_CN"
               else r"Dateofissue([A-Z][a-z]+\d{1,2},\d{4})")
    assert re.search(pattern, flat).group(1) == re.sub(r"\s+", "", _date(date(2026, 6, 15), lang))
    assert re.sub(r"\s+", "", _date(date(2026, 6, 14), lang)) not in flat


def test_the_agency_reads_the_certifier_on_its_engineers_certificate(app, client, world):
    """HQ's accounts and the audit log are outside an agency's scope (row-level security on
    PostgreSQL): the certifier's name is still read for the agency's own certificate."""
    cert = _issued(app, world, exam_day=local_day(app), with_issuer=False, own_agency=True)
    sign_in(client, world.user(Role.AGENCY_OWNER))
    _reader, flat = _text(_pdf(client, cert["id"], "en"))
    assert f"Certifiedby{CERTIFIER}" in flat and SESSION_CREATOR not in flat


def test_without_a_person_who_recorded_the_scores_no_certifier_is_named(app, client, world):
    """The certifier is whoever recorded the exam's scores (its audit entry); a command acting
    as the system names nobody rather than someone else. Without a configured issuer the
    portal's name stands in."""
    today = local_day(app)
    cert = _issued(app, world, exam_day=today, with_issuer=False, acting=False)
    sign_in(client, world.user(Role.HQ_CERTIFIER))
    _reader, flat = _text(_pdf(client, cert["id"], "en"))
    assert "Certifiedby" not in flat and CERTIFIER not in flat
    assert "ServiceNetworkPortal" in flat and "Dateofissue" in flat


def test_the_check_page_is_filled_in_from_the_qr_code_and_checks_only_on_submit(
        app, client, world):
    today = local_day(app)
    cert = _issued(app, world, exam_day=today, with_issuer=False)
    page = client.get(f"/certification/verify?number={cert['number']}&code={cert['code']}")
    assert page.status_code == 200
    assert _input(page, "number") == cert["number"] and _input(page, "code") == cert["code"]
    assert "王*明" not in page.get_data(as_text=True)           # filled in, not checked yet
    assert b"No certificate matches" not in page.data
    # Links with wrong codes neither check nor count against the limit of failed checks (5).
    for _ in range(8):
        wrong = client.get(f"/certification/verify?number={cert['number']}&code=WRONG123")
        assert wrong.status_code == 200 and b"No certificate matches" not in wrong.data
    checked = client.post("/certification/verify",
                          data={"number": cert["number"], "code": cert["code"]})
    assert checked.status_code == 200 and "王*明" in checked.get_data(as_text=True)


def test_the_check_page_fills_in_only_what_fits_and_escapes_it(client):
    page = client.get('/certification/verify?number="><script>x</script>&code=' + "A" * 99)
    assert page.status_code == 200
    assert _input(page, "number") == "&#34;&gt;&lt;script&gt;x&lt;/script&gt;"
    assert _input(page, "code") == "A" * 32
    assert _input(client.get("/certification/verify"), "number") == ""


def _input(response, name: str) -> str:
    """The value the page's form field `name` is filled in with (as the HTML holds it)."""
    tag = re.search(rf'<input[^>]*\bname="{name}"[^>]*>', response.get_data(as_text=True))
    assert tag, name
    value = re.search(r'\bvalue="([^"]*)"', tag.group(0))
    return value.group(1) if value else ""
