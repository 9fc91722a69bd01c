"""Network pages: the HQ overview, agency profiles, reference data and accounts."""
from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from markupsafe import escape
from sqlalchemy import select

from portal.auth.access import allow, performs
from portal.auth.models import User
from portal.auth.passwords import hash_password
from portal.auth.roles import Role
from portal.commit import done, perform
from portal.errors_domain import DomainError, attach_to_form
from portal.extensions import db
from portal.listing import paginate, sorted_by
from portal.navigation import add_nav
from portal.policy import can, roles
from portal.profile import panels_for
from portal.tenancy import get_or_404
from portal.text import clean
from tenants import issuer, policy, queries, services
from tenants.forms import (
    CHOOSE_STATUS,
    AgencyForm,
    IssuerForm,
    ProductLineForm,
    ProductModelForm,
    ProvinceForm,
    RegionForm,
    StatusChangeForm,
    UserForm,
)
from tenants.models import (
    STATUS_LABELS,
    Agency,
    AgencyStatus,
    ProductLine,
    ProductModel,
    Province,
    Region,
)

bp = Blueprint("tenants", __name__)

add_nav("tenants.agencies", _l("Agencies"), policy.NETWORK_READERS, order=10, group="network")
add_nav("tenants.my_agency", _l("My agency"), policy.AGENCY_MEMBERS, order=10, group="network")
add_nav("tenants.users", _l("Accounts"), policy.ACCOUNT_MANAGERS, order=80, group="admin")
add_nav("tenants.reference", _l("Regions & products"), roles(policy.REFERENCE_EDIT), order=85,
        group="admin")
add_nav("tenants.issuer_page", _l("Document issuer"), roles(policy.ISSUER_EDIT), order=86,
        group="admin")


def _locale() -> str:
    return str(get_locale())


def _form_page(form, title, back: str):
    return render_template("portal/form_page.html", form=form, title=str(title), back=back)


# --- agencies ------------------------------------------------------------------------------


@bp.route("/agencies/")
@allow(*policy.NETWORK_READERS)
def agencies():
    stmt, sort = sorted_by(queries.agency_list_statement(),
                           {"code": Agency.code, "name": Agency.legal_name,
                            "tier": Agency.tier, "status": Agency.status,
                            "created": Agency.created_at}, "code")
    page = paginate(stmt)
    regions, counts = queries.counts_by_region_and_status()
    return render_template("tenants/agencies.html", page=page, sort=sort, regions=regions,
                           counts=counts, statuses=list(AgencyStatus),
                           all_regions=db.session.scalars(select(Region)
                                                          .order_by(Region.code)).all())


@bp.route("/my-agency")
@allow(*policy.AGENCY_MEMBERS)
def my_agency():
    return redirect(url_for("tenants.agency", agency_id=current_user.agency_id))


@bp.route("/agencies/<int:agency_id>")
@allow(*Role)
def agency(agency_id):
    """The agency's 360: its profile and lifecycle, and what every area above the network
    knows of it (portal.profile panels, each for the roles that may read it)."""
    return _agency_page(get_or_404(Agency, agency_id), StatusChangeForm())


def _agency_page(agency: Agency, form: StatusChangeForm, status: int = 200):
    allowed = services.allowed_statuses(agency)
    form.to_status.choices = [CHOOSE_STATUS] + [(s.value, STATUS_LABELS[s]) for s in allowed]
    warnings, confirmation = [], None
    if allowed and can(current_user, policy.AGENCY_CHANGE_STATUS, agency):
        # What the evidence says against each move, before one is chosen.
        warnings = [(s, found) for s in allowed
                    if (found := services.status_concerns(agency, s))]
        chosen = next((s for s in allowed if s == form.to_status.data), None)
        if form.is_submitted() and chosen is not None:
            concerns = dict(warnings).get(chosen, [])
            if services.needs_confirmation(chosen, concerns):
                # The answer to a change that needs confirming: the box, naming what it does
                # (unticked unless it was ticked for this very status).
                if not form.is_confirmed:
                    form.confirm.data = False
                form.confirm.label.text = services.consequence(agency, chosen)
                form.confirmed_status.data = chosen.value
                confirmation = {"status": chosen, "concerns": concerns}
    return render_template("tenants/agency.html", agency=agency, status_form=form,
                           status_warnings=warnings, confirmation=confirmation,
                           panels=panels_for(agency, current_user),
                           **queries.agency_profile(agency)), status


