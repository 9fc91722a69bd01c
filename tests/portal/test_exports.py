"""Exports speak the network's time: every instant in a CSV or XLSX is on the local wall clock
and its heading names the zone; the XLSX is typed (date cells, money as numbers)."""
import csv
import io
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import openpyxl

from portal import clock
from portal.auth.roles import Role
from portal.exports import cell, xlsx_bytes, zone_heading
from portal.extensions import db
from portal.tenancy import unscoped
from tests.factories import sign_in
from tests.service import factories as f

# 16:30 UTC on New Year's Eve is 00:30 on New Year's Day in Shanghai.
LATE_UTC = datetime(2026, 12, 31, 16, 30, tzinfo=UTC)


def test_an_instant_is_written_on_the_local_clock_under_a_heading_naming_the_zone(ctx):
    assert cell(LATE_UTC) == "2027-01-01 00:30:00"
    assert cell(date(2027, 1, 1)) == "2027-01-01"
    assert cell(Decimal("1234.50")) == "1234.50"
    assert zone_heading("Received") == "Received (Asia/Shanghai)"


def test_the_xlsx_is_typed_and_never_holds_a_formula(ctx):
    book = openpyxl.load_workbook(io.BytesIO(xlsx_bytes(
        ["when", "day", "amount", "hours", "text"],
        [[LATE_UTC, date(2027, 1, 1), Decimal("1234.50"), 3, "=HYPERLINK(\"x\")"]])))
    row = [c for c in list(book.active.rows)[1]]
    assert row[0].value == datetime(2027, 1, 1, 0, 30) and row[0].is_date
    assert row[1].value == datetime(2027, 1, 1) and row[1].number_format == "yyyy-mm-dd"
    assert row[2].value == Decimal("1234.50") or row[2].value == 1234.5
    assert row[2].data_type == "n" and row[2].number_format == "#,##0.00"
    assert row[3].value == 3
    assert row[4].value.startswith("'=") and row[4].data_type == "s"


def _late_order(app, world) -> datetime:
    """An order received at 16:30 UTC two days ago: 00:30 of the next day in Shanghai.
    Returns that local wall-clock time."""
    received = (clock.now() - timedelta(days=2)).replace(hour=16, minute=30, second=0,
                                                           microsecond=0)
    with app.app_context(), unscoped("test order"):
        f.make_order(world.a, world.line, received_at=received, service_type="onsite",
                     customer_address="上海市测试路 1 号", distance_km=Decimal("12.5"))
        db.session.commit()
    local = received.astimezone(ZoneInfo("Asia/Shanghai")).replace(tzinfo=None)
    assert (local.hour, local.date()) == (0, received.date() + timedelta(days=1))
    return local


def test_the_orders_csv_shows_local_times_with_the_zone_in_the_heading(app, client, world):
    local = _late_order(app, world)
    sign_in(client, world.user(Role.AGENCY_OWNER))
    response = client.get("/service/orders/export.csv")
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))
    header = rows[0]
    received = next(i for i, h in enumerate(header) if h.startswith("Received"))
    assert header[received] == "Received (Asia/Shanghai)"
    assert f"{local:%Y-%m-%d %H:%M:%S}" in [row[received] for row in rows[1:]]


def test_the_orders_xlsx_has_date_cells_on_the_local_clock(app, client, world):
    local = _late_order(app, world)
    sign_in(client, world.user(Role.AGENCY_OWNER))
    response = client.get("/service/orders/export.csv?format=xlsx")
    assert response.mimetype.endswith("spreadsheetml.sheet")
    assert "work-orders-" in response.headers["Content-Disposition"]
    sheet = openpyxl.load_workbook(io.BytesIO(response.data)).active
    rows = list(sheet.iter_rows(values_only=True))
    received = rows[0].index("Received (Asia/Shanghai)")
    assert local in [row[received] for row in rows[1:]]
    distance = rows[0].index("Distance (km)")
    assert 12.5 in [row[distance] for row in rows[1:]]
    assert "13812345678" not in str(rows)  # masked, as in the CSV


def test_the_audit_xlsx_is_local_and_typed(app, client, world):
    sign_in(client, world.user(Role.HQ_ADMIN))
    response = client.get("/audit/export.csv?format=xlsx&action=auth")
    sheet = openpyxl.load_workbook(io.BytesIO(response.data)).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][1] == "at (Asia/Shanghai)"
    assert len(rows) > 1 and all(isinstance(row[1], datetime) for row in rows[1:])
