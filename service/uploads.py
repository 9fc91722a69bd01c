"""Kept import files, and the background jobs that import large ones.

An uploaded table is stored on the server (under UPLOAD_ROOT, a generated name) before it is
imported. A file with bad rows stays, so that it is imported again without being chosen
again (perhaps only its good rows, perhaps after the catalog or the engineers were put
right); a file of more than `tabular.max_rows()` rows is imported by a background job with
progress (up to `tabular.job_max_rows()` rows), which leaves the bad rows as a CSV file.

A kept file belongs to the account that uploaded it and, for an agency's import, to that
agency: the model is tenant-scoped like the agencies' rows (HQ's files have no agency) and
is seen by its uploader only. It is deleted once imported, and a day after the upload in
any case (`purge_expired`, also run by `flask reap-jobs`). Keeping a file is no change of
the portal's records: no audit entry; the import itself is one (service.imports).
"""
import csv
import secrets
import time
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Callable

from flask import current_app, url_for
from flask_babel import force_locale, format_number
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import ForeignKey, Index, String, and_, delete, select
from sqlalchemy.orm import Mapped, mapped_column

from portal import jobs
from portal import policy as portal_policy
from portal.errors_domain import DomainError
from portal.exports import cell as safe_cell
from portal.extensions import db
from portal.models import UTCDateTime, utcnow
from portal.tenancy import ALL, Scope, TenantScoped, agency_scope, owner_criteria, unscoped
from service import imports, policy, tabular
from tenants.models import Agency

KEEP = timedelta(days=1)


