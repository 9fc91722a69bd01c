"""The webhook pages: HQ admin's endpoints (and a look at the agencies'), an agency owner's
own agency's; the delivery log and a manual redelivery. Rows load through the tenant guard:
another owner's endpoint or delivery is a 404, like a missing one."""
from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import func, select

from api.webhooks import policy, services
from api.webhooks.events import AGENCY_EVENTS, EVENTS
from api.webhooks.forms import ActionForm, EditEndpointForm, EndpointForm
from api.webhooks.models import STATUSES, WebhookDelivery, WebhookEndpoint
from portal.auth.access import allow, performs
from portal.auth.roles import Role
from portal.commit import done, perform
from portal.extensions import db
from portal.listing import paginate
from portal.navigation import add_nav
from portal.policy import roles
from portal.tenancy import get_or_404

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")
READERS = roles(policy.READ)
add_nav("webhooks.index", _l("Webhooks"), READERS, order=96, group="admin")

STATUS_LABELS = {"pending": _l("Waiting"), "sending": _l("Being sent"),
                 "delivered": _l("Delivered"), "failed": _l("Failed, tried again later"),
                 "given_up": _l("Given up")}


def _owner() -> policy.Owner:
    """Whose endpoints the signed-in manager makes: HQ's, or their own agency's."""
    return policy.Owner(None if current_user.role == Role.HQ_ADMIN else current_user.agency_id)


def _choices(agency_id) -> list[tuple[str, str]]:
    names = EVENTS if agency_id is None else AGENCY_EVENTS
    return [(name, f"{EVENTS[name]} ({name})") for name in names]


@bp.route("/")
@allow(*READERS)
def index():
    endpoints = list(db.session.scalars(select(WebhookEndpoint).order_by(
        WebhookEndpoint.agency_id.is_not(None), WebhookEndpoint.agency_id,
        WebhookEndpoint.id)))
    waiting = dict(db.session.execute(
        select(WebhookDelivery.endpoint_id, func.count())
        .where(WebhookDelivery.status.in_(["failed", "given_up"]))
        .group_by(WebhookDelivery.endpoint_id)).all())
    from tenants.models import Agency

    ids = {e.agency_id for e in endpoints if e.agency_id is not None}
    codes = dict(db.session.execute(select(Agency.id, Agency.code).where(
        Agency.id.in_(ids))).all()) if ids else {}
    return render_template("api/webhooks.html", endpoints=endpoints, troubled=waiting,
                           codes=codes,
                           events=EVENTS, manages=lambda e: policy.manages(current_user, e),
                           form=ActionForm())


@bp.route("/new", methods=["GET", "POST"])
@performs("webhook.endpoint_created")
def create():
    owner = _owner()
    form = EndpointForm()
    form.events.choices = _choices(owner.agency_id)
    if form.validate_on_submit():
        data = {"name": form.name.data, "url": form.url.data, "events": form.events.data}
        outcome = perform(services.create_endpoint, owner, data, form=form)
        if outcome:
            return done(_("The endpoint is saved. Its secret is shown below: use it to check "
                          "the signature of each delivery."), "webhooks.endpoint",
                        endpoint_id=outcome.value.id)
    return render_template("api/webhooks_form.html", form=form, endpoint=None), \
        400 if form.errors else 200


@bp.route("/<int:endpoint_id>", methods=["GET", "POST"])
@performs("webhook.endpoint_updated")
def endpoint(endpoint_id):
    row = get_or_404(WebhookEndpoint, endpoint_id)
    mine = policy.manages(current_user, row)
    form = EditEndpointForm(obj=row if request.method == "GET" else None)
    form.events.choices = _choices(row.agency_id)
    if request.method == "GET":
        form.events.data = sorted(row.event_set)
        form.version.data = row.version
    elif not mine:
        abort(403)
    elif form.validate_on_submit():
        data = {"name": form.name.data, "url": form.url.data, "events": form.events.data,
                "active": form.active.data, "new_secret": form.new_secret.data}
        if perform(services.update_endpoint, row, data, form=form,
                   seen_version=form.version.data):
            return done(_("The endpoint is saved."), "webhooks.endpoint", endpoint_id=row.id)
    recent = list(db.session.scalars(select(WebhookDelivery).where(
        WebhookDelivery.endpoint_id == row.id).order_by(WebhookDelivery.id.desc()).limit(10)))
    return render_template("api/webhooks_form.html", form=form if mine else None, endpoint=row,
                           mine=mine, recent=recent, labels=STATUS_LABELS, events=EVENTS,
                           action=ActionForm()), 400 if form.errors else 200


@bp.route("/<int:endpoint_id>/deactivate", methods=["POST"])
@performs("webhook.endpoint_deactivated")
def deactivate(endpoint_id):
    row = get_or_404(WebhookEndpoint, endpoint_id)
    form = ActionForm()
    if form.validate_on_submit() and perform(services.deactivate_endpoint, row,
                                             seen_version=request.form.get("version")):
        return done(_("The endpoint is switched off: nothing more is delivered to it."),
                    "webhooks.index")
    return redirect(url_for("webhooks.index"))


@bp.route("/<int:endpoint_id>/deliveries")
@allow(*READERS)
def deliveries(endpoint_id):
    row = get_or_404(WebhookEndpoint, endpoint_id)
    status = request.args.get("status")
    stmt = select(WebhookDelivery).where(WebhookDelivery.endpoint_id == row.id)
    if status in STATUSES:
        stmt = stmt.where(WebhookDelivery.status == status)
    else:
        status = None
    page = paginate(stmt.order_by(WebhookDelivery.id.desc()))
    return render_template("api/webhooks_deliveries.html", endpoint=row, page=page,
                           status=status, labels=STATUS_LABELS,
                           mine=policy.manages(current_user, row), form=ActionForm())


@bp.route("/deliveries/<int:delivery_id>")
@allow(*READERS)
def delivery(delivery_id):
    row = get_or_404(WebhookDelivery, delivery_id)
    return render_template("api/webhooks_delivery.html", delivery=row, endpoint=row.endpoint,
                           labels=STATUS_LABELS, mine=policy.manages(current_user, row.endpoint),
                           form=ActionForm())


@bp.route("/deliveries/<int:delivery_id>/redeliver", methods=["POST"])
@performs("webhook.redelivered")
def redeliver(delivery_id):
    row = get_or_404(WebhookDelivery, delivery_id)
    outcome = perform(services.redeliver, row) if ActionForm().validate_on_submit() else None
    if outcome:
        return done(_("The event is queued to be delivered again."), "webhooks.delivery",
                    delivery_id=outcome.value.id)
    return redirect(url_for("webhooks.delivery", delivery_id=row.id))
