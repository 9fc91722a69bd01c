"""The network calendar's page: HQ admin keeps the working hours and the exceptions the SLA
clocks run on; everyone reads it; bad input changes nothing; every change is audited."""
from datetime import date, time, timedelta

import pytest
from sqlalchemy import func, select

from dispatch import network_calendar
from dispatch.models import CalendarException, WorkingHours
from portal.audit.models import AuditEntry
from portal.auth.roles import Role
from portal.clock import local_today
from portal.extensions import db
from portal.tenancy import unscoped
from tests.factories import sign_in

HOURS = {f"opens_{d}": "08:30" for d in range(5)} | {f"closes_{d}": "17:30" for d in range(5)}


def _next_monday(app) -> date:
    with app.app_context():
        today = local_today()
    return today + timedelta(days=7 - today.weekday())


def _count(app, model, *where) -> int:
    with app.app_context(), unscoped("test counts rows"):
        return db.session.scalar(select(func.count()).select_from(model).where(*where))


def _actions(app) -> list[str]:
    with app.app_context(), unscoped("test reads the audit log"):
        return list(db.session.scalars(select(AuditEntry.action).where(
            AuditEntry.action.like("calendar.%")).order_by(AuditEntry.id)))


@pytest.fixture
def admin(client, world):
    sign_in(client, world.user(Role.HQ_ADMIN))
    return client


def test_hq_admin_sets_the_working_hours_and_the_clocks_read_them(app, admin):
    response = admin.post("/dispatch/calendar/hours", data=HOURS)  # Saturday and Sunday closed
    assert response.status_code == 302
    with app.test_request_context():
        cal = network_calendar.load()
        assert cal.hours[0] == (time(8, 30), time(17, 30)) and cal.hours[5] is None
    assert _actions(app) == ["calendar.hours_changed"]
    page = admin.get("/dispatch/calendar").get_data(as_text=True)
    assert 'value="08:30"' in page


@pytest.mark.parametrize("changes,message", [
    ({"closes_0": ""}, "Give both the opening and the closing time"),
    ({"opens_1": "18:00"}, "must be after the opening time"),
    ({"opens_2": "25:00"}, "Not a valid time"),
], ids=["half-open", "closes-before-opens", "not-a-time"])
def test_bad_hours_are_refused_and_change_nothing(app, admin, changes, message):
    before = _count(app, WorkingHours, WorkingHours.opens.is_not(None))
    response = admin.post("/dispatch/calendar/hours", data={**HOURS, **changes})
    assert response.status_code == 400 and message in response.get_data(as_text=True)
    assert _count(app, WorkingHours, WorkingHours.opens.is_not(None)) == before
    assert _actions(app) == []


def test_a_week_without_working_hours_is_refused(app, admin):
    response = admin.post("/dispatch/calendar/hours", data={})
    assert response.status_code == 400
    assert "At least one weekday" in response.get_data(as_text=True)


def test_an_exception_closes_a_day_and_is_removed_again(app, admin):
    monday = _next_monday(app)
    response = admin.post("/dispatch/calendar/exceptions", data={
        "day": monday.isoformat(), "closed": "y", "note": "公司年会"})
    assert response.status_code == 302
    with app.test_request_context():
        cal = network_calendar.load()
        assert cal.working_hours(monday) is None and cal.source(monday) == "exception"
    page = admin.get("/dispatch/calendar").get_data(as_text=True)
    assert "公司年会" in page
    with app.app_context(), unscoped("test finds the exception"):
        row_id = db.session.scalar(select(CalendarException.id).where(
            CalendarException.day == monday))
    assert admin.post(f"/dispatch/calendar/exceptions/{row_id}/remove").status_code == 302
    assert _count(app, CalendarException) == 0
    assert _actions(app) == ["calendar.exception_saved", "calendar.exception_removed"]


def test_an_exception_opens_a_sunday_with_its_hours(app, admin):
    sunday = _next_monday(app) - timedelta(days=1)
    admin.post("/dispatch/calendar/exceptions", data={
        "day": sunday.isoformat(), "opens": "10:00", "closes": "16:00", "note": "周日促销"})
    with app.test_request_context():
        assert network_calendar.load().working_hours(sunday) == (time(10), time(16))


@pytest.mark.parametrize("data,message", [
    ({"day": "2020-01-06", "closed": "y", "note": "x"}, "A past day cannot change"),
    ({"closed": "y", "note": ""}, "This field is required"),
    ({"note": "no hours"}, "tick “Closed all day”"),
    ({"opens": "12:00", "closes": "09:00", "note": "x"}, "must be after the opening time"),
    ({"day": "2099-01-05", "closed": "y", "note": "x"}, "At most three years ahead"),
], ids=["past", "no-note", "no-hours", "backwards", "too-far"])
def test_bad_exceptions_are_refused_and_change_nothing(app, admin, data, message):
    data = {"day": _next_monday(app).isoformat(), **data}
    response = admin.post("/dispatch/calendar/exceptions", data=data)
    assert response.status_code == 400 and message in response.get_data(as_text=True)
    assert _count(app, CalendarException) == 0 and _actions(app) == []


@pytest.mark.parametrize("role", [Role.AGENCY_OWNER, Role.ENGINEER, Role.REGIONAL_MANAGER,
                                  Role.AUDITOR, Role.HQ_SERVICE])
def test_everyone_reads_the_calendar_only_hq_admin_changes_it(app, client, world, role):
    sign_in(client, world.user(role))
    page = client.get("/dispatch/calendar")
    assert page.status_code == 200
    assert 'action="/dispatch/calendar/hours"' not in page.get_data(as_text=True)
    assert client.post("/dispatch/calendar/hours", data=HOURS).status_code in (403, 404)
    assert client.post("/dispatch/calendar/exceptions", data={
        "day": _next_monday(app).isoformat(), "closed": "y", "note": "x"}).status_code in (403,
                                                                                        404)
    assert _actions(app) == []


def test_the_preview_names_statutory_holidays(app, admin):
    with app.test_request_context():
        cal = network_calendar.load()
        assert cal.source(date(2026, 10, 1)) == "holiday"
        assert cal.working_hours(date(2026, 10, 1)) is None
