"""The settlement area on an agency's 360 (portal.profile): claimed against approved amounts per
month, and where its claims stand; and the open claims a suspension or termination leaves."""
from decimal import Decimal

from flask import url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy import and_, case, func, or_, select, type_coerce

from portal import charts
from portal.clock import local_today
from portal.extensions import db
from portal.i18n import format_money
from portal.models import CENT, Money
from portal.profile import add_concern, add_panel, month_labels, once, recent_months
from settlement.models import Settlement, Status
from settlement.policy import READERS
from tenants.models import AgencyStatus

MONTHS = 12
# Claims HQ has received (a draft is still the agency's); amounts HQ has approved.
CLAIMED = (Status.SUBMITTED, Status.RETURNED, Status.APPROVED, Status.PAID)
APPROVED = (Status.APPROVED, Status.PAID)
# Claims not settled yet: still to be submitted, reviewed or paid.
OPEN = (Status.DRAFT, Status.SUBMITTED, Status.RETURNED, Status.APPROVED)
LEAVING = (AgencyStatus.SUSPENDED, AgencyStatus.TERMINATED)


def money_text(value) -> str:
    """An amount for a chart: exact Decimals in its table, pygal's floats on the image."""
    return format_money(Decimal(str(value)).quantize(CENT))


def _sum_if(condition, column):
    return type_coerce(func.coalesce(func.sum(case((condition, column), else_=0)), 0), Money)


def _panel(agency, user) -> dict:
    months = recent_months(local_today(), MONTHS)
    (first_year, first_month) = months[0]
    rows = db.session.execute(
        select(Settlement.year, Settlement.month,
               _sum_if(Settlement.status.in_(CLAIMED), Settlement.claimed_total),
               _sum_if(Settlement.status.in_(APPROVED), Settlement.approved_total))
        .where(Settlement.agency_id == agency.id,
               or_(Settlement.year > first_year,
                   and_(Settlement.year == first_year, Settlement.month >= first_month)))
        .group_by(Settlement.year, Settlement.month)).all()
    by_month = {(y, m): (claimed, approved) for y, m, claimed, approved in rows}
    zero = (Decimal("0.00"), Decimal("0.00"))
    labels, span = month_labels(months)
    chart = charts.bars(
        _("Claimed and approved per month, %(span)s", span=span), labels,
        [(_("Claimed"), [by_month.get(key, zero)[0] for key in months]),
         (_("Approved"), [by_month.get(key, zero)[1] for key in months])],
        name="profile-settlements", formatter=money_text)
    statuses = {status: (n, claimed, approved) for status, n, claimed, approved in
                db.session.execute(
                    select(Settlement.status, func.count(Settlement.id),
                           type_coerce(func.sum(Settlement.claimed_total), Money),
                           type_coerce(func.sum(Settlement.approved_total), Money))
                    .where(Settlement.agency_id == agency.id).group_by(Settlement.status))}
    narrow = {} if user.agency_id is not None else {"agency_code": agency.code}
    return {
        "chart": chart,
        "statuses": [(s, *statuses[s]) for s in Status if s in statuses],
        "open_count": sum(statuses[s][0] for s in OPEN if s in statuses),
        "payable": sum((statuses[s][2] for s in (Status.APPROVED,) if s in statuses),
                       Decimal("0.00")),
        "links": {"all": url_for("settlement.settlements", **narrow),
                  **{s.value: url_for("settlement.settlements", status=s.value, **narrow)
                     for s in Status}},
    }


def _open_claims(agency, target_status) -> list[str]:
    """Suspending or terminating an agency does not settle what it has claimed."""
    if target_status not in LEAVING:
        return []
    n, claimed = once(("settlement.open_claims", agency.id), lambda: tuple(db.session.execute(
        select(func.count(Settlement.id),
               type_coerce(func.coalesce(func.sum(Settlement.claimed_total), 0), Money))
        .where(Settlement.agency_id == agency.id, Settlement.status.in_(OPEN))).one()))
    if not n:
        return []
    return [ngettext("%(code)s has %(num)s open settlement (%(amount)s claimed): it still has "
                     "to be submitted, reviewed or paid.",
                     "%(code)s has %(num)s open settlements (%(amount)s claimed): they still "
                     "have to be submitted, reviewed or paid.", n, code=agency.code,
                     amount=format_money(claimed))]


def register() -> None:
    add_panel("settlement/_profile_settlements.html", READERS, _panel, order=40)
    add_concern(_open_claims)
