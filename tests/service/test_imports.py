"""Bulk imports: reading files safely, per-row errors, all-or-nothing, idempotence."""
import csv
import io
from datetime import timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from flask_babel import force_locale
from openpyxl import Workbook
from sqlalchemy import func, select
from werkzeug.datastructures import FileStorage

from portal.audit.models import AuditEntry
from portal.clock import local_today
from portal.errors_domain import DomainError
from portal.extensions import db
from portal.tenancy import agency_scope, scoped, unscoped
from service import catalog, imports, tabular
from service.models import (
    FaultCode,
    Part,
    PartStock,
    RepairCode,
    Revisit,
    WorkOrder,
    WorkOrderPart,
)
from tests.service import factories as f

HEADER = ["order_number", "service_type", "customer_name", "customer_phone", "product_model",
          "serial_number", "purchase_date", "received_at", "responded_at", "arrived_at",
          "completed_at", "distance_km", "engineer", "fault_code", "repair_codes",
          "resolution", "first_time_fix", "parts"]


def upload(rows, header=HEADER, *, name="orders.csv", fmt="csv") -> FileStorage:
    if fmt == "xlsx":
        book = Workbook()
        sheet = book.active
        sheet.append(header)
        for row in rows:
            sheet.append([row.get(h, "") for h in header])
        out = io.BytesIO()
        book.save(out)
        data = out.getvalue()
    else:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(header)
        for row in rows:
            writer.writerow([row.get(h, "") for h in header])
        data = out.getvalue().encode("utf-8-sig")
    return FileStorage(io.BytesIO(data), filename=name)


def _t(moment) -> str:
    """A time as a user in the default zone types it."""
    return moment.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d %H:%M")


@pytest.fixture
def a(ctx, world):
    with unscoped("test data"):
        codes = f.catalog_of(world.line)
        engineer = f.make_engineer(world.a, world.line, name="王伟")
    with scoped(agency_scope(world.a.id)):
        world.codes, world.engineer = codes, engineer
        yield world


def row(a, n, **kw):
    received = f.ago(days=5)
    base = {"order_number": f"IMP-{n}", "service_type": "送修", "customer_name": "李女士",
            "customer_phone": "13900001111", "product_model": f.model_of(a.line).code,
            "serial_number": f"SNIMP{n:04d}", "purchase_date": (f.today() - timedelta(days=200))
            .isoformat(), "received_at": _t(received),
            "responded_at": _t(received + timedelta(hours=1)),
            "completed_at": _t(received + timedelta(days=1)), "engineer": "王伟",
            "fault_code": a.codes["fault"].code, "repair_codes": a.codes["repair"].code,
            "resolution": "更换主板", "first_time_fix": "是"}
    base.update(kw)
    return base


def _orders() -> int:
    return db.session.scalar(select(func.count(WorkOrder.id)))


def run(world, rows, *, good_only=False, fmt="csv", header=HEADER):
    table = tabular.read_table(upload(rows, header, fmt=fmt), imports.ORDER_COLUMNS)
    return imports.import_work_orders(world.a, table, good_only=good_only,
                                      acting_user=f.staff(world.a))


def test_a_good_file_imports_and_importing_it_again_creates_nothing(a):
    rows = [row(a, 1), row(a, 2, service_type="onsite", arrived_at=_t(f.ago(days=4, hours=20)),
                        distance_km="12.5"), row(a, 3, service_type="phone", repair_codes="")]
    report = run(a, rows)
    assert report.applied and report.count("created") == 3 and not report.errors
    order = db.session.scalars(select(WorkOrder).where(WorkOrder.number == "IMP-2")).one()
    assert order.service_type == "onsite" and str(order.distance_km) == "12.50"
    assert order.engineer_id == a.engineer.id and order.is_in_warranty
    again = run(a, rows)
    assert again.count("skipped") == 3 and again.count("created") == 0
    assert _orders() == 3
    with unscoped("the audit log is HQ's"):
        actions = list(db.session.scalars(select(AuditEntry.action).where(
            AuditEntry.action == "work_order.imported")))
    assert actions == ["work_order.imported"]  # one entry for the file; none for a no-op


def test_xlsx_files_import_too(a):
    report = run(a, [row(a, 1)], fmt="xlsx")
    assert report.applied and report.count("created") == 1


def test_one_bad_row_writes_nothing(a):
    rows = [row(a, 1), row(a, 2, received_at="yesterday"), row(a, 3)]
    report = run(a, rows)
    assert not report.applied and len(report.errors) == 1
    assert report.errors[0].number == 3  # the header is row 1
    assert _orders() == 0
    with unscoped("the audit log is HQ's"):
        assert db.session.scalar(select(func.count(AuditEntry.id)).where(
            AuditEntry.action.like("work_order%"))) == 0


