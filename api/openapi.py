"""How the OpenAPI document describes errors and the headers of :mod:`api.core`.

Every error is a problem document (``application/problem+json``, :mod:`api.problems`), and
every operation lists the answers the API's common machinery may give whatever the resource
(401 without a valid token, 403 for another role, 404 for a foreign or missing id, 429 past
the token's rate limit).

The headers of api.core are documented where they apply:

- ``Idempotency-Key`` (optional) on every operation whose view is wrapped by
  ``core.idempotent`` (found by its marker ``_api_idempotent``), with its 409 and 422 answers
  and the ``Idempotent-Replayed`` header of a replayed answer;
- ``If-Match`` (required) with its 412 and 428 answers on an operation that calls
  ``core.if_match``: the resource says so with ``@blp.doc(**needs_if_match("the offer"))``;
- ``ETag`` on the answers that carry it: ``@blp.doc(**sends_etag())`` (200 unless named).

flask-smorest documents errors with its own ``Error`` schema as ``application/json``; the
mixin :class:`ProblemDocs` replaces both, before any blueprint is registered::

    class PortalApi(ProblemDocs, Api): ...
"""
import http

from apispec import BasePlugin
from flask_smorest.utils import prepare_response
from marshmallow import Schema, fields
from marshmallow import fields as ma_fields

MEDIA_TYPE = "application/problem+json"


class FieldErrorSchema(Schema):
    field = fields.String(required=True, metadata={
        "description": "The field's name (nested fields joined by dots), or a header's."})
    message = fields.String(required=True, metadata={"description": "In the caller's language."})


class ProblemSchema(Schema):
    """RFC 9457 problem details, as api.problems.problem() writes them."""

    class Meta:
        ordered = True

    type = fields.String(required=True, metadata={"example": "about:blank"})
    title = fields.String(required=True, metadata={"description": "The status's title, in the "
                                                   "caller's language."})
    status = fields.Integer(required=True, metadata={"example": 404})
    detail = fields.String(required=True, metadata={"description": "What happened and what to "
                                                    "do, in the caller's language."})
    instance = fields.String(required=True, metadata={"description": "The request's path."})
    errors = fields.List(fields.Nested(FieldErrorSchema), metadata={
        "description": "The fields that are not valid (422 only)."})


# The answers any operation may give, with the headers that come with them.
COMMON = {
    401: {"WWW-Authenticate": "Bearer realm=\"api\": send a valid token."},
    403: {},
    429: {"Retry-After": "Seconds to wait before the next call."},
}
WITH_ID = {404: {}}  # an operation on one resource: foreign and missing ids alike


def _header(description: str) -> dict:
    return {"description": description, "schema": {"type": "string"}}


# --- the headers of api.core ------------------------------------------------------------------

IDEMPOTENCY_KEY = {
    "in": "header", "name": "Idempotency-Key", "required": False,
    "description": "Any unique string you choose (1 to 255 printable characters), sent again "
                   "with a retry: within 24 hours the retry gets the first answer again "
                   "(`Idempotent-Replayed: true`) and changes nothing. The same key with "
                   "another method, path or body is a 422.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
}
IDEMPOTENCY_ANSWERS = {
    409: "A request with this Idempotency-Key is still being processed: retry in a moment.",
    422: "Refused (the problem's detail says why): the change is not allowed now, the body "
         "is not valid, or the Idempotency-Key is not 1 to 255 printable characters or was "
         "used for another request (another method, path or body).",
}
REPLAYED = {"description": "`true` when this is the kept answer of an earlier request with "
                           "the same Idempotency-Key.",
            "schema": {"type": "string", "enum": ["true"]}}
IF_MATCH = {
    "in": "header", "name": "If-Match", "required": True,
    "description": "The ETag of the resource as last read (its GET answers it): the change "
                   "applies only to that version.",
    "schema": {"type": "string"},
}
ETAG = {"description": "The resource's version: send it as If-Match to change it.",
        "required": True, "schema": {"type": "string"}}


def needs_if_match(what: str) -> dict:
    """The documentation of an operation that calls ``core.if_match`` on `what` ("the offer"):
    ``@blp.doc(**needs_if_match("the offer"))``. Its 412 and 428 answers; the plugin adds the
    ``If-Match`` header parameter to every operation that documents 428."""
    return {"responses": {
        412: {"description": f"{what[0].upper()}{what[1:]} changed since it was read "
                             f"(If-Match is not its current ETag): read it again."},
        428: {"description": f"If-Match is missing: send {what}'s ETag."},
    }}


