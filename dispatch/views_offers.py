"""The offer pages: the agency's offers (accept or refuse with a reason), the dispatcher's
withdrawal, and the dispatched order's page (its SLA clocks and appointments).

An agency reads its offers through the tenant guard (another agency's offer is a missing
one) and an offer carries no customer data; the customer is on the work order, which only
exists once the agency accepted. HQ's readers read offers and dispatched orders, read-only.
"""
from datetime import datetime

from flask import abort, render_template, request
from flask_babel import format_timedelta, get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import case, select
from sqlalchemy.orm import joinedload

from certification.models import Engineer, EngineerStatus
from dispatch import appointments, offers, policy, sla
from dispatch.appointments import KEPT_LABELS, RESCHEDULE_LABELS, Appointment
from dispatch.forms_offers import AppointmentForm, RefuseForm, VersionForm
from dispatch.offers import OFFER_STATUS_LABELS, REFUSAL_REASONS, Offer, OfferStatus
from dispatch.views import bp
from portal import clock
from portal import policy as portal_policy
from portal.auth.access import allow, performs
from portal.auth.roles import Role
from portal.commit import done, perform
from portal.extensions import db
from portal.listing import paginate
from portal.navigation import add_nav
from portal.tenancy import get_or_404
from portal.transitions import STALE
from service.models import WorkOrder
from service.views import sees_customer
from tenants.models import ServiceType

add_nav("dispatch.offers", _l("Dispatch offers"), policy.AGENCY_ANSWERERS, order=37,
        group="work")

# Who reads a dispatched order's page: its agency's owner and staff, and HQ's readers.
# The region's manager reads its agencies' dispatched orders (the breach task links here),
# the customer masked as on service's order page.
ORDER_READERS = (*policy.AGENCY_ANSWERERS, *policy.REQUEST_READERS, Role.REGIONAL_MANAGER)
# The years a booked window may name (anything else is a typo or an attack, never a visit).
YEARS = range(2000, 2100)


def _lang() -> str:
    return str(get_locale())


def _may(action: str, record=None) -> bool:
    return portal_policy.can(current_user, action, record)


def _left(moment: datetime, now: datetime) -> str:
    return format_timedelta(moment - now, add_direction=False, threshold=1.1)


# --- the agency's offers ----------------------------------------------------------------------


def _offers_query(status: str):
    stmt = select(Offer).options(
        joinedload(Offer.agency), joinedload(Offer.province),
        joinedload(Offer.product_line), joinedload(Offer.product_model))
    if status in {s.value for s in OfferStatus}:
        stmt = stmt.where(Offer.status == status)
    is_open = Offer.status == OfferStatus.OPEN
    # Open offers first, the soonest to expire on top; then the answered, newest first.
    return stmt.order_by(case((is_open, 0), else_=1), case((is_open, Offer.expires_at)),
                         Offer.answered_at.desc(), Offer.id.desc())


@bp.route("/offers", endpoint="offers")
@allow(*policy.OFFER_READERS)
def offers_list():
    status = request.args.get("status", "")
    page = paginate(_offers_query(status))
    now = clock.now()
    return render_template(
        "dispatch/offers.html", page=page, now=now, lang=_lang(), status=status,
        statuses=OFFER_STATUS_LABELS, left=lambda o: _left(o.expires_at, now),
        hq=current_user.role not in policy.AGENCY_ANSWERERS)


def _load_offer(offer_id: int) -> Offer:
    return get_or_404(Offer, offer_id)


def _refuse_form(offer: Offer, formdata=None) -> RefuseForm:
    form = RefuseForm(formdata=formdata) if formdata is not None else RefuseForm(
        formdata=None, version=offer.version)
    form.reason.choices = [("", _("Choose…"))] + [(k, str(v))
                                                   for k, v in REFUSAL_REASONS.items()]
    return form


