"""Network pages: the HQ overview, agency profiles, reference data and accounts."""
from flask import Blueprint, flash, redirect, render_template, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from markupsafe import escape
from sqlalchemy import select

from portal.auth.access import allow
from portal.auth.models import User
from portal.auth.passwords import hash_password
from portal.auth.roles import AGENCY_ROLES, HQ_ROLES, Role
from portal.errors_domain import DomainError, attach_to_form
from portal.extensions import db
from portal.listing import paginate, sorted_by
from portal.navigation import add_nav
from portal.tenancy import get_or_404
from tenants import queries, services
from tenants.forms import (
    AgencyForm,
    ProductLineForm,
    ProductModelForm,
    ProvinceForm,
    RegionForm,
    StatusChangeForm,
    UserForm,
)
from tenants.models import (
    STATUS_LABELS,
    TRANSITIONS,
    Agency,
    AgencyStatus,
    ProductLine,
    ProductModel,
    Province,
    Region,
)

bp = Blueprint("tenants", __name__)

NETWORK_READERS = (*HQ_ROLES,)
ACCOUNT_MANAGERS = (Role.HQ_ADMIN, Role.AGENCY_OWNER)

add_nav("tenants.agencies", _l("Agencies"), NETWORK_READERS, order=10)
add_nav("tenants.my_agency", _l("My agency"), AGENCY_ROLES, order=10)
add_nav("tenants.users", _l("Accounts"), ACCOUNT_MANAGERS, order=80)
add_nav("tenants.reference", _l("Regions & products"), (Role.HQ_ADMIN,), order=85)


def _locale() -> str:
    return str(get_locale())


def _save(form, action, *args, **kwargs) -> bool:
    """Run a service; commit on success, show its error on the form otherwise."""
    try:
        action(*args, **kwargs)
    except DomainError as error:
        db.session.rollback()
        attach_to_form(form, error)
        return False
    db.session.commit()
    return True


# --- agencies ------------------------------------------------------------------------------


@bp.route("/agencies/")
@allow(*NETWORK_READERS)
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
@allow(*AGENCY_ROLES)
def my_agency():
    return redirect(url_for("tenants.agency", agency_id=current_user.agency_id))


@bp.route("/agencies/<int:agency_id>")
@allow(*Role)
def agency(agency_id):
    return _agency_page(get_or_404(Agency, agency_id), StatusChangeForm())


def _agency_page(agency: Agency, form: StatusChangeForm, status: int = 200):
    allowed = TRANSITIONS[AgencyStatus(agency.status)]
    form.to_status.choices = [(s.value, STATUS_LABELS[s]) for s in allowed]
    return render_template("tenants/agency.html", agency=agency, status_form=form,
                           **queries.agency_profile(agency)), status


def _agency_form(form: AgencyForm, agency: Agency | None = None) -> AgencyForm:
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
        data[key] = (data.get(key) or "").strip()
    account = (form.bank_account.data or "").replace(" ", "")
    if account:
        data["bank_account"] = account
    elif agency is not None:
        data.pop("bank_account", None)
    else:
        data["bank_account"] = ""
    return data


@bp.route("/agencies/new", methods=["GET", "POST"])
@allow(Role.HQ_ADMIN)
def agency_new():
    form = _agency_form(AgencyForm())
    if form.validate_on_submit():
        holder = {}

        def create():
            holder["agency"] = services.create_agency(_agency_data(form, None),
                                                      form.product_line_ids.data or [])

        if _save(form, create):
            flash(_("Agency %(code)s created as an applicant.", code=holder["agency"].code),
                  "success")
            return redirect(url_for("tenants.agency", agency_id=holder["agency"].id))
    return render_template("portal/form_page.html", form=form, title=_("New agency"),
                           back=url_for("tenants.agencies"))


@bp.route("/agencies/<int:agency_id>/edit", methods=["GET", "POST"])
@allow(Role.HQ_ADMIN)
def agency_edit(agency_id):
    agency = get_or_404(Agency, agency_id)
    form = _agency_form(AgencyForm(obj=agency), agency)
    if not form.is_submitted():
        form.bank_account.data = ""
        form.email_domains.data = ", ".join(agency.email_domain_list)
        form.province_id.data = agency.province_id or 0
        form.service_types.data = agency.service_type_list
        form.product_line_ids.data = [p.id for p in agency.product_lines]
    if form.validate_on_submit() and _save(
            form, services.update_agency, agency, _agency_data(form, agency),
            form.product_line_ids.data or []):
        flash(_("Agency saved."), "success")
        return redirect(url_for("tenants.agency", agency_id=agency.id))
    return render_template("portal/form_page.html", form=form,
                           title=_("Edit %(code)s", code=agency.code),
                           back=url_for("tenants.agency", agency_id=agency.id))


