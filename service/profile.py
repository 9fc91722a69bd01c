"""The service area on an agency's 360 (portal.profile): order volume and backlog, complaints
and overdue defective-part returns; and the open orders a suspension or termination leaves."""
from datetime import date, timedelta

from flask import url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy import extract, func, select, type_coerce

from portal import charts
from portal.clock import local_today, now
from portal.extensions import db
from portal.models import Money
from portal.profile import add_concern, add_panel, month_labels, once, recent_months
from service.models import (
    Complaint,
    ComplaintStatus,
    OrderStatus,
    PartReturn,
    ReturnStatus,
    WorkOrder,
)
from service.policy import READERS
from tenants.models import AgencyStatus

MONTHS = 12
STALE_DAYS = 7  # an open order older than this is backlog worth a look
# The moves that leave open work behind.
LEAVING = (AgencyStatus.SUSPENDED, AgencyStatus.TERMINATED)


def _count(model, *where):
    return select(func.count(model.id)).where(*where).scalar_subquery()


def _volume(agency_id: int, months: list[tuple[int, int]]) -> dict:
    """{(year, month): orders} of the months by service day (one GROUP BY on the agency's
    (agency_id, service_date) index)."""
    first_year, first_month = months[0]
    year, month = extract("year", WorkOrder.service_date), extract("month", WorkOrder.service_date)
    rows = db.session.execute(
        select(year, month, func.count(WorkOrder.id))
        .where(WorkOrder.agency_id == agency_id,
               WorkOrder.service_date >= date(first_year, first_month, 1),
               WorkOrder.status != OrderStatus.CANCELLED)
        .group_by(year, month)).all()
    return {(int(y), int(m)): n for y, m, n in rows}


def _panel(agency, user) -> dict:
    today = local_today()
    a = agency.id
    overdue_return = ((PartReturn.agency_id == a) & (PartReturn.status == ReturnStatus.DUE)
                      & (PartReturn.due_on < today))
    row = db.session.execute(select(
        _count(WorkOrder, WorkOrder.agency_id == a, WorkOrder.status == OrderStatus.OPEN),
        _count(WorkOrder, WorkOrder.agency_id == a, WorkOrder.status == OrderStatus.OPEN,
               WorkOrder.received_at < now() - timedelta(days=STALE_DAYS)),
        select(func.min(WorkOrder.received_at)).where(
            WorkOrder.agency_id == a, WorkOrder.status == OrderStatus.OPEN).scalar_subquery(),
        _count(Complaint, Complaint.agency_id == a, Complaint.status == ComplaintStatus.OPEN),
        _count(Complaint, Complaint.agency_id == a,
               Complaint.status == ComplaintStatus.RESPONDED),
        _count(PartReturn, overdue_return),
        select(type_coerce(func.coalesce(func.sum(PartReturn.unit_price * PartReturn.quantity),
                                         0), Money)).where(overdue_return).scalar_subquery(),
    )).one()
    months = recent_months(today, MONTHS)
    volume = _volume(a, months)
    labels, span = month_labels(months)
    chart = charts.bars(_("Work orders per month, %(span)s", span=span), labels,
                        [(_("Work orders"), [volume.get(key, 0) for key in months])],
                        name="profile-orders")
    # HQ opens the lists narrowed to the agency; the agency's own lists are its own already.
    narrow = {} if user.agency_id is not None else {"agency_code": agency.code}
    return {
        "chart": chart, "open_orders": row[0], "stale_orders": row[1], "oldest_open": row[2],
        "stale_days": STALE_DAYS, "complaints_open": row[3], "complaints_responded": row[4],
        "overdue_returns": row[5], "overdue_value": row[6],
        "links": {
            "orders": url_for("service.orders", **narrow),
            "open_orders": url_for("service.orders", status="open", **narrow),
            "complaints_open": url_for("service.complaints", status="open", **narrow),
            "complaints_responded": url_for("service.complaints", status="responded", **narrow),
            "overdue_returns": url_for("service.returns", overdue=1, status="due", **narrow),
        },
    }


def _open_work(agency, target_status) -> list[str]:
    """Suspending or terminating an agency leaves its open orders' customers waiting."""
    if target_status not in LEAVING:
        return []
    n = once(("service.open_orders", agency.id), lambda: db.session.scalar(
        select(func.count(WorkOrder.id)).where(WorkOrder.agency_id == agency.id,
                                               WorkOrder.status == OrderStatus.OPEN)))
    if not n:
        return []
    return [ngettext("%(code)s has %(num)s open work order: its customer still waits for the "
                     "repair.",
                     "%(code)s has %(num)s open work orders: their customers still wait for "
                     "the repair.", n, code=agency.code)]


def register() -> None:
    add_panel("service/_profile_orders.html", READERS, _panel, order=20)
    add_concern(_open_work)
