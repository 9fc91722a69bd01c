"""Imports in a real browser, on the demo network, in both languages.

(a) HQ's service desk imports the revisits of the whole network, 100,000 rows from one CSV
file: the import page hands over to the job's page, whose bar moves while rows are checked
and written; the finished job says what it wrote and links to the revisits. (b) an agency
owner downloads the XLSX template (instructions and drop-downs) and imports a file with a
bad row: nothing is written, the file is kept; the owner imports the kept file again, good
rows only, without choosing it again, and follows the link to the order created.

The demo has about 2,600 completed orders: (a) adds 100,000 more (completed, not revisited)
to the live portal's database before it starts.
"""
import csv
import io
import re
import time
from datetime import timedelta
from pathlib import Path

import pytest
from openpyxl import load_workbook

SERVICE_DESK = "service@hq.demo"
OWNER = "owner@sh-c01.demo"
ROWS = 100_000


def _submit(page, selector: str) -> None:
    with page.expect_navigation():
        page.click(selector)


def _live_database(tmp_path_factory) -> Path:
    """The live portal's SQLite file (conftest.live_portal keeps it in a "live" folder)."""
    found = sorted(tmp_path_factory.getbasetemp().glob("live*/live.sqlite3"),
                   key=lambda p: p.stat().st_mtime)
    assert found, "no live portal database"
    return found[-1]


def _add_completed_orders(database: Path, count: int) -> tuple[list, list[str]]:
    """`count` completed orders, spread over the demo agencies, written at once; returns
    (agency code, order number) of each, and the revisit file's Chinese header."""
    from flask_babel import force_locale
    from sqlalchemy import insert, select

    from portal import create_app
    from portal.clock import local_today, now
    from portal.extensions import db
    from portal.tenancy import unscoped
    from service.imports import REVISIT_COLUMNS
    from service.models import OrderStatus, WorkOrder
    from tenants.models import Agency, AgencyProductLine, ProductModel

    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{database}",
                      "SECRET_KEY": "browser-tests"})
    with app.app_context(), unscoped("the test adds a network's worth of completed orders"):
        agencies = db.session.execute(
            select(Agency.id, Agency.code, ProductModel.id, ProductModel.product_line_id)
            .join(AgencyProductLine, AgencyProductLine.agency_id == Agency.id)
            .join(ProductModel, ProductModel.product_line_id
                  == AgencyProductLine.product_line_id)
            .where(Agency.status == "active").order_by(Agency.code, ProductModel.id)).all()
        chosen = list({code: (agency_id, code, model_id, line_id)
                       for agency_id, code, model_id, line_id in agencies}.values())
        done, day = now().replace(microsecond=0) - timedelta(days=2), local_today()
        rows, out = [], []
        for n in range(count):
            agency_id, code, model_id, line_id = chosen[n % len(chosen)]
            number = f"BR-{n:06d}"
            rows.append({"agency_id": agency_id, "number": number, "service_type": "carry_in",
                         "status": OrderStatus.COMPLETED, "customer_name": "回访客户",
                         "customer_phone": "13900000000", "customer_address": "",
                         "product_line_id": line_id, "product_model_id": model_id,
                         "serial_number": f"SNBR{n:07d}", "is_in_warranty": False,
                         "received_at": done - timedelta(hours=4), "completed_at": done,
                         "service_date": day - timedelta(days=2), "fault_description": "",
                         "resolution": "已修复", "version": 1})
            out.append((code, number))
        db.session.connection().execute(insert(WorkOrder.__table__), rows)
        db.session.commit()
        with app.test_request_context(), force_locale("zh_CN"):
            header = [str(c.label) for c in REVISIT_COLUMNS[:4]]
    with app.app_context():
        db.engine.dispose()
    return out, header


def _revisits_csv(orders: list[tuple[str, str]], header: list[str]) -> bytes:
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(header)
    comments = ["师傅很专业，非常满意", "上门准时", "满意", "一般", "等待时间稍长"]
    for n, (code, number) in enumerate(orders):
        writer.writerow([code, number, 5 - n % 5, comments[n % 5]])
    return text.getvalue().encode("utf-8-sig")


