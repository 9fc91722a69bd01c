"""Catalog pages: repair codes, fault codes and parts (HQ maintains, everyone reads)."""
from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from portal import policy as portal_policy
from portal.auth.access import allow, performs
from portal.commit import perform
from portal.extensions import db
from portal.listing import paginate, sorted_by
from portal.navigation import add_nav
from service import catalog, imports, policy, queries
from service.forms import CodeForm, PartForm, RepairCodeForm
from service.models import FaultCode, Part, RepairCode
from service.policy import EVERYONE
from service.views import bp, locale, may
from service.views_imports import import_view, template_download

TITLES = {"repair_code": _l("Repair codes"), "fault_code": _l("Fault codes"),
          "part": _l("Parts catalog")}
FORMS = {"repair_code": RepairCodeForm, "fault_code": CodeForm, "part": PartForm}
SORTS = {
    "repair_code": {"code": RepairCode.code, "hours": RepairCode.standard_hours,
                    "line": RepairCode.product_line_id},
    "fault_code": {"code": FaultCode.code, "line": FaultCode.product_line_id},
    "part": {"code": Part.part_number, "price": Part.unit_price, "line": Part.product_line_id},
}

add_nav("service.parts_catalog", _l("Catalogs"), EVERYONE, order=38, group="work")


def _may_edit(kind: str) -> bool:
    return may(policy.EDIT_CATALOG[kind])


def _list(kind: str):
    stmt, sort = sorted_by(queries.catalog_statement(kind), SORTS[kind], "code")
    return render_template("service/catalog.html", kind=kind, title=TITLES[kind],
                           page=paginate(stmt), sort=sort, may_edit=_may_edit(kind),
                           product_lines=queries.product_lines())


def _form(kind: str, obj):
    if not _may_edit(kind):
        abort(403)
    form = FORMS[kind](obj=obj)
    form.product_line_id.choices = [(0, "—")] + [(p.id, f"{p.code} {p.name(locale())}")
                                                for p in queries.product_lines()]
    back = url_for(f"service.{_endpoint(kind)}")
    if form.validate_on_submit():
        data = {k: v for k, v in form.data.items() if k not in ("submit", "csrf_token")}
        if perform(catalog.save_catalog_entry, kind, obj, data, form=form):
            flash(_("Saved."), "success")
            return redirect(back)
    title = _("New entry") if obj is None else _("Edit %(code)s", code=getattr(
        obj, "part_number", None) or obj.code)
    return render_template("portal/form_page.html", form=form, title=f"{TITLES[kind]} · {title}",
                           back=back)


def _endpoint(kind: str) -> str:
    return {"repair_code": "repair_codes", "fault_code": "fault_codes",
            "part": "parts_catalog"}[kind]


def _load(model, ident):
    obj = db.session.scalars(select(model).where(model.id == ident)).one_or_none()
    if obj is None:
        abort(404)
    return obj


@bp.route("/catalog/repair-codes/")
@allow(*EVERYONE)
def repair_codes():
    return _list("repair_code")


@bp.route("/catalog/fault-codes/")
@allow(*EVERYONE)
def fault_codes():
    return _list("fault_code")


@bp.route("/catalog/parts/")
@allow(*EVERYONE)
def parts_catalog():
    return _list("part")


@bp.route("/catalog/repair-codes/new", methods=["GET", "POST"])
@performs("repair_code.created")
def repair_code_new():
    return _form("repair_code", None)


@bp.route("/catalog/repair-codes/<int:repair_code_id>/edit", methods=["GET", "POST"])
@performs("repair_code.updated")
def repair_code_edit(repair_code_id):
    return _form("repair_code", _load(RepairCode, repair_code_id))


@bp.route("/catalog/fault-codes/new", methods=["GET", "POST"])
@performs("fault_code.created")
def fault_code_new():
    return _form("fault_code", None)


@bp.route("/catalog/fault-codes/<int:fault_code_id>/edit", methods=["GET", "POST"])
@performs("fault_code.updated")
def fault_code_edit(fault_code_id):
    return _form("fault_code", _load(FaultCode, fault_code_id))


@bp.route("/catalog/parts/new", methods=["GET", "POST"])
@performs("part.created")
def part_new():
    return _form("part", None)


@bp.route("/catalog/parts/<int:part_id>/edit", methods=["GET", "POST"])
@performs("part.updated")
def part_edit(part_id):
    return _form("part", _load(Part, part_id))


def _import_kind() -> str:
    kind = request.args.get("kind", "part")
    if kind not in imports.IMPORT_KINDS:
        abort(404)
    if not may(policy.IMPORT_CATALOG[kind]):
        abort(403)
    return kind


@bp.route("/catalog/import", methods=["GET", "POST"])
@performs("repair_code.imported", "fault_code.imported", "part.imported")
def catalog_import():
    kind = _import_kind()
    return import_view(kind, title=_("Import: %(catalog)s", catalog=TITLES[kind]),
                       template_endpoint="service.catalog_import_template",
                       back=url_for(f"service.{_endpoint(kind)}"),
                       template_args={"kind": kind})


@bp.route("/catalog/import/template")
@allow(*portal_policy.roles(*policy.IMPORT_CATALOG.values()))
def catalog_import_template():
    kind = _import_kind()
    return template_download(kind, None, f"{kind.replace('_', '-')}s-template")
