"""The hotline's pages: the dispatcher's queue of service requests, taking a call, a request.

Agencies never reach these routes (the guard's roles are HQ's); the customer's name, phone
and street are shown in full only to those who take calls, masked to every other reader.
"""
import uuid

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import format_timedelta, get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import func, or_, select
from sqlalchemy.orm import joinedload

from dispatch import offers, policy, sla, suggest
from dispatch.forms_offers import OfferForm, VersionForm
from dispatch.forms_requests import CallForm, CancelRequestForm
from dispatch.offers import Offer
from dispatch.requests import (
    CANCELLABLE,
    REQUEST_STATUS_LABELS,
    RequestStatus,
    ServiceRequest,
    ServiceRequestCall,
    cancel_service_request,
    serial_key,
    take_call,
)
from dispatch.views import bp
from portal import clock
from portal import policy as portal_policy
from portal.auth.access import allow, performs
from portal.commit import done, perform
from portal.extensions import db
from portal.listing import int_arg, paginate
from portal.navigation import add_nav
from portal.text import query_text
from portal.transitions import check_version
from tenants.models import (
    SERVICE_TYPE_LABELS,
    Agency,
    ProductLine,
    ProductModel,
    Province,
    ServiceType,
)

add_nav("dispatch.requests", _l("Service requests"), policy.REQUEST_READERS, order=38,
        group="work")


def _lang() -> str:
    return str(get_locale())


def _may(action: str, record=None) -> bool:
    return portal_policy.can(current_user, action, record)


# --- the queue --------------------------------------------------------------------------------


def _filtered():
    calls = (select(func.count(ServiceRequestCall.id))
             .where(ServiceRequestCall.request_id == ServiceRequest.id)
             .correlate(ServiceRequest).scalar_subquery())
    offered_to = (select(Agency.code).join(Offer, Offer.agency_id == Agency.id)
                  .where(Offer.request_id == ServiceRequest.id,
                         Offer.status == offers.OfferStatus.OPEN)
                  .correlate(ServiceRequest).limit(1).scalar_subquery())
    stmt = select(ServiceRequest, calls.label("calls"), offered_to.label("offered_to")).options(
        joinedload(ServiceRequest.product_line), joinedload(ServiceRequest.product_model),
        joinedload(ServiceRequest.province))
    status = request.args.get("status", RequestStatus.NEW)
    if status in {s.value for s in RequestStatus}:
        stmt = stmt.where(ServiceRequest.status == status)
    line_id, province_id = int_arg("line"), int_arg("province")
    if line_id:
        stmt = stmt.where(ServiceRequest.product_line_id == line_id)
    if province_id:
        stmt = stmt.where(ServiceRequest.province_id == province_id)
    q = query_text()
    if q:
        stmt = stmt.where(or_(ServiceRequest.number == q.upper(),
                              ServiceRequest.serial_key == serial_key(q)))
    # Oldest first: the caller who has waited longest is dispatched first.
    return stmt.order_by(ServiceRequest.received_at, ServiceRequest.id)


@bp.route("/requests/")
@allow(*policy.REQUEST_READERS)
def requests():
    page = paginate(_filtered(), rows=True)
    now = clock.now()
    lang = _lang()
    return render_template(
        "dispatch/requests.html", page=page, now=now, lang=lang,
        age=lambda r: format_timedelta(now - r.received_at, add_direction=False),
        statuses=REQUEST_STATUS_LABELS, types=SERVICE_TYPE_LABELS,
        status=request.args.get("status", RequestStatus.NEW),
        clock_labels=sla.CLOCK_STATE_LABELS, clock_styles=sla.CLOCK_STATE_STYLES,
        lines=[(x.id, x.name(lang)) for x in db.session.scalars(
            select(ProductLine).order_by(ProductLine.code))],
        provinces=[(p.id, p.name(lang)) for p in db.session.scalars(
            select(Province).order_by(Province.code))])


# --- taking a call ----------------------------------------------------------------------------


def _call_choices(form: CallForm) -> None:
    lang = _lang()
    form.province_id.choices = [(0, "—")] + [(p.id, p.name(lang)) for p in db.session.scalars(
        select(Province).order_by(Province.code))]
    lines = list(db.session.scalars(select(ProductLine).where(ProductLine.is_active)
                                    .order_by(ProductLine.code)))
    form.product_line_id.choices = [(0, "—")] + [(x.id, f"{x.code} · {x.name(lang)}")
                                                 for x in lines]
    models = db.session.scalars(select(ProductModel).where(
        ProductModel.product_line_id.in_([x.id for x in lines])).order_by(ProductModel.code))
    names = {x.id: x.name(lang) for x in lines}
    form.product_model_id.choices = [(0, "—")] + [
        (m.id, f"{names[m.product_line_id]} · {m.code} {m.name}") for m in models]
    form.service_type.choices = [("", _("Choose…"))] + [
        (t.value, SERVICE_TYPE_LABELS[t]) for t in ServiceType]


def _aware(naive):
    return clock.from_local(naive) if naive else None


def _call_data(form: CallForm) -> dict:
    data = {name: getattr(form, name).data for name in (
        "call_key", "customer_name", "customer_phone", "province_id", "city", "district",
        "street", "product_line_id", "product_model_id", "serial_number", "purchase_date",
        "service_type", "fault_description", "note")}
    data["preferred_from"] = _aware(form.preferred_from.data)
    data["preferred_to"] = _aware(form.preferred_to.data)
    return data


