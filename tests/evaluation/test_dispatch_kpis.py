"""Evaluation from the system's clocks (#18): a worked example.

Agency A's quarter 2027Q1 holds four dispatched orders (made through offers, appointments and
the work order's write path while the clock moves) and three typed ones. Scheme version 2,
made for 2027Q1, grades dispatched orders by their SLA clocks and carries the appointment
rate (预约率) and the kept-window rate (预约达成率); version 1 still rules earlier quarters.

All on Tuesday 12 January 2027 unless said (Shanghai time; a business day 08:30–17:30; the
network's default targets from the 09:00 call: appointment 4 business hours → 13:00 Tue,
arrival and diagnosis 18 → Thu 09:00, phone completion 9 → Wed 09:00):

- D1 on site: booked 09:30 (in time) for Wed 14–16, rescheduled by the agency to Wed 09–11;
  the arrival saved Wed 10:00 → on time (business hours), inside the current window (not the
  first one). Typed as Wed 09:55 it is 24 h 55 min after the call: late by the typed 24 h.
- D2 on site: booked 15:00 (late) for Thu 14–16; the arrival typed as Tue 12:00 (3 h after the
  call: the typed SLA of 24 h looks met) but saved Thu 16:30 → the clock breached, and after
  the window.
- D3 carry-in: booked 10:00 (in time) for Tue 14–16; diagnosed 14:30 → on time.
- D4 phone: completed 11:00 → on time (a phone order's clock is its completion).
- T1 carry-in 1 h, T2 on site 30 h (late), T3 on site 2 h: typed, no clocks.

Timeliness 5 of 7 = 71.43 % (D1 D3 D4 T1 T3), 4 of 7 by the clocks (57 %), 3 typed;
appointment rate 2 of 3 = 66.67 % (D1 D3), kept-window rate 1 of 2 = 50.00 % (D1), all by
the clocks. The same orders in 2026Q4 (version 1): timeliness from the typed times only,
5 of 7 again but other orders (D1 late, D2 on time), no appointment KPIs, nothing stored or
shown about clocks.
"""
import io
import re
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from flask_babel import force_locale
from flask_babel import gettext as _
from pypdf import PdfReader
from sqlalchemy import select
from sqlalchemy.orm import undefer

from dispatch import sla
from dispatch.appointments import book_appointment, reschedule_appointment
from evaluation import kpis, reports, schemes
from evaluation.models import Report, Scheme
from portal.auth.roles import Role
from portal.extensions import db
from portal.periods import Period
from portal.tenancy import unscoped
from service.services import PLAIN_FIELDS, update_work_order
from tests.dispatch.test_offers import Net, as_agency
from tests.evaluation import factories as f
from tests.factories import sign_in
from tests.service.factories import catalog_of, make_engineer

SHANGHAI = ZoneInfo("Asia/Shanghai")
D = Decimal
NEW = Period(2027, 1)
OLD = Period(2026, 4)


def local(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=SHANGHAI).astimezone(UTC)


def _data(order, **changes) -> dict:
    """The order's input as its edit form posts it, with changes."""
    data = {key: getattr(order, key) for key in PLAIN_FIELDS}
    data.update(number=order.number, product_model_id=order.product_model_id,
                product_line_id=order.product_line_id, repair_code_ids=[], parts=[])
    return {**data, **changes}


