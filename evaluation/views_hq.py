"""HQ's evaluation pages: computing and publishing quarters, rankings, appeals, consequence
proposals, KPI schemes and the auditors' check of a report file."""
import hashlib

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import selectinload, undefer

from evaluation import compute, kpis, publication, queries, schemes, services
from evaluation.forms import (
    ComputeForm,
    ProposalForm,
    QuarterActionForm,
    ResolveForm,
    VerifyForm,
    scheme_form,
)
from evaluation.models import (
    Appeal,
    AppealStatus,
    Proposal,
    Quarter,
    RankingReport,
    Result,
    Scheme,
)
from evaluation.policy import HQ_READERS, RANKING_READERS, VERIFIERS
from evaluation.views import bp, form_page, index_page, pdf_response, result_page
from portal import jobs
from portal.auth.access import allow, performs
from portal.commit import done, perform
from portal.extensions import db
from portal.listing import int_arg, paginate
from portal.periods import Period
from portal.tenancy import get_or_404
from portal.transitions import STALE


def _quarter(quarter_id) -> Quarter:
    return db.first_or_404(select(Quarter).where(Quarter.id == quarter_id))


# --- quarters -----------------------------------------------------------------------------------


@bp.route("/compute", methods=["POST"])
@performs("evaluation.compute_requested")
def compute_quarter():
    """Start the network-wide computation; the job page shows its progress."""
    form = ComputeForm()
    if form.validate_on_submit():
        ok, job = perform(compute.request_compute, Period.parse(form.period.data), form=form)
        if ok:
            jobs.enqueue(job.id)
            return redirect(url_for("jobs.show", job_id=job.id))
    return index_page(form, 422)


@bp.route("/quarters/<int:quarter_id>")
@allow(*HQ_READERS)
def quarter(quarter_id):
    return quarter_page(_quarter(quarter_id))


def quarter_page(q: Quarter, status: int = 200):
    """The quarter page; refused actions re-render it with their error (and a 4xx status)."""
    region = int_arg("region", None)
    regions, grades = queries.distribution(q.id)
    return render_template(
        "evaluation/quarter.html", quarter=q, page=paginate(queries.ranking_statement(
            q.id, region), rows=True), regions=regions, grades=grades, region=region,
        counts=queries.result_counts(q.id).get(q.id, {}), risky=queries.at_risk(q.id),
        **queries.quarter_extras(q),
        action_form=QuarterActionForm(formdata=None, seen_version=q.version)), status


@bp.route("/quarters/<int:quarter_id>/publish", methods=["POST"])
@performs("evaluation.publish_requested")
def publish(quarter_id):
    """Start the publication job for the quarter as the page showed it."""
    q = _quarter(quarter_id)
    form = QuarterActionForm()
    if not form.validate_on_submit():
        flash(str(STALE), "danger")
        return quarter_page(q, 422)
    ok, job = perform(publication.request_publication, q, seen_version=form.seen_version.data)
    if not ok:
        return quarter_page(q, 422)
    jobs.enqueue(job.id)
    return redirect(url_for("jobs.show", job_id=job.id))


@bp.route("/quarters/<int:quarter_id>/finalize", methods=["POST"])
@performs("evaluation.finalized")
def finalize(quarter_id):
    q = _quarter(quarter_id)
    if QuarterActionForm().validate_on_submit() and perform(services.finalize_quarter, q):
        flash(_("%(period)s is final.", period=q.label), "success")
        return redirect(url_for("evaluation.quarter", quarter_id=q.id))
    return quarter_page(q, 422)


@bp.route("/ranking-reports/<int:ranking_report_id>.pdf")
@allow(*RANKING_READERS)
def ranking_download(ranking_report_id):
    report = db.first_or_404(select(RankingReport).options(undefer(RankingReport.content))
                             .where(RankingReport.id == ranking_report_id))
    return pdf_response(report.content, report.number, report.sha256)


# --- appeals --------------------------------------------------------------------------------------


@bp.route("/appeals/")
@allow(*HQ_READERS)
def appeals():
    return render_template("evaluation/appeals.html",
                           page=paginate(queries.open_appeals_statement()))


