"""Reads of the service area: list statements, figures and dashboards, all through the guard.

Each list is one statement (paged: the page and its count); each dashboard a fixed number of
GROUP BY queries, whatever the number of rows.
"""
from dataclasses import dataclass

from flask import g, request
from flask_login import current_user
from sqlalchemy import false, func, or_, select
from sqlalchemy.orm import joinedload, selectinload

from certification.models import Engineer
from portal.auth.roles import Role
from portal.clock import local_day_bounds, local_today
from portal.extensions import db
from portal.listing import int_arg
from portal.timeutil import parse_date
from service.models import (
    OPEN_REQUEST_STATUSES,
    Complaint,
    ComplaintStatus,
    FaultCode,
    OrderStatus,
    Part,
    PartReturn,
    PartsRequest,
    PartsRequestLine,
    PartStock,
    RepairCode,
    RequestStatus,
    ReturnStatus,
    Revisit,
    Severity,
    Verdict,
    WorkOrder,
)
from tenants.models import Agency, AgencyProductLine, ProductLine, Region, ServiceType

SEARCH_LIMIT = 64


def _arg(name: str, allowed) -> str | None:
    value = request.args.get(name, "")
    return value if value in {str(a) for a in allowed} else None


def _choices(stmt, **filters):
    """``name=(Enum, column)``: the rows whose column is the query string's value of `name`,
    when it is one of the enum's (junk is ignored)."""
    for name, (allowed, column) in filters.items():
        if value := _arg(name, allowed):
            stmt = stmt.where(column == value)
    return stmt


@dataclass(frozen=True)
class AgencyFilter:
    """A list narrowed to one agency by its code (``?agency_code=GD-C01``; ``?agency=<id>``
    still works). Only readers of several agencies have it: an agency user reads its own."""

    shown: bool
    code: str = ""
    agency_id: int | None = None
    is_unknown: bool = False


CODE_LIMIT = 16  # the longest agency code


def agency_filter() -> AgencyFilter:
    """This request's agency filter, resolved once (the view and the statements share it).

    The code is looked up through the tenant guard: a regional manager's code of another
    region is unknown, exactly like a code that does not exist.
    """
    if "_agency_filter" not in g:
        g._agency_filter = _resolve_agency_filter()
    return g._agency_filter


def _resolve_agency_filter() -> AgencyFilter:
    if getattr(current_user, "agency_id", None) is not None:
        return AgencyFilter(shown=False)
    code = request.args.get("agency_code", "").strip()
    if not code:
        agency_id = int_arg("agency", None)  # the links of earlier versions
        if agency_id is None:
            return AgencyFilter(shown=True)
        code = db.session.scalar(select(Agency.code).where(Agency.id == agency_id))
        return AgencyFilter(shown=True, code=code or "", agency_id=agency_id,
                            is_unknown=code is None)
    agency = agency_by_code(code)
    if agency is None:  # too long a code is unknown too (shown cut to the field's length)
        return AgencyFilter(shown=True, code=code[:CODE_LIMIT], is_unknown=True)
    return AgencyFilter(shown=True, code=agency.code, agency_id=agency.id)


def agency_by_code(code: str | None) -> Agency | None:
    """The agency with this code (in any letter case) if the reader may see it, else None."""
    code = (code or "").strip()
    if not code or len(code) > CODE_LIMIT:
        return None
    found = list(db.session.scalars(select(Agency).where(
        func.upper(Agency.code) == code.upper())))
    exact = [agency for agency in found if agency.code == code]
    if exact:
        return exact[0]
    return found[0] if len(found) == 1 else None


def _agency_filter(stmt, column):
    """HQ and regional managers narrow a list to one agency; an unknown code finds nothing."""
    chosen = agency_filter()
    if chosen.is_unknown:
        return stmt.where(false())
    if chosen.agency_id is not None:
        stmt = stmt.where(column == chosen.agency_id)
    return stmt


def engineer_ids_of(user):
    """The engineers records linked to an engineer's account (a subquery)."""
    return select(Engineer.id).where(Engineer.user_id == user.id)


def restrict_to_engineer(stmt):
    """An engineer reads only the orders assigned to them."""
    if current_user.role == Role.ENGINEER:
        stmt = stmt.where(WorkOrder.engineer_id.in_(engineer_ids_of(current_user)))
    return stmt


# --- work orders -----------------------------------------------------------------------------