class Story:
    """The worked example from Tuesday `day` on (see the module's text)."""

    def __init__(self, world, traveller, day: date):
        self.world, self.travel, self.day = world, traveller, day
        self.net = Net(world)
        with unscoped("test fixtures"):
            self.engineer = make_engineer(self.net.a, world.line)
            codes = catalog_of(world.line)
            self.repair, self.fault = codes["repair"].id, codes["fault"].id

    def at(self, days: int, hour: int, minute: int = 0) -> datetime:
        moment = local(self.day + timedelta(days=days), hour, minute)
        self.travel.move_to(moment)
        return moment

    def dispatched(self, service_type: str):
        self.at(0, 9)
        request = self.net.call(service_type=service_type)
        offer = self.net.offer(request)
        self.at(0, 9, 5)
        return self.net.accept(offer)

    def book(self, order, start: datetime, end: datetime):
        with as_agency(self.net.staff):
            return book_appointment(order, self.engineer.id, start, end,
                                    acting_user=self.net.staff)

    def save(self, order, **changes) -> None:
        with as_agency(self.net.staff):
            update_work_order(self.net.a, order, _data(order, **changes),
                              acting_user=self.net.staff)

    def complete(self, order, typed: datetime) -> None:
        self.save(order, completed_at=typed, engineer_id=self.engineer.id,
                  fault_code_id=self.fault, repair_code_ids=[self.repair],
                  resolution="更换温控器后正常")

    def build(self) -> dict:
        day, orders = self.day, {}
        # D1: in time, rescheduled by the agency; arrives inside the current window.
        d1 = orders["D1"] = self.dispatched("onsite")
        self.at(0, 9, 30)
        self.book(d1, local(day + timedelta(days=1), 14), local(day + timedelta(days=1), 16))
        self.at(0, 9, 40)
        with as_agency(self.net.staff):
            reschedule_appointment(d1, self.engineer.id, local(day + timedelta(days=1), 9),
                                   local(day + timedelta(days=1), 11), "agency",
                                   acting_user=self.net.staff)
        # D2: booked late; the arrival typed early but saved late (after the window too).
        d2 = orders["D2"] = self.dispatched("onsite")
        self.at(0, 15)
        self.book(d2, local(day + timedelta(days=2), 14), local(day + timedelta(days=2), 16))
        # D3: carry-in, booked in time, diagnosed in time.
        d3 = orders["D3"] = self.dispatched("carry_in")
        self.at(0, 10)
        self.book(d3, local(day, 14), local(day, 16))
        # D4: phone, completed in time.
        d4 = orders["D4"] = self.dispatched("phone")
        self.at(0, 11)
        self.complete(d4, local(day, 10, 50))
        self.at(0, 14, 30)
        self.save(d3, fault_code_id=self.fault, engineer_id=self.engineer.id)
        self.at(0, 16)
        self.complete(d3, local(day, 15, 50))
        self.at(1, 10)
        self.save(d1, arrived_at=local(day + timedelta(days=1), 9, 55), distance_km=D("5.00"))
        self.at(1, 12)
        self.complete(d1, local(day + timedelta(days=1), 11, 50))
        self.at(2, 16, 30)
        self.save(d2, arrived_at=local(day, 12), distance_km=D("5.00"))
        self.at(2, 17)
        self.complete(d2, local(day + timedelta(days=2), 16, 50))
        with unscoped("typed orders of the same quarter"):
            later = day + timedelta(days=8)
            orders["T1"] = f.order(self.net.a, self.world.line, day=later, hours=1)
            orders["T2"] = f.order(self.net.a, self.world.line, day=later,
                                   service_type="onsite", hours=30)
            orders["T3"] = f.order(self.net.a, self.world.line, day=later,
                                   service_type="onsite", hours=2)
        return orders


def _clocks(net, order) -> dict:
    with as_agency(net.owner):
        return {c.milestone: c.state() for c in sla.order_clocks(net.a.id, order.id)}


def _version_2(traveller) -> Scheme:
    traveller.move_to(local(date(2026, 12, 7), 10))
    with unscoped("HQ makes the next version"):
        data = {**schemes.default_terms(), "period": NEW, "note": "dispatch clocks",
                "min_timeliness": 1, "min_appointment": 1, "min_kept_window": 1}
        return schemes.create_scheme(data, acting_user=f.person(Role.HQ_ADMIN))


@pytest.fixture
def traveller(ctx):
    with time_machine.travel(local(date(2026, 12, 7), 10), tick=False) as moving:
        yield moving