def _offer_page(offer: Offer, *, accept_form=None, refuse_form=None, status=200):
    now = clock.now()
    late = offer.is_open and offer.expires_at <= now
    answering = offer.is_open and not late and _may(policy.OFFER_ANSWER, offer)
    if answering:
        accept_form = accept_form or VersionForm(formdata=None, version=offer.version)
        refuse_form = refuse_form or _refuse_form(offer)
    return render_template(
        "dispatch/offer.html", offer=offer, now=now, lang=_lang(), answering=answering,
        accept_form=accept_form, refuse_form=refuse_form,
        late=late,
        left=_left(offer.expires_at, now) if offer.expires_at > now else ""), status


@bp.route("/offers/<int:offer_id>")
@allow(*policy.OFFER_READERS)
def offer(offer_id):
    return _offer_page(_load_offer(offer_id))


@bp.route("/offers/<int:offer_id>/accept", methods=["POST"])
@performs("dispatch_offer.accepted")
def offer_accept(offer_id):
    row = _load_offer(offer_id)
    form = VersionForm()
    if form.validate_on_submit():
        ok, order = perform(offers.accept_offer, row, form=form,
                            seen_version=form.version.data)
        if ok:
            return done(_("Offer accepted: work order %(number)s is yours. The customer's "
                          "details are on it; book the appointment.", number=order.number),
                        "dispatch.order", work_order_id=order.id)
    return _offer_page(row, accept_form=form, status=422)


@bp.route("/offers/<int:offer_id>/refuse", methods=["POST"])
@performs("dispatch_offer.refused")
def offer_refuse(offer_id):
    row = _load_offer(offer_id)
    form = _refuse_form(row, formdata=request.form)
    if form.validate_on_submit() and perform(
            offers.refuse_offer, row, form.reason.data, form.note.data or "", form=form,
            seen_version=form.version.data):
        return done(_("Offer refused; it went back to HQ's dispatcher."),
                    "dispatch.offers")
    return _offer_page(row, refuse_form=form, status=422)


@bp.route("/offers/<int:offer_id>/withdraw", methods=["POST"])
@performs("dispatch_offer.withdrawn")
def offer_withdraw(offer_id):
    """The dispatcher takes the open offer back (the request page's button)."""
    from dispatch.views_requests import load_request, request_page

    row = _load_offer(offer_id)
    form = VersionForm()
    if form.validate_on_submit() and perform(offers.withdraw_offer, row, form=form,
                                             seen_version=form.version.data):
        return done(_("Offer to %(agency)s withdrawn; the request waits for dispatch again.",
                      agency=row.agency.code), "dispatch.request_detail",
                    service_request_id=row.request_id)
    return request_page(load_request(row.request_id), withdraw_form=form, status=422)


# --- the dispatched order ---------------------------------------------------------------------


def _load_order(work_order_id: int):
    """A dispatched order the reader may see, with its clocks: 404 for an order of another
    agency, and for one that was never dispatched (it has no clocks)."""
    order = get_or_404(WorkOrder, work_order_id)
    clocks = sla.order_clocks(order.agency_id, order.id)
    if not clocks:
        abort(404)
    return order, clocks


def _engineers(order: WorkOrder) -> list[Engineer]:
    today = clock.local_today()
    return [e for e in db.session.scalars(select(Engineer).where(
        Engineer.agency_id == order.agency_id, Engineer.status == EngineerStatus.ACTIVE)
        .order_by(Engineer.name, Engineer.id)) if e.left_on is None or e.left_on >= today]


def _appointment_choices(form: AppointmentForm, order: WorkOrder, engineers) -> None:
    form.engineer_id.choices = [(0, _("Choose…"))] + [(e.id, e.name) for e in engineers]
    form.reason.choices = [("", _("Choose…"))] + [(k.value, str(v))
                                                   for k, v in RESCHEDULE_LABELS.items()]


def _appointment_form(order: WorkOrder, current, engineers) -> AppointmentForm:
    form = AppointmentForm(formdata=None, version=str(current.id if current else 0))
    if current is not None:
        start, end = clock.to_local(current.window_from), clock.to_local(current.window_to)
        form.engineer_id.data = current.engineer_id
        form.day.data, form.time_from.data, form.time_to.data = (start.date(), start.time(),
                                                                 end.time())
    elif order.engineer_id:
        form.engineer_id.data = order.engineer_id
    _appointment_choices(form, order, engineers)
    return form