def order_filters(stmt):
    """Apply the list's filters from the query string; junk values are ignored."""
    args = request.args
    stmt = _choices(stmt, status=(OrderStatus, WorkOrder.status),
                    type=(ServiceType, WorkOrder.service_type))
    if line := int_arg("line", None):
        stmt = stmt.where(WorkOrder.product_line_id == line)
    if engineer := int_arg("engineer", None):
        stmt = stmt.where(WorkOrder.engineer_id == engineer)
    if start := parse_date(args.get("from")):
        stmt = stmt.where(WorkOrder.received_at >= local_day_bounds(start)[0])
    if end := parse_date(args.get("to")):
        stmt = stmt.where(WorkOrder.received_at < local_day_bounds(end)[1])
    if (warranty := args.get("warranty")) in ("in", "out"):
        stmt = stmt.where(WorkOrder.is_in_warranty.is_(warranty == "in"))
    if (rework := args.get("rework")) in ("1", "0"):
        stmt = stmt.where(WorkOrder.is_rework.is_(rework == "1"))
    if (certified := args.get("certified")) in ("1", "0"):
        stmt = stmt.where(WorkOrder.is_engineer_certified.is_(certified == "1"))
    if q := args.get("q", "").strip()[:SEARCH_LIMIT]:
        # Prefix searches use the (agency_id, …) indexes; serial numbers are stored upper-case.
        stmt = stmt.where(or_(WorkOrder.number.like(_escape(q) + "%", escape="\\"),
                              WorkOrder.serial_number.like(_escape(q.upper()) + "%",
                                                           escape="\\")))
    stmt = _agency_filter(stmt, WorkOrder.agency_id)
    return restrict_to_engineer(stmt)


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


ORDER_SORTS = {"received": WorkOrder.received_at, "number": WorkOrder.number,
               "completed": WorkOrder.completed_at, "status": WorkOrder.status,
               "service_date": WorkOrder.service_date}


def order_list_statement():
    return order_filters(select(WorkOrder).options(
        joinedload(WorkOrder.engineer), joinedload(WorkOrder.product_model),
        joinedload(WorkOrder.product_line), joinedload(WorkOrder.agency)))


def order_detail(order: WorkOrder) -> dict:
    """Everything the order page shows, in a fixed number of queries."""
    from service.models import WorkOrderPart, WorkOrderRepair

    repairs = list(db.session.scalars(
        select(WorkOrderRepair).options(joinedload(WorkOrderRepair.repair_code))
        .where(WorkOrderRepair.agency_id == order.agency_id,
               WorkOrderRepair.work_order_id == order.id).order_by(WorkOrderRepair.id)))
    parts = list(db.session.scalars(
        select(WorkOrderPart).options(joinedload(WorkOrderPart.part))
        .where(WorkOrderPart.agency_id == order.agency_id,
               WorkOrderPart.work_order_id == order.id).order_by(WorkOrderPart.id)))
    related = list(db.session.scalars(select(WorkOrder).where(
        WorkOrder.agency_id == order.agency_id,
        or_(WorkOrder.id == (order.rework_of_id or 0), WorkOrder.rework_of_id == order.id))
        .order_by(WorkOrder.received_at)))
    returns = list(db.session.scalars(select(PartReturn).options(joinedload(PartReturn.part))
                                      .where(PartReturn.agency_id == order.agency_id,
                                             PartReturn.work_order_id == order.id)))
    revisit = db.session.scalars(select(Revisit).where(
        Revisit.agency_id == order.agency_id, Revisit.work_order_id == order.id)).one_or_none()
    complaints = list(db.session.scalars(select(Complaint).where(
        Complaint.agency_id == order.agency_id, Complaint.work_order_id == order.id)))
    return {"repairs": repairs, "parts": parts, "revisit": revisit, "returns": returns,
            "rework_of": next((o for o in related if o.id == order.rework_of_id), None),
            "reworks": [o for o in related if o.rework_of_id == order.id],
            "complaints": complaints, "parts_requests": order_parts_requests(order),
            "today": local_today()}


def order_parts_requests(order: WorkOrder) -> list[tuple[PartsRequest, list[PartsRequestLine]]]:
    """The parts requests with lines for `order`, oldest first, each with those lines (one
    query: requests are linked to an order through their lines)."""
    rows = db.session.execute(
        select(PartsRequestLine, PartsRequest)
        .join(PartsRequest, (PartsRequest.agency_id == PartsRequestLine.agency_id)
              & (PartsRequest.id == PartsRequestLine.request_id))
        .options(joinedload(PartsRequestLine.part))
        .where(PartsRequestLine.agency_id == order.agency_id,
               PartsRequestLine.work_order_id == order.id)
        .order_by(PartsRequest.submitted_at, PartsRequest.id, PartsRequestLine.id)).all()
    grouped: dict[int, tuple[PartsRequest, list[PartsRequestLine]]] = {}
    for line, parts_request in rows:
        grouped.setdefault(parts_request.id, (parts_request, []))[1].append(line)
    return list(grouped.values())


