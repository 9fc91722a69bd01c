"""Evidence files: PDF, JPEG or PNG judged by their first bytes, size-limited, stored outside
the web root under a generated name, and read back only through their settlement."""
import hashlib
import secrets
import unicodedata
from datetime import date
from pathlib import Path

from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from portal.clock import local_today
from portal.errors_domain import DomainError
from portal.extensions import db
from portal.files import write_new
from portal.transitions import note, transition
from settlement import building, config, policy
from settlement.models import EDITABLE, Attachment, Settlement, SettlementLine

# (signature, content type, extension): the content decides, never the file name.
SIGNATURES = (
    (b"%PDF-", "application/pdf", ".pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png", ".png"),
    (b"\xff\xd8\xff", "image/jpeg", ".jpg"),
)
MAX_PER_SETTLEMENT = 100


def max_bytes() -> int:
    return int(current_app.config.get("SETTLEMENT_MAX_ATTACHMENT_BYTES", 5 * 1024 * 1024))


def sniff(data: bytes) -> tuple[str, str] | None:
    """(content type, extension) of a PDF, PNG or JPEG by its magic bytes, else None."""
    for signature, content_type, extension in SIGNATURES:
        if data.startswith(signature):
            return content_type, extension
    return None


def storage_root() -> Path:
    return Path(current_app.config["UPLOAD_ROOT"]) / "settlement"


def file_path(attachment: Attachment) -> Path:
    return storage_root() / str(attachment.agency_id) / attachment.stored_name


def display_name(raw: str | None, extension: str) -> str:
    """The uploader's file name for display only: no path, no control characters."""
    name = (raw or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C").strip()
    name = name[:120] or "evidence"
    return name if name.lower().endswith(extension) else name + extension


@transition("settlement.evidence_added", Attachment, label=_l("Evidence added"),
            permission=policy.ADD_EVIDENCE, source=EDITABLE)
def add_attachment(settlement: Settlement, line: SettlementLine | None, filename: str,
                   data: bytes, *, acting_user, today: date | None = None) -> Attachment:
    """Store one evidence file for the claim or one of its lines.

    Raises DomainError when the claim is not editable, for an empty or too large file, a
    type other than PDF, JPEG or PNG (by content), a file the settlement already holds, or too
    many files. The file is written last,
    after every check; the caller removes it if the commit fails.
    """
    if line is not None and line.settlement_id != settlement.id:
        raise DomainError(_("This line belongs to another settlement."), field="line_id")
    if not data:
        raise DomainError(_("Choose a file."), field="file")
    if len(data) > max_bytes():
        raise DomainError(_("The file is larger than %(size)s MB.",
                            size=max_bytes() // (1024 * 1024)), field="file")
    kind = sniff(data)
    if kind is None:
        raise DomainError(_("Only PDF, JPEG and PNG files are accepted (judged by their "
                            "content)."), field="file")
    digest = hashlib.sha256(data).hexdigest()
    count, same = db.session.execute(select(
        func.count(Attachment.id),
        func.count(Attachment.id).filter(Attachment.sha256 == digest)).where(
        Attachment.agency_id == settlement.agency_id,
        Attachment.settlement_id == settlement.id)).one()
    if same:
        raise DomainError(_("This file is already attached to this settlement."), field="file")
    if count >= MAX_PER_SETTLEMENT:
        raise DomainError(_("A settlement holds at most %(max)s files.",
                            max=MAX_PER_SETTLEMENT), field="file")
    content_type, extension = kind
    attachment = Attachment(
        agency_id=settlement.agency_id, settlement_id=settlement.id,
        line_id=line.id if line else None, original_name=display_name(filename, extension),
        stored_name=secrets.token_hex(16) + extension, content_type=content_type,
        size_bytes=len(data), sha256=digest,
        uploaded_by_id=acting_user.id if acting_user else None)
    db.session.add(attachment)
    db.session.flush()
    _recheck(settlement, today)
    note(record=attachment, after={"settlement_id": settlement.id, "line_id": attachment.line_id,
                                   "content_type": content_type, "size_bytes": len(data),
                                   "sha256": attachment.sha256})
    write_new(file_path(attachment), data)
    return attachment


@transition("settlement.evidence_deleted", Attachment, label=_l("Evidence deleted"),
            permission=policy.DELETE_EVIDENCE, source=EDITABLE)
def delete_attachment(settlement: Settlement, attachment: Attachment, *, acting_user,
                      today: date | None = None) -> Path:
    """Delete evidence of an editable claim; returns the file to remove after the commit."""
    if attachment.settlement_id != settlement.id:
        raise DomainError(_("This file belongs to another settlement."))
    path = file_path(attachment)
    note(record=attachment, before={"settlement_id": settlement.id,
                                    "line_id": attachment.line_id,
                                    "sha256": attachment.sha256})
    db.session.delete(attachment)
    db.session.flush()
    _recheck(settlement, today)
    return path


def _recheck(settlement: Settlement, today: date | None) -> None:
    """Evidence clears or raises the missing-evidence check at once (no amount changes)."""
    lines = building.load_lines(settlement)
    building.run_checks(settlement, lines, config.current_settings(),
                        config.current_dispositions(), today or local_today())
    db.session.flush()
