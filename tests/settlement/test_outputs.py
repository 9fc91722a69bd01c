"""What both sides read: the statement PDF with its evidence, the HQ list with its filters and
totals, the agency's history, the query counts of the list pages, and form errors in Chinese."""
import io
import re
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
import time_machine
from pypdf import PdfReader
from sqlalchemy import func, select

from portal.extensions import db
from portal.tenancy import ALL, scoped, unscoped
from settlement import queries, services
from settlement.demo import demo_pdf, demo_png
from settlement.models import Attachment, Settlement
from tests.settlement import factories as f
from tests.settlement.test_views import (
    as_user,
    lines_of,
    open_claim,
    post,
    read,
    settlement_of,
)

D = Decimal


def pdf_text(response) -> str:
    assert response.status_code == 200 and response.data.startswith(b"%PDF")
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(response.data)).pages)
    return re.sub(r"\s+", "", text)


def upload(client, sid, name, data, line_id=0):
    return client.post(f"/settlements/{sid}/evidence", data={
        "file": (io.BytesIO(data), name), "line_id": str(line_id)},
        content_type="multipart/form-data")


def stored_files(app) -> list[Path]:
    root = Path(app.config["UPLOAD_ROOT"]) / "settlement"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


# --- the statement ---------------------------------------------------------------------------


@pytest.mark.parametrize("locale, words", [
    ("en", ["Settlementstatement", "Evidence:", "Evidenceforthewholesettlement"]),
    ("zh_CN", ["结算单", "凭证：", "整张结算单的凭证", "工时费"])])
def test_the_statement_lists_its_evidence_in_both_languages(web, locale, words):
    app, sid = web.app, open_claim(web)
    owner = as_user(app, web.owner)
    line = lines_of(app, sid)[1]
    assert upload(owner, sid, "invoice-77.pdf", demo_pdf("77")).status_code == 302
    assert upload(owner, sid, "photo-line2.png", demo_png(4), line.id).status_code == 302
    owner.post("/locale", data={"locale": locale})
    text = pdf_text(owner.get(f"/settlements/{sid}/statement.pdf"))
    for word in [*words, "invoice-77.pdf", "photo-line2.png", settlement_of(app, sid).number]:
        assert word in text, word
    if locale == "zh_CN":
        assert "Labor" not in text  # the reader's language, not English


def test_the_statement_is_generated_at_the_networks_local_time_with_its_zone(web):
    """At 17:03 UTC on 4 December it is 01:03 on 5 December in Shanghai: the statement says
    so, and names the zone (it printed the server's "2026-12-04 17:03")."""
    app, sid = web.app, open_claim(web)
    with time_machine.travel(datetime(2026, 12, 4, 17, 3, tzinfo=UTC), tick=False):
        text = pdf_text(as_user(app, web.owner).get(f"/settlements/{sid}/statement.pdf"))
    assert "generated2026-12-0501:03(Asia/Shanghai,UTC+08:00)" in text
    assert "2026-12-0417:03" not in text


def test_a_possible_duplicate_is_in_hqs_statement_only(web):
    app, world = web.app, web.world
    with app.app_context(), unscoped("fixture"):
        code = f.repair_code(world.line, "1.00")
        f.order(world.b, world.line, day=web.day, repairs=[code], serial="SN-DUP-PDF")
        services.open_settlement(world.b, web.year, web.month, acting_user=None, today=web.today)
        f.order(world.a, world.line, day=web.day, repairs=[code], serial="SN-DUP-PDF")
        db.session.commit()
    sid = open_claim(web)
    label = re.sub(r"\s+", "", "Possible duplicate")
    assert label in pdf_text(as_user(app, web.reviewer).get(f"/settlements/{sid}/statement.pdf"))
    owner = as_user(app, web.owner)
    assert label not in pdf_text(owner.get(f"/settlements/{sid}/statement.pdf"))
    page = owner.get(f"/settlements/{sid}").get_data(as_text=True)
    assert "Possible duplicate" not in page and "to review" not in page
    assert "3 lines wait for a decision" in page  # no count that betrays the routing
    xlsx = owner.get(f"/settlements/{sid}/lines.csv?format=xlsx")
    assert xlsx.status_code == 200 and b"duplicate" not in xlsx.data.lower()


# --- evidence uploads through the page -----------------------------------------------------------


