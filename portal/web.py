"""The home page of each role and the language switch."""
from flask import Blueprint, abort, redirect, render_template, request, session
from flask_login import current_user

from portal.auth.access import allow, public
from portal.auth.roles import Role
from portal.auth.services import change_locale
from portal.commit import perform
from portal.navigation import widgets_for
from portal.redirects import safe_next

bp = Blueprint("web", __name__)


@bp.route("/")
@allow(*Role)
def home():
    return render_template("portal/home.html", widgets=widgets_for(current_user))


@bp.route("/locale", methods=["POST"])
@public(transitions=("user.locale_changed",))
def set_locale():
    """Switch the language; for a signed-in user it becomes their preference."""
    locale = request.form.get("locale", "")
    if locale not in ("zh_CN", "en"):
        abort(400)
    session["locale"] = locale
    if current_user.is_authenticated and current_user.locale != locale:
        perform(change_locale, current_user._get_current_object(), locale)
    return redirect(safe_next(request.form.get("next")))


@bp.route("/healthz")
@public
def healthz():
    return {"status": "ok"}
