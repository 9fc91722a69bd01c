"""Who is signed in, and the tenant scope that follows from it for the whole request."""
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select

from portal.auth.access import enforce_declared_policy
from portal.auth.models import User
from portal.extensions import db, login_manager
from portal.tenancy import NONE, set_scope, unscoped


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
            return None
    return user


def apply_user_scope():
    """before_request: every query of the request is scoped to what the user may see."""
    set_scope(current_user.scope if current_user.is_authenticated else NONE)


def init_app(app) -> None:
    login_manager.login_view = "auth.sign_in"
    login_manager.login_message = _l("Please sign in to continue.")
    login_manager.login_message_category = "info"
    login_manager.session_protection = "strong"
    login_manager.user_loader(load_user)
    app.before_request(apply_user_scope)
    app.before_request(enforce_declared_policy)