def test_bad_uploads_are_refused_with_a_message_and_nothing_stored(web, monkeypatch):
    app, sid = web.app, open_claim(web)
    owner = as_user(app, web.owner)
    with app.app_context(), unscoped("fixture"):
        f.order(web.world.b, web.world.line, day=web.day, repairs=[f.repair_code(web.world.line)])
        foreign = services.open_settlement(web.world.b, web.year, web.month, acting_user=None,
                                           today=web.today)
        foreign_line = foreign.lines[0].id
        db.session.commit()
    assert upload(owner, sid, "ok.png", demo_png(5)).status_code == 302
    files = stored_files(app)
    monkeypatch.setitem(app.config, "SETTLEMENT_MAX_ATTACHMENT_BYTES", 2048)
    cases = [
        ("big.pdf", b"%PDF-1.4\n" + b"0" * 4096, 0, "larger than"),
        ("empty.png", b"", 0, "required"),
        ("evil.png", b"<svg onload=alert(1)>", 0, "judged by their content"),
        ("macro.pdf", b"PK\x03\x04 word document", 0, "judged by their content"),
        ("again.png", demo_png(5), 0, "already attached"),
        ("x.png", demo_png(6), foreign_line, "Not a valid choice"),
        ("x.png", demo_png(6), "-1", "Not a valid choice"),
        ("x.png", demo_png(6), "abc", "could not coerce"),
    ]
    for name, data, line_id, message in cases:
        response = upload(owner, sid, name, data, line_id)
        body = response.get_data(as_text=True)
        assert response.status_code == 400 and message in body, (name, line_id)
    assert read(app, lambda: db.session.scalar(select(func.count(Attachment.id)))) == 1
    assert stored_files(app) == files
    monkeypatch.setitem(app.config, "MAX_CONTENT_LENGTH", 4096)
    response = upload(owner, sid, "huge.pdf", b"%PDF-" + b"0" * 8192)
    assert response.status_code == 413
    assert read(app, lambda: db.session.scalar(select(func.count(Attachment.id)))) == 1


def test_form_errors_read_in_chinese_and_nothing_is_written(web):
    app, sid = web.app, open_claim(web)
    owner = as_user(app, web.owner)
    owner.post("/locale", data={"locale": "zh_CN"})
    before = settlement_of(app, sid).version
    checks = [
        (owner.post("/settlements/new", data={"period": ""}), "此项为必填项"),
        (post(owner, f"/settlements/{sid}/orders", sid, app, number="NOPE-9"), "本站没有工单"),
        (upload(owner, sid, "a.png", b"GIF89a......"), "仅接受 PDF、JPEG 和 PNG 文件"),
        (owner.post(f"/settlements/{sid}/submit", data={"version": "1x"}), "页面已过期"),
    ]
    for response, chinese in checks:
        body = response.get_data(as_text=True)
        assert response.status_code in (200, 400) and chinese in body, chinese
    assert settlement_of(app, sid).version == before
    assert read(app, lambda: db.session.scalar(select(func.count(Settlement.id)))) == 1


# --- the HQ list, its totals, and the agency's history -------------------------------------------


@pytest.fixture
def network(web):
    """A (region 1) has a draft, A2 (region 1) a submitted claim, B (region 2) a draft."""
    app, world = web.app, web.world
    with app.app_context(), unscoped("fixture"):
        code = f.repair_code(world.line, "1.00")
        for agency in (world.a2, world.b):
            f.order(agency, world.line, day=web.day, repairs=[code], service_type="carry_in")
        a = services.open_settlement(world.a, web.year, web.month, acting_user=None,
                                     today=web.today)
        a2 = services.open_settlement(world.a2, web.year, web.month, acting_user=None,
                                      today=web.today)
        services.submit_settlement(a2, acting_user=None, seen_version=a2.version, today=web.today)
        b = services.open_settlement(world.b, web.year, web.month, acting_user=None,
                                     today=web.today)
        db.session.commit()
        web.ids = {"a": a.id, "a2": a2.id, "b": b.id}
        web.numbers = {"a": a.number, "a2": a2.number, "b": b.number}
    return web


def _totals(app, query: str = "") -> dict:
    with app.test_request_context("/settlements/" + query), scoped(ALL):
        return queries.totals()


def test_totals_per_state_region_and_month(network):
    app, world = network.app, network.world
    period = f"{network.year}-{network.month:02d}"
    totals = _totals(app)
    # A: 130.00 + 450.00; A2 and B: 130.00 each (call-out 50 + 1 h × 80).
    assert totals["by_status"] == {"draft": (2, D("710.00"), D("0.00")),
                                   "submitted": (1, D("130.00"), D("0.00"))}
    assert {(r.id, n, c) for r, n, c, _a in totals["by_region"]} == {
        (world.region1.id, 2, D("710.00")), (world.region2.id, 1, D("130.00"))}
    assert totals["by_month"] == [(period, 3, D("840.00"), D("0.00"))]
    region1 = _totals(app, f"?region={world.region1.id}&status=draft")
    assert region1["by_status"] == {"draft": (1, D("580.00"), D("0.00"))}


