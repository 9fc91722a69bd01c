"""Sign-in, sign-out and password change."""
from flask import (
    Blueprint,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user, login_user, logout_user

from portal.auth import services
from portal.auth.access import performs, public
from portal.auth.forms import ChangePasswordForm, SignInForm
from portal.auth.sessions import apply_user_scope
from portal.commit import perform
from portal.extensions import limiter
from portal.redirects import safe_next
from portal.throttle import (
    account_address_key,
    address_key,
    failed_sign_in,
    note_failed_sign_in,
    sign_in_wait,
)

bp = Blueprint("auth", __name__, url_prefix="/auth")


def _limit(name: str):
    return lambda: current_app.config[name]


@bp.route("/sign-in", methods=["GET", "POST"])
@public(transitions=("auth.sign_in",))
@limiter.limit(_limit("SIGN_IN_LIMITS_PER_ADDRESS"), methods=["POST"],
               key_func=address_key, deduct_when=failed_sign_in)
@limiter.limit(_limit("SIGN_IN_LIMITS_PER_ACCOUNT_ADDRESS"), methods=["POST"],
               key_func=account_address_key, deduct_when=failed_sign_in)
def sign_in():
    if current_user.is_authenticated:
        return redirect(url_for("web.home"))
    form = SignInForm()
    if form.validate_on_submit():
        # Checked before the password, so that the answer says nothing about it.
        if wait := sign_in_wait(form.email.data):
            form.form_errors.append(ngettext(
                "This account had many failed sign-ins. Wait %(num)s second and try again.",
                "This account had many failed sign-ins. Wait %(num)s seconds and try again.",
                wait))
            response = make_response(render_template("portal/sign_in.html", form=form), 429)
            response.headers["Retry-After"] = str(wait)
            return response
        def start_session(user):
            # Sign in and take the user's scope before the commit: afterwards the row is
            # expired, and an anonymous request may not read it back (row-level security).
            session.clear()
            login_user(user, remember=form.remember.data)
            apply_user_scope()
            if user.locale:
                session["locale"] = user.locale

        if perform(services.authenticate, form.email.data, form.password.data, form=form,
                   then=start_session):
            return redirect(safe_next(request.args.get("next")))
        note_failed_sign_in(form.email.data)
    return render_template("portal/sign_in.html", form=form)


@bp.route("/sign-out", methods=["POST"])
@performs("auth.sign_out", self_service=True)
def sign_out():
    perform(services.sign_out, current_user._get_current_object())
    logout_user()
    session.clear()
    flash(_("You have signed out."), "info")
    return redirect(url_for("auth.sign_in"))


@bp.route("/password", methods=["GET", "POST"])
@performs("auth.password_changed", self_service=True)
def change_password():
    form = ChangePasswordForm()
    if form.validate_on_submit():
        user = current_user._get_current_object()
        if perform(services.change_password, user, form.current.data, form.new.data,
                   form=form):
            # The session id changed with the token: sign the user in again on this device only.
            login_user(user)
            flash(_("Your password was changed. Other devices have been signed out."), "success")
            return redirect(url_for("web.home"))
    return render_template("portal/form_page.html", form=form, title=_("Change password"))
