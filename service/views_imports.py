"""Import pages: work orders (agencies), revisits and catalogs (HQ) from CSV or XLSX files.

Each import page is `import_view` over an importer of `service.imports`; the catalog and
revisit pages call it from their own modules.
"""
from flask import flash, render_template, request, url_for
from flask_babel import gettext as _

from portal.auth.access import allow, performs
from portal.commit import perform
from service import imports, tabular
from service.forms import ImportForm
from service.policy import AGENCY_EDITORS
from service.views import bp, my_agency


def import_view(columns, importer, *args, title, template_endpoint, back, **extra):
    """The page of an import: the upload form, and on POST the file read and imported (one
    transition), its report flashed and listed row by row."""
    form = ImportForm()
    report = None
    if form.validate_on_submit():
        _ok, report = perform(_read_and_import, request.files.get(form.file.name), columns,
                              importer, *args, good_only=bool(form.good_only.data), form=form)
        if report:
            flash_report(report)
    return render_template("service/import.html", form=form, columns=columns, report=report,
                           title=title, template_endpoint=template_endpoint, back=back,
                           extra=extra)


def _read_and_import(upload, columns, importer, *args, acting_user, **kwargs):
    return importer(*args, tabular.read_table(upload, columns), acting_user=acting_user,
                    **kwargs)


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


@bp.route("/orders/import", methods=["GET", "POST"])
@performs("work_order.imported")
def orders_import():
    return import_view(imports.ORDER_COLUMNS, imports.import_work_orders, my_agency(),
                       title=_("Import work orders"),
                       template_endpoint="service.orders_import_template",
                       back=url_for("service.orders"))


@bp.route("/orders/import/template")
@allow(*AGENCY_EDITORS)
def orders_import_template():
    fmt = "xlsx" if request.args.get("format") == "xlsx" else "csv"
    return tabular.template_response("work-orders-template", imports.ORDER_COLUMNS, fmt)