def test_hq_imports_the_networks_revisits_from_one_file_of_100000_rows(
        journey, shot, tmp_path_factory):
    orders, header = _add_completed_orders(_live_database(tmp_path_factory), ROWS)
    body = _revisits_csv(orders, header)
    page = journey.as_user(SERVICE_DESK, "zh_CN")
    page.goto(f"{journey.base}/service/revisits/import")
    journey.step(page, "revisits-import-page")  # now in English
    page.set_input_files("input[name=file]", files=[{
        "name": "network-revisits.csv", "mimeType": "text/csv", "buffer": body}])
    _submit(page, "form[data-import-upload] button")
    assert re.search(r"/jobs/\d+$", page.url), page.inner_text("main")[:600]
    job_url = page.url
    assert "Revisit import" in page.inner_text("h1")
    # The bar moves while the job reads, checks and writes (the page polls its progress).
    seen = set()
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        status = page.locator("[data-job-field=status]").inner_text()
        done = page.locator("[data-job-field=done]").inner_text()
        note = page.locator("[data-job-field=note]").inner_text()
        if note and note not in seen and "0" != done.replace(",", ""):
            seen.add(note)
            shot(page, f"progress-{len(seen)}")
        if page.locator("[data-job-outcome]").count():
            break
        page.wait_for_timeout(500)
        del status
    assert page.locator("[data-job-outcome]").count(), "the job did not finish in time"
    assert seen, "no progress was shown while the job ran"
    outcome = page.locator("[data-job-outcome]").inner_text()
    assert "Written: 100000 created" in outcome.replace(",", ""), outcome
    journey.step(page, "revisits-job-finished")  # now in Chinese
    assert journey.language(page) == "zh_CN" and "service.import" not in page.inner_text("h1")
    _submit(page, "[data-job-outcome] a[href='/service/revisits/']")
    journey.step(page, "revisits-list", switch=False)
    page.goto(job_url)
    shot(page, "job-page-again")
    journey.finish()


def test_an_owner_imports_orders_from_the_template_and_again_without_the_file(journey, shot):
    page = journey.as_user(OWNER, "zh_CN")
    page.goto(f"{journey.base}/service/orders/import")
    journey.step(page, "orders-import-page")  # now in English
    with page.expect_download() as download:
        page.click("a[href$='format=xlsx']")
    book = load_workbook(io.BytesIO(Path(download.value.path()).read_bytes()))
    data, instructions, lists = book.worksheets
    assert lists.sheet_state == "hidden" and data.data_validations.dataValidation
    assert instructions.cell(row=5, column=1).value == "Order number"
    example = [c.value for c in data[2]]
    # The template's example row, and a second order naming an engineer nobody has.
    bad = list(example)
    bad[0] = example[0].replace("-0001", "-0002")
    bad[13] = "不存在的工程师"
    data.append(bad)
    out = io.BytesIO()
    book.save(out)
    page.set_input_files("input[name=file]", files=[{
        "name": "orders.xlsx", "buffer": out.getvalue(),
        "mimeType": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}])
    _submit(page, "form[data-import-upload] button")
    assert "Nothing was written" in page.inner_text("#import-report")
    assert page.locator("#kept-file").count() == 1
    journey.step(page, "orders-import-errors")  # now in Chinese (the switch goes home)
    # The file is still offered when the page is opened again: no need to choose it.
    page.goto(f"{journey.base}/service/orders/import")
    assert page.locator("#kept-file").count() == 1 and "orders.xlsx" in page.inner_text(
        "#kept-file")
    journey.step(page, "orders-import-kept")  # now in English
    page.goto(f"{journey.base}/service/orders/import")
    page.check("#retry-good-only")
    _submit(page, "form[data-import-retry] button")
    report = page.inner_text("#import-report")
    assert "Written." in report and "1 created" in report, report
    assert page.locator("#kept-file").count() == 0
    shot(page, "orders-import-good-rows-en")
    listing = page.locator("#import-report a[href*='/service/orders/?from=']").get_attribute(
        "href")
    number = example[0]
    _submit(page, "#import-report table a[href^='/service/orders/']")
    assert re.search(r"/service/orders/\d+$", page.url) and number in page.content()
    journey.step(page, "imported-order")  # now in Chinese
    page.goto(f"{journey.base}{listing}")
    assert number in page.inner_text("main")
    journey.step(page, "imported-orders-list", switch=False)
    journey.finish()


pytestmark = pytest.mark.browser
