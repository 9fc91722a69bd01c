"""The integration API v1 (§2.9): REST/JSON under ``/api/v1`` for the call center, the
agencies' own systems and HQ's ERP, on the same services, policies and tenant guard as the
pages.

- Bearer tokens (:mod:`api.tokens`) sign a request in as an account: its role and scope, and
  nothing from a browser's session (``portal.auth.sessions.authenticate_by_token``).
- Errors are problem documents (:mod:`api.problems`); every resource shares :mod:`api.core`
  (route guard, the one commit, cursor pages, ETags, ``Idempotency-Key``).
- The OpenAPI 3 document is built by flask-smorest from the resources' schemas and served at
  ``/api/v1/openapi.json``; ``/api/v1/docs`` renders it with the vendored Swagger UI.
- Webhooks (:mod:`api.webhooks`) send the write path's events to endpoints HQ allows.

It sits above every area (import-linter): no area imports it.
"""
from flask_smorest import Api

from api.openapi import ProblemDocs

PREFIX = "/api/v1"

# The resources, in the order the documentation lists them.
RESOURCES = (
    "api.resources.reference",
    "api.resources.service_requests",
    "api.resources.offers",
    "api.resources.work_orders",
    "api.resources.revisits",
    "api.resources.parts_requests",
    "api.resources.settlements",
    "api.resources.certificates",
    "api.resources.evaluation",
    "api.resources.inbox",
    "api.resources.webhooks",
)


class PortalApi(ProblemDocs, Api):
    def _register_error_handlers(self):
        """None here: portal.errors hands every error under the prefix to api.problems."""


api = PortalApi()


def init_app(app) -> None:
    import importlib

    from flask import current_app

    from api import cli, problems, tokens, views, views_docs  # noqa: F401 - transitions
    from api.core import Problem
    from portal.auth.sessions import authenticate_by_token
    from portal.errors import render_errors_under
    from portal.extensions import csrf, limiter
    from portal.tenancy import unscoped

    app.config.setdefault("API_TITLE", "Service Network Portal API")
    app.config.setdefault("API_VERSION", "v1")
    app.config.setdefault("OPENAPI_VERSION", "3.0.3")
    app.config.setdefault("OPENAPI_URL_PREFIX", None)  # the document is served by api.views
    app.config.setdefault("API_RATE_LIMIT", "300/minute")
    app.json.ensure_ascii = False  # UTF-8 JSON: 王小明, not \u738b\u5c0f\u660e
    api.init_app(app, spec_kwargs={
        "info": {"description": "Service requests, offers, work orders, settlements and "
                                "more, for the call center, the agencies' systems and the "
                                "ERP. Authenticate with `Authorization: Bearer <token>`."},
        "servers": [{"url": "/"}],
        "components": {"securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer",
                       "description": "A token from the API tokens page or "
                                      "`flask --app wsgi api-token create`."}}},
        "security": [{"bearer": []}],
    })

    def by_token(request):
        with unscoped("a bearer token is checked before its account's scope exists"):
            token = tokens.authenticate(request.headers.get("Authorization"))
            return token.user if token is not None else None

    authenticate_by_token(PREFIX + "/", by_token)
    render_errors_under(PREFIX + "/", problems.render)

    @app.errorhandler(Problem)
    def api_problem(error):
        from portal.extensions import db

        db.session.rollback()
        return problems.problem(error.status, error.detail, errors=error.errors)

    # The blueprints and the limiter are module-level: their limit is declared once per
    # process and reads the serving app's setting on each request.
    rate = limiter.shared_limit(lambda: current_app.config["API_RATE_LIMIT"], scope="api",
                                key_func=rate_key)
    for name in RESOURCES:
        blp = importlib.import_module(name).blp
        csrf.exempt(blp)
        if not getattr(blp, "_api_rate_limited", False):
            rate(blp)
            blp._api_rate_limited = True
        api.register_blueprint(blp)
    app.register_blueprint(views.bp)
    csrf.exempt(views_docs.bp)
    app.register_blueprint(views_docs.bp)
    cli.init_app(app)
    from api.webhooks import init_app as init_webhooks

    init_webhooks(app)


def rate_key() -> str:
    """Per token (its public prefix: the limit is checked before the token is looked up);
    calls without a well-formed token are counted per address."""
    from flask import request

    from api.tokens import prefix_of

    prefix = prefix_of(request.headers.get("Authorization"))
    return f"api-token:{prefix}" if prefix else f"api-addr:{request.remote_addr}"
