"""Evaluation pages of agencies and of everyone reading one result: own evaluations, a result
with its KPIs, the records behind each KPI, acknowledgement, appeal, inspection score, report
downloads, HQ's service level and the rating of HQ."""
from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select

from evaluation import kpis, policy, queries, reports, services
from evaluation.charts import trend_svg
from evaluation.forms import (
    AcknowledgeForm,
    AppealForm,
    ComputeForm,
    InspectionForm,
    RatingForm,
)
from evaluation.models import Quarter, QuarterStatus, Report, Result, ResultStatus
from evaluation.policy import AGENCY_READERS, READERS
from portal.auth.access import allow, performs
from portal.commit import done, perform
from portal.extensions import db
from portal.navigation import add_nav
from portal.policy import can
from portal.tenancy import get_or_404

bp = Blueprint("evaluation", __name__, url_prefix="/evaluation")

add_nav("evaluation.index", _l("Evaluation"), READERS, order=60, group="evaluation")


def locale() -> str:
    return str(get_locale())


def form_page(form, title, back):
    return render_template("portal/form_page.html", form=form, title=title, back=back)


def form_view(form, service, args: tuple, *, done, title, back):
    """A page with one form: a valid post runs the service with `args` (committed by
    perform), says `done` and goes `back`; otherwise the form again, with its errors."""
    if form.validate_on_submit() and perform(service, *args, form=form):
        flash(done, "success")
        return redirect(back)
    return form_page(form, title, back)


# --- the start page -------------------------------------------------------------------------------


@bp.route("/")
@allow(*READERS)
def index():
    if current_user.role in AGENCY_READERS:
        results = queries.agency_results(current_user.agency_id)
        return render_template("evaluation/mine.html", results=results,
                               latest=results[0] if results else None)
    return index_page(ComputeForm())


def index_page(compute_form, status: int = 200):
    """HQ's start page; a refused computation re-renders it with its error (422)."""
    return render_template("evaluation/index.html", quarters=queries.quarters(),
                           counts=queries.result_counts(), compute_form=compute_form), status


# --- one result -----------------------------------------------------------------------------------


@bp.route("/results/<int:result_id>")
@allow(*READERS)
def result(result_id):
    return result_page(get_or_404(Result, result_id))


def result_page(res: Result, status: int = 200):
    """The result page; refused actions re-render it with their error (and a 4xx status)."""
    data = queries.result_page(res)
    inspection_form = None
    if res.status == ResultStatus.DRAFT and can(current_user, policy.INSPECT, res):
        inspection_form = InspectionForm(formdata=None, score=data["inspection"].score
                                         if data["inspection"] else None)
    return render_template("evaluation/result.html", result=res, **data,
                           kpi_defs=kpis.BY_CODE, formulas={
                               k.code: kpis.formula_text(k, data["scheme"].sla_minutes,
                                                         data["scheme"].dispatch_clocks)
                               for k in kpis.KPIS},
                           ack_form=AcknowledgeForm(formdata=None),
                           inspection_form=inspection_form, suffix=kpis.UNIT_SUFFIX), status


@bp.route("/results/<int:result_id>/trend.svg")
@allow(*READERS)
def trend(result_id):
    res = get_or_404(Result, result_id)
    points = reports.trend_points(reports.load_context(res.quarter, [res]), res)
    svg = trend_svg([(label, score) for label, score, _grade in points])
    return Response(svg, mimetype="image/svg+xml", headers={
        # An image with its own styles and nothing else: no script, nothing fetched.
        "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
        "Cache-Control": "no-store"})


@bp.route("/results/<int:result_id>/kpis/<kpi_code>")
@allow(*READERS)
def drilldown(result_id, kpi_code):
    res = get_or_404(Result, result_id)
    if kpi_code not in kpis.BY_CODE:
        abort(404)
    stmt, kind = queries.drilldown(res, kpi_code)
    page = queries.paginate_records(stmt, kind) if stmt is not None else None
    totals = queries.revisit_totals(res) if kind == "revisits" else None
    return render_template("evaluation/drilldown.html", result=res, kpi=kpis.BY_CODE[kpi_code],
                           page=page, kind=kind, totals=totals,
                           stored=queries.stored_value(res, kpi_code),
                           live=queries.live_counts(res).get(kpi_code, (0, 0)),
                           sla=res.quarter.scheme.sla_minutes,
                           formula=kpis.formula_text(kpis.BY_CODE[kpi_code],
                                                     res.quarter.scheme.sla_minutes,
                                                     res.quarter.scheme.dispatch_clocks),
                           suffix=kpis.UNIT_SUFFIX)


