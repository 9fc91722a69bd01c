"""Work order pages: list, export, detail, create, edit, cancel, revisit.

The other service pages (catalogs, quality, parts supply) add their routes to the same
blueprint from their own modules.
"""
from datetime import datetime

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from portal import clock
from portal import policy as portal_policy
from portal.auth.access import allow, performs
from portal.auth.roles import Role
from portal.clock import from_local, to_local
from portal.commit import done, perform
from portal.exports import csv_response, refuse_if_too_many, xlsx_response, zone_heading
from portal.listing import int_arg, paginate, sorted_by
from portal.navigation import add_nav
from portal.tenancy import get_or_404
from service import policy, quality, queries, services, stock
from service.forms import CancelForm, RevisitForm, WorkOrderForm
from service.models import ORDER_STATUS_LABELS, OrderStatus, WorkOrder
from service.policy import AGENCY_EDITORS, EVERYONE, READERS  # noqa: F401 - the pages' groups
from tenants.models import SERVICE_TYPE_LABELS, Agency, ProductLine, ServiceType

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
    # Times on the network's wall clock, the heading names the zone (portal.exports).
    header = [_("Agency"), _("Order number"), _("Service type"), _("Status"), _("Customer"),
              _("Phone"), _("Product line"), _("Model"), _("Serial number"), _("In warranty"),
              *(zone_heading(label) for label in (_("Received"), _("Responded"),
                                                  _("Arrived on site"), _("Completed"))),
              _("Distance (km)"), _("Engineer"), _("Certified engineer"), _("Rework"),
              _("First-time fix")]
    yes, no = _("yes"), _("no")

    def rows():
        for o in queries.export_rows(stmt):
            yield [o.agency.code, o.number, SERVICE_TYPE_LABELS[o.service_type],
                   ORDER_STATUS_LABELS[o.status], o.masked_customer_name,
                   o.masked_customer_phone, o.product_line.name(lang), o.product_model.code,
                   o.serial_number, yes if o.is_in_warranty else no,
                   o.received_at, o.responded_at, o.arrived_at, o.completed_at,
                   o.distance_km, o.engineer.name if o.engineer else "",
                   yes if o.is_engineer_certified else no, yes if o.is_rework else no,
                   yes if o.is_first_time_fix else no]

    if request.args.get("format") == "xlsx":
        return xlsx_response("work-orders", header, rows())
    return csv_response("work-orders", header, rows())


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
#
# The product line narrows the form: its models, fault codes, repair codes and parts (the
# catalog keys them by line only). Without script, "Update choices" posts the form back and it
# is shown again with the new choices, nothing saved and nothing judged; with htmx, changing the
# line asks `order_choices` for the dependent fields alone.


def _chosen_line(form: WorkOrderForm, lines: list[ProductLine]) -> ProductLine | None:
    """The line the choices follow: the one chosen, else the chosen model's, else the agency's
    only one. A line the agency is not authorized for is no choice."""
    line = next((x for x in lines if x.id == form.product_line_id.data), None)
    if line is None and form.product_model_id.data:
        line = next((x for x in lines
                     if any(m.id == form.product_model_id.data for m in x.models)), None)
    if line is None and len(lines) == 1:
        line = lines[0]
    return line


def _order_choices(form: WorkOrderForm, agency: Agency, *, fresh: bool = False):
    """Fill the line, model and catalog choices; returns the chosen line (or None).

    `fresh`: the form is shown again for new choices, so what no longer fits the line is
    dropped (on a save it stays, and the service refuses it with its message).
    """
    lang = locale()
    lines = queries.authorized_lines(agency.id)
    line = _chosen_line(form, lines)
    form.product_line_id.choices = [(0, "—")] + [(x.id, f"{x.code} · {x.name(lang)}")
                                                 for x in lines]
    form.product_line_id.data = line.id if line else 0
    if line is not None:
        form.product_model_id.choices = [(m.id, f"{m.code} {m.name}") for m in line.models]
        if len(line.models) == 1 and not form.product_model_id.data:
            form.product_model_id.data = line.models[0].id
    else:
        form.product_model_id.choices = [(m.id, f"{x.name(lang)} · {m.code} {m.name}")
                                         for x in lines for m in x.models]
    form.product_model_id.choices.insert(0, (0, "—"))
    options = queries.catalog_for_lines([line.id]) if line else {
        "fault_codes": [], "repair_codes": [], "parts": []}
    form.fault_code_id.choices = [(0, "—")] + [
        (f.id, f"{f.code} {f.description(lang)}") for f in options["fault_codes"]]
    form.repair_code_ids.choices = [
        (r.id, _("%(code)s %(text)s (%(hours)s h)", code=r.code, text=r.description(lang),
                 hours=r.standard_hours))
        for r in options["repair_codes"]]
    have = stock.quantities(agency.id, [p.id for p in options["parts"]])
    part_choices = [(0, "—")] + [
        (p.id, _("%(number)s %(name)s (in stock: %(n)s)", number=p.part_number,
                 name=p.name(lang), n=have.get(p.id, 0)))
        for p in options["parts"]]
    for entry in form.parts:
        entry.part_id.choices = part_choices
    if fresh:
        _drop_unfitting(form)
    return line