@bp.route("/agencies/<int:agency_id>/status", methods=["POST"])
@allow(Role.HQ_ADMIN)
def agency_status(agency_id):
    agency = get_or_404(Agency, agency_id)
    form = StatusChangeForm()
    if form.validate_on_submit() and _save(form, services.change_agency_status, agency,
                                           form.to_status.data, form.reason.data,
                                           current_user.id):
        flash(_("Status changed."), "success")
        return redirect(url_for("tenants.agency", agency_id=agency.id))
    return _agency_page(agency, form, 422)


# --- reference data ------------------------------------------------------------------------


@bp.route("/network/reference")
@allow(*HQ_ROLES)
def reference():
    return render_template("tenants/reference.html", regions=queries.all_regions(),
                           product_lines=queries.all_product_lines())


def _reference_form(model, form_class, obj, title, unique_message, **fixed):
    form = form_class(obj=obj)
    if form.validate_on_submit():
        data = {k: v.strip() if isinstance(v, str) else v for k, v in form.data.items()
                if k not in ("submit", "csrf_token")}
        if _save(form, services.save_reference, obj, {**data, **fixed},
                 unique_message=unique_message):
            flash(_("Saved."), "success")
            return redirect(url_for("tenants.reference"))
    return render_template("portal/form_page.html", form=form, title=title,
                           back=url_for("tenants.reference"))


@bp.route("/network/regions/new", methods=["GET", "POST"])
@allow(Role.HQ_ADMIN)
def region_new():
    return _reference_form(Region, RegionForm, Region(), _("New region"),
                           _("This region code is already used."))


@bp.route("/network/regions/<int:region_id>/edit", methods=["GET", "POST"])
@allow(Role.HQ_ADMIN)
def region_edit(region_id):
    region = db.first_or_404(select(Region).where(Region.id == region_id))
    return _reference_form(Region, RegionForm, region, _("Edit region"),
                           _("This region code is already used."))


@bp.route("/network/regions/<int:region_id>/provinces/new", methods=["GET", "POST"])
@allow(Role.HQ_ADMIN)
def province_new(region_id):
    region = db.first_or_404(select(Region).where(Region.id == region_id))
    return _reference_form(Province, ProvinceForm, Province(), _("New province"),
                           _("This province code is already used."), region_id=region.id)


@bp.route("/network/provinces/<int:province_id>/edit", methods=["GET", "POST"])
@allow(Role.HQ_ADMIN)
def province_edit(province_id):
    province = db.first_or_404(select(Province).where(Province.id == province_id))
    return _reference_form(Province, ProvinceForm, province, _("Edit province"),
                           _("This province code is already used."))


@bp.route("/network/product-lines/new", methods=["GET", "POST"])
@allow(Role.HQ_ADMIN)
def product_line_new():
    return _reference_form(ProductLine, ProductLineForm, ProductLine(), _("New product line"),
                           _("This product line code is already used."))


@bp.route("/network/product-lines/<int:product_line_id>/edit", methods=["GET", "POST"])
@allow(Role.HQ_ADMIN)
def product_line_edit(product_line_id):
    line = db.first_or_404(select(ProductLine).where(ProductLine.id == product_line_id))
    return _reference_form(ProductLine, ProductLineForm, line, _("Edit product line"),
                           _("This product line code is already used."))


@bp.route("/network/product-lines/<int:product_line_id>/models/new", methods=["GET", "POST"])
@allow(Role.HQ_ADMIN)
def product_model_new(product_line_id):
    line = db.first_or_404(select(ProductLine).where(ProductLine.id == product_line_id))
    return _reference_form(ProductModel, ProductModelForm, ProductModel(), _("New model"),
                           _("This model code is already used."), product_line_id=line.id)


