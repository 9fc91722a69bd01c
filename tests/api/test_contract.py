"""The API's contract: /api/v1/openapi.json is a valid OpenAPI 3 document that lists every
route the API serves (and no other), each with the bearer security and its errors as problem
documents, and the errors the API really sends match the document's Problem schema.

The headers of api.core are documented where the views use them, found from the views' code
(what a view calls, directly or through its module's helpers): ``Idempotency-Key`` (optional)
on every view wrapped by ``core.idempotent`` (every POST), ``If-Match`` (required) with its 412
and 428 answers on every view that calls ``core.if_match``, and ``ETag`` on the success answer
of every view that sends it (every single-resource GET of a versioned row). Whether the answers
really carry them is checked by tests/api/test_schemathesis.py."""
import inspect
import re

from openapi_schema_validator import OAS30Validator
from openapi_spec_validator import validate

from api import PREFIX, core

DOCUMENT = PREFIX + "/openapi.json"
UNDOCUMENTED = {"api_docs.openapi", "api_docs.docs"}  # the document and its page
METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
PROBLEM = "application/problem+json"


def _document(client) -> dict:
    response = client.get(DOCUMENT)
    assert response.status_code == 200 and response.mimetype == "application/json"
    return response.json


def _openapi_path(rule) -> str:
    """Werkzeug's /x/<int:id> as OpenAPI's /x/{id}."""
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)


def _served(app) -> dict[str, set[str]]:
    """Every URL rule under the prefix (but the document and its page), with its methods."""
    served: dict[str, set[str]] = {}
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(PREFIX + "/") or rule.endpoint in UNDOCUMENTED:
            continue
        methods = {m.lower() for m in rule.methods} - {"head", "options"}
        served.setdefault(_openapi_path(rule), set()).update(methods)
    return served


def _operations(document):
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield path, method, operation


def _resolve(document, obj: dict) -> dict:
    while "$ref" in obj:
        *_, kind, name = obj["$ref"].split("/")
        obj = document["components"][kind][name]
    return obj


def test_the_document_is_valid_openapi(client):
    document = _document(client)
    assert document["openapi"].startswith("3.")
    validate(document)  # raises OpenAPIValidationError with the path of what is wrong


def test_every_route_is_documented_with_its_methods(app, client):
    document = _document(client)
    documented = {path: {m for m in item if m in METHODS}
                  for path, item in document["paths"].items()}
    served = _served(app)
    assert served, "no route under /api/v1"
    missing = {f"{m.upper()} {p}" for p, methods in served.items()
               for m in methods - documented.get(p, set())}
    assert not missing, f"served but not in {DOCUMENT}: {sorted(missing)}"
    ghosts = {f"{m.upper()} {p}" for p, methods in documented.items()
              for m in methods - served.get(p, set())}
    assert not ghosts, f"in {DOCUMENT} but not served: {sorted(ghosts)}"


def test_every_operation_needs_the_bearer_token(client):
    document = _document(client)
    scheme = document["components"]["securitySchemes"]["bearer"]
    assert scheme["type"] == "http" and scheme["scheme"] == "bearer"
    unprotected = [f"{method.upper()} {path}" for path, method, operation in _operations(document)
                   if {"bearer": []} not in operation.get("security", document.get("security", []))]
    assert not unprotected, f"operations without the bearer security: {unprotected}"


def test_every_operation_answers_errors_as_problem_documents(client):
    document = _document(client)
    assert "Problem" in document["components"]["schemas"], "no Problem schema in the document"
    wrong = []
    for path, method, operation in _operations(document):
        where = f"{method.upper()} {path}"
        errors = {status: _resolve(document, response)
                  for status, response in operation["responses"].items()
                  if status == "default" or status[0] in "45"}
        if "401" not in errors:
            wrong.append(f"{where}: 401 (no valid token) is not documented")
        if "{" in path and "404" not in errors:
            wrong.append(f"{where}: 404 (foreign or missing id) is not documented")
        if not errors:
            wrong.append(f"{where}: no error response")
        for status, response in errors.items():
            content = response.get("content", {})
            schema = content.get(PROBLEM, {}).get("schema", {})
            if set(content) != {PROBLEM} or schema.get("$ref") != "#/components/schemas/Problem":
                wrong.append(f"{where} {status}: {sorted(content)} "
                             f"{[c.get('schema') for c in content.values()]}, not a Problem "
                             f"as {PROBLEM}")
    assert not wrong, "\n".join(wrong)


def test_the_problems_the_api_sends_match_the_documented_schema(client):
    """An anonymous call, a wrong token, an unknown route and a bad method: each answer is a
    problem document valid under the document's Problem schema."""
    document = _document(client)
    problem = {**document["components"]["schemas"]["Problem"],
               "components": document["components"]}
    validator = OAS30Validator(problem)
    first = next(path for path, method, _op in _operations(document)
                 if method == "get" and "{" not in path)
    calls = [
        client.get(first),
        client.get(first, headers={"Authorization": "Bearer snp_abcdefgh_not-a-real-secret"}),
        client.get(PREFIX + "/no-such-resource/"),
        client.delete(first),
    ]
    for response in calls:
        assert response.status_code >= 400 and response.mimetype == PROBLEM, response.status_code
        errors = sorted(validator.iter_errors(response.json), key=str)
        assert not errors, f"{response.status_code} {response.json}: {errors[0].message}"


