"""Input shapes of the hotline's pages; the rules live in dispatch.requests."""
from flask_babel import lazy_gettext as _l
from wtforms import (
    DateField,
    DateTimeLocalField,
    HiddenField,
    SelectField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Length, Optional

from portal.forms import PortalForm

DATETIME_FORMATS = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"]


def _id_select(label, **kw):
    # Unknown or foreign ids reach the service, which answers with a translated error.
    return SelectField(label, coerce=int, validate_choice=False, default=0, **kw)


class CallForm(PortalForm):
    """A call at the hotline (来电): the customer, the address, the product and the fault."""

    call_key = HiddenField()
    customer_name = StringField(_l("Customer name"), validators=[DataRequired(),
                                                                 Length(max=64)])
    customer_phone = StringField(_l("Customer phone"), validators=[DataRequired(),
                                                                   Length(max=32)])
    province_id = _id_select(_l("Province"))
    city = StringField(_l("City"), validators=[DataRequired(), Length(max=64)])
    district = StringField(_l("District"), validators=[DataRequired(), Length(max=64)])
    street = StringField(_l("Street and house number"), validators=[Length(max=200)],
                         description=_l("Required for an on-site repair."))
    product_line_id = _id_select(_l("Product line"))
    product_model_id = _id_select(_l("Product model"))
    serial_number = StringField(_l("Serial number"), validators=[DataRequired(),
                                                                 Length(max=64)])
    purchase_date = DateField(_l("Purchase date"), validators=[Optional()])
    service_type = SelectField(_l("Requested service"), validate_choice=False)
    fault_description = TextAreaField(_l("Fault description"),
                                      validators=[DataRequired(), Length(max=4000)])
    preferred_from = DateTimeLocalField(_l("Preferred from"), format=DATETIME_FORMATS,
                                        validators=[Optional()])
    preferred_to = DateTimeLocalField(_l("Preferred until"), format=DATETIME_FORMATS,
                                      validators=[Optional()])
    note = TextAreaField(_l("Call note"), validators=[Length(max=2000)],
                         description=_l("What the caller said beyond the fault (optional)."))
    submit = SubmitField(_l("Record the call"))


class CancelRequestForm(PortalForm):
    version = HiddenField()
    reason = TextAreaField(_l("Reason"), validators=[DataRequired(), Length(min=2, max=2000)])
    submit = SubmitField(_l("Cancel the request"))
