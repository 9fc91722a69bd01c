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
from certification.forms import (
    EngineerForm,
    LeaveForm,
    NewEngineerForm,
    NominateForm,
    ProgramForm,
)
from certification.models import (
    Engineer,
    ExamSeat,
    Nomination,
    NominationStatus,
    Program,
)
from certification.policy import AGENCY_READERS, CERTIFIERS, ENGINEER_READERS
from certification.states import LEVEL_LABELS
from portal.auth.access import allow, performs
from portal.auth.models import User
from portal.auth.roles import Role
from portal.clock import local_today
from portal.commit import perform
from portal.extensions import db
from portal.listing import paginate, sorted_by
from portal.navigation import add_nav
from portal.tenancy import get_or_404
from tenants.models import AgencyProductLine, ProductLine

bp = Blueprint("certification", __name__, url_prefix="/certification")

add_nav("certification.engineers", _l("Engineers"), ENGINEER_READERS, order=20,
        group="certification")
add_nav("certification.nominations", _l("Nominations"), (*CERTIFIERS, *AGENCY_READERS),
        order=22, group="certification")
add_nav("certification.programs", _l("Programs"), CERTIFIERS, order=24, group="certification")


def locale() -> str:
    return str(get_locale())


def sorted_page(stmt, columns: dict, default: str):
    """A list's page of `stmt`, sorted by the query string within `columns`: (page, sort)."""
    stmt, sort = sorted_by(stmt, columns, default)
    return paginate(stmt), sort


def list_page(template: str, stmt, columns: dict, default: str, **context):
    page, sort = sorted_page(stmt, columns, default)
    return render_template(template, page=page, sort=sort, **context)


def flash_errors(form) -> None:
    for errors in [*form.errors.values(), form.form_errors]:
        for error in errors:
            flash(error, "danger")


def form_page(form, service, *args, title: str, back: str, done):
    """A page of one form: a valid submit performs `service` (portal.commit.perform) and
    goes where ``done(result)`` says, as ``(message, url)``; otherwise the form again."""
    if form.validate_on_submit():
        ok, result = perform(service, *args, form=form)
        if ok:
            message, url = done(result)
            flash(message, "success")
            return redirect(url)
    return render_template("portal/form_page.html", form=form, title=title, back=back)


def post_back(form, service, *args, done, back: str):
    """A button or small form of a detail page: perform `service`, say how it went (`done`:
    the message, or ``done(result)``) and go back to the page."""
    if form is None or form.validate_on_submit():
        ok, result = perform(service, *args, form=form)
        if ok:
            flash(done(result) if callable(done) else done, "success")
    if form is not None:
        flash_errors(form)
    return redirect(back)


# --- engineers ----------------------------------------------------------------------------


@bp.route("/engineers/")
@allow(*ENGINEER_READERS)
def engineers():
    return list_page("certification/engineers.html", queries.engineer_list_statement(),
                     {"name": Engineer.name, "hired": Engineer.hire_date,
                      "agency": Engineer.agency_id}, "name",
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
@performs("engineer.created")
def engineer_new():
    form = _engineer_form(NewEngineerForm(), current_user.agency_id)
    return form_page(form, services.create_engineer, current_user.agency_id,
                     _engineer_data(form), form.product_line_ids.data or [],
                     title=_("New engineer"), back=url_for("certification.engineers"),
                     done=lambda engineer: (_("Engineer %(name)s registered.",
                                              name=engineer.name), _page_of(engineer)))


def _page_of(engineer: Engineer) -> str:
    return url_for("certification.engineer", engineer_id=engineer.id)


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
@performs("engineer.updated")
def engineer_edit(engineer_id):
    engineer = get_or_404(Engineer, engineer_id)
    form = _engineer_form(EngineerForm(obj=engineer), engineer.agency_id, engineer)
    if not form.is_submitted():
        form.id_number.data = ""
        form.product_line_ids.data = [p.id for p in engineer.product_lines]
        form.user_id.data = engineer.user_id or 0
    return form_page(form, services.update_engineer, engineer, _engineer_data(form),
                     form.product_line_ids.data or [],
                     title=_("Edit %(name)s", name=engineer.name), back=_page_of(engineer),
                     done=lambda _none: (_("Engineer saved."), _page_of(engineer)))


@bp.route("/engineers/<int:engineer_id>/leave", methods=["POST"])
@performs("engineer.left")
def engineer_leave(engineer_id):
    engineer = get_or_404(Engineer, engineer_id)
    form = LeaveForm()
    return post_back(form, services.engineer_leaves, engineer, form.left_on.data,
                     done=_("%(name)s is recorded as having left; waiting nominations were "
                            "withdrawn.", name=engineer.name), back=_page_of(engineer))


# --- nominations --------------------------------------------------------------------------


def _candidate_programs(engineer: Engineer) -> list[Program]:
    line_ids = {p.id for p in engineer.product_lines}
    return [p for p in queries.programs() if p.product_line_id in line_ids and p.is_active]


@bp.route("/engineers/<int:engineer_id>/nominate", methods=["GET", "POST"])
@performs("nomination.created")
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
        if perform(services.nominate_engineer, engineer, program, note=form.note.data,
                   form=form):
            flash(_("%(name)s is nominated for %(program)s.", name=engineer.name,
                    program=program.title(locale())), "success")
            return redirect(_page_of(engineer))
    return render_template("certification/nominate.html", engineer=engineer, form=form,
                           checks=checks)


@bp.route("/nominations/")
@allow(*ENGINEER_READERS)
def nominations():
    return list_page("certification/nominations.html", queries.nomination_list_statement(),
                     {"nominated": Nomination.nominated_at, "engineer": Engineer.name,
                      "status": Nomination.status}, "-nominated",
                     programs=queries.programs(), statuses=list(NominationStatus))


@bp.route("/nominations/<int:nomination_id>/withdraw", methods=["POST"])
@performs("nomination.withdrawn")
def nomination_withdraw(nomination_id):
    nomination = get_or_404(Nomination, nomination_id)
    back = (url_for("certification.engineer", engineer_id=nomination.engineer_id)
            if request.form.get("back") == "engineer" else url_for("certification.nominations"))
    return post_back(None, services.withdraw_nomination, nomination,
                     done=_("The nomination is withdrawn."), back=back)


# --- programs -----------------------------------------------------------------------------


@bp.route("/programs/")
@allow(*Role)
def programs():
    return render_template("certification/programs.html", programs=queries.programs())


def _program_form(form: ProgramForm) -> ProgramForm:
    form.product_line_id.choices = [(p.id, p.name(locale())) for p in queries.product_lines()]
    form.level.choices = [(n, f"L{n} {label}") for n, label in LEVEL_LABELS.items()]
    return form


def _program_page(title: str, service, *program: Program):
    """The program form: `service` creates a program, or changes the one given."""
    form = _program_form(ProgramForm(obj=program[0] if program else None))
    data = {k: getattr(form, k).data for k in services.PROGRAM_FIELDS}
    listing = url_for("certification.programs")
    return form_page(form, service, *program, data, title=title, back=listing,
                     done=lambda _program: (_("Program saved."), listing))


@bp.route("/programs/new", methods=["GET", "POST"])
@performs("program.created")
def program_new():
    return _program_page(_("New program"), services.create_program)


@bp.route("/programs/<int:program_id>/edit", methods=["GET", "POST"])
@performs("program.updated")
def program_edit(program_id):
    program = db.first_or_404(select(Program).where(Program.id == program_id))
    return _program_page(_("Edit program"), services.update_program, program)
