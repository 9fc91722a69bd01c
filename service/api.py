"""The public surface of the service area: what later areas (settlement, evaluation) may use.

Settlement bills completed work orders, their repairs and parts, part returns and complaints;
evaluation counts orders, revisits, complaints, returns and parts requests. They import the
record types, their states and the HQ agency filter from HERE, never from ``service.models`` /
``service.queries`` directly, so the service area may rearrange its modules freely behind this
file. Reading these rows is fine; changing them goes through the service transitions
(``service.services``, ``service.supply``, ``service.quality``), never by writing columns.

- Records: :class:`WorkOrder` (with :class:`WorkOrderRepair`, :class:`WorkOrderPart`),
  :class:`Revisit`, :class:`Complaint`, :class:`PartsRequest`, :class:`PartReturn`, and the
  HQ catalogs :class:`Part`, :class:`RepairCode`, :class:`FaultCode`.
- States: :class:`OrderStatus`, :class:`ComplaintStatus`, :class:`Verdict`,
  :class:`RequestStatus`, :class:`ReturnStatus` and :class:`ServiceType` (the enum lives in
  tenants; use it rather than string literals like ``"phone"``).
- Query helpers: :func:`agency_filter` (the request's HQ "agency code" filter) and
  :class:`AgencyFilter`.
"""
from service.models import (
    Complaint,
    FaultCode,
    Part,
    PartReturn,
    PartsRequest,
    RepairCode,
    Revisit,
    WorkOrder,
    WorkOrderPart,
    WorkOrderRepair,
)
from service.queries import AgencyFilter, agency_filter
from service.states import (
    ComplaintStatus,
    OrderStatus,
    RequestStatus,
    ReturnStatus,
    Verdict,
)
from tenants.models import ServiceType

__all__ = [
    "AgencyFilter",
    "Complaint",
    "ComplaintStatus",
    "FaultCode",
    "OrderStatus",
    "Part",
    "PartReturn",
    "PartsRequest",
    "RepairCode",
    "RequestStatus",
    "ReturnStatus",
    "Revisit",
    "ServiceType",
    "Verdict",
    "WorkOrder",
    "WorkOrderPart",
    "WorkOrderRepair",
    "agency_filter",
]
