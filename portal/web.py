"""The home page of each role and the language switch."""
from flask import Blueprint, abort, redirect, render_template, request, session
from flask_login import current_user

from portal.audit.services import record
from portal.auth.access import allow, public
from portal.auth.roles import Role
from portal.extensions import db
from portal.navigation import widgets_for
from portal.redirects import safe_next

bp = Blueprint("web", __name__)


@bp.route("/")
@allow(*Role)
def home():
    return render_template("portal/home.html", widgets=widgets_for(current_user))


@bp.route("/locale", methods=["POST"])
@public
def set_locale():
    """Switch the language; for a signed-in user it becomes their preference."""
    locale = request.form.get("locale", "")
    if locale not in ("zh_CN", "en"):
        abort(400)
    session["locale"] = locale
    if current_user.is_authenticated and current_user.locale != locale:
        before = current_user.locale
        current_user.locale = locale
        record("user.locale_changed", current_user, before={"locale": before},
               after={"locale": locale}, agency_id=current_user.agency_id)
        db.session.commit()
    return redirect(safe_next(request.form.get("next")))


@bp.route("/healthz")
@public
def healthz():
    return {"status": "ok"}
