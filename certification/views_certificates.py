"""Certificate pages: lists, detail, revocation, the PDF, coverage, and the public check."""
import hmac

import segno
from flask import (
    Response,
    current_app,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import joinedload, selectinload

from certification import queries, services
from certification.forms import RevokeForm, VerifyForm
from certification.models import Certificate, Engineer, Program
from certification.policy import CERTIFICATE_PDF, COVERAGE_READERS
from certification.states import LEVEL_LABELS, STATE_LABELS, certificate_state
from certification.views import bp, locale, post_back
from portal.auth.access import allow, performs, public
from portal.auth.roles import Role
from portal.clock import local_day, local_today
from portal.extensions import db, limiter
from portal.listing import paginate, sorted_by
from portal.masking import mask_name
from portal.navigation import add_nav
from portal.policy import roles
from portal.tenancy import get_or_404, unscoped
from portal.throttle import address_key
from tenants.issuer import render_document
from tenants.models import Agency

PDF_LOCALES = ("zh_CN", "en")
# Compared against when a number is unknown, so that both failures take the same time.
_NO_CODE = "-" * 8

add_nav("certification.certificates", _l("Certificates"), tuple(Role), order=21,
        group="certification")
add_nav("certification.coverage", _l("Coverage"), COVERAGE_READERS, order=25, group="certification")


@bp.route("/certificates/")
@allow(*Role)
def certificates():
    today = local_today()
    own = current_user if current_user.role == Role.ENGINEER else None
    stmt, sort = sorted_by(queries.certificate_list_statement(today, user=own),
                           {"state": queries.standing_rank(today),
                            "valid_to": Certificate.valid_to, "number": Certificate.number,
                            "engineer": Engineer.name, "issued": Certificate.issued_at},
                           "state")
    return render_template("certification/certificates.html",
                           page=paginate(stmt.order_by(*queries.certificate_order(today))),
                           sort=sort, today=today, product_lines=queries.product_lines(),
                           states=list(STATE_LABELS), mine=own is not None)


@bp.route("/certificates/<int:certificate_id>")
@allow(*Role)
def certificate(certificate_id):
    cert = queries.readable_certificate(current_user, certificate_id)
    return render_template("certification/certificate.html", cert=cert, today=local_today(),
                           revoke_form=RevokeForm())


@bp.route("/certificates/<int:certificate_id>/revoke", methods=["POST"])
@performs("certificate.revoked")
def certificate_revoke(certificate_id):
    cert = queries.readable_certificate(current_user, certificate_id)
    form = RevokeForm()
    return post_back(form, services.revoke_certificate, cert, form.reason.data,
                     form.revoked_on.data,
                     done=_("Certificate %(number)s is revoked.", number=cert.number),
                     back=url_for("certification.certificate", certificate_id=cert.id))


def verification_url(number: str, code: str) -> str:
    """The public check of a certificate, filled in with its number and code (the QR code's
    target). It points at PORTAL_BASE_URL, the portal's public address (as links in e-mails
    do), not at whatever host the PDF was downloaded from."""
    base = (current_app.config.get("PORTAL_BASE_URL") or request.host_url).rstrip("/")
    return base + url_for("certification.verify", number=number, code=code)


def qr_svg(text: str) -> Markup:
    """`text` as a QR code: an inline SVG sized by the stylesheet, its quiet zone the
    stylesheet's white margin."""
    svg = segno.make(text, error="m", micro=False).svg_inline(
        border=0, omitsize=True, dark="#1b2a41", svgclass="qr-code")
    return Markup(svg)  # noqa: S704 - one path of modules: none of `text` reaches the markup


def pdf_context(cert: Certificate, pdf_locale: str, today) -> dict:
    """Plain values for the certificate PDF (no ORM objects reach the template)."""
    engineer, program = cert.engineer, cert.program
    state = certificate_state(cert, today)
    url = verification_url(cert.number, cert.verification_code)
    return {
        "number": cert.number, "code": cert.verification_code, "name": engineer.name,
        "id_number": engineer.masked_id_number, "agency": engineer.agency.legal_name,
        "agency_code": engineer.agency.code,
        "product_line": program.product_line.name(pdf_locale), "level": cert.level,
        "level_label": LEVEL_LABELS[cert.level], "valid_from": cert.valid_from,
        "valid_to": cert.valid_to, "issued_on": local_day(cert.issued_at),
        "certifier": queries.certifier_name(cert), "state": state.value,
        "state_label": STATE_LABELS[state], "revoked_on": cert.revoked_on,
        "verify_url": url, "verify_page": url.split("?", 1)[0], "qr": qr_svg(url),
    }


@bp.route("/certificates/<int:certificate_id>/pdf")
@allow(*roles(CERTIFICATE_PDF))
def certificate_pdf(certificate_id):
    cert = queries.readable_certificate(current_user, certificate_id)
    pdf_locale = request.args.get("lang", locale())
    if pdf_locale not in PDF_LOCALES:
        pdf_locale = "zh_CN" if locale().startswith("zh") else "en"
    body = render_document("certification/pdf/certificate.html", locale=pdf_locale,
                           cert=pdf_context(cert, pdf_locale, local_today()))
    filename = f"certificate-{cert.number}-{pdf_locale}.pdf"
    return Response(body, mimetype="application/pdf",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"',
                             "Cache-Control": "no-store"})


