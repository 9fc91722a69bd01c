"""The caller's own inbox: tasks and notices addressed to the token's account (never anyone
else's, whatever the role), and marking one read through the inbox page's service. Marking
read is self-service, as on the page: auditors may do it too."""

from flask_login import current_user
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate
from sqlalchemy import or_, select

from api.core import (
    PageArgs,
    an_id,
    api_allow,
    api_performs,
    idempotent,
    page,
    page_schema,
    perform,
)
from inbox import services
from inbox.models import InboxItem
from inbox.outbox import item_link, item_title
from inbox.queries import KINDS, own_item
from inbox.registry import CATEGORIES
from portal.auth.roles import Role

blp = Blueprint("api_inbox", __name__, url_prefix="/api/v1/inbox",
                description="The token's account's own inbox: tasks and notices.")


class InboxItemOut(Schema):
    id = fields.Integer(required=True)
    kind = fields.String(required=True, metadata={"enum": list(KINDS)})
    category = fields.String(required=True, metadata={"enum": list(CATEGORIES)})
    event = fields.String(required=True)
    title = fields.Function(item_title, required=True, metadata={
        "type": "string", "description": "As the inbox page shows it, in the caller's "
                                         "language."})
    link = fields.Function(lambda item: item_link(item, current_user.role), allow_none=True,
                           metadata={"type": "string", "description": "The portal page the "
                                     "item points at (a path), if any."})
    subject_type = fields.String(allow_none=True)
    subject_id = fields.Integer(allow_none=True)
    label = fields.String(allow_none=True)
    agency_id = fields.Integer(allow_none=True)
    announcement_id = fields.Integer(allow_none=True)
    due_at = fields.DateTime(allow_none=True)
    created_at = fields.DateTime(required=True)
    read_at = fields.DateTime(allow_none=True)
    closed_at = fields.DateTime(allow_none=True)
    acknowledged_at = fields.DateTime(allow_none=True)
    is_open = fields.Boolean(required=True, metadata={"description": "A task not closed "
                                                      "yet."})


class InboxArgs(PageArgs):
    unread = fields.Boolean(load_default=None, metadata={
        "description": "true: only items not read yet; false: only read ones."})
    kind = fields.String(load_default=None, validate=validate.OneOf(KINDS))
    category = fields.String(load_default=None, validate=validate.OneOf(list(CATEGORIES)))


InboxItemPage = page_schema(InboxItemOut, "InboxItemPage")


def _changed_since(when):
    return or_(InboxItem.created_at >= when, InboxItem.read_at >= when,
               InboxItem.closed_at >= when, InboxItem.acknowledged_at >= when)


@blp.route("/")
@api_allow(*Role)
@blp.arguments(InboxArgs, location="query")
@blp.response(200, InboxItemPage)
def list_items(args):
    """The caller's items, by id. ``updated_since``: arrived, read, closed or acknowledged at
    or after that instant."""
    stmt = select(InboxItem).where(InboxItem.recipient_id == current_user.id)
    if args.get("unread") is True:
        stmt = stmt.where(InboxItem.read_at.is_(None))
    elif args.get("unread") is False:
        stmt = stmt.where(InboxItem.read_at.is_not(None))
    if args.get("kind"):
        stmt = stmt.where(InboxItem.kind == args["kind"])
    if args.get("category"):
        stmt = stmt.where(InboxItem.category == args["category"])
    if args.get("updated_since") is not None:
        stmt = stmt.where(_changed_since(args["updated_since"]))
    return page(stmt, InboxItem, {**args, "updated_since": None})


@blp.route("/<int:item_id>")
@api_allow(*Role)
@blp.response(200, InboxItemOut)
def get_item(item_id):
    """One of the caller's items (anyone else's is a 404, like a missing one)."""
    return own_item(current_user, an_id(item_id))


@blp.route("/<int:item_id>/read", methods=["POST"])
@api_performs("inbox.read", self_service=True)  # an auditor marks their own items too
@idempotent
@blp.response(200, InboxItemOut)
def mark_read(item_id):
    """Mark one of the caller's items read (again: nothing changes, the same answer)."""
    item = own_item(current_user, an_id(item_id))
    perform(services.mark_read, item)
    return item
