"""How the audit log names service records: work orders and parts requests by number,
complaints, revisits and returns by their order, catalog entries by code."""
from flask_babel import lazy_gettext as _l
from sqlalchemy import String, cast, func, select

from portal.audit.subjects import Field, day, flag, moment, ref, state, subject
from service.models import (
    Complaint,
    FaultCode,
    Part,
    PartReturn,
    PartsRequest,
    RepairCode,
    Revisit,
    WorkOrder,
)
from service.states import (
    CHANNEL_LABELS,
    COMPLAINT_STATUS_LABELS,
    ORDER_STATUS_LABELS,
    REQUEST_STATUS_LABELS,
    RETURN_STATUS_LABELS,
    SEVERITY_LABELS,
    VERDICT_LABELS,
)
from tenants.models import SERVICE_TYPE_LABELS


def _order_of(model):
    """A record named by its work order's number ("#12" without one)."""
    return select(model.id, func.coalesce(WorkOrder.number, "#" + cast(model.id, String))
                  ).outerjoin(WorkOrder, (WorkOrder.agency_id == model.agency_id)
                              & (WorkOrder.id == model.work_order_id))


def _return_label():
    return select(PartReturn.id, Part.part_number + " · " + WorkOrder.number).join(
        Part, Part.id == PartReturn.part_id).join(
        WorkOrder, (WorkOrder.agency_id == PartReturn.agency_id)
        & (WorkOrder.id == PartReturn.work_order_id))


def register() -> None:
    order = ref("WorkOrder", _l("Work order"))
    subject("WorkOrder", select(WorkOrder.id, WorkOrder.number), "service.order", "order_id",
            noun=_l("Work order"), model=WorkOrder, fields={
                "number": Field(_l("Order number")),
                "status": state("service.order_status", _l("Status"), ORDER_STATUS_LABELS),
                "service_type": state("service_type", _l("Service type"), SERVICE_TYPE_LABELS),
                "customer_name": Field(_l("Customer name")),
                "customer_phone": Field(_l("Customer phone")),
                "customer_address": Field(_l("Customer address")),
                "product_line_id": ref("ProductLine", _l("Product line")),
                "product_model_id": ref("ProductModel", _l("Product model")),
                "serial_number": Field(_l("Serial number")),
                "purchase_date": day(_l("Purchase date")),
                "is_in_warranty": flag(_l("In warranty")),
                "received_at": moment(_l("Received")),
                "responded_at": moment(_l("Responded")),
                "arrived_at": moment(_l("Arrived on site")),
                "completed_at": moment(_l("Completed")),
                "distance_km": Field(_l("Distance (km)")),
                "engineer_id": ref("Engineer", _l("Engineer")),
                "is_engineer_certified": flag(_l("Certified engineer")),
                "fault_code_id": ref("FaultCode", _l("Fault code")),
                "fault_description": Field(_l("Fault description")),
                "resolution": Field(_l("Resolution")),
                "is_first_time_fix": flag(_l("Fixed at the first visit")),
                "is_rework": flag(_l("Rework")),
                "rework_of_id": ref("WorkOrder", _l("Rework of")),
                "marked_rework": ref("WorkOrder", _l("Marked as rework")),
                "return_ids": ref("PartReturn", _l("Defective part returns to HQ")),
                "cancel_reason": Field(_l("Reason")),
            })
    subject("Complaint", _order_of(Complaint), "service.complaint", "complaint_id",
            noun=_l("Complaint"), model=Complaint, fields={
                "status": state("service.complaint_status", _l("Status"),
                                COMPLAINT_STATUS_LABELS),
                "channel": state("service.complaint_channel", _l("Channel"), CHANNEL_LABELS),
                "severity": state("service.complaint_severity", _l("Severity"),
                                  SEVERITY_LABELS),
                "verdict": state("service.complaint_verdict", _l("Verdict"), VERDICT_LABELS),
                "work_order_id": order,
            })
    subject("Revisit", _order_of(Revisit), None, None, noun=_l("Revisit"), model=Revisit,
            fields={"work_order_id": order, "score": Field(_l("Score")),
                    "comment": Field(_l("Customer's comment")),
                    "revisited_at": moment(_l("Revisited at"))})
    subject("PartsRequest", select(PartsRequest.id, PartsRequest.number),
            "service.parts_request", "request_id", noun=_l("Parts request"),
            model=PartsRequest, fields={
                "status": state("service.request_status", _l("Status"), REQUEST_STATUS_LABELS),
                "carrier": Field(_l("Carrier")),
                "tracking_number": Field(_l("Tracking number")),
            })
    subject("PartReturn", _return_label, "service.part_return", "return_id",
            noun=_l("Defective part return"), model=PartReturn, fields={
                "status": state("service.return_status", _l("Status"), RETURN_STATUS_LABELS),
                "work_order_id": order, "part_id": ref("Part", _l("Part")),
                "carrier": Field(_l("Carrier")),
                "tracking_number": Field(_l("Tracking number")),
                "reject_reason": Field(_l("Reason for rejection")),
            })
    subject("Part", select(Part.id, Part.part_number), "service.part_edit", "part_id",
            noun=_l("Part"), model=Part,
            fields={"part_number": Field(_l("Part number")),
                    "unit_price": Field(_l("Unit price (CNY)"), "money")})
    subject("RepairCode", select(RepairCode.id, RepairCode.code), "service.repair_code_edit",
            "repair_code_id", noun=_l("Repair code"), model=RepairCode,
            fields={"standard_hours": Field(_l("Standard hours"))})
    subject("FaultCode", select(FaultCode.id, FaultCode.code), "service.fault_code_edit",
            "fault_code_id", noun=_l("Fault code"), model=FaultCode)
