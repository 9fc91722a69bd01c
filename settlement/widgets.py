"""Home-page cards of the settlement area, each with a fixed number of queries.

Months are the claims' months (a settlement claims one local month's completed orders), the
last twelve up to the network's local today.
"""
from dataclasses import replace
from datetime import date
from decimal import Decimal

from babel.dates import format_skeleton
from flask_babel import get_locale
from flask_babel import gettext as _
from sqlalchemy import BigInteger, and_, case, func, or_, select, type_coerce

from portal import charts
from portal.auth.roles import Role
from portal.clock import local_today
from portal.extensions import db
from portal.i18n import format_money
from portal.memo import remembered
from portal.models import CENT, Money
from portal.navigation import add_widget
from settlement import queries, rules
from settlement.models import EDITABLE, Settlement, SettlementLine, Status

HQ_ROLES = (Role.HQ_ADMIN, Role.HQ_SETTLEMENT, Role.REGIONAL_MANAGER, Role.AUDITOR)
MONTHS = 12
# Claims HQ has received (a draft is still the agency's); amounts HQ has approved.
CLAIMED = (Status.SUBMITTED, Status.RETURNED, Status.APPROVED, Status.PAID)
APPROVED = (Status.APPROVED, Status.PAID)
ZERO = Decimal("0.00")


def money_text(value) -> str:
    """An amount for a chart: exact Decimals in its table, pygal's floats on the image."""
    return format_money(Decimal(str(value)).quantize(CENT))