def _drop_unfitting(form: WorkOrderForm) -> None:
    def fits(field, value) -> bool:
        return value in {v for v, _label in field.choices}

    for field in (form.product_model_id, form.fault_code_id):
        if not fits(field, field.data):
            field.data = 0
    form.repair_code_ids.data = [i for i in form.repair_code_ids.data or []
                                 if fits(form.repair_code_ids, i)]
    for entry in form.parts:
        if not entry.part_id.data or not fits(entry.part_id, entry.part_id.data):
            entry.part_id.data, entry.quantity.data = 0, None
            entry.quantity.raw_data = []


def _order_form(form: WorkOrderForm, agency: Agency, order: WorkOrder | None = None, *,
                fresh: bool = False):
    _order_choices(form, agency, fresh=fresh)
    engineers = queries.engineers_of(agency.id)
    form.engineer_id.choices = [(0, _("Not assigned yet"))] + [
        (e.id, e.name + ("" if e.status == "active" else " " + _("(left)")))
        for e in engineers if e.status == "active" or (order and e.id == order.engineer_id)]
    _service_types(form, agency, order)
    return form


def _service_types(form: WorkOrderForm, agency: Agency, order: WorkOrder | None) -> None:
    """The agency's authorized service types; the only one is the default, else a new order
    starts with none chosen (a guess would be saved unnoticed)."""
    allowed = [t for t in ServiceType if t.value in agency.service_type_list] or list(ServiceType)
    if order is not None and order.service_type not in allowed:
        allowed.append(ServiceType(order.service_type))
    form.service_type.choices = [(t.value, SERVICE_TYPE_LABELS[t]) for t in allowed]
    if len(allowed) == 1:
        form.service_type.data = form.service_type.data or allowed[0].value
    elif order is None:
        form.service_type.choices.insert(0, ("", _("Choose…")))


def _new_order_defaults(form: WorkOrderForm) -> None:
    """A new order was received now (local, to the minute), unless the link names a line."""
    form.received_at.data = local_input(clock.now()).replace(second=0, microsecond=0)
    form.product_line_id.data = int_arg("line", 0)
    form.product_model_id.data = int_arg("model", 0)


def _refreshing(form: WorkOrderForm) -> bool:
    return form.is_submitted() and bool(form.refresh.data)


def _order_data(form: WorkOrderForm) -> dict:
    return {
        "number": form.number.data, "service_type": form.service_type.data,
        "customer_name": form.customer_name.data, "customer_phone": form.customer_phone.data,
        "customer_address": form.customer_address.data,
        "product_line_id": form.product_line_id.data or None,
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


def _form_page(form: WorkOrderForm, order: WorkOrder | None, title: str):
    return render_template("service/order_form.html", form=form, order=order, title=title)


@bp.route("/orders/new", methods=["GET", "POST"])
@performs("work_order.created", "work_order.completed")
def order_new():
    agency = my_agency()
    form = WorkOrderForm()
    if not form.is_submitted():
        _new_order_defaults(form)
    _order_form(form, agency, fresh=not form.is_submitted() or _refreshing(form))
    if not _refreshing(form) and form.validate_on_submit():
        ok, created = perform(services.create_work_order, agency, _order_data(form), form=form)
        if ok:
            flash(_("Order %(number)s saved.", number=created.number), "success")
            return redirect(url_for("service.order", order_id=created.id))
    return _form_page(form, None, _("New work order"))


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
        form.product_line_id.data = order.product_line_id
        form.product_model_id.data = order.product_model_id
        form.engineer_id.data = order.engineer_id or 0
        form.fault_code_id.data = order.fault_code_id or 0
        form.repair_code_ids.data = [r.repair_code_id for r in order.repairs]
        form.parts.append_entry()
    _order_form(form, agency, order, fresh=_refreshing(form))
    if not _refreshing(form) and form.validate_on_submit() and perform(
            services.update_work_order, agency, order, _order_data(form), form=form):
        flash(_("Order %(number)s saved.", number=order.number), "success")
        return redirect(url_for("service.order", order_id=order.id))
    return _form_page(form, order, _("Edit order %(number)s", number=order.number))


@bp.route("/orders/choices")
@allow(*portal_policy.roles(policy.EDIT_ORDER))
def order_choices():
    """The order form's fields that follow the product line, for htmx to swap in.

    Reads the form's own field names (``product_line_id``, ``product_model_id``, the chosen
    codes and parts, kept when they fit) or ``line`` and ``model``. A line the agency is not
    authorized for, or junk, is 404. A fixed number of queries, whatever is asked.
    """
    agency = my_agency()
    args = request.args.copy()
    for alias, name in (("line", "product_line_id"), ("model", "product_model_id")):
        if alias in args and name not in args:
            args.setlist(name, args.getlist(alias))
    asked = args.get("product_line_id", "").strip()
    form = WorkOrderForm(formdata=args, meta={"csrf": False})
    line = _order_choices(form, agency, fresh=True)
    if asked not in ("", "0") and (line is None or asked != str(line.id)):
        abort(404)
    return render_template("service/_order_choices.html", form=form)


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
