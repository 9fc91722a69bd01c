"""Settlement pages: the list, opening a claim, a settlement's page and the agency's actions.

HQ's review actions are in views_review.py, the configuration pages in views_admin.py; all
add their routes to this blueprint. Views are thin: load through the tenant guard, check the
form, perform one transition (portal.commit.perform commits or rolls back), redirect.
"""
from datetime import date

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from portal import clock
from portal.auth.access import allow, performs
from portal.auth.roles import AGENCY_ROLES
from portal.clock import last_ended_month
from portal.commit import perform
from portal.listing import int_arg, paginate
from portal.navigation import add_nav
from portal.tenancy import get_or_404
from service.api import agency_filter
from settlement import config, queries, review, services
from settlement.forms import ActionForm, AddOrderForm, AppealForm, OpenForm
from settlement.models import Settlement, SettlementLine, Status
from settlement.page import page_of_line, settlement_page
from settlement.policy import READERS
from tenants.models import Agency

bp = Blueprint("settlement", __name__, url_prefix="/settlements")

add_nav("settlement.settlements", _l("Settlements"), READERS, order=40, group="money")


def locale() -> str:
    return str(get_locale())


# The query arguments of the lines being read: the page and HQ's table view (filters, order).
KEPT_ARGS = ("lines", "code", "disposition", "state", "reason", "sort")


def kept_args(page: int | None = None) -> dict:
    """The reader's place among the lines, from the form's address (the view re-checks it)."""
    args = {name: request.args[name][:32] for name in KEPT_ARGS if request.args.get(name)}
    page = page if page is not None else int_arg("page", None, high=100000)
    return {**args, **({"page": page} if page and page > 1 else {})}


def back_to(settlement_id: int, anchor: str = ""):
    """Back to the settlement's page, on the page of its lines the reader came from."""
    return redirect(url_for("settlement.settlement", settlement_id=settlement_id,
                            **kept_args()) + anchor)


def back_to_line(settlement: Settlement, line_id: int):
    """Back to the page of the settlement's lines that shows the line (its place in the
    reading order may have changed), at the line; where the view no longer shows it, back to
    the page the reader came from."""
    return redirect(url_for("settlement.settlement", settlement_id=settlement.id,
                            **kept_args(page_of_line(settlement, line_id)))
                    + f"#line-{line_id}")


def load_line(line_id) -> tuple[Settlement, SettlementLine]:
    line = get_or_404(SettlementLine, line_id)
    return get_or_404(Settlement, line.settlement_id), line


# --- list and opening ------------------------------------------------------------------------


@bp.route("/")
@allow(*READERS)
def settlements():
    stmt, sort = queries.sort(queries.list_statement())
    is_hq = current_user.role not in AGENCY_ROLES
    return render_template(
        "settlement/list.html", page=paginate(stmt), sort=sort, totals=queries.totals(),
        statuses=list(Status), is_hq=is_hq,
        regions=queries.regions_for_filter() if is_hq else [],
        by_agency=agency_filter(), review_limit=config.review_limit_days() if is_hq else None,
        in_review=in_review_days)


def in_review_days(settlement: Settlement) -> int | None:
    """Whole days a submitted settlement has waited in review (from its submission, as the
    workplace's escalation counts them); None for the other states."""
    if settlement.status != Status.SUBMITTED or settlement.submitted_at is None:
        return None
    return (clock.now() - settlement.submitted_at).days


@bp.route("/new", methods=["GET", "POST"])
@performs("settlement.opened")
def open_claim():
    agency = get_or_404(Agency, current_user.agency_id)
    form = OpenForm()
    year, month = last_ended_month()
    form.period.render_kw = {"max": f"{year}-{month:02d}"}  # the browser's picker agrees
    if not form.is_submitted():
        form.period.data = date(year, month, 1)  # the latest month that can be claimed
    if form.validate_on_submit():
        period = form.period.data
        ok, settlement = perform(services.open_settlement, agency, period.year, period.month,
                                 form=form)
        if ok:
            flash(_("Claim %(number)s opened with %(count)s lines. Check each line, add "
                    "evidence, then submit.", number=settlement.number,
                    count=settlement.line_count), "success")
            return back_to(settlement.id)
    return render_template("settlement/open.html", form=form,
                           history=queries.history(agency.id))