# --- coverage -----------------------------------------------------------------------------


@bp.route("/coverage")
@allow(*COVERAGE_READERS)
def coverage():
    if current_user.agency_id is not None:
        return redirect(url_for("certification.agency_coverage",
                                agency_id=current_user.agency_id))
    today = local_today()
    gaps_only = request.args.get("all") != "1"
    page = paginate(queries.coverage_statement(today, gaps_only=gaps_only), rows=True)
    return render_template("certification/coverage.html", page=page, today=today,
                           summary=queries.hq_dashboard(today), gaps_only=gaps_only)


@bp.route("/agencies/<int:agency_id>/coverage")
@allow(*COVERAGE_READERS)
def agency_coverage(agency_id):
    agency = get_or_404(Agency, agency_id)
    today = local_today()
    rows = db.session.execute(queries.coverage_statement(today, agency_id=agency.id)).all()
    expiring = db.session.scalars(queries.expiring_statement(today, agency_id=agency.id)
                                  .limit(200)).all()
    return render_template("certification/agency_coverage.html", agency=agency, rows=rows,
                           expiring=expiring, today=today)


# --- the public check -----------------------------------------------------------------------


def _limit(name: str, default: str):
    return lambda: current_app.config.get(name, default)


def _number_address_key() -> str:
    """Failed checks of one number from one address: a stranger's wrong codes never block
    the holder's check from elsewhere."""
    number = (request.form.get("number") or "").strip().upper()[:32]
    return f"certificate-check:{number}|{address_key()}"


def _lookup_failed(response) -> bool:
    """Only failed look-ups count against the limits, as with signing in."""
    return bool(g.get("_certificate_lookup_failed"))


def public_certificate(number: str, code: str, today) -> dict | None:
    """What anyone holding number and code may learn, as plain values; None if no match."""
    number = number.strip().upper()
    code = code.replace("-", "").replace(" ", "").strip().upper()
    with unscoped("public certificate check by number and code"):
        cert = db.session.scalars(
            select(Certificate).where(Certificate.number == number)
            .options(joinedload(Certificate.engineer).joinedload(Engineer.agency),
                     joinedload(Certificate.program).joinedload(Program.product_line),
                     selectinload(Certificate.renewed_by))).one_or_none()
        stored = cert.verification_code if cert is not None else _NO_CODE
        if not hmac.compare_digest(stored.encode(), code.encode()) or cert is None:
            return None
        state = certificate_state(cert, today)
        return {"number": cert.number, "name": mask_name(cert.engineer.name),
                "program": cert.program.title(locale()),
                "agency": cert.engineer.agency.legal_name, "state": state.value,
                "state_label": str(STATE_LABELS[state]), "valid_to": cert.valid_to,
                "revoked_on": cert.revoked_on}


@bp.route("/verify", methods=["GET", "POST"])
@public(read_only=True)
@limiter.limit(_limit("CERTIFICATE_CHECK_LIMITS_PER_ADDRESS", "20 per 15 minutes"),
               methods=["POST"], key_func=address_key, deduct_when=_lookup_failed)
@limiter.limit(_limit("CERTIFICATE_CHECK_LIMITS_PER_NUMBER_ADDRESS", "5 per 15 minutes"),
               methods=["POST"], key_func=_number_address_key, deduct_when=_lookup_failed)
def verify():
    """The public check. A GET only fills the form in (from the certificate's QR code:
    ?number=&code=); the check itself is the throttled POST, so following a link never uses
    up anyone's allowance of failed checks nor changes the counters (no state change on GET)."""
    form = VerifyForm()
    if request.method == "GET":
        form.number.data = (request.args.get("number") or "").strip()[:32]
        form.code.data = (request.args.get("code") or "").strip()[:32]
    result = None
    if form.validate_on_submit():
        result = public_certificate(form.number.data, form.code.data, local_today())
        if result is None:
            g._certificate_lookup_failed = True
            form.form_errors.append(_("No certificate matches this number and code. Check "
                                      "both and try again."))
    return render_template("certification/verify.html", form=form, result=result)
