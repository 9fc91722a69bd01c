"""Imports people can finish: templates that import as they are (instructions, drop-downs),
a failed file kept and imported again without being chosen again, links to what was
written, and large files (more than the 2,000 rows of one request) imported by a background
job with progress, set-based writes in constant memory and a downloadable error file."""
import csv
import io
import time
import tracemalloc
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from flask_babel import force_locale
from openpyxl import Workbook, load_workbook
from sqlalchemy import func, insert, select

from portal import jobs
from portal.audit.models import AuditEntry
from portal.auth.roles import Role
from portal.extensions import db
from portal.models import utcnow
from portal.tenancy import agency_scope, scoped, unscoped
from service import imports, tabular, uploads
from service.models import OrderStatus, Revisit, WorkOrder
from tests.factories import signed_in
from tests.service import factories as f

ZONE = ZoneInfo("Asia/Shanghai")


def _t(moment) -> str:
    return moment.astimezone(ZONE).strftime("%Y-%m-%d %H:%M")


def _csv(header: list[str], rows: list[list]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8-sig")


def _xlsx(header: list[str], rows: list[list]) -> bytes:
    book = Workbook()
    book.active.append(header)
    for row in rows:
        book.active.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _post(client, url: str, body: bytes | None = None, name: str = "table.csv", **fields):
    data = dict(fields)
    if body is not None:
        data["file"] = (io.BytesIO(body), name)
    return client.post(url, data=data, content_type="multipart/form-data")


def _count(app, model) -> int:
    with app.app_context(), unscoped("the test counts every agency's rows"):
        return db.session.scalar(select(func.count(model.id)))


def _kept(app) -> list:
    with app.app_context(), unscoped("the test reads every kept file"):
        return [(u.id, u.user_id, u.agency_id, u.kind, u.path)
                for u in db.session.scalars(select(uploads.ImportUpload))]


def _audits(app, action: str) -> list[dict]:
    with app.app_context(), unscoped("the test reads the audit log"):
        return [e.after for e in db.session.scalars(select(AuditEntry).where(
            AuditEntry.action == action).order_by(AuditEntry.id))]


def _completed_orders(agency, line, count: int, prefix: str = "BULK") -> list[str]:
    """`count` completed carry-in orders of `agency`, written at once (revisits need them)."""
    model = f.model_of(line)
    done = utcnow() - timedelta(days=3)
    rows = [{"agency_id": agency.id, "number": f"{prefix}-{n:06d}", "service_type": "carry_in",
             "status": OrderStatus.COMPLETED, "customer_name": "客户",
             "customer_phone": "13900000000",
             "customer_address": "", "product_line_id": line.id, "product_model_id": model.id,
             "serial_number": f"SN{prefix}{n:07d}", "is_in_warranty": False,
             "received_at": done - timedelta(hours=5), "completed_at": done,
             "service_date": f.today() - timedelta(days=3), "fault_description": "",
             "resolution": "ok", "version": 1} for n in range(count)]
    db.session.execute(insert(WorkOrder), rows)
    return [r["number"] for r in rows]


@pytest.fixture
def setup(app, world):
    """Agency A's catalog and an engineer; the names of its model and codes."""
    with app.app_context(), unscoped("catalog, engineer and orders of the world"):
        codes = f.catalog_of(world.line)
        engineer = f.make_engineer(world.a, world.line, name="王伟")
        f.certify(engineer, world.line, f.today() - timedelta(days=400),
                  f.today() + timedelta(days=300))
        world.model_code = f.model_of(world.line).code
        world.fault, world.repair = codes["fault"].code, codes["repair"].code
        db.session.commit()
    return world


ORDER_HEADER = ["order_number", "service_type", "customer_name", "customer_phone",
                "product_model", "serial_number", "received_at", "responded_at", "completed_at",
                "engineer", "fault_code", "repair_codes", "resolution"]


def _order(world, n: int, **changes) -> list[str]:
    received = f.ago(days=5) + timedelta(minutes=n % 1000)
    row = {"order_number": f"IMP-{n:06d}", "service_type": "送修", "customer_name": "李女士",
           "customer_phone": "13900001111", "product_model": world.model_code,
           "serial_number": f"SNJOB{n:07d}", "received_at": _t(received),
           "responded_at": _t(received + timedelta(hours=1)),
           "completed_at": _t(received + timedelta(hours=5)), "engineer": "王伟",
           "fault_code": world.fault, "repair_codes": world.repair, "resolution": "更换主板"}
    row.update(changes)
    return [row[k] for k in ORDER_HEADER]


# --- templates -----------------------------------------------------------------------------------


@pytest.mark.parametrize("locale", ["en", "zh_CN"])
@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_the_order_templates_example_row_imports_as_it_is(app, setup, fmt, locale):
    client = signed_in(app, setup.user(Role.AGENCY_OWNER))
    client.post("/locale", data={"locale": locale})
    template = client.get(f"/service/orders/import/template?format={fmt}")
    assert template.status_code == 200
    response = _post(client, "/service/orders/import", template.data, f"template.{fmt}")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert ("1 created" in page) if locale == "en" else ("已写入" in page), page[-3000:]
    with app.app_context(), unscoped("the example order"):
        order = db.session.scalars(select(WorkOrder).where(
            WorkOrder.agency_id == setup.a.id)).one()
    assert order.status == OrderStatus.COMPLETED and order.is_engineer_certified
    assert order.number.startswith("EX")
    # The report links to the order it created.
    assert f'href="/service/orders/{order.id}"' in page


def test_the_revisit_and_catalog_templates_import_as_they_are(app, setup):
    with app.app_context(), unscoped("a completed order to revisit"):
        f.make_order(setup.a, setup.line, completed=True)
        db.session.commit()
    hq = signed_in(app, setup.user(Role.HQ_SERVICE))
    for fmt in ("csv", "xlsx"):
        body = hq.get(f"/service/revisits/import/template?format={fmt}").data
        page = _post(hq, "/service/revisits/import", body, f"r.{fmt}").get_data(as_text=True)
        assert "Written." in page and "with errors" in page and ", 0 with errors" in page, page
    assert _count(app, Revisit) == 1
    desk = signed_in(app, setup.user(Role.HQ_PARTS))
    body = desk.get("/service/catalog/import/template?kind=part&format=xlsx").data
    page = _post(desk, "/service/catalog/import?kind=part", body, "p.xlsx").get_data(
        as_text=True)
    assert "0 created, 0 updated, 1 skipped, 0 with errors" in page  # the part that exists


def test_the_workbook_explains_each_column_and_offers_drop_downs(app, setup):
    client = signed_in(app, setup.user(Role.AGENCY_STAFF))
    book = load_workbook(io.BytesIO(client.get(
        "/service/orders/import/template?format=xlsx").data))
    data, instructions, lists = book.worksheets
    assert lists.sheet_state == "hidden" and instructions.sheet_state == "visible"
    header = [c.value for c in data[1]]
    assert header[0] == "Order number" and len(header) == len(imports.ORDER_COLUMNS)
    assert data.cell(row=2, column=1).value.startswith("EX")  # the example row
    # The instructions: every column, required or not, its format and allowed values.
    described = {row[0]: row for row in instructions.iter_rows(min_row=5, values_only=True)}
    assert set(described) == {str(c.label) for c in imports.ORDER_COLUMNS}
    assert described["Order number"][1] == "yes" and described["Parts used"][1] == "no"
    assert "YYYY-MM-DD HH:MM" in described["Received at"][2]
    assert setup.fault in described["Fault code"][3]
    # Drop-downs on the coded columns, reading the hidden sheet.
    letters = {str(c.label): n for n, c in enumerate(imports.ORDER_COLUMNS, start=1)}
    from openpyxl.utils import get_column_letter

    validated = {}
    for rule in data.data_validations.dataValidation:
        assert rule.type == "list" and rule.formula1.startswith("Lists!")
        for ref in str(rule.sqref).split():
            validated[ref.split(":")[0]] = rule
    for label in ("Service type", "Model code", "Engineer name", "Fault code", "Repair codes",
                  "First-time fix", "Parts used"):
        assert f"{get_column_letter(letters[label])}2" in validated, label
    offered = {lists.cell(row=1, column=n).value: [c.value for c in column[1:] if c.value]
               for n, column in enumerate(lists.iter_cols(), start=1)}
    assert offered["engineer"] == ["王伟"] and setup.model_code in offered["model"]
    assert offered["service_type"][0] == "Carry-in repair"
    assert validated[f"{get_column_letter(letters['Repair codes'])}2"].errorStyle == "warning"
    assert validated[f"{get_column_letter(letters['Model code'])}2"].errorStyle == "stop"


def test_the_chinese_workbook_has_chinese_headers_and_lists(app, setup):
    client = signed_in(app, setup.user(Role.AGENCY_STAFF))
    client.post("/locale", data={"locale": "zh_CN"})
    book = load_workbook(io.BytesIO(client.get(
        "/service/orders/import/template?format=xlsx").data))
    assert book.worksheets[0].cell(row=1, column=1).value == "工单号"
    offered = {column[0].value: [c.value for c in column[1:]]
               for column in book.worksheets[2].iter_cols()}
    assert "送修" in offered["service_type"] and "是" in offered["yesno"]
    text = client.get("/service/orders/import/template?format=csv").get_data(as_text=True)
    header, example = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert header[0] == "工单号" and example[0].startswith("EX") and example[1] == "送修"


def test_the_page_shows_the_readers_own_codes(app, setup):
    client = signed_in(app, setup.user(Role.AGENCY_STAFF))
    page = client.get("/service/orders/import").get_data(as_text=True)
    assert setup.fault in page and setup.repair in page and "王伟" in page


# --- a failed file is kept --------------------------------------------------------------------


def test_a_failed_file_is_kept_and_imported_again_without_choosing_it(app, setup):
    client = signed_in(app, setup.user(Role.AGENCY_STAFF))
    body = _csv(ORDER_HEADER, [_order(setup, 1), _order(setup, 2, engineer="赵六")])
    page = _post(client, "/service/orders/import", body, "call-center.csv").get_data(
        as_text=True)
    assert "Nothing was written" in page and _count(app, WorkOrder) == 0
    [(upload_id, _user, agency_id, kind, path)] = _kept(app)
    assert (agency_id, kind) == (setup.a.id, "work_order") and path.is_file()
    assert "call-center.csv" in page and f'name="upload" value="{upload_id}"' in page
    # The agency puts right what the report said: 赵六 joins; the same file again.
    with app.app_context(), unscoped("a new engineer"):
        f.make_engineer(setup.a, setup.line, name="赵六")
        db.session.commit()
    page = _post(client, "/service/orders/import", upload=str(upload_id)).get_data(
        as_text=True)
    assert "2 created" in page and _count(app, WorkOrder) == 2
    assert _kept(app) == [] and not path.exists()  # imported: no longer kept
    assert "See the imported work orders" in page
    [after] = _audits(app, "work_order.imported")
    assert after["created"] == 2 and after["file"] == "call-center.csv"


def test_the_good_rows_only_may_be_chosen_on_the_retry(app, setup):
    client = signed_in(app, setup.user(Role.AGENCY_STAFF))
    body = _csv(ORDER_HEADER, [_order(setup, 1), _order(setup, 2, engineer="赵六"),
                               _order(setup, 3)])
    _post(client, "/service/orders/import", body)
    [(upload_id, *_rest)] = _kept(app)
    page = client.get("/service/orders/import").get_data(as_text=True)
    assert "Your file is kept" in page  # still offered when the page is opened again
    page = _post(client, "/service/orders/import", upload=str(upload_id),
                 good_only="y").get_data(as_text=True)
    assert "2 created" in page and "1 rows with errors" in page
    assert _count(app, WorkOrder) == 2 and _kept(app) == []


def test_nobody_else_can_use_a_kept_file(app, setup):
    owner = signed_in(app, setup.user(Role.AGENCY_STAFF))
    _post(owner, "/service/orders/import", _csv(ORDER_HEADER, [_order(setup, 1, engineer="?")]))
    [(upload_id, *_rest)] = _kept(app)
    for user in (setup.user(Role.AGENCY_OWNER), setup.b_users[Role.AGENCY_STAFF],
                 setup.a2_users[Role.AGENCY_OWNER]):
        other = signed_in(app, user)
        assert _post(other, "/service/orders/import", upload=str(upload_id),
                     good_only="y").status_code == 404
        assert f'value="{upload_id}"' not in other.get("/service/orders/import").get_data(
            as_text=True)
    hq = signed_in(app, setup.user(Role.HQ_SERVICE))
    assert _post(hq, "/service/revisits/import", upload=str(upload_id)).status_code == 404
    for junk in ("987654321", "-1", "x", "99999999999999999999999"):
        assert _post(owner, "/service/orders/import", upload=junk).status_code == 404
    assert _count(app, WorkOrder) == 0
    # The tenant guard hides it from another agency's scope, whatever the query.
    with app.app_context(), scoped(agency_scope(setup.b.id)):
        assert db.session.scalars(select(uploads.ImportUpload)).all() == []


def test_a_kept_file_expires_after_a_day(app, setup):
    client = signed_in(app, setup.user(Role.AGENCY_STAFF))
    _post(client, "/service/orders/import", _csv(ORDER_HEADER, [_order(setup, 1, engineer="?")]))
    [(upload_id, _u, _a, _k, path)] = _kept(app)
    with app.app_context(), unscoped("the file is a day old"):
        upload = db.session.scalars(select(uploads.ImportUpload)).one()
        upload.expires_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
    page = _post(client, "/service/orders/import", upload=str(upload_id)).get_data(
        as_text=True)
    assert "no longer kept" in page
    result = app.test_cli_runner().invoke(args=["reap-jobs"])
    assert result.exit_code == 0 and "purge_expired: 1 removed" in result.output
    assert _kept(app) == [] and not path.exists()


@pytest.mark.parametrize("name, body, message", [
    ("orders.xlsx", b"%PDF-1.4\n\x00\x01\x02binary", "neither UTF-8 CSV"),
    ("orders.csv", b"foo,bar\n1,2\n", "Columns missing"),
    ("orders.xlsx", b"PK\x03\x04broken", "not a readable XLSX"),
])
def test_hostile_files_are_refused_and_not_kept(app, setup, name, body, message):
    client = signed_in(app, setup.user(Role.AGENCY_STAFF))
    before = _files(app)
    page = _post(client, "/service/orders/import", body, name).get_data(as_text=True)
    assert message in page
    assert _kept(app) == [] and _files(app) == before


def _files(app) -> set:
    root = Path(app.config["UPLOAD_ROOT"]) / "imports"
    return {p for p in root.rglob("*") if p.is_file()} if root.exists() else set()


def test_a_bomb_is_refused_quickly_and_not_kept(app, setup):
    from tests.service.test_import_bomb import EMPTY_ROWS, workbook

    client = signed_in(app, setup.user(Role.AGENCY_STAFF))
    before = _files(app)
    started = time.perf_counter()
    page = _post(client, "/service/orders/import", workbook("<row/>" * EMPTY_ROWS),
                 "bomb.xlsx").get_data(as_text=True)
    assert "empty rows count too" in page and time.perf_counter() - started < 5
    assert _kept(app) == [] and _files(app) == before


# --- large files: background jobs ------------------------------------------------------------


REVISIT_HEADER = ["agency_code", "order_number", "score", "comment"]


def test_more_than_2000_revisits_import_as_a_job_with_progress(app, setup):
    with app.app_context(), unscoped("2,500 completed orders"):
        numbers = _completed_orders(setup.a, setup.line, 2500)
        db.session.commit()
    rows = [[setup.a.code, n, 1 + i % 5, "满意"] for i, n in enumerate(numbers)]
    hq = signed_in(app, setup.user(Role.HQ_SERVICE))
    response = _post(hq, "/service/revisits/import", _xlsx(REVISIT_HEADER, rows), "r.xlsx")
    assert response.status_code == 302 and "/jobs/" in response.location
    job_url = response.location
    progress = hq.get(f"{job_url}/progress.json").get_json()
    assert progress["status"] == "succeeded" and progress["percent"] == 100
    assert progress["result"]["created"] == 2500 and progress["result"]["applied"]
    page = hq.get(job_url).get_data(as_text=True)
    assert "Revisit import" in page and "service.import_revisits" not in page
    assert "Written: 2,500 created" in page and 'href="/service/revisits/"' in page
    assert _count(app, Revisit) == 2500 and _kept(app) == []
    [after] = _audits(app, "revisit.imported")
    assert after["created"] == 2500 and after["rows"] == 2500


def test_a_job_keeps_nothing_when_a_row_is_bad_and_offers_the_rows_with_errors(app, setup):
    with app.app_context(), unscoped("orders"):
        numbers = _completed_orders(setup.a, setup.line, 30)
        db.session.commit()
    app.config["SERVICE_IMPORT_MAX_ROWS"] = 10  # a job from 11 rows on
    try:
        rows = [[setup.a.code, n, 4, ""] for n in numbers] + [[setup.a.code, "NOPE", 9, ""]]
        hq = signed_in(app, setup.user(Role.HQ_SERVICE))
        job_url = _post(hq, "/service/revisits/import", _csv(REVISIT_HEADER, rows)).location
        result = hq.get(f"{job_url}/progress.json").get_json()["result"]
        assert not result["applied"] and result["rejected_rows"] == 1
        assert _count(app, Revisit) == 0 and _audits(app, "revisit.imported") == []
        page = hq.get(job_url).get_data(as_text=True)
        assert "Nothing was written" in page and "Import the kept file again" in page
        errors = hq.get(f"{job_url}/file")
        assert errors.status_code == 200 and errors.mimetype == "text/csv"
        assert "no-store" in errors.headers["Cache-Control"]
        lines = list(csv.reader(io.StringIO(errors.get_data(as_text=True).lstrip("\ufeff"))))
        assert lines[0][:2] == ["Row", "Errors"] and lines[1][0] == "32"
        assert "No order NOPE" in lines[1][1] and len(lines) == 2
        # The kept file again, good rows only: the same job page, now written.
        [(upload_id, *_rest)] = _kept(app)
        job_url = _post(hq, "/service/revisits/import", upload=str(upload_id),
                        good_only="y").location
        result = hq.get(f"{job_url}/progress.json").get_json()["result"]
        assert result["applied"] and result["created"] == 30 and result["rejected_rows"] == 1
        assert _count(app, Revisit) == 30 and _kept(app) == []
    finally:
        del app.config["SERVICE_IMPORT_MAX_ROWS"]


def test_an_agencys_job_and_its_error_file_are_its_own(app, setup):
    app.config["SERVICE_IMPORT_MAX_ROWS"] = 3
    try:
        rows = [_order(setup, n) for n in range(1, 6)] + [_order(setup, 6, engineer="?")]
        owner = signed_in(app, setup.user(Role.AGENCY_OWNER))
        job_url = _post(owner, "/service/orders/import", _csv(ORDER_HEADER, rows),
                        good_only="y").location
        result = owner.get(f"{job_url}/progress.json").get_json()["result"]
        assert result["applied"] and result["created"] == 5 and result["rejected_rows"] == 1
        page = owner.get(job_url).get_data(as_text=True)
        assert "Work order import" in page and "See the imported work orders" in page
        assert owner.get(f"{job_url}/file").status_code == 200
        staff = signed_in(app, setup.user(Role.AGENCY_STAFF))
        assert staff.get(f"{job_url}/file").status_code == 200  # the agency's job
        for user in (setup.b_users[Role.AGENCY_OWNER], setup.a2_users[Role.AGENCY_STAFF]):
            other = signed_in(app, user)
            assert other.get(f"{job_url}/file").status_code == 404
            assert other.get(job_url).status_code == 404
        # HQ and the region's manager see the job, not its rows as the agency typed them.
        for role in (Role.HQ_ADMIN, Role.REGIONAL_MANAGER, Role.AUDITOR):
            reader = signed_in(app, setup.user(role))
            page = reader.get(job_url).get_data(as_text=True)
            assert "Work order import" in page and f"{job_url}/file" not in page
            assert reader.get(f"{job_url}/file").status_code == 404
        assert _count(app, WorkOrder) == 5
    finally:
        del app.config["SERVICE_IMPORT_MAX_ROWS"]


def test_orders_written_set_based_keep_the_rules_derived_fields(app, setup):
    """A job's orders carry what the form's would: certificate, rework both ways, stock,
    returns, repairs; the same file again skips every row."""
    with app.app_context(), unscoped("a returnable part in stock"):
        part = f.catalog_of(setup.line)["part"]
        f.give_stock(setup.a, part, 3)
        db.session.commit()
    app.config["SERVICE_IMPORT_MAX_ROWS"] = 2
    try:
        early = f.ago(days=12)
        rows = [_order(setup, 1, serial_number="SNREPEAT", received_at=_t(f.ago(days=5)),
                       responded_at=_t(f.ago(days=5) + timedelta(hours=1)),
                       completed_at=_t(f.ago(days=4))),
                _order(setup, 2, serial_number="SNREPEAT", received_at=_t(early),
                       responded_at=_t(early + timedelta(hours=1)),
                       completed_at=_t(early + timedelta(hours=3))),
                _order(setup, 3)]
        header = [*ORDER_HEADER, "parts", "purchase_date"]
        bought = (f.today() - timedelta(days=100)).isoformat()
        rows = [[*r, f"{part.part_number}*2" if i == 0 else "", bought]
                for i, r in enumerate(rows)]
        owner = signed_in(app, setup.user(Role.AGENCY_OWNER))
        job_url = _post(owner, "/service/orders/import", _csv(header, rows)).location
        result = owner.get(f"{job_url}/progress.json").get_json()["result"]
        assert result["created"] == 3, result
        with app.app_context(), unscoped("the orders written"):
            orders = {o.number: o for o in db.session.scalars(select(WorkOrder))}
            first, second = orders["IMP-000001"], orders["IMP-000002"]
            assert first.is_rework and first.rework_of_id == second.id  # found out of order
            assert first.is_engineer_certified and first.repairs and first.parts
            from service.models import PartReturn, PartStock

            stock = db.session.scalars(select(PartStock).where(
                PartStock.part_id == part.id)).one()
            assert (stock.quantity, stock.used_total) == (1, 2)
            returns = db.session.scalars(select(PartReturn)).all()
            assert [(r.work_order_id, r.quantity) for r in returns] == (
                [(first.id, 2)] if part.is_returnable and first.is_in_warranty else [])
        job_url = _post(owner, "/service/orders/import", _csv(header, rows)).location
        result = owner.get(f"{job_url}/progress.json").get_json()["result"]
        assert (result["created"], result["skipped"]) == (0, 3)
    finally:
        del app.config["SERVICE_IMPORT_MAX_ROWS"]


def test_catalogs_import_as_a_job_too(app, setup):
    app.config["SERVICE_IMPORT_MAX_ROWS"] = 5
    try:
        header = ["part_number", "name_zh", "name_en", "product_line", "unit_price",
                  "returnable"]
        rows = [[f"JOB-P{n:03d}", "电容", "Capacitor", setup.line.code, "12.50", "否"]
                for n in range(40)]
        desk = signed_in(app, setup.user(Role.HQ_PARTS))
        job_url = _post(desk, "/service/catalog/import?kind=part", _csv(header, rows)).location
        result = desk.get(f"{job_url}/progress.json").get_json()["result"]
        assert result["created"] == 40
        assert "Catalog import" in desk.get(job_url).get_data(as_text=True)
        rows[0][4] = "13.00"
        job_url = _post(desk, "/service/catalog/import?kind=part", _csv(header, rows)).location
        result = desk.get(f"{job_url}/progress.json").get_json()["result"]
        assert (result["updated"], result["unchanged"]) == (1, 39)
    finally:
        del app.config["SERVICE_IMPORT_MAX_ROWS"]


def test_every_job_kind_is_titled_in_both_languages(app):
    """The job page names its kind in the reader's language, never by its internal name."""
    for kind in ("service.import_orders", "service.import_revisits", "service.import_catalog"):
        with force_locale("zh_CN"):
            title = str(jobs.title_of(kind))
        assert kind not in title and title != str(jobs.UNTITLED)
    for kind in jobs.kinds():
        assert kind not in str(jobs.title_of(kind))


# --- constant memory --------------------------------------------------------------------------


def _peak(app, world, count: int) -> tuple[int, float]:
    body = _csv(ORDER_HEADER, [_order(world, n) for n in range(count)])
    path = Path(app.config["UPLOAD_ROOT"]) / f"memory-{count}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body)
    try:
        source = tabular.inspect(path, imports.ORDER_COLUMNS)
        with scoped(agency_scope(world.a.id)):
            importer = imports.OrderImport(world.a, f.staff(world.a))
            tracemalloc.start()
            started = time.perf_counter()
            report = imports.run(importer, tabular.iter_table(source, imports.ORDER_COLUMNS),
                                 keep_rows=False, write=False)
            seconds = time.perf_counter() - started
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
        assert report.count("created") == count, report.counts
        return peak, seconds
    finally:
        path.unlink()


def test_a_large_file_is_read_and_checked_in_constant_memory(app, ctx, setup, capsys):
    """20,000 orders (a list of all rows would take tens of MB): the peak stays under a
    bound, and hardly grows from 2,000 rows to 20,000 (the duplicate check keeps a hash per
    row, a few dozen bytes)."""
    small, _seconds = _peak(app, setup, 2000)
    large, seconds = _peak(app, setup, 20000)
    with capsys.disabled():
        print(f"\n20,000 order rows checked in {seconds:.1f} s; peak {large / 2**20:.1f} MiB "
              f"(2,000 rows: {small / 2**20:.1f} MiB)")
    assert large < 12 * 2**20
    assert large - small < 3 * 2**20