def _agency_form(form: AgencyForm) -> AgencyForm:
    locale = _locale()
    regions = queries.all_regions()
    form.region_id.choices = [(r.id, r.name(locale)) for r in regions]
    form.province_id.choices = [(0, "—")] + [
        (p.id, f"{r.name(locale)} · {p.name(locale)}") for r in regions for p in r.provinces]
    form.product_line_ids.choices = [(p.id, p.name(locale))
                                     for p in queries.all_product_lines()]
    return form


def _agency_data(form: AgencyForm, agency: Agency | None) -> dict:
    data = {name: getattr(form, name).data for name in services.AGENCY_FIELDS
            if hasattr(form, name)}
    data["province_id"] = form.province_id.data or None
    data["service_types"] = ",".join(sorted(set(form.service_types.data or [])))
    for key in ("city", "address", "contact_name", "contact_phone", "bank_name",
                "email_domains"):
        data[key] = clean(data.get(key))
    account = (form.bank_account.data or "").replace(" ", "")
    if account:
        data["bank_account"] = account
    elif agency is not None:
        data.pop("bank_account", None)
    else:
        data["bank_account"] = ""
    return data


@bp.route("/agencies/new", methods=["GET", "POST"])
@performs("agency.created")
def agency_new():
    form = _agency_form(AgencyForm())
    if form.validate_on_submit():
        ok, agency = perform(services.create_agency, _agency_data(form, None),
                             form.product_line_ids.data or [], form=form)
        if ok:
            return done(_("Agency %(code)s created as an applicant.", code=agency.code),
                         "tenants.agency", agency_id=agency.id)
    return _form_page(form, _("New agency"), url_for("tenants.agencies"))


@bp.route("/agencies/<int:agency_id>/edit", methods=["GET", "POST"])
@performs("agency.updated")
def agency_edit(agency_id):
    agency = get_or_404(Agency, agency_id)
    form = _agency_form(AgencyForm(obj=agency))
    if not form.is_submitted():
        form.bank_account.data = ""
        form.email_domains.data = ", ".join(agency.email_domain_list)
        form.province_id.data = agency.province_id or 0
        form.service_types.data = agency.service_type_list
        form.product_line_ids.data = [p.id for p in agency.product_lines]
    if form.validate_on_submit() and perform(services.update_agency, agency,
                                             _agency_data(form, agency),
                                             form.product_line_ids.data or [], form=form):
        return done(_("Agency saved."), "tenants.agency", agency_id=agency.id)
    return _form_page(form, _("Edit %(code)s", code=agency.code),
                      url_for("tenants.agency", agency_id=agency.id))


@bp.route("/agencies/<int:agency_id>/status", methods=["POST"])
@performs("agency.status_changed")
def agency_status(agency_id):
    agency = get_or_404(Agency, agency_id)
    form = StatusChangeForm()
    if form.validate_on_submit() and perform(services.change_agency_status, agency,
                                             form.to_status.data, form.reason.data,
                                             confirmed=form.is_confirmed, form=form):
        return done(_("Status changed."), "tenants.agency", agency_id=agency.id)
    return _agency_page(agency, form, 422)


# --- reference data ------------------------------------------------------------------------


@bp.route("/network/reference")
@allow(*policy.NETWORK_READERS)
def reference():
    return render_template("tenants/reference.html", regions=queries.all_regions(),
                           product_lines=queries.all_product_lines())