@bp.route("/network/models/<int:model_id>/edit", methods=["GET", "POST"])
@allow(Role.HQ_ADMIN)
def product_model_edit(model_id):
    model = db.first_or_404(select(ProductModel).where(ProductModel.id == model_id))
    return _reference_form(ProductModel, ProductModelForm, model, _("Edit model"),
                           _("This model code is already used."))


# --- accounts ------------------------------------------------------------------------------


@bp.route("/users/")
@allow(*ACCOUNT_MANAGERS)
def users():
    stmt, sort = sorted_by(queries.user_list_statement(),
                           {"email": User.email, "name": User.name, "role": User.role,
                            "last": User.last_sign_in_at}, "email")
    return render_template("tenants/users.html", page=paginate(stmt), sort=sort,
                           roles=services.assignable_roles(current_user),
                           email_domains=services.account_email_domains(current_user))


def _user_form(form: UserForm) -> UserForm:
    locale = _locale()
    form.role.choices = [(r.value, r.label) for r in services.assignable_roles(current_user)]
    if domains := services.account_email_domains(current_user):
        # Bootstrap-Flask prints descriptions as HTML: the domains go in escaped.
        form.email.description = _("An address in your agency's domains: %(domains)s",
                                   domains=escape(", ".join(domains)))
    if current_user.role == Role.HQ_ADMIN:
        form.agency_id.choices = [(0, "—")] + [
            (a.id, f"{a.code} {a.legal_name}")
            for a in db.session.scalars(select(Agency).order_by(Agency.code))]
        form.region_id.choices = [(0, "—")] + [(r.id, r.name(locale))
                                               for r in queries.all_regions()]
    else:
        del form.agency_id
        del form.region_id
    return form


@bp.route("/users/new", methods=["GET", "POST"])
@allow(*ACCOUNT_MANAGERS)
def user_new():
    if services.account_email_domains(current_user) == []:
        flash(_("HQ has not set the e-mail domains of your agency yet. Until it does, ask HQ "
                "to create accounts."), "warning")
        return redirect(url_for("tenants.users"))
    form = _user_form(UserForm())
    if form.validate_on_submit():
        if not form.password.data:
            attach_to_form(form, DomainError(_("Set a first password."), field="password"))
        elif _save(form, services.create_account, actor=current_user._get_current_object(),
                   email=form.email.data, name=form.name.data, role=Role(form.role.data),
                   password_hash=hash_password(form.password.data),
                   agency_id=getattr(form, "agency_id", None) and form.agency_id.data or None,
                   region_id=getattr(form, "region_id", None) and form.region_id.data or None):
            flash(_("Account created."), "success")
            return redirect(url_for("tenants.users"))
    return render_template("portal/form_page.html", form=form, title=_("New account"),
                           back=url_for("tenants.users"))


@bp.route("/users/<int:user_id>/edit", methods=["GET", "POST"])
@allow(*ACCOUNT_MANAGERS)
def user_edit(user_id):
    user = get_or_404(User, user_id)
    form = _user_form(UserForm(obj=user))
    if form.agency_id is not None:
        del form.agency_id  # an account never moves between agencies
    if not form.is_submitted() and form.region_id is not None:
        form.region_id.data = user.region_id or 0
    if form.validate_on_submit() and _save(
            form, services.update_account, current_user._get_current_object(), user,
            email=form.email.data, name=form.name.data, role=Role(form.role.data),
            region_id=getattr(form, "region_id", None) and form.region_id.data or None,
            password_hash=hash_password(form.password.data) if form.password.data else None):
        flash(_("Account saved."), "success")
        return redirect(url_for("tenants.users"))
    return render_template("portal/form_page.html", form=form,
                           title=_("Edit %(email)s", email=user.email),
                           back=url_for("tenants.users"))


@bp.route("/users/<int:user_id>/active", methods=["POST"])
@allow(*ACCOUNT_MANAGERS)
def user_active(user_id):
    from flask import request

    user = get_or_404(User, user_id)
    active = request.form.get("active") == "1"
    try:
        services.set_account_active(current_user._get_current_object(), user, active)
    except DomainError as error:
        db.session.rollback()
        flash(error.message, "danger")
    else:
        db.session.commit()
        flash(_("Account activated.") if active else _("Account deactivated; its sessions "
                                                        "have ended."), "success")
    return redirect(url_for("tenants.users"))
