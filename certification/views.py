"""Certification pages: engineers, nominations and programs (sessions and certificates live
in views_exams.py and views_certificates.py, on the same blueprint)."""
from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import joinedload, selectinload

from certification import eligibility, queries, services
from certification.forms import EngineerForm, LeaveForm, NominateForm, ProgramForm
from certification.models import (
    Engineer,
    ExamSeat,
    Nomination,
    NominationStatus,
    Program,
)
from certification.states import LEVEL_LABELS
from portal.auth.access import allow
from portal.auth.models import User
from portal.auth.roles import HQ_ROLES, Role
from portal.clock import local_today
from portal.errors_domain import DomainError, attach_to_form
from portal.extensions import db
from portal.listing import paginate, sorted_by
from portal.navigation import add_nav
from portal.tenancy import get_or_404
from tenants.models import AgencyProductLine, ProductLine

bp = Blueprint("certification", __name__, url_prefix="/certification")

CERTIFIERS = (Role.HQ_CERTIFIER, Role.HQ_ADMIN)
OWNER = (Role.AGENCY_OWNER,)
AGENCY_READERS = (Role.AGENCY_OWNER, Role.AGENCY_STAFF)
ENGINEER_READERS = (*HQ_ROLES, *AGENCY_READERS)

add_nav("certification.engineers", _l("Engineers"), ENGINEER_READERS, order=20)
add_nav("certification.nominations", _l("Nominations"), (*CERTIFIERS, *AGENCY_READERS),
        order=22)
add_nav("certification.programs", _l("Programs"), CERTIFIERS, order=24)


def locale() -> str:
    return str(get_locale())


def save(form, action, *args, **kwargs):
    """Run a service; commit on success (returning its result), else show its error."""
    try:
        result = action(*args, **kwargs)
    except DomainError as error:
        db.session.rollback()
        attach_to_form(form, error)
        return None
    db.session.commit()
    return result if result is not None else True


def flash_errors(form) -> None:
    for errors in [*form.errors.values(), form.form_errors]:
        for error in errors:
            flash(error, "danger")


# --- engineers ----------------------------------------------------------------------------


@bp.route("/engineers/")
@allow(*ENGINEER_READERS)
def engineers():
    stmt, sort = sorted_by(queries.engineer_list_statement(),
                           {"name": Engineer.name, "hired": Engineer.hire_date,
                            "agency": Engineer.agency_id}, "name")
    return render_template("certification/engineers.html", page=paginate(stmt), sort=sort,
                           product_lines=queries.product_lines(), today=local_today())


def _engineer_form(form: EngineerForm, agency_id: int, engineer=None) -> EngineerForm:
    lines = db.session.scalars(
        select(ProductLine).join(AgencyProductLine,
                                 AgencyProductLine.product_line_id == ProductLine.id)
        .where(AgencyProductLine.agency_id == agency_id).order_by(ProductLine.code))
    form.product_line_ids.choices = [(p.id, p.name(locale())) for p in lines]
    taken = select(Engineer.user_id).where(Engineer.user_id.is_not(None))
    if engineer is not None:
        taken = taken.where(Engineer.id != engineer.id)
    accounts = db.session.scalars(select(User).where(
        User.agency_id == agency_id, User.role == Role.ENGINEER, User.id.not_in(taken))
        .order_by(User.name))
    form.user_id.choices = [(0, "—")] + [(u.id, f"{u.name} ({u.email})") for u in accounts]
    return form


def _engineer_data(form: EngineerForm) -> dict:
    return {"name": form.name.data or "", "id_number": form.id_number.data or "",
            "phone": (form.phone.data or "").strip(), "education": form.education.data,
            "hire_date": form.hire_date.data, "user_id": form.user_id.data or None}


@bp.route("/engineers/new", methods=["GET", "POST"])
@allow(*OWNER)
def engineer_new():
    form = _engineer_form(EngineerForm(), current_user.agency_id)
    if form.validate_on_submit():
        if not form.id_number.data:
            attach_to_form(form, DomainError(_("Enter the ID number."), field="id_number"))
        elif engineer := save(form, services.create_engineer, current_user.agency_id,
                              _engineer_data(form), form.product_line_ids.data or []):
            flash(_("Engineer %(name)s registered.", name=engineer.name), "success")
            return redirect(url_for("certification.engineer", engineer_id=engineer.id))
    return render_template("portal/form_page.html", form=form, title=_("New engineer"),
                           back=url_for("certification.engineers"))


@bp.route("/engineers/<int:engineer_id>")
@allow(*ENGINEER_READERS)
def engineer(engineer_id):
    engineer = get_or_404(Engineer, engineer_id)
    # The same row again (through the guard), with what the page shows in a few queries.
    db.session.scalars(select(Engineer).where(Engineer.id == engineer.id).options(
        selectinload(Engineer.product_lines), *queries.engineer_certificates())).one()
    nominations = db.session.scalars(
        select(Nomination).where(Nomination.engineer_id == engineer.id)
        .options(joinedload(Nomination.program).joinedload(Program.product_line),
                 selectinload(Nomination.seat).joinedload(ExamSeat.session))
        .order_by(Nomination.nominated_at.desc(), Nomination.id.desc())).all()
    return render_template("certification/engineer.html", engineer=engineer,
                           nominations=nominations, today=local_today(),
                           leave_form=LeaveForm(left_on=local_today()))


