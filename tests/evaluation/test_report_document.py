"""Evaluation reports as official documents: the issuer's letterhead and seal, the day of
publication (never the day of download), the version and what it supersedes; one hash story
(the file SHA-256 is the value to compare, the footer's content fingerprint says it is not);
an auditor told that an old version is authentic but superseded; stored files served as stored.

The quarter is published at 00:30 on 16 July 2026 in Shanghai (16:30 UTC on the 15th), a
corrected version issued on 20 July, and everything read on 25 July. The PNGs of the pages
stay in test-artifacts/documents/ for a person to look at.
"""
import hashlib
import io
import os
import re
import shutil
import subprocess
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import time_machine
from flask import g
from flask_babel import force_locale, format_date
from flask_babel import gettext as _
from pypdf import PdfReader
from sqlalchemy import select
from sqlalchemy.orm import undefer

from evaluation import reports, services
from evaluation.models import Quarter, RankingReport, Report
from portal.audit.models import AuditEntry
from portal.auth.roles import Role
from portal.extensions import db
from portal.tenancy import unscoped
from tenants import issuer
from tests.documents import seal_png
from tests.evaluation import factories as f
from tests.evaluation.test_compute import build_worked_example
from tests.factories import sign_in

pytestmark = pytest.mark.usefixtures("own_upload_root")

ISSUER = {"name_zh": "华东家电股份有限公司", "name_en": "East China Appliances Co., Ltd.",
          "address_zh": "上海市浦东新区张江路 88 号", "address_en": "88 Zhangjiang Road, Shanghai"}
PUBLISHED_AT = datetime(2026, 7, 15, 16, 30, tzinfo=UTC)  # 00:30 on 16 July in Shanghai
PUBLISHED_ON = date(2026, 7, 16)
REISSUED_AT = datetime(2026, 7, 20, 2, 0, tzinfo=UTC)  # 10:00 on 20 July in Shanghai
REISSUED_ON = date(2026, 7, 20)
READ_AT = datetime(2026, 7, 25, 1, 0, tzinfo=UTC)  # nine days after publication
READ_ON = date(2026, 7, 25)
LOCALES = ("zh_CN", "en")
HEX64 = re.compile(r"(?<![0-9a-f])[0-9a-f]{64}(?![0-9a-f])")
ARTIFACTS = Path(os.environ.get("PORTAL_TEST_ARTIFACTS",
                                Path(__file__).resolve().parents[2] / "test-artifacts"))


@pytest.fixture
def story(app, world):
    """Version 1 published at 00:30 local on 16 July; an appeal upheld on 20 July issues
    version 2 of A's report and of the network ranking. {(kind, version, locale): id}."""
    with app.app_context(), unscoped("test publishes and corrects a quarter"):
        g._audit_actor = None
        row = issuer.current()
        issuer.save_issuer(row, ISSUER, {"seal": seal_png()}, acting_user=None,
                           seen_version=row.version)
        with time_machine.travel(PUBLISHED_AT, tick=False):
            build_worked_example(world)
            for agency, n in ((world.a2, 12), (world.b, 15)):
                for k in range(n):
                    f.order(agency, world.line, hours=1 if k % 4 else 30)
            quarter = f.published(inspections={world.a: 88})
        with time_machine.travel(REISSUED_AT, tick=False):
            result = f.result_of(quarter, world.a)
            appeal = services.lodge_appeal(result, "The inspection score was mistyped.",
                                           "inspection", acting_user=None)
            services.resolve_appeal(appeal, upheld=True, resolution="correct",
                                    kpi_code="inspection", numerator=98, denominator=1,
                                    note="Mistyped: 98, not 88.",
                                    acting_user=f.person(Role.HQ_SERVICE))
        ids = {("report", r.version, r.locale): r.id for r in db.session.scalars(
            select(Report).where(Report.agency_id == world.a.id))}
        ids.update({("ranking", r.version, r.locale): r.id
                    for r in db.session.scalars(select(RankingReport))})
        ids["result"], ids["quarter"] = result.id, quarter.id
        db.session.commit()
    assert len(ids) == 10
    return ids


