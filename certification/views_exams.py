"""Exam session pages: plan a session, admit nominees, record the whole session's scores."""
from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from sqlalchemy import select

from certification import exams, queries
from certification.forms import AdmitForm, ScoreSheetForm, SessionForm
from certification.models import ExamSeat, ExamSession, SessionStatus
from certification.policy import SESSION_READERS
from certification.views import bp, form_page, locale, post_back, sorted_page
from portal.auth.access import allow, performs
from portal.clock import local_today
from portal.commit import perform
from portal.errors_domain import DomainError, attach_to_form
from portal.extensions import db
from portal.navigation import add_nav
from portal.tenancy import get_or_404

add_nav("certification.sessions", _l("Exam sessions"), SESSION_READERS, order=23,
        group="certification")


def _load(exam_session_id) -> ExamSession:
    return db.first_or_404(select(ExamSession).where(ExamSession.id == exam_session_id))


def _page_of(session_id: int) -> str:
    return url_for("certification.session", exam_session_id=session_id)


@bp.route("/sessions/")
@allow(*SESSION_READERS)
def sessions():
    page, sort = sorted_page(queries.session_list_statement(),
                             {"date": ExamSession.exam_date, "place": ExamSession.place},
                             "-date")
    return render_template("certification/sessions.html", page=page, sort=sort,
                           taken=queries.seat_counts(s.id for s in page.items),
                           programs=queries.programs(), statuses=list(SessionStatus))


def _session_form(form: SessionForm, session: ExamSession | None = None) -> SessionForm:
    form.program_id.choices = [(p.id, p.title(locale())) for p in queries.programs()
                               if p.is_active or (session and p.id == session.program_id)]
    return form


def _session_data(form: SessionForm) -> dict:
    return {"program_id": form.program_id.data, "exam_date": form.exam_date.data,
            "place": form.place.data or "", "capacity": form.capacity.data}


@bp.route("/sessions/new", methods=["GET", "POST"])
@performs("exam_session.created")
def session_new():
    form = _session_form(SessionForm())
    return form_page(form, exams.create_session, _session_data(form),
                     title=_("New exam session"), back=url_for("certification.sessions"),
                     done=lambda session: (_("Exam session created. Admit the nominees now."),
                                           _page_of(session.id)))


@bp.route("/sessions/<int:exam_session_id>")
@allow(*SESSION_READERS)
def session(exam_session_id):
    session = _load(exam_session_id)
    seats = queries.session_seats(session)
    waiting = queries.waiting_nominations(session) if session.is_open else []
    free = session.capacity - len(seats)
    form = AdmitForm()
    form.nomination_ids.choices = [(n.id, n.engineer.name) for n in waiting]
    form.nomination_ids.data = [n.id for n in waiting[:max(free, 0)]]
    return render_template("certification/session.html", session=session, seats=seats,
                           waiting=waiting, free=free, admit_form=form, today=local_today())


@bp.route("/sessions/<int:exam_session_id>/edit", methods=["GET", "POST"])
@performs("exam_session.updated")
def session_edit(exam_session_id):
    session = _load(exam_session_id)
    form = _session_form(SessionForm(obj=session), session)
    back = _page_of(session.id)
    return form_page(form, exams.update_session, session, _session_data(form),
                     title=_("Edit exam session"), back=back,
                     done=lambda _none: (_("Exam session saved."), back))


@bp.route("/sessions/<int:exam_session_id>/admit", methods=["POST"])
@performs("exam_session.admitted")
def session_admit(exam_session_id):
    session = _load(exam_session_id)
    form = AdmitForm()
    # The choices are whatever was ticked; the service checks each nomination itself.
    form.nomination_ids.choices = [(i, "") for i in form.nomination_ids.raw_data or []]
    ids = [int(i) for i in form.nomination_ids.raw_data or [] if str(i).isdigit()]
    return post_back(form, exams.admit_nominations, session, ids, back=_page_of(session.id),
                     done=lambda seats: ngettext("%(num)s nominee admitted.",
                                                 "%(num)s nominees admitted.", len(seats)))


