"""Input shapes of the service pages; the rules live in the services.

Selects of ids never validate their choices here: a foreign or unknown id reaches the service,
which answers with a clear, translated error.
"""
from flask_babel import lazy_gettext as _l
from flask_wtf.file import FileField
from wtforms import (
    BooleanField,
    DateField,
    DateTimeLocalField,
    DecimalField,
    FieldList,
    FormField,
    IntegerField,
    SelectField,
    SelectMultipleField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.validators import DataRequired, InputRequired, Length, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from portal.forms import PortalForm, PortalSubForm
from service.models import (
    CHANNEL_LABELS,
    LINE_REASON_LABELS,
    SEVERITY_LABELS,
    VERDICT_LABELS,
)
from tenants.models import SERVICE_TYPE_LABELS

DATETIME_FORMATS = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"]
PART_ROWS = 4
REQUEST_ROWS = 6


def _id_select(label, **kw):
    return SelectField(label, coerce=int, validate_choice=False, default=0, **kw)


class PartUseForm(PortalSubForm):
    part_id = _id_select(_l("Part"))
    quantity = IntegerField(_l("Quantity"), validators=[Optional()])


class WorkOrderForm(PortalForm):
    number = StringField(_l("Order number"), validators=[Optional(), Length(max=32)],
                         description=_l("Leave empty to number the order automatically."))
    service_type = SelectField(_l("Service type"),
                               choices=[(k.value, v) for k, v in SERVICE_TYPE_LABELS.items()])
    customer_name = StringField(_l("Customer name"), validators=[DataRequired(),
                                                                 Length(max=64)])
    customer_phone = StringField(_l("Customer phone"), validators=[DataRequired(),
                                                                   Length(max=32)])
    customer_address = StringField(_l("Customer address"), validators=[Length(max=300)])
    # Narrows the model, fault code, repair code and part choices; the model's line when empty.
    product_line_id = _id_select(_l("Product line"))
    product_model_id = _id_select(_l("Product model"))
    serial_number = StringField(_l("Serial number"), validators=[DataRequired(),
                                                                 Length(max=64)])
    purchase_date = DateField(_l("Purchase date"), validators=[Optional()],
                              description=_l("Empty when the customer has no proof of "
                                             "purchase: the order is then out of warranty."))
    received_at = DateTimeLocalField(_l("Received"), format=DATETIME_FORMATS,
                                     validators=[InputRequired()])
    responded_at = DateTimeLocalField(_l("Responded"), format=DATETIME_FORMATS,
                                      validators=[Optional()])
    arrived_at = DateTimeLocalField(_l("Arrived on site"), format=DATETIME_FORMATS,
                                    validators=[Optional()],
                                    description=_l("On-site repairs only."))
    completed_at = DateTimeLocalField(_l("Completed"), format=DATETIME_FORMATS,
                                      validators=[Optional()],
                                      description=_l("Completing an order locks it."))
    distance_km = DecimalField(_l("Distance (km)"), places=2, validators=[Optional()],
                               description=_l("On-site repairs only: one way, in km."))
    engineer_id = _id_select(_l("Engineer"))
    fault_code_id = _id_select(_l("Fault code"))
    fault_description = TextAreaField(_l("Fault description"),
                                      validators=[Length(max=4000)])
    repair_code_ids = SelectMultipleField(_l("Repair codes"), coerce=int,
                                          validate_choice=False,
                                          widget=ListWidget(prefix_label=False),
                                          option_widget=CheckboxInput())
    resolution = TextAreaField(_l("Resolution"), validators=[Length(max=4000)])
    is_first_time_fix = BooleanField(_l("Fixed at the first visit"), default=True)
    parts = FieldList(FormField(PartUseForm), min_entries=PART_ROWS, max_entries=20)
    # Re-shows the form with the choices of the chosen line, saving nothing (no script).
    refresh = SubmitField(_l("Update choices"))
    submit = SubmitField(_l("Save order"))


class CancelForm(PortalForm):
    reason = TextAreaField(_l("Reason"), validators=[DataRequired(), Length(min=2, max=2000)])
    submit = SubmitField(_l("Cancel order"))


class ImportForm(PortalForm):
    file = FileField(_l("CSV or XLSX file"))
    good_only = BooleanField(_l("Import the good rows even if some rows are bad"))
    submit = SubmitField(_l("Import"))


class RevisitForm(PortalForm):
    score = SelectField(_l("Score"), coerce=int, validate_choice=False,
                        choices=[(n, str(n)) for n in range(5, 0, -1)])
    comment = TextAreaField(_l("Customer's comment"), validators=[Length(max=4000)])
    revisited_at = DateTimeLocalField(_l("Revisited at"), format=DATETIME_FORMATS,
                                      validators=[Optional()],
                                      description=_l("Empty: now."))
    submit = SubmitField(_l("Save revisit"))


class ComplaintForm(PortalForm):
    agency_code = StringField(_l("Agency code"), validators=[DataRequired(), Length(max=16)],
                              description=_l("The code of the agency complained about, "
                                             "e.g. GD-C01."))
    order_number = StringField(_l("Order number"), validators=[Optional(), Length(max=32)],
                               description=_l("Optional: the order the complaint is about."))
    channel = SelectField(_l("Channel"), choices=[(k.value, v) for k, v in
                                                  CHANNEL_LABELS.items()])
    severity = SelectField(_l("Severity"), choices=[(k.value, v) for k, v in
                                                    SEVERITY_LABELS.items()])
    received_at = DateTimeLocalField(_l("Received at"), format=DATETIME_FORMATS,
                                     validators=[Optional()], description=_l("Empty: now."))
    description = TextAreaField(_l("Complaint"), validators=[DataRequired(),
                                                             Length(max=4000)])
    submit = SubmitField(_l("Record complaint"))


class ResponseForm(PortalForm):
    response = TextAreaField(_l("Your response"), validators=[DataRequired(),
                                                              Length(max=4000)])
    submit = SubmitField(_l("Send response"))


class VerdictForm(PortalForm):
    verdict = SelectField(_l("Verdict"), choices=[(k.value, v) for k, v in
                                                  VERDICT_LABELS.items()])
    verdict_note = TextAreaField(_l("Reasoning"), validators=[DataRequired(),
                                                              Length(max=4000)])
    submit = SubmitField(_l("Close with this verdict"))


class CodeForm(PortalForm):
    product_line_id = _id_select(_l("Product line"))
    code = StringField(_l("Code"), validators=[DataRequired(), Length(max=32)])
    description_zh = StringField(_l("Description (Chinese)"),
                                 validators=[DataRequired(), Length(max=200)])
    description_en = StringField(_l("Description (English)"),
                                 validators=[DataRequired(), Length(max=200)])
    is_active = BooleanField(_l("In use"), default=True)
    submit = SubmitField(_l("Save"))


class RepairCodeForm(CodeForm):
    standard_hours = DecimalField(_l("Standard hours"), places=2, validators=[InputRequired()],
                                  description=_l("Flat-rate labor hours paid for this repair."))


class PartForm(PortalForm):
    part_number = StringField(_l("Part number"), validators=[DataRequired(), Length(max=40)])
    name_zh = StringField(_l("Name (Chinese)"), validators=[DataRequired(), Length(max=120)])
    name_en = StringField(_l("Name (English)"), validators=[DataRequired(), Length(max=120)])
    product_line_id = _id_select(_l("Product line"))
    unit_price = DecimalField(_l("Unit price (CNY)"), places=2, validators=[InputRequired()])
    is_returnable = BooleanField(_l("Defective part returns to HQ"))
    is_active = BooleanField(_l("In use"), default=True)
    submit = SubmitField(_l("Save"))


class RequestLineForm(PortalSubForm):
    part_id = _id_select(_l("Part"))
    quantity = IntegerField(_l("Quantity"), validators=[Optional()])
    reason = SelectField(_l("Reason"), choices=[(k.value, v) for k, v in
                                                LINE_REASON_LABELS.items()],
                         validate_choice=False, default="stock")
    work_order_id = _id_select(_l("Work order"))


class PartsRequestForm(PortalForm):
    lines = FieldList(FormField(RequestLineForm), min_entries=REQUEST_ROWS, max_entries=20)
    note = TextAreaField(_l("Note"), validators=[Length(max=2000)])
    submit = SubmitField(_l("Submit request"))


class ActionForm(PortalForm):
    """A form whose fields are read per line by the view (decisions, receipts)."""

    submit = SubmitField(_l("Save"))


class ShipForm(PortalForm):
    carrier = StringField(_l("Carrier"), validators=[DataRequired(), Length(max=64)])
    tracking_number = StringField(_l("Tracking number"), validators=[DataRequired(),
                                                                     Length(max=64)])
    submit = SubmitField(_l("Mark as shipped"))


class InspectForm(PortalForm):
    result = SelectField(_l("Inspection result"),
                         choices=[("accepted", _l("Accepted")), ("rejected", _l("Rejected"))])
    reason = TextAreaField(_l("Reason for rejection"), validators=[Length(max=2000)])
    submit = SubmitField(_l("Record inspection"))
