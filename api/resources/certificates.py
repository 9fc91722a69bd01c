"""Engineer certificates: the public check by number and verification code (the same answer
as the check page, for any token: the API's per-token rate limit stands in for the page's
throttle), and the certificates the certificate pages list (an agency its own engineers', an
engineer's account its own, HQ all, a regional manager their region's)."""
from flask_babel import gettext as _
from flask_login import current_user
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate
from sqlalchemy import func

from api.core import PageArgs, Problem, an_id, api_allow, page, page_schema
from certification import queries
from certification.models import Certificate
from certification.states import LEVEL_LABELS, STATE_LABELS, CertificateState, certificate_state
from certification.views_certificates import public_certificate
from portal.auth.roles import Role
from portal.clock import local_today

blp = Blueprint("api_certificates", __name__, url_prefix="/api/v1/certificates",
                description="Engineer certificates: the check by number and code; the "
                            "certificates each account may read.")

STATES = [s.value for s in CertificateState]


class VerifyArgs(Schema):
    number = fields.String(required=True, validate=validate.Length(1, 32),
                           metadata={"description": "The certificate number."})
    code = fields.String(required=True, validate=validate.Length(1, 32),
                         metadata={"description": "The verification code printed on it "
                                                  "(dashes and spaces are ignored)."})


class VerifiedOut(Schema):
    """What anyone holding number and code may learn (the public check page's facts)."""

    number = fields.String(required=True)
    name = fields.String(required=True, metadata={"description": "The holder, masked (张*)."})
    program = fields.String(required=True)
    agency = fields.String(required=True)
    state = fields.String(required=True, metadata={"enum": STATES})
    state_label = fields.String(required=True)
    valid_to = fields.Date(required=True)
    revoked_on = fields.Date(allow_none=True)


class CertificateOut(Schema):
    id = fields.Integer(required=True)
    number = fields.String(required=True)
    agency_id = fields.Integer(required=True)
    engineer_id = fields.Integer(required=True)
    engineer_name = fields.Function(lambda c: c.engineer.name, required=True,
                                    metadata={"type": "string"})
    program_id = fields.Integer(required=True)
    product_line_id = fields.Integer(required=True)
    level = fields.Integer(required=True)
    level_label = fields.Function(lambda c: str(LEVEL_LABELS[c.level]), required=True,
                                  metadata={"type": "string"})
    state = fields.Function(lambda c: certificate_state(c, local_today()).value, required=True,
                            metadata={"type": "string", "enum": STATES,
                                      "description": "Its state today (the network's day)."})
    state_label = fields.Function(
        lambda c: str(STATE_LABELS[certificate_state(c, local_today())]), required=True,
        metadata={"type": "string"})
    valid_from = fields.Date(required=True)
    valid_to = fields.Date(required=True)
    issued_at = fields.DateTime(required=True)
    revoked_on = fields.Date(allow_none=True)
    revoked_at = fields.DateTime(allow_none=True)
    renewal_of_id = fields.Integer(allow_none=True)
    renewed_by_id = fields.Function(lambda c: c.renewed_by.id if c.renewed_by else None,
                                    allow_none=True, metadata={"type": "integer"})


class CertificateDetailOut(CertificateOut):
    """One certificate, as its page shows it (with the code printed on it)."""

    verification_code = fields.String(required=True)
    revoke_reason = fields.String(allow_none=True)


class CertificateArgs(PageArgs):
    # The certificate list page's filters, under its names (certification.queries reads them).
    state = fields.String(load_default=None, validate=validate.OneOf(STATES),
                          metadata={"description": "Only certificates in this state today."})
    line = fields.Integer(load_default=None, validate=validate.Range(1),
                          metadata={"description": "A product line's id."})
    level = fields.Integer(load_default=None, validate=validate.Range(1, 3))
    agency = fields.Integer(load_default=None, validate=validate.Range(1),
                           metadata={"description": "An agency's id."})
    q = fields.String(load_default=None, validate=validate.Length(max=100),
                      metadata={"description": "Part of the number or of the engineer's name."})


CertificatePage = page_schema(CertificateOut, "CertificatePage")


@blp.route("/verify")
@api_allow(*Role)
@blp.arguments(VerifyArgs, location="query")
@blp.response(200, VerifiedOut)
@blp.alt_response(404, description="No certificate matches this number and code.")
def verify(args):
    """Check a certificate by its number and verification code: the facts the public check
    page shows. A wrong code and an unknown number get the same 404."""
    found = public_certificate(args["number"], args["code"], local_today())
    if found is None:
        raise Problem(404, _("No certificate matches this number and code. Check both and "
                             "try again."))
    return found


@blp.route("/")
@api_allow(*Role)
@blp.arguments(CertificateArgs, location="query")
@blp.response(200, CertificatePage)
def list_certificates(args):
    """Certificates the account may read, by id; the list page's filters. ``updated_since``:
    issued or revoked at or after that instant."""
    own = current_user if current_user.role == Role.ENGINEER else None
    stmt = queries.certificate_list_statement(local_today(), user=own)
    return page(stmt, Certificate, args,
                updated_column=func.coalesce(Certificate.revoked_at, Certificate.issued_at))


@blp.route("/<int:certificate_id>")
@api_allow(*Role)
@blp.response(200, CertificateDetailOut)
def get_certificate(certificate_id):
    """One certificate (an engineer's account: its own only)."""
    return queries.readable_certificate(current_user, an_id(certificate_id))