def test_the_hq_list_filters(network):
    app, world, numbers = network.app, network.world, network.numbers
    hq = as_user(app, network.reviewer)
    period = f"{network.year}-{network.month:02d}"

    def listed(query):
        body = hq.get("/settlements/" + query).get_data(as_text=True)
        return {k for k, sid in network.ids.items()
                if f'href="/settlements/{sid}"' in body}

    assert listed("") == {"a", "a2", "b"}
    assert listed("?status=submitted") == {"a2"}
    assert listed(f"?region={world.region2.id}") == {"b"}
    assert listed(f"?agency={world.a2.id}") == {"a2"}
    assert listed("?agency_code=a-sib") == {"a2"}
    assert listed("?agency_code=NOPE") == set()
    assert listed(f"?period={period}&status=draft") == {"a", "b"}
    assert listed("?period=2001-01") == set()
    assert listed("?q=B-FOR") == {"b"}
    assert numbers["a"] in hq.get("/settlements/").get_data(as_text=True)


def test_the_agency_sees_its_own_history_only(network):
    app = network.app
    owner = as_user(app, network.owner)
    body = owner.get("/settlements/").get_data(as_text=True)
    assert f'href="/settlements/{network.ids["a"]}"' in body
    for other in ("a2", "b"):
        assert f'href="/settlements/{network.ids[other]}"' not in body
    assert "Totals per region" not in body and "CANARY-B" not in body
    history = owner.get("/settlements/new").get_data(as_text=True)
    assert network.numbers["a"] in history and "Recent claims" in history
    manager = as_user(app, network.manager)
    body = manager.get("/settlements/").get_data(as_text=True)
    assert {k for k, sid in network.ids.items() if f'href="/settlements/{sid}"' in body} == {
        "a", "a2"}


def test_list_pages_run_a_fixed_number_of_queries(network, query_counter, capsys):
    app, world = network.app, network.world
    readers = {"hq": as_user(app, network.reviewer), "agency": as_user(app, network.owner),
               "region": as_user(app, network.manager)}
    pages = {"hq": ["/settlements/", "/settlements/?status=draft&region=1",
                    f"/settlements/{network.ids['a']}"],
             "agency": ["/settlements/", "/settlements/new", f"/settlements/{network.ids['a']}"],
             "region": ["/settlements/"]}

    def counts():
        out = {}
        for who, urls in pages.items():
            for url in urls:
                with query_counter as counter:
                    assert readers[who].get(url).status_code == 200
                out[(who, url)] = counter.count
        return out

    few = counts()
    with app.app_context(), unscoped("fixture"):
        code = f.repair_code(world.line, "1.00")
        for n in range(1, 13):  # a year of claims for every agency, each of three lines
            year, month = divmod(network.year * 12 + network.month - 1 - n, 12)
            for agency in (world.a, world.a2, world.b):
                for day in (3, 4, 5):
                    f.order(agency, world.line, day=network.day.replace(
                        year=year, month=month + 1, day=day), repairs=[code])
                services.open_settlement(agency, year, month + 1, acting_user=None,
                                         today=network.today)
        db.session.commit()
    many = counts()
    with capsys.disabled():
        print("\nsettlement list query counts:", {f"{w} {u}": n for (w, u), n in many.items()})
    assert many == few
    assert read(app, lambda: db.session.scalar(select(func.count(Settlement.id)))) == 39


def test_the_stored_files_live_outside_the_web_root(web):
    app, sid = web.app, open_claim(web)
    owner = as_user(app, web.owner)
    before = set(stored_files(app))
    assert upload(owner, sid, "invoice.pdf", demo_pdf("1")).status_code == 302
    (path,) = set(stored_files(app)) - before
    attachment = read(app, lambda: db.session.scalars(select(Attachment)).one())
    assert path.name == attachment.stored_name and "invoice" not in path.name
    static = Path(app.static_folder)
    assert not path.resolve().is_relative_to(static.resolve())
    assert owner.get("/static/" + path.name).status_code == 404


def test_reviewers_see_the_exceptions_first(web):
    app, sid = web.app, open_claim(web)
    owner = as_user(app, web.owner)
    assert post(owner, f"/settlements/{sid}/submit", sid, app).status_code == 302
    assert post(as_user(app, web.manager), f"/settlements/{sid}/regional-review", sid, app,
                outcome="forward").status_code == 302
    clean, flagged = lines_of(app, sid)  # statement order: 130.00 clean, 450.00 over 4 h
    assert (clean.disposition, flagged.disposition) == ("pay", "review")

    def order_on(client):
        body = client.get(f"/settlements/{sid}?lines=all").get_data(as_text=True)
        return sorted((clean.id, flagged.id), key=lambda n: body.index(f'id="line-{n}"'))

    assert order_on(as_user(app, web.reviewer)) == [flagged.id, clean.id]
    assert order_on(owner) == [clean.id, flagged.id]