def engineers_of(agency_id: int | None) -> list[Engineer]:
    if agency_id is None:
        return []
    return list(db.session.scalars(select(Engineer).where(Engineer.agency_id == agency_id)
                                   .order_by(Engineer.status, Engineer.name)))


def authorized_lines(agency_id: int) -> list[ProductLine]:
    """The product lines the agency may service, with their models (two queries)."""
    return list(db.session.scalars(
        select(ProductLine)
        .join(AgencyProductLine, (AgencyProductLine.product_line_id == ProductLine.id)
              & (AgencyProductLine.agency_id == agency_id))
        .options(selectinload(ProductLine.models)).order_by(ProductLine.code)))


def product_lines() -> list[ProductLine]:
    return list(db.session.scalars(select(ProductLine).options(selectinload(ProductLine.models))
                                   .order_by(ProductLine.code)))


def catalog_for_lines(line_ids) -> dict:
    """Active repair codes, fault codes and parts of the given product lines (form choices)."""
    ids = list(line_ids) or [0]
    return {
        "repair_codes": list(db.session.scalars(select(RepairCode).where(
            RepairCode.product_line_id.in_(ids), RepairCode.is_active.is_(True))
            .order_by(RepairCode.product_line_id, RepairCode.code))),
        "fault_codes": list(db.session.scalars(select(FaultCode).where(
            FaultCode.product_line_id.in_(ids), FaultCode.is_active.is_(True))
            .order_by(FaultCode.product_line_id, FaultCode.code))),
        "parts": list(db.session.scalars(select(Part).where(
            Part.product_line_id.in_(ids), Part.is_active.is_(True)).order_by(Part.part_number))),
    }


def active_parts(line_ids) -> list[Part]:
    """The catalog's parts in use for the given product lines (request form choices)."""
    return list(db.session.scalars(select(Part).where(
        Part.product_line_id.in_(list(line_ids) or [0]), Part.is_active.is_(True))
        .order_by(Part.part_number)))


def export_rows(stmt):
    """Every selected order (the view refuses an export beyond its limit first)."""
    return db.session.scalars(stmt.execution_options(yield_per=1000))


# --- catalogs ----------------------------------------------------------------------------------


CATALOG_MODELS = {"repair_code": RepairCode, "fault_code": FaultCode, "part": Part}


def catalog_statement(kind: str):
    model = CATALOG_MODELS[kind]
    stmt = select(model).options(joinedload(model.product_line))
    if line := int_arg("line", None):
        stmt = stmt.where(model.product_line_id == line)
    if (active := request.args.get("active")) in ("1", "0"):
        stmt = stmt.where(model.is_active.is_(active == "1"))
    if q := request.args.get("q", "").strip()[:SEARCH_LIMIT]:
        key = model.part_number if kind == "part" else model.code
        names = (model.name_zh, model.name_en) if kind == "part" else (
            model.description_zh, model.description_en)
        like = "%" + _escape(q) + "%"
        stmt = stmt.where(or_(key.ilike(like, escape="\\"),
                              *(n.ilike(like, escape="\\") for n in names)))
    return stmt


# --- revisits and complaints -------------------------------------------------------------------


def revisit_list_statement():
    stmt = select(Revisit).options(joinedload(Revisit.work_order).joinedload(WorkOrder.agency))
    if score := int_arg("score", None, high=5):
        stmt = stmt.where(Revisit.score == score)
    return _agency_filter(stmt, Revisit.agency_id)


def complaint_list_statement():
    stmt = select(Complaint).options(joinedload(Complaint.agency),
                                     joinedload(Complaint.work_order))
    stmt = _choices(stmt, status=(ComplaintStatus, Complaint.status),
                    severity=(Severity, Complaint.severity),
                    verdict=(Verdict, Complaint.verdict))
    return _agency_filter(stmt, Complaint.agency_id)


# --- parts supply ------------------------------------------------------------------------------


def request_list_statement():
    stmt = select(PartsRequest).options(joinedload(PartsRequest.agency))
    if status := _arg("status", RequestStatus):
        stmt = stmt.where(PartsRequest.status == status)
    elif request.args.get("status") == "open":
        stmt = stmt.where(PartsRequest.status.in_(OPEN_REQUEST_STATUSES))
    return _agency_filter(stmt, PartsRequest.agency_id)


def request_line_counts(request_ids) -> dict[int, tuple[int, int]]:
    """{request id: (lines, pieces requested)} for a page of requests, in one query."""
    rows = db.session.execute(
        select(PartsRequestLine.request_id, func.count(PartsRequestLine.id),
               func.sum(PartsRequestLine.quantity))
        .where(PartsRequestLine.request_id.in_(list(request_ids) or [0]))
        .group_by(PartsRequestLine.request_id)).all()
    return {rid: (n, pieces) for rid, n, pieces in rows}


