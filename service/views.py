"""Work order pages: list, export, detail, create, edit, cancel, revisit.

The other service pages (catalogs, quality, parts supply) add their routes to the same
blueprint from their own modules.
"""
from datetime import datetime

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from portal import policy as portal_policy
from portal.auth.access import allow, performs
from portal.auth.roles import Role
from portal.clock import from_local, to_local
from portal.commit import done, perform
from portal.exports import csv_response, refuse_if_too_many
from portal.listing import paginate, sorted_by
from portal.navigation import add_nav
from portal.tenancy import get_or_404
from service import policy, quality, queries, services, stock
from service.forms import CancelForm, RevisitForm, WorkOrderForm
from service.models import ORDER_STATUS_LABELS, OrderStatus, WorkOrder
from service.policy import AGENCY_EDITORS, EVERYONE, READERS  # noqa: F401 - the pages' groups
from tenants.models import SERVICE_TYPE_LABELS, Agency

bp = Blueprint("service", __name__, url_prefix="/service")

EXPORT_LIMIT = 50_000

add_nav("service.orders", _l("Work orders"), EVERYONE, order=30, group="work")


def locale() -> str:
    return str(get_locale())


def my_agency() -> Agency:
    return get_or_404(Agency, current_user.agency_id)


def local_input(moment: datetime | None) -> datetime | None:
    """An aware UTC time as the naive local wall-clock time a form field shows."""
    return to_local(moment).replace(tzinfo=None) if moment else None


def aware(naive: datetime | None) -> datetime | None:
    return from_local(naive) if naive else None


# --- list and export ---------------------------------------------------------------------------


def _list_context() -> dict:
    by_agency = queries.agency_filter()
    agency_id = current_user.agency_id or by_agency.agency_id
    return {"product_lines": queries.product_lines(),
            "engineers": queries.engineers_of(agency_id)
            if current_user.role != Role.ENGINEER else [],
            "by_agency": by_agency, "statuses": ORDER_STATUS_LABELS,
            "types": SERVICE_TYPE_LABELS}


def _sorted_orders():
    stmt, sort = sorted_by(queries.order_list_statement(), queries.ORDER_SORTS, "-received")
    # Ties (orders received in the same minute) keep one order from page to page.
    return stmt.order_by(WorkOrder.id.desc()), sort


@bp.route("/orders/")
@allow(*EVERYONE)
def orders():
    stmt, sort = _sorted_orders()
    return render_template("service/orders.html", page=paginate(stmt), sort=sort,
                           **_list_context())


@bp.route("/orders/export.csv")
@allow(*EVERYONE)
def orders_export():
    stmt, _sort = _sorted_orders()
    if refused := refuse_if_too_many(stmt, EXPORT_LIMIT, "service.orders"):
        return refused
    lang = locale()
    header = [_("Agency"), _("Order number"), _("Service type"), _("Status"), _("Customer"),
              _("Phone"), _("Product line"), _("Model"), _("Serial number"), _("In warranty"),
              _("Received"), _("Responded"), _("Arrived on site"), _("Completed"),
              _("Distance (km)"), _("Engineer"), _("Certified engineer"), _("Rework"),
              _("First-time fix")]
    yes, no = _("yes"), _("no")

    def rows():
        for o in queries.export_rows(stmt):
            yield [o.agency.code, o.number, SERVICE_TYPE_LABELS[o.service_type],
                   ORDER_STATUS_LABELS[o.status], o.masked_customer_name,
                   o.masked_customer_phone, o.product_line.name(lang), o.product_model.code,
                   o.serial_number, yes if o.is_in_warranty else no,
                   *(_local_text(t) for t in (o.received_at, o.responded_at, o.arrived_at,
                                              o.completed_at)),
                   o.distance_km, o.engineer.name if o.engineer else "",
                   yes if o.is_engineer_certified else no, yes if o.is_rework else no,
                   yes if o.is_first_time_fix else no]

    return csv_response("work-orders", header, rows())


def _local_text(moment) -> str:
    return local_input(moment).strftime("%Y-%m-%d %H:%M") if moment else ""


# --- detail ------------------------------------------------------------------------------------


def load_order(order_id) -> WorkOrder:
    """Load an order the user may read: engineers read only the orders assigned to them."""
    order = get_or_404(WorkOrder, order_id)
    if current_user.role == Role.ENGINEER and (
            order.engineer is None or order.engineer.user_id != current_user.id):
        abort(404)
    return order


def may(action: str, record=None) -> bool:
    """Whether the signed-in user may do `action` (on `record`): the service's own rule."""
    return portal_policy.can(current_user, action, record)


def sees_customer() -> bool:
    """Whether the reader of an order's page sees the customer's name, phone and address.

    The owning agency (the guard lets no other agency load the order) and HQ staff do; a
    regional manager, who oversees the region's agencies, sees them masked as in the lists.
    """
    return current_user.role != Role.REGIONAL_MANAGER


def _order_page(order: WorkOrder, *, cancel_form=None, revisit_form=None, status=200):
    detail = queries.order_detail(order)
    if revisit_form is None and may(policy.RECORD_REVISIT, order):
        revisit = detail["revisit"]
        revisit_form = RevisitForm(formdata=None, score=revisit.score if revisit else 5,
                                   comment=revisit.comment if revisit else "")
    if cancel_form is None and may(policy.CANCEL_ORDER, order):
        cancel_form = CancelForm(formdata=None)
    return render_template("service/order.html", order=order, cancel_form=cancel_form,
                           revisit_form=revisit_form, statuses=ORDER_STATUS_LABELS,
                           types=SERVICE_TYPE_LABELS, show_customer=sees_customer(),
                           **detail), status


