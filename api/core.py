"""What every resource of the API shares: who may call it, the one commit, cursor pages,
ETags and If-Match, and ``Idempotency-Key`` on POST.

A resource view reads like a page's view, on the same services::

    @blp.route("/<int:offer_id>/accept", methods=["POST"])
    @api_performs("dispatch_offer.accepted")
    @idempotent
    @blp.response(200, OfferSchema)
    def accept(offer_id):
        offer = get_or_404(Offer, offer_id)
        if_match(offer)
        return perform(offers.accept_offer, offer, seen_version=offer.version)
"""
import base64
import binascii
import hashlib
import json
from datetime import timedelta
from functools import wraps

from flask import abort, g, request
from flask_babel import gettext as _
from flask_login import current_user
from marshmallow import Schema, fields, validate
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from api.models import IdempotentRequest
from portal import jobs
from portal.auth.access import allow, performs
from portal.clock import now
from portal.errors_domain import DomainError
from portal.extensions import db
from portal.tenancy import unscoped
from portal.transitions import STALE

IDEMPOTENCY_HOURS = 24
PAGE_SIZE, MAX_PAGE_SIZE = 50, 200


class Problem(Exception):
    """An answer other than success, raised from a view (rendered by api.problems)."""

    def __init__(self, status: int, detail=None, errors=None):
        super().__init__(detail)
        self.status, self.detail, self.errors = status, detail, errors


# --- who may call ---------------------------------------------------------------------------


def _unauthorized():
    abort(401)  # the API answers; the portal's pages send to sign-in


def api_allow(*roles, read_only: bool = False, transitions: tuple = (),
              self_service: bool = False):
    """A resource's route guard: a token of one of `roles` (401 without a valid token, 403 for
    another role). The portal's declared-policy check (auditors never write, except on their
    own account: `self_service`) runs first."""
    return allow(*roles, read_only=read_only, transitions=transitions,
                 self_service=self_service, anonymous=_unauthorized)


def api_performs(*names: str, self_service: bool = False):
    """The guard of a resource that performs the transitions `names`."""
    return performs(*names, self_service=self_service, anonymous=_unauthorized)


def an_id(ident: int) -> int:
    """A URL's id as an id column holds it (32 bits): beyond, no row has it (404), before the
    database refuses the number."""
    if not 0 < ident < 2**31:
        abort(404)
    return ident


# --- the one commit -------------------------------------------------------------------------


def perform(service, *args, **kwargs):
    """Run one service as the token's account; a refusal is a 422 problem (a stale version a
    412), nothing written. Commits unless an idempotent POST commits with its kept answer."""
    kwargs.setdefault("acting_user", current_user._get_current_object())
    try:
        value = service(*args, **kwargs)
    except DomainError as error:
        db.session.rollback()
        if error.message == str(STALE):
            raise Problem(412, error.message) from None
        raise Problem(422, error.message,
                      [{"field": error.field, "message": error.message}] if error.field
                      else None) from None
    if not g.get("_api_idempotent"):
        db.session.commit()
    return value


# --- ETags ----------------------------------------------------------------------------------


def etag_of(record) -> str:
    return f'"{type(record).__name__.lower()}-{record.id}-v{record.version}"'


def if_match(record, etag: str | None = None) -> None:
    """A change to a versioned resource names the version it read (If-Match: its ETag, or
    `etag` when the resource's ETag is more than its row's version)."""
    sent = request.headers.get("If-Match")
    if not sent:
        raise Problem(428)
    current = etag or etag_of(record)
    if sent.strip() != "*" and current not in [t.strip() for t in sent.split(",")]:
        raise Problem(412)


def with_etag(response, record):
    response.headers["ETag"] = etag_of(record)
    return response


# --- cursor pages ---------------------------------------------------------------------------


class PageArgs(Schema):
    limit = fields.Integer(load_default=PAGE_SIZE, validate=validate.Range(1, MAX_PAGE_SIZE),
                           metadata={"description": "Items per page (1-200)."})
    cursor = fields.String(load_default=None, validate=validate.Length(max=200),
                           metadata={"description": "The next_cursor of the previous page."})
    updated_since = fields.AwareDateTime(load_default=None, default_timezone=None,
                                         metadata={"description": "Only items changed at or "
                                                   "after this instant (ISO 8601 with zone)."})


def _decode_cursor(cursor: str) -> tuple:
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor.encode() + b"=" * (-len(cursor) % 4)))
        if isinstance(raw, list) and len(raw) == 1 and isinstance(raw[0], int):
            return (raw[0],)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        pass
    raise Problem(422, _("This cursor is not one the API gave."),
                  [{"field": "cursor", "message": _("This cursor is not one the API gave.")}])


def _encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(json.dumps([last_id]).encode()).decode().rstrip("=")


