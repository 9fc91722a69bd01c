"""Service quality pages: revisits (回访) and complaints (投诉)."""
from flask import render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from portal import policy as portal_policy
from portal.auth.access import allow, performs
from portal.commit import done, perform
from portal.listing import paginate, sorted_by
from portal.navigation import add_nav
from portal.tenancy import get_or_404
from service import policy, quality, queries
from service.forms import ComplaintForm, ResponseForm, VerdictForm
from service.models import Complaint, ComplaintStatus, Revisit
from service.policy import READERS
from service.states import QUALITY_LABELS as LABELS
from service.views import aware, bp, may
from service.views_imports import import_view, template_download

# One menu entry; complaints and revisits link to each other with tabs.
add_nav("service.complaints", _l("Complaints & revisits"), READERS, order=34, group="work")


# --- revisits ----------------------------------------------------------------------------------


@bp.route("/revisits/")
@allow(*READERS)
def revisits():
    stmt, sort = sorted_by(queries.revisit_list_statement(),
                           {"at": Revisit.revisited_at, "score": Revisit.score}, "-at")
    return render_template("service/revisits.html", page=paginate(stmt), sort=sort,
                           by_agency=queries.agency_filter())


@bp.route("/revisits/import", methods=["GET", "POST"])
@performs("revisit.imported")
def revisits_import():
    return import_view("revisit", title=_("Import revisits"),
                       template_endpoint="service.revisits_import_template",
                       back=url_for("service.revisits"))


@bp.route("/revisits/import/template")
@allow(*portal_policy.roles(policy.IMPORT_REVISITS))
def revisits_import_template():
    return template_download("revisit", None, "revisits-template")


# --- complaints --------------------------------------------------------------------------------


@bp.route("/complaints/")
@allow(*READERS)
def complaints():
    stmt, sort = sorted_by(queries.complaint_list_statement(),
                           {"received": Complaint.received_at, "status": Complaint.status,
                            "severity": Complaint.severity}, "-received")
    return render_template("service/complaints.html", page=paginate(stmt), sort=sort,
                           by_agency=queries.agency_filter(), **LABELS)


@bp.route("/complaints/new", methods=["GET", "POST"])
@performs("complaint.recorded")
def complaint_new():
    form = ComplaintForm()
    if form.validate_on_submit():
        agency = queries.agency_by_code(form.agency_code.data)
        if agency is None:
            form.agency_code.errors = [*form.agency_code.errors,
                                       _("No agency with this code.")]
        else:
            ok, created = perform(quality.create_complaint, agency, {
                "order_number": form.order_number.data, "channel": form.channel.data,
                "severity": form.severity.data, "description": form.description.data,
                "received_at": aware(form.received_at.data)}, form=form)
            if ok:
                return done(_("Complaint recorded; the agency sees it now."),
                            "service.complaint", complaint_id=created.id)
    return render_template("portal/form_page.html", form=form, title=_("Record a complaint"),
                           back=url_for("service.complaints"))


def _complaint_page(complaint: Complaint, *, response_form=None, verdict_form=None,
                    status=200):
    if response_form is None and may(policy.RESPOND_COMPLAINT, complaint):
        response_form = ResponseForm(formdata=None)
    if verdict_form is None and may(policy.CLOSE_COMPLAINT, complaint):
        verdict_form = VerdictForm(formdata=None)
    return render_template("service/complaint.html", complaint=complaint,
                           response_form=response_form, verdict_form=verdict_form,
                           open_status=ComplaintStatus.OPEN, closed=ComplaintStatus.CLOSED,
                           **LABELS), status


@bp.route("/complaints/<int:complaint_id>")
@allow(*READERS)
def complaint(complaint_id):
    return _complaint_page(get_or_404(Complaint, complaint_id))


@bp.route("/complaints/<int:complaint_id>/respond", methods=["POST"])
@performs("complaint.responded")
def complaint_respond(complaint_id):
    item = get_or_404(Complaint, complaint_id)
    form = ResponseForm()
    if form.validate_on_submit() and perform(quality.respond_to_complaint, item,
                                             form.response.data, form=form):
        return done(_("Your response was sent to HQ."), "service.complaint", complaint_id=item.id)
    return _complaint_page(item, response_form=form, status=422)


@bp.route("/complaints/<int:complaint_id>/verdict", methods=["POST"])
@performs("complaint.closed")
def complaint_verdict(complaint_id):
    item = get_or_404(Complaint, complaint_id)
    form = VerdictForm()
    if form.validate_on_submit() and perform(quality.give_verdict, item, form.verdict.data,
                                             form.verdict_note.data, form=form):
        return done(_("Complaint closed."), "service.complaint", complaint_id=item.id)
    return _complaint_page(item, verdict_form=form, status=422)