@bp.route("/results/<int:result_id>/acknowledge", methods=["POST"])
@performs("evaluation.acknowledged")
def acknowledge(result_id):
    res = get_or_404(Result, result_id)
    if AcknowledgeForm().validate_on_submit() and perform(services.acknowledge_result, res):
        return done(_("Result acknowledged: it is final."), "evaluation.result", result_id=res.id)
    return result_page(res, 422)


@bp.route("/results/<int:result_id>/appeal", methods=["GET", "POST"])
@performs("evaluation.appealed")
def appeal(result_id):
    res = get_or_404(Result, result_id)
    form = AppealForm()
    return form_view(form, services.lodge_appeal, (res, form.reason.data, form.kpi_code.data),
                     done=_("Appeal lodged. HQ will decide it; you will see the decision "
                            "here."),
                     title=_("Appeal the %(period)s result", period=res.quarter.label),
                     back=url_for("evaluation.result", result_id=res.id))


@bp.route("/results/<int:result_id>/inspection", methods=["GET", "POST"])
@performs("evaluation.inspection_entered")
def inspection(result_id):
    res = get_or_404(Result, result_id)
    form = InspectionForm()
    return form_view(form, services.enter_inspection, (res, form.score.data, form.note.data),
                     done=_("Inspection score saved; the draft score was updated."),
                     title=_("On-site inspection of %(code)s, %(period)s",
                             code=res.agency.code, period=res.quarter.label),
                     back=url_for("evaluation.result", result_id=res.id))


@bp.route("/reports/<int:report_id>.pdf")
@allow(*READERS)
def report_download(report_id):
    report = get_or_404(Report, report_id)
    content = db.session.scalar(select(Report.content).where(
        Report.agency_id == report.agency_id, Report.id == report.id))
    return pdf_response(content, report.number, report.sha256)


def pdf_response(content: bytes, number: str, sha256: str) -> Response:
    """The stored bytes, as issued."""
    return Response(content, mimetype="application/pdf", headers={
        "Content-Disposition": f"attachment; filename={number}.pdf",
        "X-Content-SHA256": sha256, "ETag": f'"{sha256}"', "Cache-Control": "no-store"})


# --- HQ's service level and the rating of HQ ------------------------------------------------------


@bp.route("/service-level")
@allow(*READERS)
def service_level():
    options = [q for q in queries.quarters() if q.status != QuarterStatus.DRAFT]
    chosen = _chosen_quarter(options)
    levels = queries.service_levels(chosen.id) if chosen else {}
    figures = {key: reports.level_figures(lv) for key, lv in levels.items()}
    context = {"quarters": options, "chosen": chosen}
    if current_user.role in AGENCY_READERS:
        own = {r.quarter_id: r for r in queries.agency_results(current_user.agency_id)}
        mine = own.get(chosen.id) if chosen else None
        rows = [(_("Your agency"), reports.result_service(mine))] if mine else []
        if mine is not None and mine.region_id in figures:
            rows.append((_("Your region"), figures[mine.region_id]))
        rows.append((_("Network"), figures.get(None) or reports.level_figures(None)))
        context.update(agency_rows=rows, ratings=queries.own_ratings(current_user.agency_id))
    else:
        regions = queries.regions_by_id([k for k in figures if k is not None])
        context.update(region_rows=[(regions[k].name(locale()), f) for k, f in figures.items()
                                    if k in regions],
                       network=figures.get(None),
                       summary=queries.survey_summary(chosen.id) if chosen else [])
    return render_template("evaluation/service_level.html", **context)


def _chosen_quarter(options: list[Quarter]) -> Quarter | None:
    wanted = request.args.get("quarter", "")
    return next((q for q in options if str(q.id) == wanted), options[0] if options else None)


@bp.route("/quarters/<int:quarter_id>/rating", methods=["GET", "POST"])
@performs("evaluation.hq_rated")
def rating(quarter_id):
    quarter = db.first_or_404(select(Quarter).where(Quarter.id == quarter_id))
    form = RatingForm()
    return form_view(form, services.rate_hq, (quarter, current_user.agency_id, form.data),
                     done=_("Thank you: your rating of HQ was recorded."),
                     title=_("Rate HQ's service in %(period)s", period=quarter.label),
                     back=url_for("evaluation.service_level", quarter=quarter.id))

