"""The SLA pages: the live board (dispatchers, HQ service, regional managers, auditors) and the
targets (HQ admin sets them; the board's readers read them).

The board is :mod:`dispatch.board`'s one statement, paginated: a constant number of queries
whatever the network's size. It refreshes itself every minute (htmx, when the browser runs
scripts; the page works without).
"""
from datetime import timedelta

from flask import render_template, request
from flask_babel import format_timedelta, get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from dispatch import board as clocks
from dispatch import policy, sla
from dispatch.forms_sla import TargetForm
from dispatch.views import bp
from portal import clock
from portal.auth.access import allow, performs
from portal.commit import done, perform
from portal.extensions import db
from portal.listing import int_arg, paginate
from portal.navigation import add_nav
from portal.tenancy import current_scope
from tenants.models import SERVICE_TYPE_LABELS, ProductLine, Region, ServiceType

add_nav("dispatch.sla_board", _l("SLA board"), policy.SLA_BOARD_READERS, order=38,
        group="work")

REFRESH_SECONDS = 60
KIND_LABELS = {"request": _l("Service request"), "order": _l("Work order")}


def _lang() -> str:
    return str(get_locale())


def _span(delta: timedelta) -> str:
    """A duration in its two largest units ("1 hour 20 minutes", "2 days 3 hours")."""
    seconds = max(int(delta.total_seconds()), 0)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60

    def unit(**kw) -> str:
        return format_timedelta(timedelta(**kw), threshold=1)

    if days:
        return f"{unit(days=days)} {unit(hours=hours)}" if hours else unit(days=days)
    if hours:
        return f"{unit(hours=hours)} {unit(minutes=minutes)}" if minutes else unit(hours=hours)
    return unit(minutes=max(minutes, 1))


def time_to_breach(due_at, now) -> str:
    """"due in 1 hour 20 minutes" or "breached 40 minutes ago"."""
    if due_at > now:
        return _("due in %(time)s", time=_span(due_at - now))
    return _("breached %(time)s ago", time=_span(now - due_at))


def _filters() -> clocks.Filters:
    args = request.args
    return clocks.Filters(
        state=args.get("state", ""), milestone=args.get("milestone", ""),
        region_id=int_arg("region"), agency_code=args.get("agency", "")[:32],
        service_type=args.get("type", ""), kind=args.get("kind", "")).cleaned()


@bp.route("/sla")
@allow(*policy.SLA_BOARD_READERS)
def sla_board():
    now = clock.now()
    filters = _filters()
    page = paginate(clocks.board(now, filters), rows=True)
    counts = clocks.state_counts(now, filters)
    regional = current_scope().kind == "region"
    regions = [] if regional else list(db.session.scalars(select(Region).order_by(Region.code)))
    return render_template(
        "dispatch/sla_board.html", page=page, counts=counts, filters=filters, now=now,
        lang=_lang(), regions=regions, regional=regional, refresh=REFRESH_SECONDS,
        warn_share=int(sla.WARN_SHARE * 100), second_level=int(sla.SECOND_LEVEL * 100),
        breach=lambda row: time_to_breach(row.due_at, now),
        states=sla.CLOCK_STATE_LABELS, styles=sla.CLOCK_STATE_STYLES,
        live_states=[str(s) for s in clocks.LIVE_STATES],
        milestones=sla.MILESTONE_LABELS, types=SERVICE_TYPE_LABELS, kinds=KIND_LABELS)


# --- targets ----------------------------------------------------------------------------------


def hours_of(minutes: int) -> str:
    """Business minutes as hours, one decimal at most ("1", "4.5")."""
    return f"{minutes / 60:.1f}".rstrip("0").rstrip(".")


def _target_choices(form: TargetForm, lines) -> None:
    lang = _lang()
    form.service_type.choices = [(t.value, SERVICE_TYPE_LABELS[t]) for t in ServiceType]
    form.milestone.choices = [(m.value, sla.MILESTONE_LABELS[m]) for m in sla.Milestone]
    form.product_line_id.choices = [(0, _("All product lines"))] + [
        (x.id, f"{x.code} · {x.name(lang)}") for x in lines]


def _targets_page(form=None, status=200):
    lines = list(db.session.scalars(select(ProductLine).order_by(ProductLine.code)))
    if form is None:
        form = TargetForm(formdata=None)
    _target_choices(form, lines)
    line_names = {x.id: f"{x.code} · {x.name(_lang())}" for x in lines}
    table: dict[str, list[dict]] = {}
    for row in sla.target_table():
        table.setdefault(row["service_type"], []).append(row)
    return render_template(
        "dispatch/sla_targets.html", form=form, table=table, types=SERVICE_TYPE_LABELS,
        line_names=line_names, hours_of=hours_of, defaults=sla.DEFAULT_MINUTES,
        warn_share=int(sla.WARN_SHARE * 100),
        second_level=int(sla.SECOND_LEVEL * 100)), status


@bp.route("/sla/targets")
@allow(*policy.SLA_BOARD_READERS)
def sla_targets():
    return _targets_page()


@bp.route("/sla/targets", methods=["POST"])
@performs("sla.target_set")
def sla_target_set():
    form = TargetForm()
    lines = list(db.session.scalars(select(ProductLine).order_by(ProductLine.code)))
    _target_choices(form, lines)
    if form.validate_on_submit():
        line_id = form.product_line_id.data or None
        if line_id is not None and line_id not in {x.id for x in lines}:
            form.product_line_id.errors = [*form.product_line_id.errors,
                                           _("Choose a product line.")]
        elif perform(sla.set_target, form.service_type.data, form.milestone.data,
                     form.minutes.data, line_id, form=form):
            return done(_("The SLA target is set; it applies to clocks started from now on."),
                        "dispatch.sla_targets")
    return _targets_page(form=form, status=400)