def _bookable(order: WorkOrder) -> bool:
    from service.states import OrderStatus

    return (order.status == OrderStatus.OPEN and order.service_type != ServiceType.PHONE
            and _may(policy.APPOINTMENT_BOOK, order))


def _order_page(order: WorkOrder, clocks, *, form=None, status=200):
    now = clock.now()
    paused = set()
    if clocks:
        paused = {p.clock_id for p in db.session.scalars(select(sla.SlaPause).where(
            sla.SlaPause.agency_id == order.agency_id,
            sla.SlaPause.clock_id.in_([c.id for c in clocks]))) if p.covers(now)}
    timeline = [(c, sla.clock_state_of(c.met_at, c.warn_at, c.due_at, c.escalate_at, now,
                                       paused=c.id in paused)) for c in clocks]
    booked = list(db.session.scalars(select(Appointment).where(
        Appointment.agency_id == order.agency_id, Appointment.work_order_id == order.id)
        .options(joinedload(Appointment.engineer))
        .order_by(Appointment.booked_at.desc(), Appointment.id.desc())))
    current = next((a for a in booked if a.superseded_at is None), None)
    arrival = next((c for c in clocks if c.milestone == sla.Milestone.ARRIVAL), None)
    kept = None
    if current is not None and arrival is not None:
        kept = appointments.kept(current.window_from, current.window_to, arrival.met_at, now)
    offer_row = db.session.scalars(select(Offer).where(
        Offer.agency_id == order.agency_id, Offer.work_order_id == order.id)).first()
    bookable = _bookable(order)
    engineers = _engineers(order) if bookable else []
    if bookable and form is None:
        form = _appointment_form(order, current, engineers)
    return render_template(
        "dispatch/order.html", order=order, timeline=timeline, now=now, lang=_lang(),
        booked=booked, current=current, kept=kept, kept_labels=KEPT_LABELS, offer=offer_row,
        form=form if bookable else None, show_customer=sees_customer(),
        states=sla.CLOCK_STATE_LABELS, styles=sla.CLOCK_STATE_STYLES,
        zone=str(clock.local_zone())), status


@bp.route("/orders/<int:work_order_id>")
@allow(*ORDER_READERS)
def order(work_order_id):
    return _order_page(*_load_order(work_order_id))


def _window(form: AppointmentForm):
    """The window as instants (the form's local date and times), or None with the error on
    the form."""
    day, start, end = form.day.data, form.time_from.data, form.time_to.data
    if day.year not in YEARS:
        form.day.errors = [*form.day.errors, _("Give a date of this century.")]
        return None
    if end <= start:
        form.time_to.errors = [*form.time_to.errors,
                               _("The window must end after it starts.")]
        return None
    return (clock.from_local(datetime.combine(day, start)),
            clock.from_local(datetime.combine(day, end)))


@bp.route("/orders/<int:work_order_id>/appointment", methods=["POST"])
@performs("appointment.booked", "appointment.rescheduled")
def order_appointment(work_order_id):
    order_row, clocks = _load_order(work_order_id)
    form = AppointmentForm()
    _appointment_choices(form, order_row, _engineers(order_row))
    if form.validate_on_submit():
        current = appointments.current(order_row.agency_id, order_row.id)
        window = _window(form)
        if (form.version.data or "") != str(current.id if current else 0):
            form.form_errors.append(str(STALE))
        elif window is not None:
            common = {"note_text": form.note.data or "", "form": form}
            if current is None:
                ok = perform(appointments.book_appointment, order_row, form.engineer_id.data,
                             *window, customer_later=form.customer_later.data, **common)
                said = _("Appointment booked.")
            else:
                ok = perform(appointments.reschedule_appointment, order_row,
                             form.engineer_id.data, *window, form.reason.data or "", **common)
                said = _("Appointment rescheduled.")
            if ok:
                return done(said, "dispatch.order", work_order_id=order_row.id)
    if not form.is_submitted():
        abort(400)
    return _order_page(order_row, clocks, form=form, status=422)
