"""Review pages of a settlement (regional and HQ), its evidence files and its outputs."""
import io

from flask import abort, flash, request, send_file
from flask_babel import gettext as _
from flask_login import current_user

from portal.auth.access import allow
from portal.auth.roles import AGENCY_ROLES, Role
from portal.exports import csv_response
from portal.pdf import render_pdf
from portal.tenancy import get_or_404
from settlement import evidence, queries, review, statement
from settlement.forms import (
    ActionForm,
    CommentForm,
    DecideLineForm,
    PayForm,
    RegionalReviewForm,
    ResolveAppealForm,
    UploadForm,
)
from settlement.models import Appeal, Attachment, Settlement
from settlement.page import settlement_page
from settlement.views import (
    OWNER,
    READERS,
    actor,
    back_to,
    back_to_line,
    bp,
    load_line,
    locale,
    refused,
    run,
)

REVIEWERS = (Role.HQ_SETTLEMENT,)
APPROVERS = (Role.HQ_SETTLEMENT, Role.HQ_ADMIN)
REGIONAL = (Role.REGIONAL_MANAGER, Role.HQ_SETTLEMENT, Role.HQ_ADMIN)


@bp.route("/<int:settlement_id>/regional-review", methods=["POST"])
@allow(*REGIONAL)
def regional_review(settlement_id):
    settlement = get_or_404(Settlement, settlement_id)
    form = RegionalReviewForm()
    if form.validate_on_submit():
        forward = form.outcome.data == "forward"
        ok, _result = run(review.regional_review, settlement, form.version.data, actor(),
                          forward, form.comment.data, form=form)
        if ok:
            flash(_("Passed to HQ.") if forward else _("Returned to the agency."), "success")
            return back_to(settlement.id)
    return settlement_page(settlement, failed={"regional": form}, status=400)


@bp.route("/lines/<int:line_id>/decide", methods=["POST"])
@allow(*REVIEWERS)
def decide_line(line_id):
    settlement, line = load_line(line_id)
    form = DecideLineForm()
    if form.validate_on_submit():
        ok, _result = run(review.decide_line, settlement, line, form.version.data,
                          form.decision.data, actor(), amount=form.amount.data,
                          reason_code=form.reason_code.data or None,
                          reason_text=form.reason_text.data, form=form)
        if ok:
            flash(_("Line decided."), "success")
            return back_to_line(settlement, line.id)
    return settlement_page(settlement, failed={f"decide-{line.id}": form}, status=400)


@bp.route("/<int:settlement_id>/approve-clean", methods=["POST"])
@allow(*REVIEWERS)
def approve_clean(settlement_id):
    settlement = get_or_404(Settlement, settlement_id)
    form = ActionForm()
    ok, count = run(review.approve_clean_lines, settlement, form.version.data, actor(),
                    form=form)
    if not ok:
        return refused(settlement, form)
    flash(_("%(count)s lines without exceptions approved.", count=count), "success")
    return back_to(settlement.id)


@bp.route("/<int:settlement_id>/approve", methods=["POST"])
@allow(*APPROVERS)
def approve(settlement_id):
    settlement = get_or_404(Settlement, settlement_id)
    form = ActionForm()
    ok, done = run(review.approve_settlement, settlement, form.version.data, actor(),
                   form=form)
    if not ok:
        return refused(settlement, form)
    flash(_("Approved.") if done else _("First approval given; a second approval by HQ "
                                         "admin is needed for this amount."), "success")
    return back_to(settlement.id)


@bp.route("/<int:settlement_id>/return", methods=["POST"])
@allow(*APPROVERS)
def return_to_agency(settlement_id):
    settlement = get_or_404(Settlement, settlement_id)
    form = CommentForm()
    if form.validate_on_submit():
        ok, _result = run(review.return_settlement, settlement, form.version.data, actor(),
                          form.comment.data, form=form)
        if ok:
            flash(_("Returned to the agency with your comment."), "success")
            return back_to(settlement.id)
    return settlement_page(settlement, failed={"return": form}, status=400)


