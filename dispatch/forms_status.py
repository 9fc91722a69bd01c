"""The public status check's form: the request number and the phone's last four digits.

Typed forms are folded (full-width digits of a Chinese keyboard, spaces, lower case) before
the checks, so "sr２０２６１２０６-０００１" is the number the hotline gave."""
from flask_babel import lazy_gettext as _l
from wtforms import StringField, SubmitField
from wtforms.validators import DataRequired, Regexp

from dispatch.status import DIGITS, NUMBER, normal_digits, normal_number
from portal.forms import PortalForm

REQUIRED = _l("This field is required.")


class StatusForm(PortalForm):
    number = StringField(
        _l("Service request number"), filters=[normal_number],
        validators=[DataRequired(REQUIRED),
                    Regexp(NUMBER, message=_l("Enter the service request number the hotline "
                                              "gave you, like SR20261206-0001."))],
        description=_l("The number the hotline gave you when you called (SR…)."))
    digits = StringField(
        _l("Last four digits of your phone"), filters=[normal_digits],
        validators=[DataRequired(REQUIRED),
                    Regexp(DIGITS, message=_l("Enter the last four digits of the phone "
                                              "number you gave when you called."))])
    submit = SubmitField(_l("Show the progress"))