def test_good_only_keeps_the_good_rows(a):
    rows = [row(a, 1), row(a, 2, engineer="不存在的人"), row(a, 3)]
    report = run(a, rows, good_only=True)
    assert report.applied and report.count("created") == 2 and len(report.errors) == 1
    assert sorted(db.session.scalars(select(WorkOrder.number))) == ["IMP-1", "IMP-3"]


def test_row_errors_are_in_the_readers_language(a):
    rows = [row(a, 1, product_model="NOPE", order_number="", completed_at="2026-13-45 99:99")]
    with force_locale("zh_CN"):
        report = run(a, rows)
    messages = " ".join(report.errors[0].messages)
    assert "型号" in messages and "必填" in messages
    with force_locale("en"):
        report = run(a, rows)
    assert "unknown model" in " ".join(report.errors[0].messages)


@pytest.mark.parametrize("changes", [
    {"order_number": ""},
    {"service_type": "teleport"},
    {"purchase_date": "15/03/2026"},
    {"received_at": ""},
    {"completed_at": _t(f.ago(days=10))},          # before it was received
    {"responded_at": _t(f.ago(days=-2))},          # in the future
    {"distance_km": "-3", "service_type": "onsite"},
    {"distance_km": "abc"},
    {"first_time_fix": "maybe"},
    {"repair_codes": "NOPE"},
    {"fault_code": "NOPE"},
    {"parts": "NOPE*1"},
    {"parts": "{part}*-1"},
    {"parts": "{part}*1"},                          # nothing in stock
    {"customer_name": "x" * 65},
])
def test_bad_cells_are_reported_and_nothing_is_written(a, changes):
    changes = {k: v.replace("{part}", a.codes["part"].part_number) for k, v in changes.items()}
    report = run(a, [row(a, 1, **changes)])
    assert len(report.errors) == 1 and report.errors[0].messages
    assert _orders() == 0


def test_another_agencys_engineer_is_unknown(ctx, world):
    with unscoped("B's engineer and A's catalog"):
        f.make_engineer(world.b, world.line, name="赵六")
        world.codes = f.catalog_of(world.line)
    with scoped(agency_scope(world.a.id)):
        report = run(world, [row(world, 1, engineer="赵六")])
    assert report.errors and _orders() == 0


def test_the_same_number_twice_in_a_file_is_an_error(a):
    report = run(a, [row(a, 1), row(a, 1, serial_number="SNOTHER")], good_only=True)
    assert report.count("created") == 1 and len(report.errors) == 1


def test_stock_is_checked_across_the_rows(a):
    part = a.codes["part"]
    with unscoped("stock"):
        f.give_stock(a.a, part, 1)
    rows = [row(a, 1, parts=f"{part.part_number}*1"), row(a, 2, parts=f"{part.part_number}")]
    report = run(a, rows)
    assert not report.applied and len(report.errors) == 1 and _orders() == 0
    stock = db.session.scalars(select(PartStock).where(PartStock.part_id == part.id)).one()
    db.session.refresh(stock)
    assert stock.quantity == 1


@pytest.mark.parametrize("cell, quantity", [
    ("{n}", 1), ("{n}*2", 2), ("{n} x 2", 2), ("{n}×2", 2), ("{n}X2", 2),
])
def test_part_numbers_holding_an_x_import_with_their_quantity(a, cell, quantity):
    with unscoped("HQ's catalog and the agency's stock"):
        part = catalog.save_catalog_entry("part", None, {
            "part_number": "WM-XB-10", "name_zh": "排水泵", "name_en": "Drain pump",
            "product_line_id": a.line.id, "unit_price": Decimal("45.00")}, acting_user=f.admin())
        f.give_stock(a.a, part, 5)
    report = run(a, [row(a, 1, parts=cell.format(n=part.part_number.lower()))])
    assert report.applied and not report.errors, [r.messages for r in report.errors]
    used = db.session.scalars(select(WorkOrderPart.quantity).where(
        WorkOrderPart.part_id == part.id)).one()
    assert used == quantity


@pytest.mark.parametrize("cell", ["WM-XB-10*0", "WM-XB-10*-1", "WM-XB-10 x -2", "WM-XB"])
def test_bad_part_cells_are_row_errors(a, cell):
    with unscoped("HQ's catalog"):
        catalog.save_catalog_entry("part", None, {
            "part_number": "WM-XB-10", "name_zh": "排水泵", "name_en": "Drain pump",
            "product_line_id": a.line.id, "unit_price": Decimal("45.00")}, acting_user=f.admin())
    report = run(a, [row(a, 1, parts=cell)])
    assert not report.applied and _orders() == 0
    assert "Parts used" in " ".join(report.errors[0].messages)


