"""Import pages: work orders (agencies), revisits and catalogs (HQ) from CSV or XLSX files.

Each import page is `import_view` over one kind of import (service.uploads.TARGETS); the
catalog and revisit pages call it from their own modules. A file is kept after errors and
imported again from the page without being chosen again; a large one goes to a background
job and the page hands over to the job's page. The templates' example row and drop-down
lists come from the reader's own catalog (`template_content`).
"""
from datetime import datetime, time, timedelta

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import format_number
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf.file import FileField
from sqlalchemy import exists, select
from wtforms import BooleanField, HiddenField, SubmitField

from certification.models import Engineer
from portal import jobs
from portal.auth.access import allow, performs
from portal.clock import local_now, local_today
from portal.commit import perform
from portal.extensions import db
from portal.forms import PortalForm
from service import catalog, tabular, uploads
from service.models import FaultCode, OrderStatus, Part, RepairCode, Revisit, WorkOrder
from service.policy import AGENCY_EDITORS
from service.views import bp, locale, my_agency
from tenants.models import (
    SERVICE_TYPE_LABELS,
    Agency,
    AgencyProductLine,
    ProductLine,
    ProductModel,
    ServiceType,
)


class UploadForm(PortalForm):
    """A new file, or (`upload`) the kept one imported again."""

    file = FileField(_l("CSV or XLSX file"))
    good_only = BooleanField(_l("Import the good rows even if some rows are bad"))
    upload = HiddenField()
    submit = SubmitField(_l("Import"))


def import_view(kind: str, agency=None, *, title, template_endpoint, back,
                template_args: dict | None = None):
    """The page of an import: the upload form and the kept file; on POST the file imported
    (one transition) and its report listed row by row, or its background job started."""
    form = UploadForm()
    report = None
    if form.validate_on_submit():
        kept = None
        if form.upload.data:
            kept = uploads.find_upload(kind, form.upload.data, current_user)
            if kept is None or (agency is not None and kept.agency_id != agency.id):
                abort(404)  # nobody else's kept file: not even its existence
        ok, started = perform(uploads.import_table, kind, agency,
                              file=None if kept else request.files.get(form.file.name),
                              upload=kept, good_only=bool(form.good_only.data), form=form)
        if ok and started.job is not None:
            jobs.enqueue(started.job.id)
            flash(_("The file has %(rows)s rows: it is imported in the background. This page "
                    "shows how far it got.", rows=format_number(started.upload.data_rows)),
                  "info")
            return redirect(url_for("jobs.show", job_id=started.job.id))
        if ok:
            report = started.report
            flash_report(report)
    kept = uploads.kept_upload(kind, current_user)
    retry = UploadForm(formdata=None, upload=kept.id) if kept else None
    example, lists = template_content(kind, agency)
    records = uploads.records_link(kind, report.days) if report and report.applied and \
        report.changed else None
    return render_template("service/import.html", form=form, retry=retry, kept=kept,
                           columns=uploads.TARGETS[kind].columns, report=report, kind=kind,
                           records=records, example=example, lists=lists, title=title,
                           template_endpoint=template_endpoint, back=back,
                           template_args=template_args or {},
                           inline_rows=tabular.max_rows(), job_rows=tabular.job_max_rows())


def flash_report(report) -> None:
    if report.applied:
        flash(_("Import done: %(created)s created, %(updated)s updated, %(skipped)s already "
                "there, %(bad)s rows with errors.", created=report.count("created"),
                updated=report.count("updated"),
                skipped=report.count("skipped") + report.count("unchanged"),
                bad=len(report.errors)), "success" if not report.errors else "warning")
    else:
        flash(_("Nothing was imported: %(bad)s rows have errors. Correct them and import the "
                "file again, or choose to import only the good rows.",
                bad=len(report.errors)), "danger")


def template_download(kind: str, agency, basename: str):
    fmt = "xlsx" if request.args.get("format") == "xlsx" else "csv"
    example, lists = template_content(kind, agency)
    return tabular.template_response(basename, uploads.TARGETS[kind].columns, fmt,
                                     example=example, lists=lists)


# --- the templates' example row and lists: the reader's own catalog ----------------------------


def _yes_no() -> list[str]:
    return [_("yes"), _("no")]


def template_content(kind: str, agency=None) -> tuple[dict, dict]:
    """(example row, drop-down lists) of an import's template, from what the reader's
    catalog holds: the example imports as it is (a catalog row is the entry that exists)."""
    if kind == "work_order":
        return _order_content(agency)
    if kind == "revisit":
        return _revisit_content()
    return _catalog_content(kind)


def _order_content(agency) -> tuple[dict, dict]:
    lines = select(AgencyProductLine.product_line_id).where(
        AgencyProductLine.agency_id == agency.id).scalar_subquery()
    models = db.session.scalars(select(ProductModel).where(
        ProductModel.product_line_id.in_(lines)).order_by(ProductModel.code)).all()
    faults = db.session.scalars(select(FaultCode).where(
        FaultCode.product_line_id.in_(lines), FaultCode.is_active.is_(True))
        .order_by(FaultCode.code)).all()
    repairs = db.session.scalars(select(RepairCode).where(
        RepairCode.product_line_id.in_(lines), RepairCode.is_active.is_(True))
        .order_by(RepairCode.code)).all()
    parts = db.session.scalars(select(Part.part_number).where(
        Part.product_line_id.in_(lines), Part.is_active.is_(True))
        .order_by(Part.part_number)).all()
    names = db.session.scalars(select(Engineer.name).where(
        Engineer.agency_id == agency.id, Engineer.left_on.is_(None))
        .order_by(Engineer.name)).all()
    engineers = sorted(n.strip() for n in set(names) if names.count(n) == 1)
    types = [t for t in (ServiceType.CARRY_IN, ServiceType.ONSITE, ServiceType.PHONE)
             if t in agency.service_type_list]
    lists = {"service_type": [str(SERVICE_TYPE_LABELS[t]) for t in types],
             "model": [m.code for m in models], "engineer": engineers,
             "fault": sorted({c.code for c in faults}),
             "repair": sorted({c.code for c in repairs}), "part": list(parts),
             "yesno": _yes_no()}
    coded = {c.product_line_id for c in faults} & {c.product_line_id for c in repairs}
    model = next((m for m in models if m.product_line_id in coded), models[0] if models
                 else None)
    if model is None or not types:
        return {}, lists
    return _order_example(agency, types[0], model, engineers[0] if engineers else "",
                          faults, repairs), lists


