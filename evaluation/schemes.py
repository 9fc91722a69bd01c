"""KPI schemes: the version in force for a quarter, and new versions for future quarters."""
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from evaluation import kpis, policy
from evaluation.models import Scheme, SchemeKpi
from portal.clock import local_today
from portal.errors_domain import DomainError
from portal.extensions import db
from portal.periods import Period
from portal.text import clean
from portal.transitions import note, transition

MAX_SLA_MINUTES = 7 * 24 * 60
MAX_MIN_COUNT = 100000


def scheme_in_force(period: Period) -> Scheme:
    """The latest version effective on or before `period`; raises DomainError when none is."""
    scheme = db.session.scalars(
        select(Scheme).options(selectinload(Scheme.kpis))
        .where(Scheme.effective_index <= period.index)
        .order_by(Scheme.effective_index.desc()).limit(1)).first()
    if scheme is None:
        raise DomainError(_("No KPI scheme is in force for %(period)s.", period=period.label))
    return scheme


def scheme_terms(scheme: Scheme) -> dict:
    """{code: (weight, min_count, curve, position)} of the KPIs a scheme version holds, in
    the catalog's order. A KPI added to the catalog after the version was made is not part of
    it: its quarters neither count nor show it, and stay as they were computed."""
    stored = {k.code: k for k in scheme.kpis}
    return {kpi.code: (row.weight, row.min_count, kpis.curve_from_json(row.curve), position)
            for position, kpi in enumerate(kpis.KPIS)
            if (row := stored.get(kpi.code)) is not None}


def whole(value, low: int, high: int, field: str) -> int:
    """A whole number from `low` to `high` (a form's IntegerField value), else DomainError."""
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise DomainError(_("Enter a whole number from %(low)s to %(high)s.", low=low,
                            high=high), field=field)
    return value


@transition("evaluation.scheme_created", Scheme, creates=True, permission=policy.CREATE_SCHEME,
            label=_l("KPI scheme version created"))
def create_scheme(data: dict, *, acting_user) -> Scheme:
    """A new scheme version for a future quarter.

    `data`: period (Period), sla_phone_minutes, sla_onsite_minutes, sla_carry_in_minutes,
    note, and per KPI code ``weight_<code>``, ``min_<code>`` and ``curve_<code>`` (text).
    Raises DomainError for a past or taken quarter, weights that do not sum to 100, bad
    minimums or curves.
    """
    period = data.get("period")
    if not isinstance(period, Period):
        raise DomainError(_("Enter a quarter such as 2027Q1."), field="period")
    if period <= Period.of_day(local_today()):
        raise DomainError(_("A new version takes effect in a future quarter."), field="period")
    latest = db.session.scalar(select(func.max(Scheme.effective_index)))
    if latest is not None and period.index <= latest:
        raise DomainError(_("A version already takes effect in or after %(period)s.",
                            period=period.label), field="period")
    sla = {name: whole(data.get(name), 1, MAX_SLA_MINUTES, name)
           for name in ("sla_phone_minutes", "sla_onsite_minutes", "sla_carry_in_minutes")}
    terms = []
    for kpi in kpis.KPIS:
        weight = whole(data.get(f"weight_{kpi.code}"), 0, 100, f"weight_{kpi.code}")
        minimum = whole(data.get(f"min_{kpi.code}"), 0, MAX_MIN_COUNT, f"min_{kpi.code}")
        curve = kpis.parse_curve(data.get(f"curve_{kpi.code}") or "", f"curve_{kpi.code}")
        terms.append((kpi.code, weight, minimum, curve))
    if sum(t[1] for t in terms) != 100:
        raise DomainError(_("The weights add up to %(total)s; they must add up to 100.",
                            total=sum(t[1] for t in terms)), field=f"weight_{kpis.CODES[0]}")
    version = (db.session.scalar(select(func.max(Scheme.version))) or 0) + 1
    # Every version made since the dispatch (#18) grades dispatched orders by the clocks.
    scheme = Scheme(version=version, effective_year=period.year, effective_quarter=period.quarter,
                    effective_index=period.index, dispatch_clocks=True,
                    note=clean(data.get("note"), multiline=True, limit=2000),
                    created_by_id=getattr(acting_user, "id", None), **sla)
    db.session.add(scheme)
    db.session.flush()
    for position, (code, weight, minimum, curve) in enumerate(terms):
        db.session.add(SchemeKpi(scheme_id=scheme.id, code=code, position=position,
                                 weight=weight, min_count=minimum,
                                 curve=kpis.curve_to_json(curve)))
    db.session.flush()
    note(after={"version": version, "effective": period.label, **sla, "dispatch_clocks": True,
                "kpis": {code: [w, m, kpis.curve_text(c)] for code, w, m, c in terms}})
    return scheme


def default_terms() -> dict:
    """The form's starting values: the KPI catalog's defaults for a new version."""
    data = {"sla_phone_minutes": 120, "sla_onsite_minutes": 1440, "sla_carry_in_minutes": 1440}
    for kpi in kpis.KPIS:
        data[f"weight_{kpi.code}"] = kpis.proposed_weight(kpi)
        data[f"min_{kpi.code}"] = kpi.min_count
        data[f"curve_{kpi.code}"] = kpis.curve_text(kpi.curve)
    return data


def terms_of(scheme: Scheme) -> dict:
    """A scheme's values in the form's shape (a new version starts from the latest; from the
    catalog's proposal, with the latest's SLA minutes, when the latest lacks a KPI)."""
    if not scheme_terms(scheme).keys() >= set(kpis.CODES):
        return {**default_terms(), "sla_phone_minutes": scheme.sla_phone_minutes,
                "sla_onsite_minutes": scheme.sla_onsite_minutes,
                "sla_carry_in_minutes": scheme.sla_carry_in_minutes}
    data = {"sla_phone_minutes": scheme.sla_phone_minutes,
            "sla_onsite_minutes": scheme.sla_onsite_minutes,
            "sla_carry_in_minutes": scheme.sla_carry_in_minutes}
    for code, (weight, minimum, curve, _pos) in scheme_terms(scheme).items():
        data[f"weight_{code}"], data[f"min_{code}"] = weight, minimum
        data[f"curve_{code}"] = kpis.curve_text(curve)
    return data
