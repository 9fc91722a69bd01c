"""Error pages in the reader's language; bad input and refused writes never end in a 500."""
from flask import has_request_context, render_template, request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError
from werkzeug.exceptions import HTTPException

from portal.extensions import db, is_lock_timeout, write_lock
from portal.tenancy import TenancyViolation

MESSAGES = {
    400: lambda: _("The request could not be understood. Please check what you sent."),
    403: lambda: _("You do not have permission to do this."),
    404: lambda: _("This page does not exist, or you have no access to it."),
    405: lambda: _("This action is not available here."),
    413: lambda: _("The file is too large."),
    429: lambda: _("Too many attempts. Please wait a few minutes and try again."),
    500: lambda: _("Something went wrong on our side. Nothing was saved. Please try again."),
    503: lambda: _("The database is not reachable right now. Nothing was saved. Please try again."),
}
# How long a client is asked to wait before sending a request the busy database refused.
BUSY_RETRY_SECONDS = 5


# Paths whose errors are not pages (the API's problem documents): prefix -> a renderer
# ``(code, message, error) -> response``.
_renderers: dict[str, object] = {}


def render_errors_under(prefix: str, renderer) -> None:
    _renderers[prefix] = renderer


def _renderer():
    path = request.path if has_request_context() else ""
    return next((fn for prefix, fn in _renderers.items() if path.startswith(prefix)), None)


def _page(code: int, message=None, error=None):
    """The error page; `message` a text or a callable giving it (the default: MESSAGES)."""
    db.session.rollback()
    renderer = _renderer()
    if renderer is not None:
        with write_lock(False):
            return renderer(code, message() if callable(message) else message, error)
    with write_lock(False):  # an error page only reads: it never waits for the write lock
        message = message or MESSAGES[code]
        body = render_template("errors/error.html", code=code,
                               message=message() if callable(message) else message)
    return body, code


def init_app(app) -> None:
    @app.errorhandler(HTTPException)
    def http_error(error):
        if _renderer() is not None:
            return _page(error.code or 500, None, error)
        code = error.code if error.code in MESSAGES else 400
        if code == 405:
            return _page(405)
        return _page(code)

    @app.errorhandler(CSRFError)
    def csrf_error(error):
        return _page(400, lambda: _("Your form expired or was sent from elsewhere. Reload "
                                     "the page and try again."))

    @app.errorhandler(TenancyViolation)
    def tenancy_violation(error):
        app.logger.warning("tenancy violation on %s: %s", request.path, error)
        return _page(404)

    @app.errorhandler(IntegrityError)
    def integrity_error(error):
        # A race a service could not see coming (two identical submits): nothing was written.
        app.logger.info("integrity error on %s: %s", request.path, error.orig)
        return _page(409 if 409 in MESSAGES else 400, lambda: _(
            "This change conflicts with another one that was just saved. Nothing was saved; "
            "reload the page and check."))

    @app.errorhandler(OverflowError)
    def number_too_large(error):
        # An id or quantity beyond what the database stores: bad input, nothing was written.
        return _page(400)

    @app.errorhandler(DataError)
    def data_error(error):
        # Values the database refuses (NUL characters, text beyond a column's length on
        # PostgreSQL, numbers out of range): bad input, and nothing was written.
        app.logger.info("data error on %s: %s", request.path, error.orig)
        return _page(400)

    @app.errorhandler(DBAPIError)
    def database_error(error):
        if is_lock_timeout(error):
            # SQLite's one write lock stayed taken for the whole busy timeout: a moment of
            # overload, not an outage. Nothing was written; the reader is asked to send it
            # again (and machines to wait a little: Retry-After).
            # The message is translated inside _page: choosing the language reads the user.
            app.logger.warning("database busy on %s: %s", request.path, error.orig)
            body, code = _page(503, lambda: _("The portal is busy finishing other changes. "
                                              "Nothing was saved. Please try again in a "
                                              "moment."))
            return body, code, {"Retry-After": str(BUSY_RETRY_SECONDS)}
        app.logger.error("database error on %s: %s", request.path, error)
        return _page(503)

    @app.errorhandler(Exception)
    def unexpected(error):
        app.logger.exception("unhandled error on %s", request.path)
        return _page(500)