# --- one settlement ----------------------------------------------------------------------------


@bp.route("/<int:settlement_id>")
@allow(*READERS)
def settlement(settlement_id):
    return settlement_page(get_or_404(Settlement, settlement_id))


def refused(settlement, form):
    """The page again with the reason on top: a refusal is never a redirect."""
    return settlement_page(settlement, failed={"action": form}, status=400)


def on_form(settlement: Settlement, form, key: str, service, *args, message, at_line=None,
           **kwargs):
    """A form of the settlement's page (`key` among the page's forms): perform `service` with
    the page's version, then back to the page, at the line `at_line` (an id, or a function of
    the result) when given; an invalid or refused form shows the page again with it."""
    if form.validate_on_submit():
        ok, result = perform(service, settlement, *args, form=form,
                             seen_version=form.version.data, **kwargs)
        if ok:
            flash(message(result) if callable(message) else message, "success")
            if at_line is None:
                return back_to(settlement.id)
            return back_to_line(settlement, at_line(result) if callable(at_line) else at_line)
    return settlement_page(settlement, failed={key: form}, status=400)


def on_button(settlement: Settlement, service, *args, message):
    """A button on the settlement's page that sends the page's version: perform `service`,
    then back to the page with `message` (or `message(result)`); a refusal shows the page
    again with the reason on top."""
    form = ActionForm()
    ok, result = perform(service, settlement, *args, form=form, seen_version=form.version.data)
    if not ok:
        return refused(settlement, form)
    flash(message(result) if callable(message) else message, "success")
    return back_to(settlement.id)


@bp.route("/<int:settlement_id>/refresh", methods=["POST"])
@performs("settlement.recalculated")
def refresh(settlement_id):
    return on_button(get_or_404(Settlement, settlement_id), services.refresh_settlement,
               message=_("Recalculated with today's rates and checks."))


@bp.route("/<int:settlement_id>/submit", methods=["POST"])
@performs("settlement.submitted")
def submit(settlement_id):
    return on_button(get_or_404(Settlement, settlement_id), services.submit_settlement,
               message=_("Submitted. HQ will review it; you will see every decision here."))


@bp.route("/<int:settlement_id>/withdraw", methods=["POST"])
@performs("settlement.withdrawn")
def withdraw(settlement_id):
    return on_button(get_or_404(Settlement, settlement_id), services.withdraw_settlement,
               message=_("Withdrawn. Its orders can be claimed again."))


@bp.route("/<int:settlement_id>/orders", methods=["POST"])
@performs("settlement.order_added")
def add_order(settlement_id):
    form = AddOrderForm()
    return on_form(get_or_404(Settlement, settlement_id), form, "add_order", services.add_order,
                  form.number.data, at_line=lambda line: line.id,
                  message=lambda _line: _("Order %(number)s added.",
                                          number=form.number.data.strip()))


@bp.route("/lines/<int:line_id>/remove", methods=["POST"])
@performs("settlement.line_removed")
def remove_line(line_id):
    settlement, line = load_line(line_id)
    return on_button(settlement, services.remove_line, line,
               message=_("Line removed; its order can be claimed again."))


@bp.route("/lines/<int:line_id>/appeal", methods=["POST"])
@performs("settlement.appealed")
def appeal(line_id):
    settlement, line = load_line(line_id)
    form = AppealForm()
    return on_form(settlement, form, f"appeal-{line.id}", review.lodge_appeal, line,
                  form.reason.data, at_line=line.id,
                  message=_("Appeal lodged. HQ decides it before payment."))
