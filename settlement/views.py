"""Settlement pages: the list, opening a claim, a settlement's page and the agency's actions.

HQ's review actions are in views_review.py, the configuration pages in views_admin.py; all
add their routes to this blueprint. Views are thin: load through the tenant guard, check the
form, call one service, commit once, redirect.
"""
from datetime import date

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy.orm.exc import StaleDataError

from portal.auth.access import allow
from portal.auth.roles import AGENCY_ROLES, Role
from portal.clock import last_ended_month
from portal.errors_domain import DomainError, attach_to_form
from portal.extensions import db
from portal.listing import int_arg, paginate
from portal.navigation import add_nav
from portal.tenancy import get_or_404
from service.queries import agency_filter
from settlement import queries, services
from settlement.forms import ActionForm, AddOrderForm, AppealForm, OpenForm
from settlement.models import Settlement, SettlementLine, Status
from settlement.page import page_of_line, settlement_page
from tenants.models import Agency

bp = Blueprint("settlement", __name__, url_prefix="/settlements")

READERS = tuple(r for r in Role if r != Role.ENGINEER)
OWNER = (Role.AGENCY_OWNER,)

add_nav("settlement.settlements", _l("Settlements"), READERS, order=40)


def locale() -> str:
    return str(get_locale())


def actor():
    return current_user._get_current_object()


def run(action, *args, form=None, **kwargs):
    """Run one service; commit on success. On a DomainError roll back and show it on the form
    (or as a message); returns (ok, result)."""
    try:
        result = action(*args, **kwargs)
    except StaleDataError:  # a row changed by a concurrent request under the service's feet
        db.session.rollback()
        error = DomainError(_("Someone else changed this settlement meanwhile. Nothing was "
                              "changed; reload the page and try again."))
        if form is not None:
            attach_to_form(form, error)
        else:
            flash(error.message, "danger")
        return False, None
    except DomainError as error:
        db.session.rollback()
        if form is not None:
            attach_to_form(form, error)
        else:
            flash(error.message, "danger")
        return False, None
    db.session.commit()
    return True, result


def back_to(settlement_id: int, anchor: str = ""):
    """Back to the settlement's page, on the page of its lines the reader came from."""
    page = int_arg("page", None, high=100000)
    return redirect(url_for("settlement.settlement", settlement_id=settlement_id,
                            **({"page": page} if page and page > 1 else {})) + anchor)


def back_to_line(settlement: Settlement, line_id: int):
    """Back to the page of the settlement's lines that shows the line (its place in the
    reading order may have changed), at the line."""
    page = page_of_line(settlement, line_id)
    return redirect(url_for("settlement.settlement", settlement_id=settlement.id,
                            **({"page": page} if page > 1 else {})) + f"#line-{line_id}")


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
        by_agency=agency_filter())


@bp.route("/new", methods=["GET", "POST"])
@allow(*OWNER)
def open_claim():
    agency = get_or_404(Agency, current_user.agency_id)
    form = OpenForm()
    year, month = last_ended_month()
    form.period.render_kw = {"max": f"{year}-{month:02d}"}  # the browser's picker agrees
    if not form.is_submitted():
        form.period.data = date(year, month, 1)  # the latest month that can be claimed
    if form.validate_on_submit():
        period = form.period.data
        ok, settlement = run(services.open_settlement, agency, period.year, period.month,
                             actor(), form=form)
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


def _action(settlement_id, service, message):
    """A button that sends only the page's version: refresh, submit, withdraw."""
    settlement = get_or_404(Settlement, settlement_id)
    form = ActionForm()
    ok, _result = run(service, settlement, form.version.data, actor(), form=form)
    if not ok:
        return refused(settlement, form)
    flash(message, "success")
    return back_to(settlement.id)


@bp.route("/<int:settlement_id>/refresh", methods=["POST"])
@allow(*OWNER)
def refresh(settlement_id):
    return _action(settlement_id, services.refresh_settlement,
                   _("Recalculated with today's rates and checks."))


@bp.route("/<int:settlement_id>/submit", methods=["POST"])
@allow(*OWNER)
def submit(settlement_id):
    return _action(settlement_id, services.submit_settlement,
                   _("Submitted. HQ will review it; you will see every decision here."))


@bp.route("/<int:settlement_id>/withdraw", methods=["POST"])
@allow(*OWNER)
def withdraw(settlement_id):
    return _action(settlement_id, services.withdraw_settlement,
                   _("Withdrawn. Its orders can be claimed again."))


@bp.route("/<int:settlement_id>/orders", methods=["POST"])
@allow(*OWNER)
def add_order(settlement_id):
    settlement = get_or_404(Settlement, settlement_id)
    form = AddOrderForm()
    if form.validate_on_submit():
        ok, line = run(services.add_order, settlement, form.number.data, form.version.data,
                       actor(), form=form)
        if ok:
            flash(_("Order %(number)s added.", number=form.number.data.strip()), "success")
            return back_to_line(settlement, line.id)
    return settlement_page(settlement, failed={"add_order": form}, status=400)


@bp.route("/lines/<int:line_id>/remove", methods=["POST"])
@allow(*OWNER)
def remove_line(line_id):
    settlement, line = load_line(line_id)
    form = ActionForm()
    ok, _result = run(services.remove_line, settlement, line, form.version.data, actor(),
                      form=form)
    if not ok:
        return refused(settlement, form)
    flash(_("Line removed; its order can be claimed again."), "success")
    return back_to(settlement.id)


@bp.route("/lines/<int:line_id>/appeal", methods=["POST"])
@allow(*OWNER)
def appeal(line_id):
    from settlement import review

    settlement, line = load_line(line_id)
    form = AppealForm()
    if form.validate_on_submit():
        ok, _result = run(review.lodge_appeal, settlement, line, form.version.data,
                          form.reason.data, actor(), form=form)
        if ok:
            flash(_("Appeal lodged. HQ decides it before payment."), "success")
            return back_to_line(settlement, line.id)
    return settlement_page(settlement, failed={f"appeal-{line.id}": form}, status=400)
