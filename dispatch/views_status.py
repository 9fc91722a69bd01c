"""The public status page (服务进度查询): no sign-in, built like the certificate check.

A GET only fills the form in (a link in a text message: ?number=SR…); the look-up is the
throttled POST, so following a link never uses up anyone's allowance of failed look-ups. The
phone's digits are never taken from the address (it ends up in logs and browser history).
Only failed look-ups count, per address and per (number, address): a stranger's wrong digits
from elsewhere never block the customer's own check. An unknown number and wrong digits give
one answer.

Limits (config, read per request; the defaults are the certificate check's):
STATUS_CHECK_LIMITS_PER_ADDRESS ("20 per 15 minutes") and STATUS_CHECK_LIMITS_PER_NUMBER_ADDRESS
("5 per 15 minutes").
"""
from flask import current_app, g, render_template, request
from flask_babel import gettext as _

from dispatch.forms_status import StatusForm
from dispatch.status import NUMBER_MAX, normal_number, public_status
from dispatch.views import bp
from portal.auth.access import public
from portal.extensions import limiter
from portal.throttle import address_key


def _limit(name: str, default: str):
    return lambda: current_app.config.get(name, default)


def _number_address_key() -> str:
    """Failed look-ups of one number from one address."""
    number = normal_number(request.form.get("number"))[:NUMBER_MAX]
    return f"status-check:{number}|{address_key()}"


def _lookup_failed(response) -> bool:
    """Only failed look-ups count against the limits (not successes, not bad input)."""
    return bool(g.get("_status_lookup_failed"))


@bp.route("/status", methods=["GET", "POST"])
@public(read_only=True)
@limiter.limit(_limit("STATUS_CHECK_LIMITS_PER_ADDRESS", "20 per 15 minutes"),
               methods=["POST"], key_func=address_key, deduct_when=_lookup_failed)
@limiter.limit(_limit("STATUS_CHECK_LIMITS_PER_NUMBER_ADDRESS", "5 per 15 minutes"),
               methods=["POST"], key_func=_number_address_key, deduct_when=_lookup_failed)
def status():
    """The customer's check: request number + the phone's last four digits → the progress."""
    form = StatusForm()
    if request.method == "GET":
        form.number.data = normal_number(request.args.get("number"))[:NUMBER_MAX]
        return render_template("dispatch/status.html", form=form, result=None)
    if not form.validate_on_submit():
        return render_template("dispatch/status.html", form=form, result=None), 400
    result = public_status(form.number.data, form.digits.data)
    if result is None:
        g._status_lookup_failed = True
        form.form_errors.append(_("No service request matches this number and these digits. "
                                  "Check both and try again."))
    form.digits.data = ""  # the digits are not written back into the page
    return render_template("dispatch/status.html", form=form, result=result)