@bp.route("/engineers/<int:engineer_id>/edit", methods=["GET", "POST"])
@allow(*OWNER)
def engineer_edit(engineer_id):
    engineer = get_or_404(Engineer, engineer_id)
    form = _engineer_form(EngineerForm(obj=engineer), engineer.agency_id, engineer)
    if not form.is_submitted():
        form.id_number.data = ""
        form.product_line_ids.data = [p.id for p in engineer.product_lines]
        form.user_id.data = engineer.user_id or 0
    if form.validate_on_submit() and save(form, services.update_engineer, engineer,
                                          _engineer_data(form),
                                          form.product_line_ids.data or []):
        flash(_("Engineer saved."), "success")
        return redirect(url_for("certification.engineer", engineer_id=engineer.id))
    return render_template("portal/form_page.html", form=form,
                           title=_("Edit %(name)s", name=engineer.name),
                           back=url_for("certification.engineer", engineer_id=engineer.id))


@bp.route("/engineers/<int:engineer_id>/leave", methods=["POST"])
@allow(*OWNER)
def engineer_leave(engineer_id):
    engineer = get_or_404(Engineer, engineer_id)
    form = LeaveForm()
    if form.validate_on_submit() and save(form, services.engineer_leaves, engineer,
                                          form.left_on.data):
        flash(_("%(name)s is recorded as having left; waiting nominations were withdrawn.",
                name=engineer.name), "success")
    else:
        flash_errors(form)
    return redirect(url_for("certification.engineer", engineer_id=engineer.id))


# --- nominations --------------------------------------------------------------------------


def _candidate_programs(engineer: Engineer) -> list[Program]:
    line_ids = {p.id for p in engineer.product_lines}
    return [p for p in queries.programs() if p.product_line_id in line_ids and p.is_active]


@bp.route("/engineers/<int:engineer_id>/nominate", methods=["GET", "POST"])
@allow(*OWNER)
def nominate(engineer_id):
    engineer = get_or_404(Engineer, engineer_id)
    today = local_today()
    programs = _candidate_programs(engineer)
    history = eligibility.load_history(engineer)
    checks = [(p, eligibility.problems(engineer, p, history, today)) for p in programs]
    form = NominateForm()
    form.program_id.choices = [(p.id, p.title(locale())) for p in programs]
    if not form.is_submitted():
        form.program_id.data = next((p.id for p, unmet in checks if not unmet), None)
    if form.validate_on_submit():
        program = next(p for p in programs if p.id == form.program_id.data)
        if save(form, services.nominate_engineer, engineer, program, note=form.note.data,
                actor_id=current_user.id):
            flash(_("%(name)s is nominated for %(program)s.", name=engineer.name,
                    program=program.title(locale())), "success")
            return redirect(url_for("certification.engineer", engineer_id=engineer.id))
    return render_template("certification/nominate.html", engineer=engineer, form=form,
                           checks=checks)


@bp.route("/nominations/")
@allow(*ENGINEER_READERS)
def nominations():
    stmt, sort = sorted_by(queries.nomination_list_statement(),
                           {"nominated": Nomination.nominated_at, "engineer": Engineer.name,
                            "status": Nomination.status}, "-nominated")
    return render_template("certification/nominations.html", page=paginate(stmt), sort=sort,
                           programs=queries.programs(), statuses=list(NominationStatus))


@bp.route("/nominations/<int:nomination_id>/withdraw", methods=["POST"])
@allow(*OWNER)
def nomination_withdraw(nomination_id):
    nomination = get_or_404(Nomination, nomination_id)
    try:
        services.withdraw_nomination(nomination)
    except DomainError as error:
        db.session.rollback()
        flash(error.message, "danger")
    else:
        db.session.commit()
        flash(_("The nomination is withdrawn."), "success")
    back = request.form.get("back") == "engineer"
    return redirect(url_for("certification.engineer", engineer_id=nomination.engineer_id)
                    if back else url_for("certification.nominations"))


# --- programs -----------------------------------------------------------------------------


@bp.route("/programs/")
@allow(*Role)
def programs():
    return render_template("certification/programs.html", programs=queries.programs())


def _program_form(form: ProgramForm) -> ProgramForm:
    form.product_line_id.choices = [(p.id, p.name(locale())) for p in queries.product_lines()]
    form.level.choices = [(n, f"L{n} {label}") for n, label in LEVEL_LABELS.items()]
    return form


def _program_page(program: Program, title: str):
    form = _program_form(ProgramForm(obj=program if program.id else None))
    if form.validate_on_submit():
        data = {k: getattr(form, k).data for k in services.PROGRAM_FIELDS}
        if save(form, services.save_program, program, data):
            flash(_("Program saved."), "success")
            return redirect(url_for("certification.programs"))
    return render_template("portal/form_page.html", form=form, title=title,
                           back=url_for("certification.programs"))


@bp.route("/programs/new", methods=["GET", "POST"])
@allow(*CERTIFIERS)
def program_new():
    return _program_page(Program(), _("New program"))


@bp.route("/programs/<int:program_id>/edit", methods=["GET", "POST"])
@allow(*CERTIFIERS)
def program_edit(program_id):
    program = db.first_or_404(select(Program).where(Program.id == program_id))
    return _program_page(program, _("Edit program"))
