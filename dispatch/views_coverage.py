"""Coverage pages: an agency's areas (declare, withdraw) and HQ's list of declarations
(approve, reject); the tenancy guard scopes every list, foreign ids are 404."""
from flask import render_template, request
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from dispatch import coverage, policy
from dispatch.coverage import COVERAGE_STATUS_LABELS, Coverage, CoverageStatus
from dispatch.forms_coverage import DecideForm, DeclareForm, WithdrawForm
from dispatch.views import bp
from portal.auth.access import allow, performs
from portal.commit import done, perform
from portal.listing import paginate
from portal.navigation import add_nav
from portal.tenancy import get_or_404
from tenants.models import SERVICE_TYPE_LABELS, Agency

add_nav("dispatch.coverage_list", _l("Coverage areas"), policy.COVERAGE_READERS, order=25,
        group="network")


def _declare_form(agency: Agency, form: DeclareForm | None = None) -> DeclareForm:
    form = form or DeclareForm(formdata=None, province_id=agency.province_id,
                               city=agency.city)
    lang = str(get_locale())
    form.province_id.choices = [(0, "—")] + [(p.id, p.name(lang))
                                             for p in coverage.provinces()]
    form.product_line_id.choices = [(line.id, line.name(lang))
                                    for line in agency.product_lines]
    form.service_type.choices = [(t, str(SERVICE_TYPE_LABELS.get(t, t)))
                                 for t in agency.service_type_list]
    return form


def _labels() -> dict:
    return {"status_labels": COVERAGE_STATUS_LABELS, "statuses": CoverageStatus,
            "lang": str(get_locale())}


def _agency_page(agency: Agency, *, form: DeclareForm | None = None, failed=None,
                 status: int = 200):
    page = paginate(coverage.list_statement(agency_id=agency.id))
    may_declare = _can(policy.COVERAGE_DECLARE, agency)
    return render_template(
        "dispatch/coverage_agency.html", agency=agency, page=page,
        form=_declare_form(agency, form) if may_declare else None, failed=failed,
        **_labels()), status


def _list_page(*, failed=None, status: int = 200):
    state = request.args.get("status", "")
    state = state if state in COVERAGE_STATUS_LABELS else ""
    page = paginate(coverage.list_statement(status=state or None))
    return render_template("dispatch/coverage.html", page=page, state=state, failed=failed,
                           **_labels()), status


def _can(action: str, record=None) -> bool:
    from portal.policy import can

    return can(current_user, action, record)


@bp.route("/coverage")
@allow(*policy.COVERAGE_READERS)
def coverage_list():
    """An agency's members see their own areas; HQ sees every declaration, waiting first."""
    if current_user.agency_id is not None:
        return _agency_page(get_or_404(Agency, current_user.agency_id))
    return _list_page()


@bp.route("/agencies/<int:agency_id>/coverage")
@allow(*policy.COVERAGE_READERS)
def agency_coverage(agency_id):
    return _agency_page(get_or_404(Agency, agency_id))


@bp.route("/agencies/<int:agency_id>/coverage/declare", methods=["POST"])
@performs("coverage.declared")
def coverage_declare(agency_id):
    agency = get_or_404(Agency, agency_id)
    form = _declare_form(agency, DeclareForm())
    if form.validate_on_submit() and perform(
            coverage.declare_coverage, agency, province_id=form.province_id.data,
            city=form.city.data, district=form.district.data or "",
            product_line_id=form.product_line_id.data, service_type=form.service_type.data,
            form=form):
        return done(_("The area is declared; HQ will approve or reject it."),
                    "dispatch.agency_coverage", agency_id=agency.id)
    return _agency_page(agency, form=form, status=400)


@bp.route("/coverage/<int:coverage_id>/decide", methods=["POST"])
@performs("coverage.decided")
def coverage_decide(coverage_id):
    row = get_or_404(Coverage, coverage_id)
    form = DecideForm()
    if form.validate_on_submit() and perform(
            coverage.decide_coverage, row, approve=bool(form.approve.data),
            reason=form.reason.data or "", seen_version=form.version.data, form=form):
        message = _("The area is approved.") if form.approve.data else \
            _("The declaration is rejected.")
        return done(message, "dispatch.coverage_list", status=CoverageStatus.PROPOSED.value)
    return _list_page(failed=(row.id, form), status=400)


@bp.route("/coverage/<int:coverage_id>/withdraw", methods=["POST"])
@performs("coverage.withdrawn")
def coverage_withdraw(coverage_id):
    row = get_or_404(Coverage, coverage_id)
    form = WithdrawForm()
    if form.validate_on_submit() and perform(
            coverage.withdraw_coverage, row, reason=form.reason.data or "",
            seen_version=form.version.data, form=form):
        return done(_("The area is withdrawn."), "dispatch.agency_coverage",
                    agency_id=row.agency_id)
    return _agency_page(row.agency, failed=(row.id, form), status=400)
