"""The issuer of the network's documents: who the certificates, statements and evaluation
reports say issued them (HQ's legal name, address, logo and optional seal).

HQ admin sets it on one page; every document renders through :func:`render_document`, which
puts the issuer in the template's context and hands its images to WeasyPrint. A logo or seal
is a PNG or an SVG judged by its content (an SVG that could script, load or link anything
else is refused), size-limited, and stored like evidence: outside the web root under a
generated name, with its SHA-256 in the row and in the audit log.
"""
import hashlib
import io
import logging
import secrets
import xml.etree.ElementTree as ET  # noqa: S405 - no DTD or entity is accepted (see _check_svg)
from pathlib import Path

from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from portal.errors_domain import DomainError
from portal.extensions import db
from portal.files import write_new
from portal.pdf import IMAGE_SCHEME, render_pdf
from portal.text import clean
from portal.transitions import describe, note, transition
from tenants import policy
from tenants.models import IssuerIdentity

log = logging.getLogger(__name__)

KINDS = ("logo", "seal")
TEXT_FIELDS = ("name_zh", "name_en", "address_zh", "address_en")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SVG_NS = "http://www.w3.org/2000/svg"
XLINK_NS = "http://www.w3.org/1999/xlink"
MAX_PIXELS = 4096  # a side of a PNG
# Elements an image has no business holding: they run code, embed documents or load files.
SVG_REFUSED = {"script", "foreignObject", "iframe", "embed", "object", "image", "feImage",
               "use", "animate", "set", "animateMotion", "animateTransform"}
PORTAL_NAME = _l("Service Network Portal")

describe(IssuerIdentity, _l("document issuer"))


def max_bytes() -> int:
    return int(current_app.config.get("PORTAL_ISSUER_IMAGE_MAX_BYTES", 512 * 1024))


def current() -> IssuerIdentity:
    """The issuer row (its migration writes it, empty)."""
    row = db.session.scalars(select(IssuerIdentity).where(IssuerIdentity.id == 1)).one_or_none()
    if row is None:  # a database the migration did not reach: nothing configured, not saved
        row = IssuerIdentity(id=1, name_zh="", name_en="", address_zh="", address_en="",
                             version=1)
    return row


def storage_root() -> Path:
    return Path(current_app.config["UPLOAD_ROOT"]) / "issuer"


def image_path(row: IssuerIdentity, kind: str) -> Path | None:
    stored = getattr(row, f"{kind}_file")
    return storage_root() / stored if stored else None


def image(row: IssuerIdentity, kind: str) -> tuple[bytes, str] | None:
    """(bytes, content type) of the issuer's logo or seal, None when there is none (or its
    file is missing: the document then renders without it, and the log says so)."""
    path = image_path(row, kind)
    if path is None:
        return None
    try:
        return path.read_bytes(), getattr(row, f"{kind}_type")
    except OSError:
        log.warning("issuer %s file %s is missing: documents render without it", kind, path)
        return None


# --- checking an image ---------------------------------------------------------------------


def _check_png(data: bytes) -> None:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as picture:
            width, height = picture.size
            picture.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise DomainError(_("This PNG file cannot be read."), field=None) from None
    if not (0 < width <= MAX_PIXELS and 0 < height <= MAX_PIXELS):
        raise DomainError(_("An image may be at most %(n)s pixels on each side.",
                            n=MAX_PIXELS), field=None)


def _local(name: str) -> str:
    return name.rsplit("}", 1)[-1]


def _check_svg(data: bytes) -> None:
    """An SVG that draws only: no DTD or entity, no script, no event attribute, no reference
    to anything outside itself (only "#id" links), no external style."""
    refused = _("This SVG file holds scripts, links or references to other files; save it "
                "as a plain drawing (or as PNG) and upload it again.")
    head = data[:4096].lower()
    if b"<!doctype" in head or b"<!entity" in data.lower():
        raise DomainError(refused, field=None)
    try:
        root = ET.fromstring(data)  # noqa: S314 - no DTD reaches the parser (checked above)
    except ET.ParseError:
        raise DomainError(_("This SVG file cannot be read."), field=None) from None
    if root.tag != f"{{{SVG_NS}}}svg":
        raise DomainError(_("This file is not an SVG image."), field=None)
    for element in root.iter():
        if not isinstance(element.tag, str) or _local(element.tag) in SVG_REFUSED:
            raise DomainError(refused, field=None)
        if _local(element.tag) == "style" and any(
                word in (element.text or "").lower() for word in ("@import", "url(")):
            raise DomainError(refused, field=None)
        for name, value in element.attrib.items():
            local = _local(name).lower()
            text = value.strip().lower()
            if local.startswith("on") or (local == "href" and not text.startswith("#")) \
                    or ("url(" in text and not text.replace(" ", "").startswith("url(#")) \
                    or "javascript:" in text:
                raise DomainError(refused, field=None)