def test_rework_is_found_inside_one_file(a):
    first = row(a, 1, serial_number="SNSAME", received_at=_t(f.ago(days=9)),
                responded_at=_t(f.ago(days=9) + timedelta(hours=1)),
                completed_at=_t(f.ago(days=8)))
    second = row(a, 2, serial_number="SNSAME")
    report = run(a, [second, first])  # out of time order on purpose
    assert report.applied
    repeat = db.session.scalars(select(WorkOrder).where(WorkOrder.number == "IMP-2")).one()
    assert repeat.is_rework


def test_headers_may_be_the_chinese_or_english_labels(a):
    keys = {c.key: c for c in imports.ORDER_COLUMNS}
    with force_locale("zh_CN"):
        zh = [str(keys[h].label) for h in HEADER]
    with force_locale("en"):
        en = [str(keys[h].label) for h in HEADER]
    good = row(a, 1)
    for header in (zh, en):
        table = tabular.read_table(upload([dict(zip(header, (good.get(h, "") for h in HEADER),
                                                    strict=True))], header),
                                   imports.ORDER_COLUMNS)
        assert table[0][1]["order_number"] == "IMP-1"


@pytest.mark.parametrize("content, name", [
    (b"", "empty.csv"),
    (b"   \n", "blank.csv"),
    (b"order_number,service_type\n", "header-only.csv"),
    (b"foo,bar\n1,2\n", "wrong-columns.csv"),
    (b"PK\x03\x04not really a zip", "broken.xlsx"),
    (b"\xff\xfe\x00\x00garbage\x00", "binary.csv"),
    (b"order_number\n\"unclosed", "malformed.csv"),
])
def test_unreadable_files_are_refused(ctx, content, name):
    with pytest.raises(DomainError) as error:
        tabular.read_table(FileStorage(io.BytesIO(content), filename=name),
                           imports.ORDER_COLUMNS)
    assert error.value.field == "file"


def test_no_file_is_refused(ctx):
    with pytest.raises(DomainError):
        tabular.read_table(None, imports.ORDER_COLUMNS)
    with pytest.raises(DomainError):
        tabular.read_table(FileStorage(io.BytesIO(b"x"), filename=""), imports.ORDER_COLUMNS)


def test_huge_files_and_too_many_rows_are_refused(ctx, app):
    big = b"order_number\n" + b"X" * (tabular.max_bytes() + 10)
    with pytest.raises(DomainError):
        tabular.read_table(FileStorage(io.BytesIO(big), filename="big.csv"),
                           imports.ORDER_COLUMNS)
    app.config["SERVICE_IMPORT_MAX_ROWS"] = 5
    try:
        many = upload([{"order_number": str(n)} for n in range(6)])
        with pytest.raises(DomainError):
            tabular.read_table(many, imports.ORDER_COLUMNS)
    finally:
        del app.config["SERVICE_IMPORT_MAX_ROWS"]


def test_templates_have_the_readers_headers(ctx):
    with force_locale("zh_CN"):
        response = tabular.template_response("t", imports.ORDER_COLUMNS, "csv")
    assert "工单号" in response.get_data(as_text=True)
    response = tabular.template_response("t", imports.ORDER_COLUMNS, "xlsx")
    assert response.get_data()[:2] == b"PK"


# --- revisits and catalogs ----------------------------------------------------------------------


def test_revisit_import_is_idempotent_and_all_or_nothing(ctx, world):
    with unscoped("HQ imports revisits"):
        order = f.make_order(world.a, world.line, completed=True)
        open_order = f.make_order(world.a, world.line)
        header = ["agency_code", "order_number", "score", "comment"]
        good = {"agency_code": world.a.code, "order_number": order.number, "score": "5",
                "comment": "满意"}
        bad = [{**good, "score": "6"}, {**good, "agency_code": world.b.code},
               {**good, "order_number": open_order.number}]
        for wrong in bad:
            table = tabular.read_table(upload([good, wrong], header), imports.REVISIT_COLUMNS)
            report = imports.import_revisits(table, acting_user=f.service_desk())
            assert not report.applied and len(report.errors) == 1
            assert db.session.scalar(select(func.count(Revisit.id))) == 0
        table = tabular.read_table(upload([good], header), imports.REVISIT_COLUMNS)
        assert imports.import_revisits(table, acting_user=f.service_desk()).count("created") == 1
        table = tabular.read_table(upload([good], header), imports.REVISIT_COLUMNS)
        assert imports.import_revisits(table, acting_user=f.service_desk()).count("unchanged") == 1
        assert db.session.scalar(select(func.count(Revisit.id))) == 1