def _flat(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _measured(app, locale: str, clocks: int, of: int, percent: int) -> str:
    with app.test_request_context(), force_locale(locale):
        return _("%(clocks)s of %(of)s by system clocks (%(percent)s %%), %(typed)s by typed "
                 "times", clocks=clocks, of=of, percent=percent, typed=of - clocks)


def test_a_quarter_of_dispatched_orders_grades_timeliness_from_the_clocks(
        app, ctx, world, traveller, client):
    scheme = _version_2(traveller)
    assert scheme.version == 2 and scheme.dispatch_clocks
    story = Story(world, traveller, date(2027, 1, 12))
    orders = story.build()
    # The clocks as the portal recorded them.
    assert _clocks(story.net, orders["D2"])["arrival"] == sla.ClockState.MET_LATE
    assert _clocks(story.net, orders["D2"])["appointment"] == sla.ClockState.MET_LATE
    assert orders["D2"].arrived_at == local(date(2027, 1, 12), 12)  # the typed time looks fine
    for name in ("D1", "D3"):
        assert set(_clocks(story.net, orders[name]).values()) == {sla.ClockState.MET}
    assert _clocks(story.net, orders["D4"]) == {"completion": sla.ClockState.MET}

    traveller.move_to(local(date(2027, 4, 2), 9))
    with unscoped("HQ computes and publishes the quarter"):
        quarter = f.published(NEW)
        assert quarter.scheme_id == scheme.id
        result = f.result_of(quarter, world.a)
        values = f.values_of(result)
        timeliness, appointment, kept = (values[c] for c in
                                         ("timeliness", "appointment", "kept_window"))
        assert (timeliness.numerator, timeliness.denominator, timeliness.raw) == (
            5, 7, D("71.43"))
        assert timeliness.by_clocks == 4 and timeliness.points == D("5.72")
        assert (appointment.numerator, appointment.denominator, appointment.raw,
                appointment.by_clocks) == (2, 3, D("66.67"), 3)
        assert (kept.numerator, kept.denominator, kept.raw, kept.by_clocks) == (
            1, 2, D("50.00"), 2)
        assert appointment.weight == kept.weight == 5 and appointment.is_sufficient
        # Only the timed KPIs say how they were measured.
        assert {c for c, v in values.items() if v.by_clocks is not None} == {
            "timeliness", "appointment", "kept_window"}
        # The drill-down lists exactly the orders that miss each KPI.
        from evaluation import queries
        missed = {code: {o.id for o in db.session.scalars(
            queries.drilldown(result, code)[0])} if code != "timeliness" else
            {row[0].id for row in db.session.execute(queries.drilldown(result, code)[0])}
            for code in ("timeliness", "appointment", "kept_window")}
        # D2 late by its clock (its typed arrival looks in time), D1 in time by its clock
        # (its typed arrival looks late).
        assert missed == {"timeliness": {orders["D2"].id, orders["T2"].id},
                          "appointment": {orders["D2"].id}, "kept_window": {orders["D2"].id}}
        assert queries.live_counts(result)["timeliness"] == (5, 7)
        files = {r.locale: r.content for r in db.session.scalars(
            select(Report).options(undefer(Report.content))
            .where(Report.agency_id == world.a.id, Report.result_id == result.id))}
        result_id = result.id
        numbers = {name: o.number for name, o in orders.items()}
        db.session.commit()

    sign_in(client, world.user(Role.HQ_SERVICE))
    page = client.get(f"/evaluation/results/{result_id}").get_data(as_text=True)
    pdf = _flat("\n".join(p.extract_text() for p in PdfReader(io.BytesIO(files["en"])).pages))
    for text in (_measured(app, "en", 4, 7, 57), _measured(app, "en", 3, 3, 100),
                 _measured(app, "en", 2, 2, 100)):
        assert text in page
        assert _flat(text) in pdf
    for figure in ("71.43%", "66.67%", "50.00%"):
        assert figure in page and figure in pdf
    assert "Appointment rate (预约率)" in page and _flat("Appointment rate (预约率)") in pdf
    for code in ("appointment", "kept_window", "timeliness"):
        listed = client.get(f"/evaluation/results/{result_id}/kpis/{code}")
        assert listed.status_code == 200 and numbers["D2"] in listed.get_data(as_text=True)
        assert numbers["D1"] not in listed.get_data(as_text=True)
    assert _flat(_measured(app, "zh_CN", 4, 7, 57)) in _flat(
        "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(files["zh_CN"])).pages))


def test_a_quarter_on_the_old_scheme_stays_as_it_was(app, ctx, world, traveller, client):
    """The same orders in 2026Q4 under version 1 (version 2 exists, for 2027Q1)."""
    _version_2(traveller)  # for 2027Q1: it does not reach back
    story = Story(world, traveller, date(2026, 12, 8))
    orders = story.build()
    traveller.move_to(local(date(2027, 1, 4), 9))
    with unscoped("HQ computes the quarter"):
        quarter = f.computed(OLD)
        assert quarter.scheme.version == 1 and not quarter.scheme.dispatch_clocks
        result = f.result_of(quarter, world.a)
        values = f.values_of(result)
        assert set(values) == set(kpis.CODES) - {"appointment", "kept_window"}
        assert (values["timeliness"].numerator, values["timeliness"].denominator) == (5, 7)
        assert values["timeliness"].raw == D("71.43")
        from evaluation import queries
        late = {row[0].id for row in db.session.execute(
            queries.drilldown(result, "timeliness")[0])}
        assert late == {orders["D1"].id, orders["T2"].id}  # by the typed times
        assert all(v.by_clocks is None for v in values.values())
        context = reports.load_context(quarter, [result])
        figures = reports.report_figures(quarter, result, context, version=1)
        assert "dispatch_clocks" not in figures
        assert all("by_clocks" not in k for k in figures["kpis"])
        assert len(figures["kpis"]) == 9
        result_id = result.id
        db.session.commit()
    sign_in(client, world.user(Role.HQ_SERVICE))
    page = client.get(f"/evaluation/results/{result_id}").get_data(as_text=True)
    assert "by system clocks" not in page and "71.43%" in page
    assert "Appointment rate" not in page