def _order_example(agency, kind: str, model, engineer: str, faults, repairs) -> dict:
    """An order of yesterday, completed when the agency has an engineer to name."""
    today = local_today()
    day = today - timedelta(days=1)
    prefix = f"EX{today:%Y%m%d}-"
    taken = set(db.session.scalars(select(WorkOrder.number).where(
        WorkOrder.agency_id == agency.id, WorkOrder.number.like(prefix + "%"))))
    number = next(f"{prefix}{n:04d}" for n in range(1, 10_000)
                  if f"{prefix}{n:04d}" not in taken)

    def at(hour: int, minute: int) -> str:
        return datetime.combine(day, time(hour, minute)).strftime("%Y-%m-%d %H:%M")

    fault = next((c for c in faults if c.product_line_id == model.product_line_id), None)
    repair = next((c for c in repairs if c.product_line_id == model.product_line_id), None)
    static = {c.key: c.example for c in uploads.TARGETS["work_order"].columns}
    example = {"order_number": number, "service_type": str(SERVICE_TYPE_LABELS[kind]),
               **{k: static[k] for k in ("customer_name", "customer_phone",
                                         "customer_address")},
               "product_model": model.code, "serial_number": f"SN{today:%Y%m%d}0001",
               "purchase_date": (today - timedelta(days=200)).isoformat(),
               "received_at": at(9, 30), "responded_at": at(9, 45),
               "first_time_fix": _("yes")}
    if fault is not None:
        example.update(fault_code=fault.code, fault_description=fault.description(locale()))
    if kind == ServiceType.ONSITE:
        example.update(arrived_at=at(14, 0), distance_km="12.5")
    if kind != ServiceType.PHONE and repair is not None:
        example["repair_codes"] = repair.code
    if engineer and (kind == ServiceType.PHONE or repair is not None):
        example.update(engineer=engineer, completed_at=at(15, 20),
                       resolution=repair.description(locale()) if repair is not None
                       else static["resolution"] or "OK")
    return example


def _revisit_content() -> tuple[dict, dict]:
    codes = db.session.scalars(select(Agency.code).order_by(Agency.code)).all()
    lists = {"agency": list(codes), "score": ["5", "4", "3", "2", "1"]}
    # Among the newest completed orders, one not revisited yet, else the newest (the example
    # then corrects its revisit): one query, whatever the network's size.
    recent = db.session.execute(
        select(Agency.code, WorkOrder.number, WorkOrder.completed_at, exists().where(
            Revisit.agency_id == WorkOrder.agency_id, Revisit.work_order_id == WorkOrder.id)
            .label("revisited"))
        .join(Agency, Agency.id == WorkOrder.agency_id)
        .where(WorkOrder.status == OrderStatus.COMPLETED)
        .order_by(WorkOrder.id.desc()).limit(50)).all()
    row = next((r for r in recent if not r.revisited), recent[0] if recent else None)
    if row is None:
        return {}, lists
    now = local_now().replace(second=0, microsecond=0)
    example = {"agency_code": row.code, "order_number": row.number, "score": "5",
               "comment": _("Satisfied")}
    if row.completed_at <= now:
        example["revisited_at"] = now.strftime("%Y-%m-%d %H:%M")
    return example, lists


def _catalog_content(kind: str) -> tuple[dict, dict]:
    lines = dict(db.session.execute(select(ProductLine.id, ProductLine.code)
                                    .order_by(ProductLine.code)).all())
    lists = {"line": sorted(lines.values()), "yesno": _yes_no()}
    model = catalog.KINDS[kind][0]
    entry = db.session.scalars(select(model).order_by(model.id).limit(1)).first()
    if entry is None:
        return {}, lists
    yes, no = _yes_no()
    flag = {True: yes, False: no}
    if kind == "part":
        return {"part_number": entry.part_number, "name_zh": entry.name_zh,
                "name_en": entry.name_en, "product_line": lines[entry.product_line_id],
                "unit_price": f"{entry.unit_price:.2f}", "returnable": flag[entry.is_returnable],
                "active": flag[entry.is_active]}, lists
    example = {"product_line": lines[entry.product_line_id], "code": entry.code,
               "description_zh": entry.description_zh, "description_en": entry.description_en,
               "active": flag[entry.is_active]}
    if kind == "repair_code":
        example["standard_hours"] = f"{entry.standard_hours:.2f}"
    return example, lists


# --- the work order import ---------------------------------------------------------------------


@bp.route("/orders/import", methods=["GET", "POST"])
@performs("work_order.imported")
def orders_import():
    return import_view("work_order", my_agency(), title=_("Import work orders"),
                       template_endpoint="service.orders_import_template",
                       back=url_for("service.orders"))


@bp.route("/orders/import/template")
@allow(*AGENCY_EDITORS)
def orders_import_template():
    return template_download("work_order", my_agency(), "work-orders-template")