# --- the headers of api.core ----------------------------------------------------------------


def _views(app, document):
    """(method, path, operation, view) of every documented operation, with its view."""
    by_path = {}
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith(PREFIX + "/") and rule.endpoint not in UNDOCUMENTED:
            for method in rule.methods - {"HEAD", "OPTIONS"}:
                by_path[(_openapi_path(rule), method.lower())] = app.view_functions[rule.endpoint]
    for path, method, operation in _operations(document):
        yield method, path, operation, by_path[(path, method)]


def _reaches(view, *, calls=(), constants=()) -> bool:
    """Does `view`'s code (its own, its nested functions' and that of the functions of its
    module it calls, transitively) name one of the functions `calls` or hold one of the
    string `constants`?"""
    start = inspect.unwrap(view)
    stack, seen = [start], set()
    while stack:
        func = stack.pop()
        if func in seen:
            continue
        seen.add(func)
        codes = [func.__code__]
        while codes:
            code = codes.pop()
            codes.extend(c for c in code.co_consts if inspect.iscode(c))
            if any(isinstance(c, str) and c in constants for c in code.co_consts):
                return True
            for name in code.co_names:
                named = func.__globals__.get(name)
                if any(named is target for target in calls):
                    return True
                if inspect.isfunction(named) and named.__module__ == start.__module__:
                    stack.append(inspect.unwrap(named))
    return False


def _header_parameters(document, operation) -> dict:
    return {p["name"].lower(): p for p in map(lambda p: _resolve(document, p),
                                            operation.get("parameters", []))
            if p.get("in") == "header"}


def _success_headers(document, operation) -> dict:
    """The headers documented on the operation's 2xx answers, by status."""
    return {status: {name.lower(): header for name, header
                     in _resolve(document, response).get("headers", {}).items()}
            for status, response in operation["responses"].items() if status[0] == "2"}


def test_every_post_documents_its_optional_idempotency_key(app, client):
    document = _document(client)
    wrong = []
    for method, path, operation, view in _views(app, document):
        where = f"{method.upper()} {path}"
        idempotent = getattr(view, "_api_idempotent", False)
        key = _header_parameters(document, operation).get("idempotency-key")
        if method == "post" and not idempotent:
            wrong.append(f"{where}: a POST not wrapped by core.idempotent")
        if idempotent and key is None:
            wrong.append(f"{where}: Idempotency-Key is not documented")
        elif idempotent and (key.get("required") or key["schema"].get("type") != "string"):
            wrong.append(f"{where}: Idempotency-Key is not an optional string header: {key}")
        elif idempotent and not {"409", "422"} <= set(operation["responses"]):
            wrong.append(f"{where}: the key's 409 (in progress) or 422 is not documented")
        elif idempotent and any("idempotent-replayed" not in h for h
                                in _success_headers(document, operation).values()):
            wrong.append(f"{where}: Idempotent-Replayed is not documented on its answers")
        if key is not None and not idempotent:
            wrong.append(f"{where}: documents Idempotency-Key, but core.idempotent does not "
                         f"wrap the view")
    assert not wrong, "\n".join(wrong)


def test_every_change_naming_its_version_documents_if_match(app, client):
    document = _document(client)
    wrong, seen = [], 0
    for method, path, operation, view in _views(app, document):
        where = f"{method.upper()} {path}"
        needs = _reaches(view, calls=[core.if_match])
        header = _header_parameters(document, operation).get("if-match")
        seen += needs
        if needs and (header is None or header.get("required") is not True):
            wrong.append(f"{where}: calls if_match, but If-Match is not a required header: "
                         f"{header}")
        if needs and not {"412", "428"} <= set(operation["responses"]):
            wrong.append(f"{where}: calls if_match, but 412 and 428 are not both documented")
        if not needs and (header is not None or "428" in operation["responses"]):
            wrong.append(f"{where}: documents If-Match or 428, but never calls if_match")
    assert seen, "no view calls core.if_match: is the detection broken?"
    assert not wrong, "\n".join(wrong)


def test_every_answer_that_carries_an_etag_documents_it(app, client):
    """A view that sends ``ETag`` (core.etag_of, core.with_etag, or an "ETag" header of its
    own) documents it as a required header of its success answer; a view that does not, does
    not. Every single-resource GET of a row that has a version is one of them."""
    document = _document(client)
    wrong, seen = [], 0
    for method, path, operation, view in _views(app, document):
        where = f"{method.upper()} {path}"
        sends = _reaches(view, calls=[core.etag_of, core.with_etag], constants=["ETag"])
        documented = {status: headers.get("etag")
                      for status, headers in _success_headers(document, operation).items()}
        seen += sends
        if sends and not any(h is not None and h.get("required") for h in documented.values()):
            wrong.append(f"{where}: sends an ETag, not documented (required) on its answer")
        if not sends and any(h is not None for h in documented.values()):
            wrong.append(f"{where}: documents an ETag it never sends")
    assert seen >= 7, f"only {seen} views send an ETag: is the detection broken?"
    assert not wrong, "\n".join(wrong)