@bp.route("/appeals/<int:evaluation_appeal_id>/resolve", methods=["GET", "POST"])
@performs("evaluation.appeal_upheld", "evaluation.appeal_rejected")
def resolve(evaluation_appeal_id):
    appeal = get_or_404(Appeal, evaluation_appeal_id)
    back = url_for("evaluation.result", result_id=appeal.result_id)
    if appeal.status != AppealStatus.OPEN:
        flash(_("This appeal is already decided."), "info")
        if request.method == "GET":
            return redirect(back)
        return result_page(get_or_404(Result, appeal.result_id), 409)
    form = ResolveForm()
    if form.validate_on_submit() and perform(
            services.resolve_appeal, appeal, upheld=form.decision.data == "upheld",
            note=form.note.data, resolution=form.resolution.data or None,
            kpi_code=form.kpi_code.data or None, numerator=form.numerator.data,
            denominator=form.denominator.data, form=form):
        flash(_("Appeal decided."), "success")
        return redirect(back)
    return render_template("evaluation/resolve.html", form=form, appeal=appeal, back=back)


# --- consequences ---------------------------------------------------------------------------------


@bp.route("/proposals/")
@allow(*HQ_READERS)
def proposals():
    return proposals_page()


def proposals_page(status: int = 200):
    return render_template("evaluation/proposals.html",
                           page=paginate(queries.open_proposals_statement()),
                           form=ProposalForm(formdata=None)), status


@bp.route("/proposals/<int:proposal_id>/decide", methods=["POST"])
@performs("evaluation.proposal_rejected", "agency.tier_changed", "agency.status_changed")
def decide(proposal_id):
    proposal = get_or_404(Proposal, proposal_id)
    form = ProposalForm()
    if not form.validate_on_submit() or form.decision.data not in ("accept", "reject"):
        flash(_("Choose to accept or reject the proposal."), "danger")
    elif perform(services.decide_proposal, proposal, form.decision.data == "accept",
                 form.note.data):
        accepted = form.decision.data == "accept"
        return done(_("Proposal accepted: the agency was changed.") if accepted
                    else _("Proposal rejected."), "evaluation.proposals")
    return proposals_page(422)


# --- schemes --------------------------------------------------------------------------------------


@bp.route("/schemes/")
@allow(*HQ_READERS)
def scheme_list():
    found = list(db.session.scalars(select(Scheme).options(selectinload(Scheme.kpis))
                                    .order_by(Scheme.effective_index.desc())))
    return render_template("evaluation/schemes.html", schemes=found, kpi_defs=kpis.BY_CODE,
                           curve_text=kpis.curve_text, curve=kpis.curve_from_json)


@bp.route("/schemes/<int:scheme_id>")
@allow(*HQ_READERS)
def scheme(scheme_id):
    found = db.first_or_404(select(Scheme).options(selectinload(Scheme.kpis))
                            .where(Scheme.id == scheme_id))
    return render_template("evaluation/scheme.html", scheme=found, kpi_defs=kpis.BY_CODE,
                           curve_text=kpis.curve_text, curve=kpis.curve_from_json,
                           formulas={k.code: kpis.formula_text(k, found.sla_minutes,
                                                               found.dispatch_clocks)
                                     for k in kpis.KPIS})


@bp.route("/schemes/new", methods=["GET", "POST"])
@performs("evaluation.scheme_created")
def scheme_new():
    latest = db.session.scalars(select(Scheme).options(selectinload(Scheme.kpis))
                                .order_by(Scheme.effective_index.desc()).limit(1)).first()
    form = scheme_form(schemes.terms_of(latest) if latest else schemes.default_terms())
    if form.validate_on_submit():
        data = {k: v for k, v in form.data.items() if k not in ("submit", "csrf_token")}
        data["period"] = Period.parse(form.period.data)
        if perform(schemes.create_scheme, data, form=form):
            return done(_("Scheme version created."), "evaluation.scheme_list")
    return form_page(form, _("New KPI scheme version"), url_for("evaluation.scheme_list"))


# --- the auditors' check --------------------------------------------------------------------------


@bp.route("/verify", methods=["GET", "POST"])
@allow(*VERIFIERS, self_service=True, read_only=True)  # a POST that only reads: auditors too
def verify():
    """An auditor uploads a copy: the file SHA-256 decides (authentic or not), and the page
    says whether it is the current version or which version superseded it, and when."""
    form = VerifyForm()
    outcome = None
    if form.validate_on_submit():
        digest = hashlib.sha256(form.file.data.read()).hexdigest()
        outcome = {"sha256": digest, **queries.report_by_hash(digest)}
    return render_template("evaluation/verify.html", form=form, outcome=outcome)

