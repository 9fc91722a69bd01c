"""Parts supply pages: requests, the agency's stock and defective-part returns."""
import re

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from portal.auth.access import allow, performs
from portal.clock import local_today
from portal.commit import done, perform
from portal.listing import paginate, sorted_by
from portal.navigation import add_nav
from portal.tenancy import get_or_404
from service import policy, queries, supply
from service.forms import ActionForm, InspectForm, PartsRequestForm, ShipForm
from service.models import (
    LineDecision,
    LineReason,
    PartReturn,
    PartsRequest,
    PartStock,
    RequestStatus,
    ReturnStatus,
    WorkOrder,
)
from service.policy import READERS
from service.states import SUPPLY_LABELS as LABELS
from service.views import bp, load_order, locale, may, my_agency

# One menu entry; the parts pages link to each other with tabs (templates/service/_parts_tabs).
add_nav("service.parts_requests", _l("Parts"), READERS, order=31, group="work")


def _int(raw) -> int | None:
    raw = (raw or "").strip()
    return int(raw) if re.fullmatch(r"[0-9]{1,6}", raw) else None


# --- requests ----------------------------------------------------------------------------------


@bp.route("/parts-requests/")
@allow(*READERS)
def parts_requests():
    stmt, sort = sorted_by(queries.request_list_statement(),
                           {"submitted": PartsRequest.submitted_at,
                            "status": PartsRequest.status, "number": PartsRequest.number},
                           "-submitted")
    page = paginate(stmt)
    return render_template("service/parts_requests.html", page=page, sort=sort,
                           counts=queries.request_line_counts(r.id for r in page.items),
                           by_agency=queries.agency_filter(), **LABELS)


def _request_form(form: PartsRequestForm, agency, order: WorkOrder | None = None):
    """Fill the part and order choices; for one order, its line's parts and that order only."""
    lang = locale()
    lines = [order.product_line_id] if order else [p.id for p in agency.product_lines]
    options = queries.active_parts(lines)
    part_choices = [(0, "—")] + [(p.id, f"{p.part_number} {p.name(lang)}") for p in options]
    orders = [order] if order else queries.open_orders_for_parts(agency.id)
    order_choices = [(0, "—")] + [(o.id, f"{o.number} · {o.serial_number}") for o in orders]
    for entry in form.lines:
        entry.part_id.choices = part_choices
        entry.work_order_id.choices = order_choices
    return form


def _submitted_lines(form: PartsRequestForm, order: WorkOrder | None = None) -> list[dict]:
    """The filled rows; every row of a request made from an order is for that order."""
    return [{"part_id": e.part_id.data, "quantity": e.quantity.data,
             "reason": LineReason.WORK_ORDER.value if order else e.reason.data,
             "work_order_id": order.id if order else e.work_order_id.data or None}
            for e in form.lines if e.part_id.data]


@bp.route("/parts-requests/new", methods=["GET", "POST"])
@performs("parts_request.submitted")
def parts_request_new():
    agency = my_agency()
    form = _request_form(PartsRequestForm(), agency)
    if form.validate_on_submit():
        ok, created = perform(supply.create_parts_request, agency, _submitted_lines(form),
                              form.note.data, form=form)
        if ok:
            flash(_("Request %(number)s submitted to the HQ parts desk.",
                    number=created.number), "success")
            return redirect(url_for("service.parts_request", request_id=created.id))
    return render_template("service/parts_request_form.html", form=form, order=None,
                           title=_("New parts request"))


@bp.route("/orders/<int:order_id>/parts-request", methods=["GET", "POST"])
@performs("parts_request.submitted")
def order_parts_request(order_id):
    """The parts request form opened from an open order: every line is for that order."""
    order = load_order(order_id)  # another agency's order is 404, like a missing one
    if not order.is_open:
        flash(_("Parts can be requested only for open orders."), "warning")
        return redirect(url_for("service.order", order_id=order.id))
    agency = my_agency()
    form = _request_form(PartsRequestForm(), agency, order)
    if form.validate_on_submit():
        ok, created = perform(supply.create_parts_request, agency,
                              _submitted_lines(form, order), form.note.data, form=form)
        if ok:
            flash(_("Request %(number)s submitted to the HQ parts desk.",
                    number=created.number), "success")
            return redirect(url_for("service.order", order_id=order.id) + "#parts-requests")
    return render_template("service/parts_request_form.html", form=form, order=order,
                           title=_("Request parts for order %(number)s", number=order.number))


def _request_page(item: PartsRequest, *, form=None, ship_form=None, status=200):
    lines = queries.request_lines(item)
    if form is None:
        form = ActionForm(formdata=None)
    if ship_form is None and may(policy.SHIP_REQUEST, item):
        ship_form = ShipForm(formdata=None)
    return render_template("service/parts_request.html", item=item, lines=lines, form=form,
                           ship_form=ship_form,
                           may_decide=may(policy.DECIDE_REQUEST, item)
                           and item.status == RequestStatus.SUBMITTED,
                           may_ship=may(policy.SHIP_REQUEST, item)
                           and item.status == RequestStatus.APPROVED,
                           may_receive=may(policy.RECEIVE_REQUEST, item)
                           and item.status == RequestStatus.SHIPPED,
                           status_enum=RequestStatus, decision_enum=LineDecision,
                           **LABELS), status