class ImportUpload(TenantScoped, db.Model):
    """An uploaded table kept for its import (and for importing it again)."""

    __tablename__ = "import_uploads"
    __table_args__ = (Index("ix_import_uploads_user_id_kind", "user_id", "kind"),
                      Index("ix_import_uploads_expires_at", "expires_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    # The agency whose rows it imports (an agency's work orders); None: HQ's imports.
    agency_id: Mapped[int | None] = mapped_column(ForeignKey("agencies.id",
                                                             ondelete="RESTRICT"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))  # work_order, revisit, part, …
    original_name: Mapped[str] = mapped_column(String(200))
    stored_name: Mapped[str] = mapped_column(String(64))
    fmt: Mapped[str] = mapped_column(String(8))  # csv, xlsx
    encoding: Mapped[str] = mapped_column(String(16))
    size_bytes: Mapped[int]
    sha256: Mapped[str] = mapped_column(String(64))
    row_count: Mapped[int]  # rows of its table, the header and empty rows included
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)

    @classmethod
    def tenant_criteria(cls, scope: Scope):
        if scope.kind == "none":
            return cls.id.is_(None)
        criteria = owner_criteria(cls.agency_id, scope)
        if scope.user_id is not None:  # a signed-in person: their own files only
            criteria = and_(criteria, cls.user_id == scope.user_id)
        return criteria

    def check_tenant_insert(self, scope: Scope) -> None:
        if scope.kind == "agency" and self.agency_id == scope.id:
            return
        super().check_tenant_insert(scope)

    @property
    def path(self) -> Path:
        return storage_root() / (str(self.agency_id) if self.agency_id else "hq") / \
            self.stored_name

    @property
    def data_rows(self) -> int:
        return max(self.row_count - 1, 0)

    def source(self) -> tabular.Source:
        return tabular.Source(self.path, self.fmt, self.encoding, self.row_count)


def storage_root() -> Path:
    return Path(current_app.config["UPLOAD_ROOT"]) / "imports"


def display_name(raw: str | None) -> str:
    """The uploader's file name for display only: no path, no control characters."""
    name = (raw or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C").strip()
    return name[:120] or "table"


# --- what can be imported ---------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """One kind of import: its columns, who may, its importer and its background job."""

    kind: str
    job: str
    columns: list
    permission: str
    make: Callable  # make(agency, acting_user) -> imports.Importer


TARGETS = {
    "work_order": Target("work_order", "service.import_orders", imports.ORDER_COLUMNS,
                         policy.IMPORT_ORDERS, imports.OrderImport),
    "revisit": Target("revisit", "service.import_revisits", imports.REVISIT_COLUMNS,
                      policy.IMPORT_REVISITS, lambda _agency, user: imports.RevisitImport(user)),
    **{kind: Target(kind, "service.import_catalog", imports.CATALOG_COLUMNS[kind],
                    policy.IMPORT_CATALOG[kind],
                    lambda _agency, user, kind=kind: imports.CatalogImport(kind, user))
       for kind in imports.IMPORT_KINDS},
}


# --- keeping files ----------------------------------------------------------------------------


def kept_upload(kind: str, user) -> ImportUpload | None:
    """The signed-in user's file of this kind that is still kept (the newest)."""
    return db.session.scalars(select(ImportUpload).where(
        ImportUpload.user_id == user.id, ImportUpload.kind == kind,
        ImportUpload.expires_at > utcnow()).order_by(ImportUpload.id.desc()).limit(1)).first()


def find_upload(kind: str, upload_id, user) -> ImportUpload | None:
    """A kept file of `user` by its id (through the tenant guard); None for anyone else's."""
    try:
        ident = int(upload_id)
    except (TypeError, ValueError):
        return None
    if not 0 < ident < 2**63:
        return None
    return db.session.scalars(select(ImportUpload).where(
        ImportUpload.id == ident, ImportUpload.user_id == user.id,
        ImportUpload.kind == kind)).one_or_none()


def _store(target: Target, agency: Agency | None, file, acting_user) -> ImportUpload:
    """Check the uploaded file whole and keep it; raises DomainError (keeping nothing)."""
    purge_expired()
    owner = str(agency.id) if agency else "hq"
    stored = secrets.token_hex(16)
    path = storage_root() / owner / stored
    size, digest = tabular.save_upload(file, path)
    try:
        source = tabular.inspect(path, target.columns)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    for older in db.session.scalars(select(ImportUpload).where(
            ImportUpload.user_id == acting_user.id, ImportUpload.kind == target.kind)):
        _discard(older)  # one kept file per person and kind: the newest
    upload = ImportUpload(agency_id=agency.id if agency else None, user_id=acting_user.id,
                          kind=target.kind, original_name=display_name(file.filename),
                          stored_name=stored, fmt=source.fmt, encoding=source.encoding,
                          size_bytes=size, sha256=digest, row_count=source.rows,
                          created_at=utcnow(), expires_at=utcnow() + KEEP)
    db.session.add(upload)
    db.session.flush()
    return upload


def _discard(upload: ImportUpload) -> None:
    upload.path.unlink(missing_ok=True)
    db.session.delete(upload)
    db.session.flush()


@jobs.housekeeping
def purge_expired() -> int:
    """Delete kept files a day after their upload (every agency's: housekeeping)."""
    now = utcnow()
    with unscoped("kept import files expire a day after their upload, whoever kept them"):
        expired = db.session.scalars(select(ImportUpload).where(
            ImportUpload.expires_at <= now)).all()
        for upload in expired:
            upload.path.unlink(missing_ok=True)
        if expired:
            db.session.execute(delete(ImportUpload).where(
                ImportUpload.id.in_([u.id for u in expired])))
    # Files a failed request left without their row are older than any kept file too.
    limit = time.time() - KEEP.total_seconds() - 3600
    root = storage_root()
    for path in root.glob("*/*") if root.is_dir() else ():
        if path.is_file() and path.stat().st_mtime < limit:
            path.unlink(missing_ok=True)
    return len(expired)


# --- importing ---------------------------------------------------------------------------------


@dataclass
class Started:
    """What an import request came to: a report (imported at once) or a background job,
    and the file still kept (after errors, or while the job runs)."""

    report: imports.ImportReport | None = None
    job: jobs.Job | None = None
    upload: ImportUpload | None = None


def about(upload: ImportUpload) -> dict:
    """What the import's audit entry says of its file."""
    return {"file": upload.original_name, "sha256": upload.sha256, "rows": upload.data_rows}


def import_table(kind: str, agency: Agency | None, *, file=None, upload: ImportUpload | None
                 = None, good_only: bool = False, acting_user) -> Started:
    """Import a new file (`file`) or a kept one (`upload`, found by `find_upload`): at once
    when it is small, else by a background job (the caller commits, then enqueues it).

    Raises DomainError when the actor may not import, for a file that cannot be read (not
    kept), or a kept file that expired meanwhile.
    """
    target = TARGETS[kind]
    imports.may_import(acting_user, target.permission, agency)
    if upload is None:
        upload = _store(target, agency, file, acting_user)
    elif upload.expires_at <= utcnow() or not upload.path.is_file():
        raise DomainError(_("This file is no longer kept: choose it again."), field="file")
    if upload.row_count > tabular.max_rows() + 1:
        return Started(job=_start_job(target, upload, agency, good_only, acting_user),
                       upload=upload)
    rows = tabular.iter_table(upload.source(), target.columns, limit=tabular.max_rows())
    report = imports.run(target.make(agency, acting_user), rows, good_only=good_only,
                         about=about(upload))
    if report.applied:
        _discard(upload)
        return Started(report=report)
    return Started(report=report, upload=upload)


def _start_job(target: Target, upload: ImportUpload, agency, good_only: bool, acting_user):
    scope = agency_scope(agency.id) if agency else ALL
    return jobs.start(target.job, {"upload_id": upload.id, "good_only": bool(good_only),
                                   "user_id": acting_user.id},
                      scope=scope, agency_id=agency.id if agency else None,
                      user_id=acting_user.id)


class ErrorFile:
    """The rows with errors, as a CSV file: row number, what is wrong, the row's cells."""

    def __init__(self, path: Path, columns: list):
        self.path, self.columns, self.count = path, columns, 0
        self._out = self._writer = None

    def add(self, number: int, row: dict, messages: list) -> None:
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._out = open(self.path, "w", encoding="utf-8-sig", newline="")  # noqa: SIM115
            self._writer = csv.writer(self._out)
            self._writer.writerow([_("Row"), _("Errors"), *(str(c.label) for c in self.columns)])
        self._writer.writerow([number, safe_cell("; ".join(messages)),
                               *(safe_cell(row.get(c.key, "")) for c in self.columns)])
        self.count += 1

    def close(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = self._writer = None

    def __enter__(self):
        self.path.unlink(missing_ok=True)
        return self

    def __exit__(self, *exc):
        self.close()


def _actor(user_id):
    from portal.auth.models import User

    return None if user_id is None else db.session.scalars(
        select(User).where(User.id == user_id)).one_or_none()


def import_job(params: dict, progress) -> dict:
    """A kept file imported in two passes: every row checked while nothing is locked (the
    bad ones to the error file), then, unless a bad row stops an all-or-nothing import,
    checked again and written in the job's one short write transaction."""
    user = _actor(params.get("user_id"))
    upload = db.session.scalars(select(ImportUpload).where(
        ImportUpload.id == params.get("upload_id"))).one_or_none()
    if upload is None or not upload.path.is_file():
        raise DomainError(_("This file is no longer kept: choose it again."))
    with force_locale((user and user.locale) or current_app.config["BABEL_DEFAULT_LOCALE"]):
        return _import_in_two_phases(upload, user, bool(params.get("good_only")), progress)


def _import_in_two_phases(upload: ImportUpload, user, good_only: bool, progress) -> dict:
    target = TARGETS[upload.kind]
    upload_id, agency_id, total = upload.id, upload.agency_id, upload.data_rows
    source, told = upload.source(), about(upload)
    agency = None if agency_id is None else db.session.scalars(
        select(Agency).where(Agency.id == agency_id)).one()
    errors_path = jobs.output_path("errors.csv")

    def tick(note):
        return lambda number: progress(max(number - 1, 0), total, note)

    def prepare():
        imports.may_import(user, target.permission, agency)
        rows = tabular.spool(source, jobs.output_path("rows.csv"), tick("reading"))
        with ErrorFile(errors_path, target.columns) as sink:
            checked = imports.run(target.make(agency, user), tabular.iter_table(
                rows, target.columns), good_only=good_only, write=False, keep_rows=False,
                on_error=sink.add, progress=tick("checking"))
        return rows, checked

    def write(prepared, _last):
        rows, checked = prepared
        report = checked
        if good_only or not checked.error_count:
            with ErrorFile(errors_path, target.columns) as sink:
                report = imports.run(target.make(agency, user), tabular.iter_table(
                    rows, target.columns), good_only=good_only, keep_rows=False,
                    on_error=sink.add, progress=tick("writing"), about=told)
        if rows.path != source.path:
            rows.path.unlink(missing_ok=True)
        if report.applied:
            kept = db.session.scalars(select(ImportUpload).where(
                ImportUpload.id == upload_id)).one_or_none()
            if kept is not None:
                _discard(kept)
        return _result(upload.kind, report, upload_id, told, errors_path)

    return jobs.in_two_phases(prepare, write)


def _result(kind: str, report: imports.ImportReport, upload_id: int, told: dict,
            errors_path: Path) -> dict:
    has_file = report.error_count and errors_path.is_file()
    return {"kind": kind, "applied": report.applied, "good_only": report.good_only,
            **report.summary(), "rows": told["rows"], "name": told["file"],
            "upload_id": None if report.applied else upload_id,
            "days": [d.isoformat() for d in report.days] if report.days else None,
            "file": errors_path.name if has_file else None,
            "file_name": f"{Path(told['file']).stem[:60]}-errors.csv" if has_file else None}


def job_outcome(job) -> list[tuple[str, str | None]]:
    """The job page's lines: what was written, the error file, the imported records, and
    the import page again (the file is still kept) when nothing was written."""
    result = job.result or {}
    kind = result.get("kind")
    if kind not in TARGETS:
        return []
    def count(*keys) -> str:
        return format_number(sum(result.get(k) or 0 for k in keys))

    if result.get("applied"):
        lines = [(_("Written: %(created)s created, %(updated)s updated, %(skipped)s already "
                    "there, %(bad)s rows with errors.", created=count("created"),
                    updated=count("updated"), skipped=count("skipped", "unchanged"),
                    bad=count("rejected_rows")), None)]
    else:
        lines = [(_("Nothing was written: %(bad)s rows have errors. Correct them and import "
                    "the file again, or choose to import only the good rows.",
                    bad=count("rejected_rows")), None)]
    if result.get("file"):
        lines.append((_("Download the rows with errors (CSV)"),
                      url_for("jobs.download", job_id=job.id)))
    if result.get("applied") and (link := records_link(kind, result.get("days"))):
        lines.append(link)
    if result.get("upload_id"):
        lines.append((_("Import the kept file again"), import_url(kind)))
    return lines


def records_link(kind: str, days) -> tuple[str, str] | None:
    """Where the imported records are listed (orders: the days they were received)."""
    if kind == "work_order":
        args = {"from": days[0], "to": days[1], "sort": "-received"} if days else {}
        return _("See the imported work orders"), url_for("service.orders", **args)
    if kind == "revisit":
        return _("See the revisits"), url_for("service.revisits")
    endpoint = {"repair_code": "service.repair_codes", "fault_code": "service.fault_codes",
                "part": "service.parts_catalog"}[kind]
    return _("See the catalog"), url_for(endpoint)


def import_url(kind: str) -> str:
    if kind == "work_order":
        return url_for("service.orders_import")
    if kind == "revisit":
        return url_for("service.revisits_import")
    return url_for("service.catalog_import", kind=kind)


NOTES = {"reading": _l("Reading the workbook"), "checking": _l("Checking rows"),
         "writing": _l("Writing rows")}
jobs.handler("service.import_orders", roles=portal_policy.roles(policy.IMPORT_ORDERS),
             title=_l("Work order import"), notes=NOTES, outcome=job_outcome)(import_job)
jobs.handler("service.import_revisits", roles=portal_policy.roles(policy.IMPORT_REVISITS),
             title=_l("Revisit import"), notes=NOTES, outcome=job_outcome)(import_job)
jobs.handler("service.import_catalog",
             roles=portal_policy.roles(*policy.IMPORT_CATALOG.values()),
             title=_l("Catalog import"), notes=NOTES, outcome=job_outcome)(import_job)