@bp.route("/<int:settlement_id>/pay", methods=["POST"])
@allow(Role.HQ_SETTLEMENT)
def pay(settlement_id):
    settlement = get_or_404(Settlement, settlement_id)
    form = PayForm()
    if form.validate_on_submit():
        ok, _result = run(review.mark_paid, settlement, form.version.data, actor(),
                          form.payment_reference.data, form.paid_on.data, form=form)
        if ok:
            flash(_("Marked paid."), "success")
            return back_to(settlement.id)
    return settlement_page(settlement, failed={"pay": form}, status=400)


@bp.route("/appeals/<int:appeal_id>/resolve", methods=["POST"])
@allow(*REVIEWERS)
def resolve_appeal(appeal_id):
    appeal = get_or_404(Appeal, appeal_id)
    settlement = get_or_404(Settlement, appeal.settlement_id)
    form = ResolveAppealForm()
    if form.validate_on_submit():
        ok, _result = run(review.resolve_appeal, settlement, appeal, form.version.data,
                          form.outcome.data == "upheld", form.amount.data, form.note.data,
                          actor(), form=form)
        if ok:
            flash(_("Appeal decided."), "success")
            return back_to_line(settlement, appeal.line_id)
    return settlement_page(settlement, failed={f"resolve-{appeal.id}": form}, status=400)


# --- evidence ----------------------------------------------------------------------------------


@bp.route("/<int:settlement_id>/evidence", methods=["POST"])
@allow(*OWNER)
def upload(settlement_id):
    settlement = get_or_404(Settlement, settlement_id)
    form = UploadForm()
    # Any line of the settlement (the page offers those it shows); labels are the page's.
    form.line_id.choices = [(0, ""), *((line_id, "") for line_id in
                                       queries.line_ids(settlement))]
    if form.validate_on_submit():
        line = load_line(form.line_id.data)[1] if form.line_id.data else None
        upload_file = form.file.data
        data = upload_file.read(evidence.max_bytes() + 1)
        ok, attachment = run(evidence.add_attachment, settlement, line, upload_file.filename,
                             data, actor(), form=form)
        if ok:
            flash(_("File %(name)s added.", name=attachment.original_name), "success")
            return back_to(settlement.id, "#evidence")
    return settlement_page(settlement, failed={"upload": form}, status=400)


@bp.route("/evidence/<int:attachment_id>")
@allow(*READERS)
def download(attachment_id):
    attachment = get_or_404(Attachment, attachment_id)
    get_or_404(Settlement, attachment.settlement_id)  # the access check of the owning row
    path = evidence.file_path(attachment)
    if not path.is_file():
        abort(404)
    # Read whole (files are small): no open file handle outlives the response.
    return send_file(io.BytesIO(path.read_bytes()), mimetype=attachment.content_type,
                     as_attachment=True, download_name=attachment.original_name, max_age=0)


@bp.route("/evidence/<int:attachment_id>/delete", methods=["POST"])
@allow(*OWNER)
def delete_evidence(attachment_id):
    attachment = get_or_404(Attachment, attachment_id)
    settlement = get_or_404(Settlement, attachment.settlement_id)
    form = ActionForm()
    ok, path = run(evidence.delete_attachment, settlement, attachment, actor(), form=form)
    if not ok:
        return refused(settlement, form)
    path.unlink(missing_ok=True)
    flash(_("File deleted."), "success")
    return back_to(settlement.id, "#evidence")


# --- outputs -----------------------------------------------------------------------------------


def _statement(settlement: Settlement) -> dict:
    return statement.build(settlement, queries.detail(settlement), locale(),
                           is_hq=current_user.role not in AGENCY_ROLES)


@bp.route("/<int:settlement_id>/statement.pdf")
@allow(*READERS)
def statement_pdf(settlement_id):
    settlement = get_or_404(Settlement, settlement_id)
    pdf = render_pdf("settlement/pdf/statement.html", locale=locale(),
                     st=_statement(settlement))
    return pdf, 200, {"Content-Type": "application/pdf",
                      "Content-Disposition": f"attachment; filename={settlement.number}.pdf"}


@bp.route("/<int:settlement_id>/lines.csv")
@allow(*READERS)
def export_lines(settlement_id):
    settlement = get_or_404(Settlement, settlement_id)
    data = _statement(settlement)
    head, body = statement.header(), statement.rows(data)
    name = f"settlement-{settlement.number}"
    if request.args.get("format") == "xlsx":
        return statement.xlsx_response(name, head, body)
    return csv_response(name, head, body)