@bp.route("/seats/<int:seat_id>/release", methods=["POST"])
@performs("exam_seat.released")
def seat_release(seat_id):
    seat = get_or_404(ExamSeat, seat_id)
    return post_back(None, exams.release_seat, seat, back=_page_of(seat.session_id),
                     done=_("The seat is released; the nomination waits for a seat again."))


def _sheet(seats: list[ExamSeat]) -> ScoreSheetForm:
    return ScoreSheetForm(data={"rows": [{"seat_id": s.id} for s in seats]})


def _rows(form: ScoreSheetForm) -> list[exams.ScoreRow]:
    rows = []
    for entry in form.rows:
        raw = entry.form.seat_id.data
        seat_id = int(raw) if str(raw or "").isdigit() else 0
        rows.append(exams.ScoreRow(seat_id, entry.form.theory.data, entry.form.practical.data,
                                   bool(entry.form.absent.data)))
    return rows


def _checked_sheet(form: ScoreSheetForm) -> tuple[bool, list[exams.ScoreRow]]:
    """(whether every row is complete, the rows): each incomplete row gets its message."""
    valid = form.validate()
    rows = _rows(form)
    for entry, problem in zip(form.rows, exams.check_score_rows(rows), strict=True):
        if problem and not entry.form.errors:
            entry.form.theory.errors = [*entry.form.theory.errors, problem]
            valid = False
    if not valid and not form.form_errors:
        form.form_errors.append(_("Some rows are incomplete; nothing was recorded. "
                                  "Correct the marked rows and send the sheet again."))
    return valid, rows


def _preview(session: ExamSession, form: ScoreSheetForm, rows) -> exams.ScorePreview | None:
    try:
        return exams.preview_scores(session, rows)
    except DomainError as error:
        attach_to_form(form, error)
        return None


@bp.route("/sessions/<int:exam_session_id>/scores", methods=["GET", "POST"])
@performs("exam_session.scored")
def session_scores(exam_session_id):
    """The score sheet in two steps: a first submit checks the sheet and says what saving it
    would issue, writing nothing; saving takes a second submit that confirms exactly that
    sheet (a changed sheet is summed up again; a replayed confirmation finds the session
    scored and issues nothing more)."""
    session = _load(exam_session_id)
    seats = queries.session_seats(session)
    if not session.is_open:
        flash(_("The scores of this session are already recorded."), "info")
        return redirect(url_for("certification.session", exam_session_id=session.id))
    form = ScoreSheetForm() if request.method == "POST" else _sheet(seats)
    preview = None
    if request.method == "POST":
        valid, rows = _checked_sheet(form)
        preview = _preview(session, form, rows) if valid else None
        confirmed = form.confirm.data or ""
        if preview is not None and confirmed == preview.digest:
            ok, outcome = perform(exams.record_scores, session, rows, form=form)
            if ok:
                flash(ngettext("Scores recorded: %(passed)s passed, %(failed)s failed, "
                               "%(absent)s absent. %(num)s certificate issued.",
                               "Scores recorded: %(passed)s passed, %(failed)s failed, "
                               "%(absent)s absent. %(num)s certificates issued.",
                               len(outcome.certificates), passed=outcome.passed,
                               failed=outcome.failed, absent=outcome.absent), "success")
                return redirect(url_for("certification.session", exam_session_id=session.id))
            preview = None
        elif preview is not None and confirmed:
            form.form_errors.append(_("The scores changed since the summary: nothing was "
                                      "recorded. Check the new summary and confirm again."))
    by_id = {s.id: s for s in seats}
    lines = [(entry, by_id.get(row.seat_id)) for entry, row in zip(form.rows, _rows(form),
                                                                    strict=True)]
    return render_template("certification/scores.html", session=session, form=form,
                           lines=lines, preview=preview, today=local_today())