def _said(taken) -> None:
    number = taken.request.number
    if taken.repeated:
        flash(_("This call was already recorded on %(number)s (call %(n)s); nothing was "
                "added.", number=number, n=taken.call_number), "info")
    elif taken.linked:
        flash(_("Linked to %(number)s (call %(n)s): the serial already has an open request.",
                number=number, n=taken.call_number), "warning")
    else:
        flash(_("Service request %(number)s taken; it waits for dispatch.", number=number),
              "success")


@bp.route("/requests/new", methods=["GET", "POST"])
@performs("service_request.created", "service_request.call_linked")
def request_new():
    form = CallForm()
    if not form.is_submitted():
        form.call_key.data = uuid.uuid4().hex
    _call_choices(form)
    if form.validate_on_submit():
        ok, taken = perform(take_call, _call_data(form), form=form)
        if ok:
            _said(taken)
            return redirect(url_for("dispatch.request_detail",
                                    service_request_id=taken.request.id))
    status = 400 if form.is_submitted() else 200
    return render_template("dispatch/request_form.html", form=form), status


# --- one request ------------------------------------------------------------------------------


def load_request(request_id: int) -> ServiceRequest:
    """A request, for the roles that read requests (the guard let only them in)."""
    found = db.session.scalars(select(ServiceRequest).where(
        ServiceRequest.id == request_id).options(
        joinedload(ServiceRequest.product_line), joinedload(ServiceRequest.product_model),
        joinedload(ServiceRequest.province))).one_or_none()
    if found is None:
        abort(404)
    return found


def request_page(row: ServiceRequest, cancel_form=None, offer_form=None, withdraw_form=None,
                 status=200):
    """The request's page: its calls and, for the dispatcher, its offers (the open one with
    its withdraw button, the history) and the suggestion of agencies while it waits."""
    if cancel_form is None and row.status in CANCELLABLE and _may(policy.REQUEST_CANCEL, row):
        cancel_form = CancelRequestForm(formdata=None, version=row.version)
    calls = list(db.session.scalars(select(ServiceRequestCall).where(
        ServiceRequestCall.request_id == row.id).options(
        joinedload(ServiceRequestCall.taken_by)).order_by(ServiceRequestCall.id)))
    history = list(db.session.scalars(select(Offer).where(Offer.request_id == row.id)
                                      .options(joinedload(Offer.agency))
                                      .order_by(Offer.offered_at.desc(), Offer.id.desc())))
    open_offer = next((o for o in history if o.is_open), None)
    if open_offer is not None and withdraw_form is None and _may(policy.OFFER_WITHDRAW,
                                                                 open_offer):
        withdraw_form = VersionForm(formdata=None, version=open_offer.version)
    offering = row.status == RequestStatus.NEW and _may(policy.OFFER_MAKE, row)
    now = clock.now()
    return render_template(
        "dispatch/request.html", sr=row, calls=calls, lang=_lang(), cancel_form=cancel_form,
        show_customer=_may(policy.REQUEST_CREATE), now=now,
        age=format_timedelta(now - row.received_at, add_direction=False),
        offers=history, open_offer=open_offer,
        withdraw_form=withdraw_form if open_offer is not None else None,
        offer_form=offer_form, offering=offering,
        suggestions=suggest.suggestions(
            row, exclude_agency_ids=offers.declined_agencies(row.id)) if offering else [],
        clock_state=row.accept_state, clock_labels=sla.CLOCK_STATE_LABELS,
        clock_styles=sla.CLOCK_STATE_STYLES,
        refusals=offers.REFUSAL_REASONS), status


_detail = request_page


@bp.route("/requests/<int:service_request_id>")
@allow(*policy.REQUEST_READERS)
def request_detail(service_request_id):
    return _detail(load_request(service_request_id))


@bp.route("/requests/<int:service_request_id>/cancel", methods=["POST"])
@performs("service_request.cancelled")
def request_cancel(service_request_id):
    row = load_request(service_request_id)
    form = CancelRequestForm()
    if form.validate_on_submit() and perform(cancel_service_request, row, form.reason.data,
                                             form=form, seen_version=form.version.data):
        return done(_("Service request %(number)s cancelled.", number=row.number),
                    "dispatch.request_detail", service_request_id=row.id)
    return _detail(row, cancel_form=form, status=422)


def _offer(row: ServiceRequest, agency_id: int, *, acting_user, seen_version):
    """Offer the request as the page showed it (a second click finds a newer version)."""
    check_version(row, seen_version)
    return offers.make_offer(row, agency_id, acting_user=acting_user)


@bp.route("/requests/<int:service_request_id>/offer", methods=["POST"])
@performs("dispatch_offer.made")
def request_offer(service_request_id):
    row = load_request(service_request_id)
    form = OfferForm()
    if form.validate_on_submit():
        ok, made = perform(_offer, row, form.agency_id.data, form=form,
                           seen_version=form.version.data)
        if ok:
            return done(_("Offered to %(agency)s; it has until %(when)s to answer.",
                          agency=made.agency.code, when=format_datetime_local(made.expires_at)),
                        "dispatch.request_detail", service_request_id=row.id)
    return request_page(row, offer_form=form, status=422)


def format_datetime_local(moment) -> str:
    from portal.i18n import datetime_filter

    return datetime_filter(moment)
