"""The network calendar's page: the hours and exceptions the SLA clocks run on."""
from datetime import timedelta

from flask import Blueprint, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from dispatch import calendar, network_calendar, policy
from dispatch.forms import ActionForm, ExceptionForm, HoursForm
from dispatch.models import WEEKDAY_LABELS, CalendarException
from portal.auth.access import allow, performs
from portal.clock import local_today
from portal.commit import done, perform
from portal.extensions import db
from portal.navigation import add_nav

bp = Blueprint("dispatch", __name__, url_prefix="/dispatch")

add_nav("dispatch.calendar_page", _l("Network calendar"), policy.CALENDAR_READERS, order=39,
        group="work")

PREVIEW_DAYS = 42


def _page(hours_form=None, exception_form=None, status=200):
    today = local_today()
    current = network_calendar.week()
    if hours_form is None:
        hours_form = HoursForm()
        for day in range(7):
            span = current.hours(day)
            hours_form[f"opens_{day}"].data = span[0] if span else None
            hours_form[f"closes_{day}"].data = span[1] if span else None
    cal = network_calendar.load()
    preview = [(day, cal.source(day), cal.working_hours(day))
               for day in (today + timedelta(days=n) for n in range(PREVIEW_DAYS))]
    return render_template(
        "dispatch/calendar.html", hours_form=hours_form,
        exception_form=exception_form or ExceptionForm(), week=current,
        weekdays=WEEKDAY_LABELS, exceptions=network_calendar.exceptions(start=today),
        preview=preview, sources=calendar.SOURCE_LABELS, today=today,
        known_until=calendar.KNOWN_UNTIL), status


@bp.route("/calendar")
@allow(*policy.CALENDAR_READERS)
def calendar_page():
    return _page()


@bp.route("/calendar/hours", methods=["POST"])
@performs("calendar.hours_changed")
def calendar_hours():
    form = HoursForm()
    if form.validate_on_submit():
        hours = {day: (form[f"opens_{day}"].data, form[f"closes_{day}"].data)
                 for day in range(7)}
        if perform(network_calendar.save_hours, network_calendar.week(), hours, form=form):
            return done(_("The working hours are saved."), "dispatch.calendar_page")
    return _page(hours_form=form, status=400)


@bp.route("/calendar/exceptions", methods=["POST"])
@performs("calendar.exception_saved")
def calendar_exception():
    form = ExceptionForm()
    if form.validate_on_submit():
        opens, closes = (None, None) if form.closed.data else (form.opens.data,
                                                                 form.closes.data)
        if not form.closed.data and opens is None and closes is None:
            form.opens.errors = [*form.opens.errors,
                                 _("Give the day's hours, or tick “Closed all day”.")]
        elif perform(network_calendar.save_exception, form.day.data, opens, closes,
                     form.note.data, today=local_today(), form=form):
            return done(_("The calendar exception is set."), "dispatch.calendar_page")
    return _page(exception_form=form, status=400)


@bp.route("/calendar/exceptions/<int:exception_id>/remove", methods=["POST"])
@performs("calendar.exception_removed")
def calendar_exception_remove(exception_id):
    row = db.first_or_404(db.select(CalendarException).where(
        CalendarException.id == exception_id))
    if ActionForm().validate_on_submit() and perform(
            network_calendar.remove_exception, row, today=local_today()):
        return done(_("The calendar exception is removed."), "dispatch.calendar_page")
    return redirect(url_for("dispatch.calendar_page"))