def request_lines(parts_request: PartsRequest) -> list[PartsRequestLine]:
    return list(db.session.scalars(
        select(PartsRequestLine)
        .options(joinedload(PartsRequestLine.part), joinedload(PartsRequestLine.work_order))
        .where(PartsRequestLine.agency_id == parts_request.agency_id,
               PartsRequestLine.request_id == parts_request.id)
        .order_by(PartsRequestLine.id)))


def open_orders_for_parts(agency_id: int) -> list[WorkOrder]:
    return list(db.session.scalars(select(WorkOrder).where(
        WorkOrder.agency_id == agency_id, WorkOrder.status == OrderStatus.OPEN)
        .order_by(WorkOrder.received_at.desc()).limit(200)))


def stock_statement():
    stmt = select(PartStock).options(joinedload(PartStock.part).joinedload(Part.product_line),
                                     joinedload(PartStock.agency))
    if (available := request.args.get("available")) == "1":
        stmt = stmt.where(PartStock.quantity > 0)
    elif available == "0":
        stmt = stmt.where(PartStock.quantity == 0)
    return _agency_filter(stmt, PartStock.agency_id)


def stock_for(agency_id: int) -> list[PartStock]:
    return list(db.session.scalars(select(PartStock).options(joinedload(PartStock.part))
                                   .where(PartStock.agency_id == agency_id,
                                          PartStock.quantity > 0)
                                   .join(Part, Part.id == PartStock.part_id)
                                   .order_by(Part.part_number)))


def return_list_statement():
    stmt = select(PartReturn).options(joinedload(PartReturn.part),
                                      joinedload(PartReturn.work_order),
                                      joinedload(PartReturn.agency))
    stmt = _choices(stmt, status=(ReturnStatus, PartReturn.status))
    if request.args.get("overdue") == "1":
        stmt = overdue_filter(stmt, local_today())
    return _agency_filter(stmt, PartReturn.agency_id)


def overdue_filter(stmt, today):
    """Still due after the due date, or shipped after it (settlement deducts both)."""
    return stmt.where(or_(
        (PartReturn.status == ReturnStatus.DUE) & (PartReturn.due_on < today),
        PartReturn.shipped_on > PartReturn.due_on))


def overdue_returns_statement(today=None):
    """Overdue defective-part returns, for lists and settlement deductions."""
    return overdue_filter(select(PartReturn), today or local_today())


# --- dashboards --------------------------------------------------------------------------------


def _count(model, *where):
    return select(func.count(model.id)).where(*where).scalar_subquery()


def agency_figures(agency_id: int) -> dict:
    """An agency's four figures in one query."""
    today = local_today()
    row = db.session.execute(select(
        _count(WorkOrder, WorkOrder.agency_id == agency_id,
               WorkOrder.status == OrderStatus.OPEN),
        _count(PartReturn, PartReturn.agency_id == agency_id,
               PartReturn.status == ReturnStatus.DUE, PartReturn.due_on < today),
        _count(PartsRequest, PartsRequest.agency_id == agency_id,
               PartsRequest.status.in_(OPEN_REQUEST_STATUSES)),
        _count(Complaint, Complaint.agency_id == agency_id,
               Complaint.status == ComplaintStatus.OPEN),
    )).one()
    return dict(zip(("open_orders", "overdue_returns", "open_requests", "open_complaints"),
                    row, strict=True))


def network_figures(region_id: int | None = None) -> dict:
    """The same figures per region: every region for HQ, one for its regional manager.

    Regions without any open work are listed too (with zeros): a quiet region is a figure.
    """
    today = local_today()
    queries = {
        "open_orders": (WorkOrder, WorkOrder.status == OrderStatus.OPEN),
        "overdue_returns": (PartReturn, (PartReturn.status == ReturnStatus.DUE)
                            & (PartReturn.due_on < today)),
        "open_requests": (PartsRequest, PartsRequest.status.in_(OPEN_REQUEST_STATUSES)),
        "open_complaints": (Complaint, Complaint.status == ComplaintStatus.OPEN),
    }
    figures: dict[str, dict[int, int]] = {}
    for name, (model, condition) in queries.items():
        figures[name] = dict(db.session.execute(
            select(Agency.region_id, func.count(model.id))
            .join(Agency, Agency.id == model.agency_id).where(condition)
            .group_by(Agency.region_id)).all())
    regions_stmt = select(Region).order_by(Region.code)
    if region_id is not None:
        regions_stmt = regions_stmt.where(Region.id == region_id)
    regions = list(db.session.scalars(regions_stmt))
    totals = {name: sum(per_region.values()) for name, per_region in figures.items()}
    return {"regions": regions, "figures": figures, "totals": totals}

