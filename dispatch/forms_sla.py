"""Input shapes of the SLA pages; the rules live in dispatch.sla."""
from flask_babel import lazy_gettext as _l
from wtforms import IntegerField, SelectField, SubmitField
from wtforms.validators import InputRequired

from portal.forms import PortalForm


class TargetForm(PortalForm):
    """One target: a service type's milestone (optionally for one product line) in business
    minutes from the call. The choices are set by the page; any value reaches the service,
    which answers with a translated error."""

    service_type = SelectField(_l("Service type"), validate_choice=False)
    milestone = SelectField(_l("Milestone"), validate_choice=False)
    product_line_id = SelectField(_l("Product line"), coerce=int, validate_choice=False,
                                  default=0,
                                  description=_l("Leave on “All product lines” for the "
                                                 "service type's target."))
    minutes = IntegerField(_l("Target (business minutes)"), validators=[InputRequired()],
                           description=_l("Business minutes from the customer's call; a "
                                          "business day has the network calendar's working "
                                          "hours (9 hours from 08:30 to 17:30 by default)."))
    submit = SubmitField(_l("Set the target"))