def _reference_form(form, title, service, *args, **fixed):
    if form.validate_on_submit():
        data = {k: clean(v) if isinstance(v, str) else v for k, v in form.data.items()
                if k not in ("submit", "csrf_token")}
        if perform(service, *args, {**data, **fixed}, form=form):
            return done(_("Saved."), "tenants.reference")
    return _form_page(form, title, url_for("tenants.reference"))


def _row(model, row_id: int):
    return db.first_or_404(select(model).where(model.id == row_id))


def _reference_pages(name: str, model, form_class, path: str, key: str, titles: tuple,
                     parent: tuple | None = None) -> None:
    """The pages that create and edit one kind of reference data: endpoints `name`_new at
    /network[/<parent path>/<parent key>]/`path`/new and `name`_edit at
    /network/`path`/<`key`>/edit. `parent`: (its model, its path, its key = the column)."""
    create, update = services.REFERENCE[model]

    def new(**ids):
        fixed = {parent[2]: _row(parent[0], ids[parent[2]]).id} if parent else {}
        return _reference_form(form_class(obj=model()), titles[0], create, **fixed)

    def edit(**ids):
        row = _row(model, ids[key])
        return _reference_form(form_class(obj=row), titles[1], update, row)

    above = f"/network/{parent[1]}/<int:{parent[2]}>" if parent else "/network"
    for rule, endpoint, view, service in ((f"{above}/{path}/new", "new", new, create),
                                          (f"/network/{path}/<int:{key}>/edit", "edit", edit,
                                           update)):
        bp.add_url_rule(rule, f"{name}_{endpoint}", performs(service.transition.name)(view),
                        methods=["GET", "POST"])


_reference_pages("region", Region, RegionForm, "regions", "region_id",
                 (_l("New region"), _l("Edit region")))
_reference_pages("province", Province, ProvinceForm, "provinces", "province_id",
                 (_l("New province"), _l("Edit province")), (Region, "regions", "region_id"))
_reference_pages("product_line", ProductLine, ProductLineForm, "product-lines",
                 "product_line_id", (_l("New product line"), _l("Edit product line")))
_reference_pages("product_model", ProductModel, ProductModelForm, "models", "model_id",
                 (_l("New model"), _l("Edit model")),
                 (ProductLine, "product-lines", "product_line_id"))


# --- the issuer of documents ----------------------------------------------------------------