@bp.route("/parts-requests/<int:request_id>")
@allow(*READERS)
def parts_request(request_id):
    return _request_page(get_or_404(PartsRequest, request_id))


@bp.route("/parts-requests/<int:request_id>/decide", methods=["POST"])
@performs("parts_request.decided")
def parts_request_decide(request_id):
    item = get_or_404(PartsRequest, request_id)
    form = ActionForm()
    if form.validate_on_submit():
        decisions = {line.id: {
            "decision": request.form.get(f"decision-{line.id}"),
            "approved_quantity": _int(request.form.get(f"approved-{line.id}")),
            "reject_reason": request.form.get(f"reason-{line.id}"),
        } for line in queries.request_lines(item)}
        if perform(supply.decide_parts_request, item, decisions, form=form):
            return done(_("Decision saved."), "service.parts_request", request_id=item.id)
    return _request_page(item, form=form, status=422)


@bp.route("/parts-requests/<int:request_id>/ship", methods=["POST"])
@performs("parts_request.shipped")
def parts_request_ship(request_id):
    item = get_or_404(PartsRequest, request_id)
    form = ShipForm()
    if form.validate_on_submit() and perform(supply.ship_parts_request, item,
                                             form.carrier.data, form.tracking_number.data,
                                             form=form):
        return done(_("Request marked as shipped."), "service.parts_request", request_id=item.id)
    return _request_page(item, ship_form=form, status=422)


@bp.route("/parts-requests/<int:request_id>/receive", methods=["POST"])
@performs("parts_request.received")
def parts_request_receive(request_id):
    item = get_or_404(PartsRequest, request_id)
    form = ActionForm()
    if form.validate_on_submit():
        receipts = {line.id: {
            "received_quantity": _int(request.form.get(f"received-{line.id}")),
            "discrepancy_note": request.form.get(f"note-{line.id}"),
        } for line in queries.request_lines(item) if line.decision == LineDecision.APPROVED}
        if perform(supply.receive_parts_request, item, receipts, form=form):
            return done(_("Receipt confirmed; the parts are in your stock."),
                        "service.parts_request", request_id=item.id)
    return _request_page(item, form=form, status=422)


# --- stock -------------------------------------------------------------------------------------


@bp.route("/stock/")
@allow(*READERS)
def stock():
    stmt, sort = sorted_by(queries.stock_statement(),
                           {"quantity": PartStock.quantity, "updated": PartStock.updated_at,
                            "part": PartStock.part_id}, "-updated")
    return render_template("service/stock.html", page=paginate(stmt), sort=sort,
                           by_agency=queries.agency_filter())


# --- returns -----------------------------------------------------------------------------------


@bp.route("/returns/")
@allow(*READERS)
def returns():
    stmt, sort = sorted_by(queries.return_list_statement(),
                           {"due": PartReturn.due_on, "status": PartReturn.status,
                            "shipped": PartReturn.shipped_at}, "due")
    return render_template("service/returns.html", page=paginate(stmt), sort=sort,
                           today=local_today(), by_agency=queries.agency_filter(), **LABELS)


def _return_page(item: PartReturn, *, ship_form=None, inspect_form=None, status=200):
    if ship_form is None and may(policy.SHIP_RETURN, item) and item.status == ReturnStatus.DUE:
        ship_form = ShipForm(formdata=None)
    if (inspect_form is None and may(policy.INSPECT_RETURN, item)
            and item.status == ReturnStatus.SHIPPED):
        inspect_form = InspectForm(formdata=None)
    return render_template("service/return.html", item=item, ship_form=ship_form,
                           inspect_form=inspect_form, today=local_today(), **LABELS), status


@bp.route("/returns/<int:return_id>")
@allow(*READERS)
def part_return(return_id):
    return _return_page(get_or_404(PartReturn, return_id))


@bp.route("/returns/<int:return_id>/ship", methods=["POST"])
@performs("part_return.shipped")
def part_return_ship(return_id):
    item = get_or_404(PartReturn, return_id)
    form = ShipForm()
    if form.validate_on_submit() and perform(supply.ship_return, item, form.carrier.data,
                                             form.tracking_number.data, form=form):
        return done(_("Return marked as shipped."), "service.part_return", return_id=item.id)
    return _return_page(item, ship_form=form, status=422)


@bp.route("/returns/<int:return_id>/inspect", methods=["POST"])
@performs("part_return.inspected")
def part_return_inspect(return_id):
    item = get_or_404(PartReturn, return_id)
    form = InspectForm()
    if form.validate_on_submit() and perform(supply.inspect_return, item,
                                             form.result.data == "accepted", form.reason.data,
                                             form=form):
        return done(_("Inspection recorded."), "service.part_return", return_id=item.id)
    return _return_page(item, inspect_form=form, status=422)