@bp.route("/orders/<int:order_id>")
@allow(*EVERYONE)
def order(order_id):
    return _order_page(load_order(order_id))


# --- create and edit ---------------------------------------------------------------------------


def _order_form(form: WorkOrderForm, agency: Agency, order: WorkOrder | None = None):
    lang = locale()
    lines = [line for line in queries.product_lines()
             if line.id in {p.id for p in agency.product_lines}]
    form.product_model_id.choices = [(0, "—")] + [
        (m.id, f"{line.name(lang)} · {m.code} {m.name}") for line in lines for m in line.models]
    engineers = queries.engineers_of(agency.id)
    form.engineer_id.choices = [(0, _("Not assigned yet"))] + [
        (e.id, e.name + ("" if e.status == "active" else " " + _("(left)")))
        for e in engineers if e.status == "active" or (order and e.id == order.engineer_id)]
    options = queries.catalog_for_lines([line.id for line in lines])
    line_code = {line.id: line.code for line in lines}
    form.fault_code_id.choices = [(0, "—")] + [
        (f.id, f"{line_code[f.product_line_id]} {f.code} {f.description(lang)}")
        for f in options["fault_codes"]]
    form.repair_code_ids.choices = [
        (r.id, _("%(line)s %(code)s %(text)s (%(hours)s h)", line=line_code[r.product_line_id],
                 code=r.code, text=r.description(lang), hours=r.standard_hours))
        for r in options["repair_codes"]]
    have = stock.quantities(agency.id, [p.id for p in options["parts"]])
    part_choices = [(0, "—")] + [
        (p.id, _("%(number)s %(name)s (in stock: %(n)s)", number=p.part_number,
                 name=p.name(lang), n=have.get(p.id, 0)))
        for p in options["parts"]]
    for entry in form.parts:
        entry.part_id.choices = part_choices
    return form


def _order_data(form: WorkOrderForm) -> dict:
    return {
        "number": form.number.data, "service_type": form.service_type.data,
        "customer_name": form.customer_name.data, "customer_phone": form.customer_phone.data,
        "customer_address": form.customer_address.data,
        "product_model_id": form.product_model_id.data,
        "serial_number": form.serial_number.data, "purchase_date": form.purchase_date.data,
        "received_at": aware(form.received_at.data),
        "responded_at": aware(form.responded_at.data),
        "arrived_at": aware(form.arrived_at.data),
        "completed_at": aware(form.completed_at.data),
        "distance_km": form.distance_km.data, "engineer_id": form.engineer_id.data or None,
        "fault_code_id": form.fault_code_id.data or None,
        "fault_description": form.fault_description.data,
        "repair_code_ids": form.repair_code_ids.data or [],
        "resolution": form.resolution.data, "is_first_time_fix": form.is_first_time_fix.data,
        "parts": [(e.part_id.data, e.quantity.data) for e in form.parts if e.part_id.data],
    }


@bp.route("/orders/new", methods=["GET", "POST"])
@performs("work_order.created", "work_order.completed")
def order_new():
    agency = my_agency()
    form = _order_form(WorkOrderForm(), agency)
    if form.validate_on_submit():
        ok, created = perform(services.create_work_order, agency, _order_data(form), form=form)
        if ok:
            flash(_("Order %(number)s saved.", number=created.number), "success")
            return redirect(url_for("service.order", order_id=created.id))
    return render_template("service/order_form.html", form=form, order=None,
                           title=_("New work order"))


@bp.route("/orders/<int:order_id>/edit", methods=["GET", "POST"])
@performs("work_order.updated", "work_order.completed")
def order_edit(order_id):
    order = load_order(order_id)
    agency = my_agency()
    if order.status != OrderStatus.OPEN:
        flash(_("Only open orders can be changed."), "warning")
        return redirect(url_for("service.order", order_id=order.id))
    form = WorkOrderForm(obj=order)
    if not form.is_submitted():
        for name in ("received_at", "responded_at", "arrived_at", "completed_at"):
            getattr(form, name).data = local_input(getattr(order, name))
        form.product_model_id.data = order.product_model_id
        form.engineer_id.data = order.engineer_id or 0
        form.fault_code_id.data = order.fault_code_id or 0
        form.repair_code_ids.data = [r.repair_code_id for r in order.repairs]
        form.parts.append_entry()
    _order_form(form, agency, order)
    if form.validate_on_submit() and perform(services.update_work_order, agency, order,
                                             _order_data(form), form=form):
        flash(_("Order %(number)s saved.", number=order.number), "success")
        return redirect(url_for("service.order", order_id=order.id))
    return render_template("service/order_form.html", form=form, order=order,
                           title=_("Edit order %(number)s", number=order.number))


@bp.route("/orders/<int:order_id>/cancel", methods=["POST"])
@performs("work_order.cancelled")
def order_cancel(order_id):
    order = load_order(order_id)
    form = CancelForm()
    if form.validate_on_submit() and perform(services.cancel_work_order, order,
                                             form.reason.data, form=form):
        flash(_("Order %(number)s cancelled; its parts are back in stock.",
                number=order.number), "success")
        return redirect(url_for("service.order", order_id=order.id))
    return _order_page(order, cancel_form=form, status=422)


@bp.route("/orders/<int:order_id>/revisit", methods=["POST"])
@performs("revisit.recorded", "revisit.corrected")
def order_revisit(order_id):
    order = load_order(order_id)
    form = RevisitForm()
    if form.validate_on_submit() and perform(quality.record_revisit, order, form.score.data,
                                             form.comment.data, aware(form.revisited_at.data),
                                             form=form):
        return done(_("Revisit saved."), "service.order", order_id=order.id)
    return _order_page(order, revisit_form=form, status=422)