def test_catalog_import_upserts_by_code(ctx, world):
    header = ["part_number", "name_zh", "name_en", "product_line", "unit_price", "returnable"]
    rows = [{"part_number": "AC-X1", "name_zh": "电容", "name_en": "Capacitor",
             "product_line": world.line.code, "unit_price": "35.5", "returnable": "否"},
            {"part_number": "AC-X2", "name_zh": "主板", "name_en": "Main board",
             "product_line": world.line.code, "unit_price": "420", "returnable": "是"}]
    with unscoped("HQ maintains the catalog"):
        report = imports.import_catalog("part", tabular.read_table(upload(rows, header),
                                                                    imports.CATALOG_COLUMNS["part"]),
                                                                    acting_user=f.admin())
        assert report.count("created") == 2
        rows[0]["unit_price"] = "36.00"
        report = imports.import_catalog("part", tabular.read_table(upload(rows, header),
                                                                    imports.CATALOG_COLUMNS["part"]),
                                                                    acting_user=f.admin())
        assert (report.count("updated"), report.count("unchanged")) == (1, 1)
        price = db.session.scalar(select(Part.unit_price).where(Part.part_number == "AC-X1"))
        assert str(price) == "36.00"
        for wrong in ({"unit_price": "-1"}, {"unit_price": "1.005"}, {"product_line": "NOPE"},
                      {"returnable": "perhaps"}, {"part_number": ""}):
            bad = [{**rows[0], **wrong}]
            report = imports.import_catalog("part", tabular.read_table(
                upload(bad, header), imports.CATALOG_COLUMNS["part"]), acting_user=f.admin())
            assert not report.applied and report.errors


def test_code_catalog_imports(ctx, world):
    header = ["product_line", "code", "description_zh", "description_en", "standard_hours"]
    rows = [{"product_line": world.line.code, "code": "r-9", "description_zh": "更换电机",
             "description_en": "Replace motor", "standard_hours": "2.5"}]
    with unscoped("HQ maintains the catalog"):
        report = imports.import_catalog("repair_code", tabular.read_table(
            upload(rows, header), imports.CATALOG_COLUMNS["repair_code"]), acting_user=f.admin())
        assert report.count("created") == 1
        hours = db.session.scalar(select(RepairCode.standard_hours).where(
            RepairCode.code == "R-9"))
        assert str(hours) == "2.50"
        report = imports.import_catalog("fault_code", tabular.read_table(
            upload(rows, header[:4]), imports.CATALOG_COLUMNS["fault_code"]), acting_user=f.admin())
        assert report.count("created") == 1
        assert db.session.scalar(select(func.count(FaultCode.id))) == 1


def test_a_workbook_that_unpacks_to_far_more_is_refused(ctx, app):
    import zipfile

    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/worksheets/sheet1.xml", b"\0" * 1_000_000)
    app.config["SERVICE_IMPORT_MAX_BYTES"] = 10 * 1024
    try:
        with pytest.raises(DomainError) as error:
            tabular.read_table(FileStorage(io.BytesIO(packed.getvalue()), filename="bomb.xlsx"),
                               imports.ORDER_COLUMNS)
        assert "unpacks to more than 50 KB" in error.value.message
    finally:
        del app.config["SERVICE_IMPORT_MAX_BYTES"]


def _month_ago() -> str:
    """A local day a month back (a fixed date would lie in the future on an earlier clock)."""
    return (local_today() - timedelta(days=30)).isoformat()


def test_the_command_line_imports_through_the_same_services(app, world, tmp_path):
    with app.app_context(), unscoped("catalog"):
        model = f.model_of(world.line).code
        db.session.commit()
    good = tmp_path / "orders.csv"
    good.write_text("order_number,service_type,customer_name,customer_phone,product_model,"
                    f"serial_number,received_at\nCLI-1,送修,周先生,13600000001,{model},SNCLI1,"
                    f"{_month_ago()} 09:00\n", encoding="utf-8")
    runner = app.test_cli_runner()
    result = runner.invoke(args=["service", "import-orders", world.a.code, str(good)])
    assert result.exit_code == 0, result.output
    again = runner.invoke(args=["service", "import-orders", world.a.code, str(good)])
    assert "skipped 1" in again.output
    bad = tmp_path / "bad.csv"
    bad.write_text("order_number\nX\n", encoding="utf-8")
    assert runner.invoke(args=["service", "import-orders", world.a.code,
                               str(bad)]).exit_code != 0
    assert runner.invoke(args=["service", "import-orders", "NOPE", str(good)]).exit_code != 0
    with app.app_context(), unscoped("count"):
        assert db.session.scalar(select(func.count(WorkOrder.id))) == 1
