"""Who is signed in, and the tenant scope that follows from it for the whole request."""
import logging

from flask import g, request
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_login.signals import session_protected
from sqlalchemy import select

from portal.auth.access import enforce_declared_policy
from portal.auth.models import User
from portal.extensions import db, login_manager
from portal.tenancy import NONE, set_scope, unscoped

log = logging.getLogger(__name__)


def load_user(session_id: str) -> User | None:
    """Session ids are ``<user id>.<session token>``: a rotated token ends the session."""
    user_id, _, token = session_id.partition(".")
    if not user_id.isdigit() or not token:
        return None
    with unscoped("load the signed-in user before their scope is known"):
        user = db.session.scalars(
            select(User).where(User.id == int(user_id), User.session_token == token)
        ).one_or_none()
        if user is None or not user.is_active:
            # Said in the log (without the token): a session that ends unasked is findable.
            log.info("session of account %s refused: %s", user_id,
                     "token rotated or account gone" if user is None else "account inactive")
            return None
    return user


def _protection_failed(app, **_kw) -> None:
    log.warning("session refused by session protection (address or browser changed)")


# Paths whose requests authenticate by a bearer token only (the API): prefix -> a function
# of the request giving the account, or None. Their session cookie is never read, so a page's
# session can never act on them (they are exempt from CSRF).
_token_paths: dict[str, object] = {}


def authenticate_by_token(prefix: str, authenticate) -> None:
    """Requests under `prefix` are signed in by `authenticate(request)`, never by a session."""
    _token_paths[prefix] = authenticate


def token_path(path: str):
    return next((fn for prefix, fn in _token_paths.items() if path.startswith(prefix)), None)


def apply_user_scope():
    """before_request: every query of the request is scoped to what the user may see."""
    authenticate = token_path(request.path)
    if authenticate is not None:
        # Flask-Login reads g._login_user first: the session and remember-me cookie are
        # never consulted for these paths.
        g._login_user = authenticate(request) or login_manager.anonymous_user()
    set_scope(current_user.scope if current_user.is_authenticated else NONE)


def init_app(app) -> None:
    login_manager.login_view = "auth.sign_in"
    login_manager.login_message = _l("Please sign in to continue.")
    login_manager.login_message_category = "info"
    login_manager.session_protection = "strong"
    login_manager.user_loader(load_user)
    session_protected.connect(_protection_failed, weak=False)
    app.before_request(apply_user_scope)
    app.before_request(enforce_declared_policy)