def _stored(app, kind: str, file_id: int):
    model = Report if kind == "report" else RankingReport
    with app.app_context(), unscoped("test reads a stored file"):
        return db.session.scalars(select(model).options(undefer(model.content))
                                  .where(model.id == file_id)).one()


def _url(kind: str, file_id: int) -> str:
    return (f"/evaluation/reports/{file_id}.pdf" if kind == "report"
            else f"/evaluation/ranking-reports/{file_id}.pdf")


def _text(pdf: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


def _flat(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _long(app, day: date, locale: str) -> str:
    with app.test_request_context(), force_locale(locale):
        return format_date(day, "long")


def _in(app, locale: str, message: str, **values) -> str:
    """`message` as a page or PDF in `locale` prints it (whatever the catalogs hold)."""
    with app.test_request_context(), force_locale(locale):
        return _(message, **values)


def _verify(client, content: bytes) -> str:
    return client.post("/evaluation/verify", data={"file": (io.BytesIO(content), "copy.pdf")},
                       content_type="multipart/form-data").get_data(as_text=True)


@pytest.mark.parametrize("kind", ["report", "ranking"])
def test_pdfs_carry_issuer_publication_day_version_and_what_they_supersede(
        app, client, world, story, kind):
    """Downloaded nine days after publication: version 1 says the day of publication (the
    local day: at 00:30 in Shanghai the UTC date is still the 15th), version 2 its own day
    and that it supersedes version 1 of the 16th; both carry the issuer's name and seal."""
    with time_machine.travel(READ_AT, tick=False):
        sign_in(client, world.user(Role.HQ_ADMIN))
        for locale in LOCALES:
            for version in (1, 2):
                response = client.get(_url(kind, story[(kind, version, locale)]))
                assert response.status_code == 200
                text = _text(response.data)
                flat = _flat(text)
                issued = PUBLISHED_ON if version == 1 else REISSUED_ON
                number = f"EVL-2026Q2-{'A-OWN' if kind == 'report' else 'NET'}-v{version}-" \
                         f"{'ZH' if locale == 'zh_CN' else 'EN'}"
                assert _flat(_in(app, locale, "Report %(number)s, version %(version)s, "
                                 "issued %(date)s", number=number, version=version,
                                 date=_long(app, issued, locale))) in flat
                assert _long(app, READ_ON, locale).replace(" ", "") not in flat
                assert _long(app, date(2026, 7, 15), locale).replace(" ", "") not in flat
                supersedes = _flat(_in(app, locale, "Supersedes version %(version)s of "
                                       "%(date)s.", version=1,
                                       date=_long(app, PUBLISHED_ON, locale)))
                assert (supersedes in flat) == (version == 2), (locale, version)
                name = ISSUER["name_zh" if locale == "zh_CN" else "name_en"]
                assert _flat(name) in flat
                title = "Quarterly evaluation report" if kind == "report" else "Network ranking"
                assert _in(app, locale, title) in text
                if locale == "zh_CN":
                    assert "华东家电股份有限公司" in text
                images = [image for page in PdfReader(io.BytesIO(response.data)).pages
                          for image in page.images]
                assert images, "the issuer's seal is on the document"


def test_the_chinese_report_reads_in_chinese(app, client, world, story):
    sign_in(client, world.user(Role.AGENCY_OWNER))
    text = _text(client.get(_url("report", story[("report", 2, "zh_CN")])).data)
    assert "季度考核报告" in text and "客户满意度" in text
    assert "Mistyped: 98, not 88." in text


def test_an_auditor_learns_which_version_is_current(app, client, world, story):
    sign_in(client, world.user(Role.AUDITOR))
    for kind in ("report", "ranking"):
        for locale in LOCALES:
            client.post("/locale", data={"locale": locale})
            old = _stored(app, kind, story[(kind, 1, locale)]).content
            new = _stored(app, kind, story[(kind, 2, locale)])
            body = _verify(client, old)
            assert 'data-verdict="superseded"' in body
            said = _in(app, locale, "Authentic, superseded by version %(version)s on %(date)s: "
                       "a newer version of this report replaced this file.", version=2,
                       date=_long(app, REISSUED_ON, locale))
            assert said in body
            assert f'href="{_url(kind, new.id)}"' in body and new.number in body
            # the current version's own link works for the auditor, and is what it says
            download = client.get(_url(kind, new.id))
            assert download.status_code == 200 and download.data == new.content
            body = _verify(client, new.content)
            assert 'data-verdict="current"' in body and 'data-verdict="superseded"' not in body
            assert _in(app, locale, "Authentic and current: no newer version of this report "
                       "has been issued.") in body
            assert _long(app, REISSUED_ON, locale) in body
    body = _verify(client, b"%PDF-1.7 something else")
    assert 'data-verdict="unknown"' in body


def _hashes(app) -> tuple[set[str], set[str]]:
    with app.app_context(), unscoped("test"):
        rows = [*db.session.execute(select(Report.sha256, Report.fingerprint)),
                *db.session.execute(select(RankingReport.sha256, RankingReport.fingerprint))]
    return {r.sha256 for r in rows}, {r.fingerprint for r in rows}


def _check_page(body: str, files: set[str], fingerprints: set[str]) -> int:
    """Every 64-hex value on the page is a file SHA-256 marked as one, or a content
    fingerprint marked as one; returns how many file hashes the page shows."""
    shown = HEX64.findall(body)
    marked = re.findall(r'data-hash="(file|fingerprint)">([0-9a-f]{64})<', body)
    assert len(shown) == len(marked), "a 64-hex value on the page is not labelled"
    for what, value in marked:
        assert value in (files if what == "file" else fingerprints), (what, value)
    assert not files & fingerprints
    return sum(1 for what, _value in marked if what == "file")


def test_one_hash_story(app, client, world, story):
    """Pages show the file SHA-256 under that name; the footer's value is the content
    fingerprint, named so, never a file's hash; the audit log keeps the file SHA-256."""
    files, fingerprints = _hashes(app)
    sign_in(client, world.user(Role.HQ_ADMIN))
    for locale in LOCALES:
        client.post("/locale", data={"locale": locale})
        label = _in(app, locale, "File SHA-256")
        result = client.get(f"/evaluation/results/{story['result']}").get_data(as_text=True)
        assert _check_page(result, files, fingerprints) == 4 and label in result
        quarter = client.get(f"/evaluation/quarters/{story['quarter']}").get_data(
            as_text=True)
        assert _check_page(quarter, files, fingerprints) == 4 and label in quarter
        stored = _stored(app, "report", story[("report", 1, locale)])
        verify = _verify(client, stored.content)
        assert _check_page(verify, files, fingerprints) == 2 and label in verify
        assert f'data-hash="fingerprint">{stored.fingerprint}<' in verify
        for kind in ("report", "ranking"):
            stored = _stored(app, kind, story[(kind, 2, locale)])
            flat = _flat(_text(stored.content))
            footer = _flat(_in(app, locale, "Content fingerprint of the figures (not the file "
                                            "hash): %(fingerprint)s",
                               fingerprint=stored.fingerprint))
            assert footer in flat, "the footer names its value the content fingerprint"
            assert set(HEX64.findall(flat)) == {stored.fingerprint}
            assert stored.sha256 not in flat and "SHA-256):" not in flat
    with app.app_context(), unscoped("test reads the audit log"):
        published = db.session.scalars(select(AuditEntry).where(
            AuditEntry.action == "evaluation.published")).one()
        upheld = db.session.scalars(select(AuditEntry).where(
            AuditEntry.action == "evaluation.appeal_upheld")).one()
        by_number = {r.number: r.sha256 for r in db.session.scalars(select(Report))}
        by_number.update({r.number: r.sha256 for r in db.session.scalars(
            select(RankingReport))})
    logged = {**published.after["reports"], **published.after["ranking"],
              **upheld.after["reports"]}
    assert logged and all(by_number[number] == sha for number, sha in logged.items())
    assert set(logged.values()) <= files
    auditor = app.test_client()
    sign_in(auditor, world.user(Role.AUDITOR))
    auditor.post("/locale", data={"locale": "en"})
    log = auditor.get("/audit/?action=evaluation.published").get_data(as_text=True)
    assert "Reports (file SHA-256)" in log and "Network ranking (file SHA-256)" in log
    assert published.after["ranking"] and all(sha in log for sha in
                                              published.after["ranking"].values())


def test_stored_reports_download_byte_identical(app, client, world, story, monkeypatch):
    """A download serves the bytes issued: nothing is rendered again (rendering fails here),
    the file SHA-256 is that of the bytes, old versions included; an old file made before the
    letterhead existed still downloads as it was stored."""
    def refuse(*_args, **_kwargs):
        raise AssertionError("a stored report was rendered again")

    monkeypatch.setattr(reports, "render_report", refuse)
    monkeypatch.setattr(reports, "render_ranking", refuse)
    monkeypatch.setattr(reports, "render_document", refuse)
    legacy = b"%PDF-1.4\n% a report issued by an earlier version of the portal\n%%EOF\n"
    with app.app_context(), unscoped("test stores a file as an older portal did"):
        quarter = db.session.get(Quarter, story["quarter"])
        row = RankingReport(quarter_id=quarter.id, version=9, locale="en",
                            number="EVL-2026Q2-NET-v9-EN", sha256=hashlib.sha256(legacy)
                            .hexdigest(), fingerprint="0" * 64, size_bytes=len(legacy),
                            content=legacy)
        db.session.add(row)
        db.session.commit()
        story[("ranking", 9, "en")] = row.id
    with time_machine.travel(READ_AT, tick=False):
        sign_in(client, world.user(Role.HQ_ADMIN))
        for key, file_id in story.items():
            if not isinstance(key, tuple):
                continue
            kind = key[0]
            stored = _stored(app, kind, file_id)
            first, second = client.get(_url(kind, file_id)), client.get(_url(kind, file_id))
            assert first.data == second.data == stored.content, key
            assert first.headers["X-Content-SHA256"] == stored.sha256 == \
                hashlib.sha256(first.data).hexdigest()
    assert _stored(app, "ranking", story[("ranking", 9, "en")]).content == legacy


def test_pages_as_images(app, client, world, story):
    """Each version's first page as a PNG in test-artifacts/documents/, for a person to look
    at (skipped where poppler's pdftoppm is missing)."""
    pdftoppm = shutil.which("pdftoppm")
    if pdftoppm is None:
        pytest.skip("pdftoppm (poppler-utils) is not installed")
    folder = ARTIFACTS / "documents"
    folder.mkdir(parents=True, exist_ok=True)
    for kind in ("report", "ranking"):
        for version in (1, 2):
            for locale in LOCALES:
                stored = _stored(app, kind, story[(kind, version, locale)])
                pdf = folder / f"evaluation-{kind}-v{version}-{locale}.pdf"
                pdf.write_bytes(stored.content)
                subprocess.run([pdftoppm, "-png", "-r", "60", "-f", "1", "-l", "2",  # noqa: S603
                                str(pdf), str(pdf.with_suffix(""))], check=True)
                assert pdf.with_name(pdf.stem + "-1.png").exists() or \
                    pdf.with_name(pdf.stem + "-01.png").exists()