def sends_etag(*statuses: int) -> dict:
    """The documentation of answers that carry the resource's ``ETag``:
    ``@blp.doc(**sends_etag())`` (the 200 answer) or ``sends_etag(201)``."""
    return {"responses": {status: {"headers": {"ETag": dict(ETAG)}}
                          for status in statuses or (200,)}}


class CoreHeaders(BasePlugin):
    """Documents the headers of api.core: ``Idempotency-Key`` on the operations of views
    wrapped by ``core.idempotent``, ``If-Match`` on the operations that document 428."""

    def __init__(self, api):
        self.api = api

    def _view(self, rule):
        app = getattr(self.api, "_app", None)
        if rule is None or app is None:
            return None
        return app.view_functions.get(rule.endpoint)

    def operation_helper(self, path=None, operations=None, rule=None, **kwargs):
        idempotent = getattr(self._view(rule), "_api_idempotent", False)
        for operation in (operations or {}).values():
            responses = operation.setdefault("responses", {})
            declared = {str(status) for status in responses}
            if idempotent:
                _add_parameter(operation, IDEMPOTENCY_KEY)
                for status, text in IDEMPOTENCY_ANSWERS.items():
                    if str(status) not in declared:
                        responses[status] = {"description": text}
                for status, response in responses.items():
                    if str(status)[0] == "2" and isinstance(response, dict):
                        response.setdefault("headers", {}).setdefault(
                            "Idempotent-Replayed", dict(REPLAYED))
            if "428" in declared:
                _add_parameter(operation, IF_MATCH)


def _add_parameter(operation: dict, parameter: dict) -> None:
    parameters = operation.setdefault("parameters", [])
    if not any(isinstance(p, dict) and p.get("in") == parameter["in"]
               and p.get("name") == parameter["name"] for p in parameters):
        parameters.append(dict(parameter))


class CommonProblems(BasePlugin):
    """Adds the common error answers to every operation (as references to the components the
    mixin registers): 401, 403, 429, and 404 where the path names a resource. An error a
    resource documents without a body (``@blp.alt_response(404, description=...)``) gets the
    problem document as its body: every error is one (api.problems)."""

    def operation_helper(self, path=None, operations=None, **kwargs):
        has_id = "{" in (path or "")
        for operation in (operations or {}).values():
            responses = operation.setdefault("responses", {})
            for status, response in responses.items():
                if (str(status)[0] in "45" and isinstance(response, dict)
                        and "$ref" not in response and not response.get("content")):
                    response["content"] = {MEDIA_TYPE: {"schema": {
                        "$ref": "#/components/schemas/Problem"}}}
            declared = {str(status) for status in responses}  # ints or strings
            for status in (*COMMON, *(WITH_ID if has_id else ())):
                if str(status) not in declared:
                    responses[str(status)] = http.HTTPStatus(status).name


def decimal_as_string(self, field, ret, **kwargs) -> dict:
    """A ``fields.Decimal(as_string=True)`` (money, kilometres, scores) is a JSON string such
    as "130.00", not a number: apispec documents every Decimal as a number."""
    if isinstance(field, ma_fields.Decimal) and field.as_string:
        return {"type": "string", "format": "decimal",
                "pattern": r"^-?[0-9]+(\.[0-9]+)?$"}
    return {}


class ProblemDocs:
    """A mixin for :class:`flask_smorest.Api`: errors documented as problem documents."""

    ERROR_SCHEMA = ProblemSchema

    def _init_spec(self, *, extra_plugins=None, **kwargs):
        # CoreHeaders first: the error answers it adds get their problem body from
        # CommonProblems.
        super()._init_spec(extra_plugins=[*(extra_plugins or ()), CoreHeaders(self),
                                          CommonProblems()], **kwargs)
        self.ma_plugin.converter.add_attribute_function(decimal_as_string)

    def _register_responses(self):
        """flask-smorest's lazy responses per status, as problem+json (registered in the
        document when an operation refers to them)."""
        headers = {**COMMON, **WITH_ID}
        for status in http.HTTPStatus:
            response = {"description": status.phrase}
            if not (100 <= status < 200) and status not in (204, 304):
                response["schema"] = self.ERROR_SCHEMA
            if headers.get(status):
                response["headers"] = {name: _header(text)
                                       for name, text in headers[status].items()}
            prepare_response(response, self.spec, MEDIA_TYPE)
            self.spec.components.response(status.name, response, lazy=True)
        response = {"description": "An error (a problem document).",
                    "schema": self.ERROR_SCHEMA}
        prepare_response(response, self.spec, MEDIA_TYPE)
        self.spec.components.response(self.DEFAULT_ERROR_RESPONSE_NAME, response, lazy=True)