def page(stmt, model, args: dict, *, updated_column=None):
    """One page of `stmt` in a stable order (by id), after the cursor: one query, whatever the
    size. Returns ``{"items": rows, "next_cursor": str | None}``."""
    if args.get("cursor"):
        (after,) = _decode_cursor(args["cursor"])
        stmt = stmt.where(model.id > after)
    column = updated_column if updated_column is not None else getattr(model, "updated_at", None)
    if args.get("updated_since") is not None and column is not None:
        stmt = stmt.where(column >= args["updated_since"])
    limit = args.get("limit") or PAGE_SIZE
    rows = list(db.session.scalars(stmt.order_by(model.id).limit(limit + 1)).unique())
    more = len(rows) > limit
    rows = rows[:limit]
    return {"items": rows, "next_cursor": _encode_cursor(rows[-1].id) if more else None}


def page_schema(item_schema, name: str):
    """The schema of a page of `item_schema`."""
    return Schema.from_dict({
        "items": fields.List(fields.Nested(item_schema), required=True),
        "next_cursor": fields.String(allow_none=True, required=True),
    }, name=name)


# --- idempotent POST ------------------------------------------------------------------------


def _fingerprint() -> str:
    digest = hashlib.sha256()
    digest.update(request.method.encode())
    digest.update(b"\0" + request.path.encode() + b"\0")
    digest.update(request.get_data(cache=True))
    return digest.hexdigest()


def idempotent(view):
    """``Idempotency-Key`` on a POST: the first answer is kept with the change, in the same
    transaction; a retry within 24 hours gets it again and changes nothing; the same key with
    another body is a 422. Two retries racing: the second waits on the key's unique index
    until the first commits, then answers with the first's answer."""
    @wraps(view)
    def wrapped(*args, **kwargs):
        key = request.headers.get("Idempotency-Key")
        if key is None:
            return view(*args, **kwargs)
        key = key.strip()
        if not key or len(key) > 255 or not key.isprintable():
            raise Problem(422, _("Idempotency-Key must be 1 to 255 printable characters."),
                          [{"field": "Idempotency-Key",
                            "message": _("Idempotency-Key must be 1 to 255 printable "
                                         "characters.")}])
        fingerprint = _fingerprint()
        kept = _kept(key)
        if kept is not None:
            return _replay(kept, fingerprint)
        mark = IdempotentRequest(recipient_id=current_user.id, key=key, method=request.method,
                                 path=request.path[:255], fingerprint=fingerprint, status=0,
                                 body=b"")
        try:
            db.session.add(mark)
            db.session.flush()  # a racing twin waits here until this transaction ends
        except IntegrityError:
            db.session.rollback()
            kept = _kept(key)
            if kept is None or kept.status == 0:
                raise Problem(409, _("A request with this Idempotency-Key is still being "
                                     "processed. Retry in a moment.")) from None
            return _replay(kept, fingerprint)
        g._api_idempotent = True
        try:
            response = _as_response(view(*args, **kwargs))
        finally:
            g._api_idempotent = False
        if response.status_code >= 400:
            db.session.rollback()
            return response
        mark.status = response.status_code
        mark.headers = json.dumps({k: v for k, v in response.headers.items()
                                   if k in ("Content-Type", "Location", "ETag")})
        mark.body = response.get_data()
        db.session.commit()
        return response

    wrapped._api_idempotent = True  # the OpenAPI document names the header (api.openapi)
    return wrapped


def _kept(key: str) -> IdempotentRequest | None:
    """The kept answer of `key` within the replay window; an older one is forgotten."""
    kept = db.session.scalars(select(IdempotentRequest).where(
        IdempotentRequest.recipient_id == current_user.id, IdempotentRequest.key == key)
    ).one_or_none()
    if kept is not None and kept.created_at < now() - timedelta(hours=IDEMPOTENCY_HOURS):
        db.session.delete(kept)
        db.session.flush()
        return None
    return kept


def _replay(kept: IdempotentRequest, fingerprint: str):
    from flask import Response

    if kept.fingerprint != fingerprint:
        raise Problem(422, _("This Idempotency-Key was used for another request (another "
                             "method, path or body). Use a new key for a new request."))
    response = Response(kept.body, status=kept.status)
    for name, value in json.loads(kept.headers or "{}").items():
        response.headers[name] = value
    response.headers["Idempotent-Replayed"] = "true"
    return response


def _as_response(value):
    from flask import current_app

    return current_app.make_response(value)


@jobs.housekeeping
def forget_old_idempotency_keys() -> int:
    """Kept answers past the 24-hour replay window (everyone's: housekeeping)."""
    with unscoped("kept API answers expire after the replay window, whoever sent them"):
        done = db.session.execute(delete(IdempotentRequest).where(
            IdempotentRequest.created_at < now() - timedelta(hours=IDEMPOTENCY_HOURS)))
    return done.rowcount or 0
