"""Input shapes of coverage (服务区域); the rules live in dispatch.coverage."""
from flask_babel import lazy_gettext as _l
from wtforms import HiddenField, SelectField, StringField, SubmitField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from dispatch.coverage import CITY_MAX, DISTRICT_MAX, REASON_MAX
from portal.forms import PortalForm


def _int_or_zero(value) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


class DeclareForm(PortalForm):
    """An area (province, city, optional district) for one product line and service type;
    the choices are the provinces and the agency's own authorizations."""

    province_id = SelectField(_l("Province"), coerce=_int_or_zero,
                              validators=[DataRequired()])
    city = StringField(_l("City"), validators=[DataRequired(), Length(max=CITY_MAX)])
    district = StringField(_l("District"), validators=[Optional(), Length(max=DISTRICT_MAX)],
                           description=_l("Leave empty for the whole city."))
    product_line_id = SelectField(_l("Product line"), coerce=_int_or_zero,
                                  validators=[DataRequired()])
    service_type = SelectField(_l("Service type"), validators=[DataRequired()])
    submit = SubmitField(_l("Declare the area"))


class DecideForm(PortalForm):
    """Approve, or reject with a reason (the reason is required for a rejection)."""

    version = HiddenField()
    reason = TextAreaField(_l("Reason (required to reject)"),
                           validators=[Optional(), Length(max=REASON_MAX)])
    approve = SubmitField(_l("Approve"))
    reject = SubmitField(_l("Reject"))


class WithdrawForm(PortalForm):
    version = HiddenField()
    reason = StringField(_l("Why (optional)"), validators=[Optional(), Length(max=REASON_MAX)])
    submit = SubmitField(_l("Withdraw"))
