"""Parts supply pages: requests, the agency's stock and defective-part returns."""
import re

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from portal.auth.access import allow
from portal.auth.roles import Role
from portal.clock import local_today
from portal.listing import paginate, sorted_by
from portal.navigation import add_nav
from portal.tenancy import get_or_404
from service import queries, supply
from service.forms import ActionForm, InspectForm, PartsRequestForm, ShipForm
from service.models import (
    LINE_DECISION_LABELS,
    LINE_REASON_LABELS,
    REQUEST_STATUS_LABELS,
    RETURN_STATUS_LABELS,
    LineDecision,
    PartReturn,
    PartsRequest,
    PartStock,
    RequestStatus,
    ReturnStatus,
)
from service.views import AGENCY_EDITORS, READERS, bp, locale, my_agency, run

# One menu entry; the parts pages link to each other with tabs (templates/service/_parts_tabs).
add_nav("service.parts_requests", _l("Parts"), READERS, order=31)

LABELS = {"request_statuses": REQUEST_STATUS_LABELS, "decisions": LINE_DECISION_LABELS,
          "reasons": LINE_REASON_LABELS, "return_statuses": RETURN_STATUS_LABELS}


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


def _request_form(form: PartsRequestForm, agency):
    lang = locale()
    lines = [p.id for p in agency.product_lines]
    options = queries.catalog_for_lines(lines)["parts"]
    part_choices = [(0, "—")] + [(p.id, f"{p.part_number} {p.name(lang)}") for p in options]
    order_choices = [(0, "—")] + [(o.id, f"{o.number} · {o.serial_number}")
                                  for o in queries.open_orders_for_parts(agency.id)]
    for entry in form.lines:
        entry.part_id.choices = part_choices
        entry.work_order_id.choices = order_choices
    return form


@bp.route("/parts-requests/new", methods=["GET", "POST"])
@allow(*AGENCY_EDITORS)
def parts_request_new():
    agency = my_agency()
    form = _request_form(PartsRequestForm(), agency)
    if form.validate_on_submit():
        lines = [{"part_id": e.part_id.data, "quantity": e.quantity.data,
                  "reason": e.reason.data, "work_order_id": e.work_order_id.data or None}
                 for e in form.lines if e.part_id.data]
        created = run(form, supply.create_parts_request, agency, lines, form.note.data)
        if created:
            flash(_("Request %(number)s submitted to the HQ parts desk.",
                    number=created.number), "success")
            return redirect(url_for("service.parts_request", request_id=created.id))
    return render_template("service/parts_request_form.html", form=form,
                           title=_("New parts request"))


def _request_page(item: PartsRequest, *, form=None, ship_form=None, status=200):
    lines = queries.request_lines(item)
    role = current_user.role
    if form is None:
        form = ActionForm(formdata=None)
    if ship_form is None and role == Role.HQ_PARTS:
        ship_form = ShipForm(formdata=None)
    return render_template("service/parts_request.html", item=item, lines=lines, form=form,
                           ship_form=ship_form, may_decide=role == Role.HQ_PARTS
                           and item.status == RequestStatus.SUBMITTED,
                           may_ship=role == Role.HQ_PARTS and item.status == RequestStatus.APPROVED,
                           may_receive=role in AGENCY_EDITORS
                           and item.status == RequestStatus.SHIPPED,
                           status_enum=RequestStatus, decision_enum=LineDecision,
                           **LABELS), status


@bp.route("/parts-requests/<int:request_id>")
@allow(*READERS)
def parts_request(request_id):
    return _request_page(get_or_404(PartsRequest, request_id))


@bp.route("/parts-requests/<int:request_id>/decide", methods=["POST"])
@allow(Role.HQ_PARTS)
def parts_request_decide(request_id):
    item = get_or_404(PartsRequest, request_id)
    form = ActionForm()
    if form.validate_on_submit():
        decisions = {line.id: {
            "decision": request.form.get(f"decision-{line.id}"),
            "approved_quantity": _int(request.form.get(f"approved-{line.id}")),
            "reject_reason": request.form.get(f"reason-{line.id}"),
        } for line in queries.request_lines(item)}
        if run(form, supply.decide_parts_request, item, decisions):
            flash(_("Decision saved."), "success")
            return redirect(url_for("service.parts_request", request_id=item.id))
    return _request_page(item, form=form, status=422)


@bp.route("/parts-requests/<int:request_id>/ship", methods=["POST"])
@allow(Role.HQ_PARTS)
def parts_request_ship(request_id):
    item = get_or_404(PartsRequest, request_id)
    form = ShipForm()
    if form.validate_on_submit() and run(form, supply.ship_parts_request, item,
                                         form.carrier.data, form.tracking_number.data):
        flash(_("Request marked as shipped."), "success")
        return redirect(url_for("service.parts_request", request_id=item.id))
    return _request_page(item, ship_form=form, status=422)


@bp.route("/parts-requests/<int:request_id>/receive", methods=["POST"])
@allow(*AGENCY_EDITORS)
def parts_request_receive(request_id):
    item = get_or_404(PartsRequest, request_id)
    form = ActionForm()
    if form.validate_on_submit():
        receipts = {line.id: {
            "received_quantity": _int(request.form.get(f"received-{line.id}")),
            "discrepancy_note": request.form.get(f"note-{line.id}"),
        } for line in queries.request_lines(item) if line.decision == LineDecision.APPROVED}
        if run(form, supply.receive_parts_request, item, receipts):
            flash(_("Receipt confirmed; the parts are in your stock."), "success")
            return redirect(url_for("service.parts_request", request_id=item.id))
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
    role = current_user.role
    if ship_form is None and role in AGENCY_EDITORS and item.status == ReturnStatus.DUE:
        ship_form = ShipForm(formdata=None)
    if inspect_form is None and role == Role.HQ_PARTS and item.status == ReturnStatus.SHIPPED:
        inspect_form = InspectForm(formdata=None)
    return render_template("service/return.html", item=item, ship_form=ship_form,
                           inspect_form=inspect_form, today=local_today(), **LABELS), status


@bp.route("/returns/<int:return_id>")
@allow(*READERS)
def part_return(return_id):
    return _return_page(get_or_404(PartReturn, return_id))


@bp.route("/returns/<int:return_id>/ship", methods=["POST"])
@allow(*AGENCY_EDITORS)
def part_return_ship(return_id):
    item = get_or_404(PartReturn, return_id)
    form = ShipForm()
    if form.validate_on_submit() and run(form, supply.ship_return, item, form.carrier.data,
                                         form.tracking_number.data):
        flash(_("Return marked as shipped."), "success")
        return redirect(url_for("service.part_return", return_id=item.id))
    return _return_page(item, ship_form=form, status=422)


@bp.route("/returns/<int:return_id>/inspect", methods=["POST"])
@allow(Role.HQ_PARTS)
def part_return_inspect(return_id):
    item = get_or_404(PartReturn, return_id)
    form = InspectForm()
    if form.validate_on_submit() and run(form, supply.inspect_return, item,
                                         form.result.data == "accepted", form.reason.data):
        flash(_("Inspection recorded."), "success")
        return redirect(url_for("service.part_return", return_id=item.id))
    return _return_page(item, inspect_form=form, status=422)