def last_months(today) -> list[tuple[int, int]]:
    """The MONTHS local months up to today's, oldest first: [(year, month), ...]."""
    index = today.year * 12 + today.month - 1
    return [(i // 12, i % 12 + 1) for i in range(index - MONTHS + 1, index + 1)]


def _in_window(months):
    (first_year, first_month), (last_year, last_month) = months[0], months[-1]
    return and_(or_(Settlement.year > first_year,
                    and_(Settlement.year == first_year, Settlement.month >= first_month)),
                or_(Settlement.year < last_year,
                    and_(Settlement.year == last_year, Settlement.month <= last_month)))


def _sum_if(condition, amount, type_=Money):
    return type_coerce(func.coalesce(func.sum(case((condition, amount), else_=0)), 0), type_)


def month_chart(title: str, months, series, *, name: str) -> charts.Chart:
    """Bars per month: the image names the months briefly (the year only at January, so that
    twelve labels fit side by side), the table under it in full."""
    locale = get_locale()

    def named(skeleton: str, year: int, month: int) -> str:
        return format_skeleton(skeleton, date(year, month, 1), locale=locale)

    brief = tuple(named("yMMM" if m == 1 else "MMM", y, m) for y, m in months)
    series = tuple((series_name, tuple(values)) for series_name, values in series)
    # Drawn once a minute per reader and figures: pygal takes 10–40 ms a chart.
    chart = remembered(f"chart.{name}", lambda: charts.bars(
        title, brief, series, name=name, formatter=money_text, width=720), title, brief, series)
    return replace(chart, rows=tuple((named("yMMM", y, m), *row[1:])
                                     for (y, m), row in zip(months, chart.rows, strict=True)))


def _hq_sums(months) -> dict:
    """{(year, month): (claimed, approved)} over the claims the reader may see (one GROUP BY;
    the guard keeps a regional manager's region)."""
    rows = db.session.execute(
        select(Settlement.year, Settlement.month,
               _sum_if(Settlement.status.in_(CLAIMED), Settlement.claimed_total),
               _sum_if(Settlement.status.in_(APPROVED), Settlement.approved_total))
        .where(_in_window(months)).group_by(Settlement.year, Settlement.month)).all()
    return {(y, m): (claimed, approved) for y, m, claimed, approved in rows}


def _hq_months(months) -> charts.Chart:
    """Claimed against approved per month. The network's sums (30 ms at 2,000 agencies on
    SQLite) are remembered for a minute per scope, as the other figures of HQ's home, apart
    from the chart in each reader's language."""
    by_month = remembered("settlement.hq_months", lambda: _hq_sums(months), tuple(months))
    return month_chart(
        _("Claimed and approved per month"), months,
        [(_("Claimed"), [by_month.get(k, (ZERO, ZERO))[0] for k in months]),
         (_("Approved"), [by_month.get(k, (ZERO, ZERO))[1] for k in months])],
        name="hq-settlements")


def _hq(user) -> dict:
    rows = db.session.execute(
        select(Settlement.status, func.count(Settlement.id), func.sum(Settlement.claimed_total),
               func.sum(Settlement.approved_total)).group_by(Settlement.status)).all()
    by_status = {status: (count, claimed, approved) for status, count, claimed, approved in rows}
    waiting = db.session.scalar(select(func.count(Settlement.id)).where(
        Settlement.status == Status.SUBMITTED,
        Settlement.needs_regional_review.is_(True),
        Settlement.regional_reviewed_at.is_(None)))
    return {"by_status": by_status, "statuses": list(Status), "regional_waiting": waiting,
            "approved": APPROVED, "chart": _hq_months(last_months(local_today()))}


def _labor_lost():
    """SQL, in fen: the labor fee an order line did not get because its engineer held no valid
    certificate on the service date (settlement.rules.labor_share): the full fee, rounded half
    up as the line's own fee is, less the fee paid at the configured share."""
    hours = type_coerce(SettlementLine.labor_hours, BigInteger)  # hundredths of an hour
    rate = type_coerce(SettlementLine.hourly_rate, BigInteger)  # fen
    paid = type_coerce(SettlementLine.labor_fee, BigInteger)  # fen
    return (hours * rate + 50) // 100 - paid  # integer division: half up, as money()


def _agency_months(agency_id: int, months) -> tuple[dict, Decimal, int]:
    """Per claim month: claimed before deductions, deducted and approved amounts (claims sent
    to HQ); and the labor lost to uncertified engineers in every claim not withdrawn (one
    GROUP BY over the agency's lines)."""
    sent, approved = Settlement.status.in_(CLAIMED), Settlement.status.in_(APPROVED)
    amount = SettlementLine.claimed_amount
    uncertified = SettlementLine.rules_applied.like(f"%{rules.RULE_UNCERTIFIED}%")
    rows = db.session.execute(
        select(Settlement.year, Settlement.month,
               _sum_if(and_(sent, amount > 0), amount),
               _sum_if(and_(sent, amount < 0), -amount),
               _sum_if(approved, func.coalesce(SettlementLine.approved_amount, 0)),
               _sum_if(uncertified, _labor_lost(), BigInteger),
               _sum_if(uncertified, 1, BigInteger))
        .join(Settlement, and_(Settlement.agency_id == SettlementLine.agency_id,
                               Settlement.id == SettlementLine.settlement_id))
        .where(SettlementLine.agency_id == agency_id, Settlement.status != Status.WITHDRAWN,
               _in_window(months))
        .group_by(Settlement.year, Settlement.month)).all()
    by_month = {(y, m): (claimed, deducted, paid) for y, m, claimed, deducted, paid, *_r in rows}
    lost = Decimal(sum(int(r[5]) for r in rows)).scaleb(-2).quantize(CENT)
    return by_month, lost, sum(int(r[6]) for r in rows)


def _agency(user) -> dict:
    """The latest claims with each amount named, money per month and the labor lost to
    uncertified engineers (two queries)."""
    months = last_months(local_today())
    by_month, lost, lost_orders = _agency_months(user.agency_id, months)
    zero = (ZERO, ZERO, ZERO)
    chart = month_chart(
        _("Our money per claim month"), months,
        [(_("Claimed (orders and bonuses)"), [by_month.get(k, zero)[0] for k in months]),
         (_("Deducted"), [by_month.get(k, zero)[1] for k in months]),
         (_("Approved for payment"), [by_month.get(k, zero)[2] for k in months])],
        name="agency-money")
    return {"recent": queries.history(user.agency_id, limit=4), "chart": chart,
            "editable": EDITABLE, "approved": APPROVED, "lost": lost,
            "lost_orders": lost_orders, "agency_id": user.agency_id}


def register() -> None:
    add_widget("settlement/_widget_hq.html", HQ_ROLES, _hq, order=40)
    add_widget("settlement/_widget_agency.html", (Role.AGENCY_OWNER, Role.AGENCY_STAFF),
               _agency, order=40)