def checked_image(data: bytes, kind: str) -> str:
    """The content type of an uploaded logo or seal (PNG or SVG, by content), or a
    DomainError on the `kind` field saying what is wrong."""
    try:
        if not data:
            raise DomainError(_("Choose a file."), field=None)
        if len(data) > max_bytes():
            raise DomainError(_("The image is larger than %(size)s KB.",
                                size=max_bytes() // 1024), field=None)
        if data.startswith(PNG_SIGNATURE):
            _check_png(data)
            return "image/png"
        start = data.lstrip()[:512].lower()
        if start.startswith((b"<?xml", b"<svg", b"<!--")) and b"<svg" in data[:4096].lower():
            _check_svg(data)
            return "image/svg+xml"
        raise DomainError(_("Only PNG and SVG images are accepted (judged by their content)."),
                          field=None)
    except DomainError as error:
        raise DomainError(error.message, field=kind) from None


def _store(data: bytes, content_type: str) -> str:
    name = secrets.token_hex(16) + (".png" if content_type == "image/png" else ".svg")
    write_new(storage_root() / name, data)
    return name


# --- the change ----------------------------------------------------------------------------


def _values(row: IssuerIdentity) -> dict:
    return {**{name: getattr(row, name) for name in TEXT_FIELDS},
            "logo_sha256": row.logo_sha256, "seal_sha256": row.seal_sha256}


@transition("issuer.changed", IssuerIdentity, label=_l("Document issuer changed"),
            permission=policy.ISSUER_EDIT, versioned=True, audit=_values)
def save_issuer(row: IssuerIdentity, data: dict, images: dict | None = None,
                remove: tuple[str, ...] = (), *, acting_user) -> list[Path]:
    """Change the issuer's names and address, replace or remove its logo or seal.

    `images`: {"logo"|"seal": bytes} uploaded now; `remove`: the kinds to drop. Every image is
    checked before anything is written; the new files are written last. Returns the files
    that no longer belong to the issuer, for the caller to delete after the commit."""
    images = {kind: data for kind, data in (images or {}).items() if kind in KINDS and data}
    types = {kind: checked_image(raw, kind) for kind, raw in images.items()}
    values = {name: clean(data.get(name) or "") for name in TEXT_FIELDS}
    if not (values["name_zh"] or values["name_en"]) and (
            images or row.logo_file or row.seal_file):
        raise DomainError(_("Enter the issuer's legal name in at least one language."),
                          field="name_zh")
    for name, value in values.items():
        limit = IssuerIdentity.__table__.c[name].type.length
        if len(value) > limit:
            raise DomainError(_("At most %(n)s characters.", n=limit), field=name)
        setattr(row, name, value)
    old_files = []
    for kind in KINDS:
        if kind in images or kind in remove:
            if (path := image_path(row, kind)) is not None:
                old_files.append(path)
            for suffix in ("file", "type", "sha256"):
                setattr(row, f"{kind}_{suffix}", None)
    for kind, raw in images.items():
        setattr(row, f"{kind}_type", types[kind])
        setattr(row, f"{kind}_sha256", hashlib.sha256(raw).hexdigest())
    if row.id is None or row not in db.session:
        db.session.add(row)
    db.session.flush()
    for kind, raw in images.items():  # last: a refusal above leaves no file behind
        setattr(row, f"{kind}_file", _store(raw, types[kind]))
    note(object_type="issuer_identity", object_id=1)
    return old_files


# --- documents -----------------------------------------------------------------------------


def document_issuer(locale: str, row: IssuerIdentity | None = None) -> tuple[dict, dict]:
    """The issuer as a document shows it in `locale` and the images it needs:
    ({name, address, logo, seal, configured}, {name: (bytes, content type)})."""
    row = row if row is not None else current()
    images = {kind: found for kind in KINDS if (found := image(row, kind)) is not None}
    name = row.name(locale)
    return {
        "name": name or str(PORTAL_NAME),
        "address": row.address(locale),
        "logo": IMAGE_SCHEME + "logo" if "logo" in images else None,
        "seal": IMAGE_SCHEME + "seal" if "seal" in images else None,
        "configured": bool(name),
    }, images


def render_document(template: str, *, locale: str, **context) -> bytes:
    """An official document: `template` rendered to PDF with `issuer` in its context (see
    :func:`document_issuer`) and the issuer's logo and seal available to it."""
    from flask_babel import force_locale

    with force_locale(locale):
        issuer, images = document_issuer(locale)
    return render_pdf(template, locale=locale, images=images, issuer=issuer, **context)