@bp.route("/network/issuer", methods=["GET", "POST"])
@performs("issuer.changed")
def issuer_page():
    row = issuer.current()
    form = IssuerForm(obj=row if request.method == "GET" else None)
    if request.method == "GET":
        form.version.data = row.version
    if form.validate_on_submit():
        data = {name: getattr(form, name).data for name in issuer.TEXT_FIELDS}
        images = {kind: _read(getattr(form, kind).data) for kind in issuer.KINDS
                  if getattr(form, kind).data}
        remove = tuple(kind for kind in issuer.KINDS if getattr(form, f"remove_{kind}").data)
        if outcome := perform(issuer.save_issuer, row, data, images, remove, form=form,
                              seen_version=form.version.data):
            for path in outcome.value or ():
                path.unlink(missing_ok=True)
            return done(_("The document issuer is saved."), "tenants.issuer_page")
    return render_template("tenants/issuer.html", form=form, row=row,
                           max_kb=issuer.max_bytes() // 1024)


def _read(upload) -> bytes:
    """An uploaded file's bytes; its spooled temporary file is closed at once."""
    with upload.stream as stream:
        return stream.read()


@bp.route("/network/issuer/<kind>")
@allow(*roles(policy.ISSUER_EDIT))
def issuer_image(kind):
    """The logo or seal as stored, for the admin's preview (never run as a document)."""
    row = issuer.current()
    found = issuer.image(row, kind) if kind in issuer.KINDS else None
    if found is None:
        abort(404)
    body, content_type = found
    return Response(body, mimetype=content_type, headers={
        "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
        "X-Content-Type-Options": "nosniff", "Cache-Control": "private, no-cache"})


# --- accounts ------------------------------------------------------------------------------


@bp.route("/users/")
@allow(*policy.ACCOUNT_MANAGERS)
def users():
    stmt, sort = sorted_by(queries.user_list_statement(),
                           {"email": User.email, "name": User.name, "role": User.role,
                            "last": User.last_sign_in_at}, "email")
    return render_template("tenants/users.html", page=paginate(stmt), sort=sort,
                           roles=policy.assignable_roles(current_user),
                           email_domains=services.account_email_domains(current_user))


def _user_form(form: UserForm) -> UserForm:
    locale = _locale()
    form.role.choices = [(r.value, r.label) for r in policy.assignable_roles(current_user)]
    if domains := services.account_email_domains(current_user):
        # Bootstrap-Flask prints descriptions as HTML: the domains go in escaped.
        form.email.description = _("An address in your agency's domains: %(domains)s",
                                   domains=escape(", ".join(domains)))
    if policy.places_anywhere(current_user):
        form.agency_id.choices = [(0, "—")] + [
            (a.id, f"{a.code} {a.legal_name}")
            for a in db.session.scalars(select(Agency).order_by(Agency.code))]
        form.region_id.choices = [(0, "—")] + [(r.id, r.name(locale))
                                               for r in queries.all_regions()]
    else:
        del form.agency_id
        del form.region_id
    return form


def _chosen(form, name: str) -> int | None:
    """The id picked in an optional drop-down (0: none), or None when the form has none."""
    field = getattr(form, name, None)
    return (field.data or None) if field is not None else None


@bp.route("/users/new", methods=["GET", "POST"])
@performs("user.created")
def user_new():
    if services.account_email_domains(current_user) == []:
        flash(_("HQ has not set the e-mail domains of your agency yet. Until it does, ask HQ "
                "to create accounts."), "warning")
        return redirect(url_for("tenants.users"))
    form = _user_form(UserForm())
    if form.validate_on_submit():
        if not form.password.data:
            attach_to_form(form, DomainError(_("Set a first password."), field="password"))
        elif perform(services.create_account, form.email.data, name=form.name.data,
                     role=Role(form.role.data), password_hash=hash_password(form.password.data),
                     agency_id=_chosen(form, "agency_id"), region_id=_chosen(form, "region_id"),
                     form=form):
            return done(_("Account created."), "tenants.users")
    return _form_page(form, _("New account"), url_for("tenants.users"))


@bp.route("/users/<int:user_id>/edit", methods=["GET", "POST"])
@performs("user.updated")
def user_edit(user_id):
    user = get_or_404(User, user_id)
    form = _user_form(UserForm(obj=user))
    if form.agency_id is not None:
        del form.agency_id  # an account never moves between agencies
    if not form.is_submitted() and form.region_id is not None:
        form.region_id.data = user.region_id or 0
    if form.validate_on_submit() and perform(
            services.update_account, user, email=form.email.data, name=form.name.data,
            role=Role(form.role.data), region_id=_chosen(form, "region_id"),
            password_hash=hash_password(form.password.data) if form.password.data else None,
            form=form):
        return done(_("Account saved."), "tenants.users")
    return _form_page(form, _("Edit %(email)s", email=user.email), url_for("tenants.users"))


@bp.route("/users/<int:user_id>/active", methods=["POST"])
@performs("user.activated", "user.deactivated")
def user_active(user_id):
    user = get_or_404(User, user_id)
    active = request.form.get("active") == "1"
    if perform(services.activate_account if active else services.deactivate_account, user):
        flash(_("Account activated.") if active else _("Account deactivated; its sessions "
                                                        "have ended."), "success")
    return redirect(url_for("tenants.users"))
