"""Review pages of a settlement (regional and HQ), its evidence files and its outputs."""
import io

from flask import abort, flash, request, send_file
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user

from portal.auth.access import allow, performs
from portal.auth.roles import AGENCY_ROLES
from portal.commit import perform
from portal.exports import csv_response, xlsx_response
from portal.i18n import format_money
from portal.tenancy import get_or_404
from settlement import evidence, forms, queries, review, statement
from settlement.models import Appeal, Attachment, Settlement
from settlement.page import current_view, settlement_page
from settlement.policy import READERS
from settlement.views import back_to, bp, load_line, locale, on_button, on_form, refused
from tenants.issuer import render_document


@bp.route("/<int:settlement_id>/regional-review", methods=["POST"])
@performs("settlement.regional_forwarded", "settlement.returned")
def regional_review(settlement_id):
    form = forms.RegionalReviewForm()
    forward = form.outcome.data == "forward"
    return on_form(get_or_404(Settlement, settlement_id), form, "regional",
                  review.regional_review, forward, form.comment.data,
                  message=_("Passed to HQ.") if forward else _("Returned to the agency."))


@bp.route("/lines/<int:line_id>/decide", methods=["POST"])
@performs("settlement.line_decided")
def decide_line(line_id):
    settlement, line = load_line(line_id)
    form = forms.DecideLineForm()
    return on_form(settlement, form, f"decide-{line.id}", review.decide_line, line,
                  form.decision.data, amount=form.amount.data,
                  reason_code=form.reason_code.data or None, reason_text=form.reason_text.data,
                  at_line=line.id, message=_("Line decided."))


@bp.route("/<int:settlement_id>/approve-clean", methods=["POST"])
@performs("settlement.clean_lines_approved")
def approve_clean(settlement_id):
    return on_button(get_or_404(Settlement, settlement_id), review.approve_clean_lines,
               message=lambda count: _("%(count)s lines without exceptions approved.",
                                       count=count))


@bp.route("/<int:settlement_id>/lines/decide", methods=["POST"])
@performs("settlement.lines_decided")
def decide_lines(settlement_id):
    """A decision on the ticked lines, or on every line the table's filter shows."""
    settlement = get_or_404(Settlement, settlement_id)
    form = forms.BulkDecideForm()
    selection = review.Selection(
        line_ids=tuple(form.line_ids.data or ()),
        view=current_view(settlement) if form.all_matching.data else None)
    return on_form(settlement, form, "bulk", review.decide_lines, selection, form.action.data,
                   rule=form.rule.data or None, percent=form.percent.data,
                   reason_code=form.reason_code.data or None, reason_text=form.reason_text.data,
                   message=_lines_decided)


def _lines_decided(outcome: review.BulkOutcome) -> str:
    return ngettext("%(num)s line decided: %(approved)s approved of %(claimed)s claimed.",
                    "%(num)s lines decided: %(approved)s approved of %(claimed)s claimed.",
                    outcome.count, approved=format_money(outcome.after),
                    claimed=format_money(outcome.claimed))


@bp.route("/<int:settlement_id>/approve", methods=["POST"])
@performs("settlement.first_approved", "settlement.approved")
def approve(settlement_id):
    return on_button(get_or_404(Settlement, settlement_id), review.approve_settlement,
               message=lambda done: _("Approved.") if done else _(
                   "First approval given; a second approval by HQ admin is needed for this "
                   "amount."))


@bp.route("/<int:settlement_id>/return", methods=["POST"])
@performs("settlement.returned")
def return_to_agency(settlement_id):
    form = forms.CommentForm()
    return on_form(get_or_404(Settlement, settlement_id), form, "return",
                  review.return_settlement, form.comment.data,
                  message=_("Returned to the agency with your comment."))


@bp.route("/<int:settlement_id>/pay", methods=["POST"])
@performs("settlement.paid")
def pay(settlement_id):
    form = forms.PayForm()
    return on_form(get_or_404(Settlement, settlement_id), form, "pay", review.mark_paid,
                  form.payment_reference.data, form.paid_on.data, message=_("Marked paid."))


@bp.route("/appeals/<int:appeal_id>/resolve", methods=["POST"])
@performs("settlement.appeal_resolved")
def resolve_appeal(appeal_id):
    appeal = get_or_404(Appeal, appeal_id)
    form = forms.ResolveAppealForm()
    return on_form(get_or_404(Settlement, appeal.settlement_id), form, f"resolve-{appeal.id}",
                  review.resolve_appeal, appeal, form.outcome.data == "upheld",
                  form.amount.data, form.note.data, at_line=appeal.line_id,
                  message=_("Appeal decided."))


# --- evidence ----------------------------------------------------------------------------------


@bp.route("/<int:settlement_id>/evidence", methods=["POST"])
@performs("settlement.evidence_added")
def upload(settlement_id):
    settlement = get_or_404(Settlement, settlement_id)
    form = forms.UploadForm()
    # Any line of the settlement (the page offers those it shows); labels are the page's.
    form.line_id.choices = [(0, ""), *((line_id, "") for line_id in
                                       queries.line_ids(settlement))]
    if form.validate_on_submit():
        line = load_line(form.line_id.data)[1] if form.line_id.data else None
        upload_file = form.file.data
        data = upload_file.read(evidence.max_bytes() + 1)
        ok, attachment = perform(evidence.add_attachment, settlement, line,
                                 upload_file.filename, data, form=form)
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
@performs("settlement.evidence_deleted")
def delete_evidence(attachment_id):
    attachment = get_or_404(Attachment, attachment_id)
    settlement = get_or_404(Settlement, attachment.settlement_id)
    form = forms.ActionForm()
    ok, path = perform(evidence.delete_attachment, settlement, attachment, form=form)
    if not ok:
        return refused(settlement, form)
    path.unlink(missing_ok=True)
    flash(_("File deleted."), "success")
    return back_to(settlement.id, "#evidence")


# --- outputs -----------------------------------------------------------------------------------


def _statement(settlement: Settlement, *, document: bool = False) -> dict:
    return statement.build(settlement, queries.detail(settlement), locale(),
                           is_hq=current_user.role not in AGENCY_ROLES,
                           signoffs=queries.signoffs(settlement) if document else None)


@bp.route("/<int:settlement_id>/statement.pdf")
@allow(*READERS)
def statement_pdf(settlement_id):
    """The statement as the issuer's document; its file is named by the number, which is
    unique across the network (ST-SH-C01-202610-01.pdf)."""
    settlement = get_or_404(Settlement, settlement_id)
    pdf = render_document("settlement/pdf/statement.html", locale=locale(),
                          st=_statement(settlement, document=True))
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
        return xlsx_response(name, head, body)
    return csv_response(name, head, body)
