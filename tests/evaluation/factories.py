"""Factories of the evaluation tests: a quarter's history written directly (orders with the
timestamps and flags the KPIs count), then computed and published through the services.

Rows are inserted as the service area would have derived them, so that each test controls
exactly what a KPI counts. Call them inside an unscoped (HQ) block.
"""
import itertools
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import select

from evaluation import compute, publication
from evaluation.models import (
    Appeal,
    Inspection,
    KpiValue,
    Proposal,
    Quarter,
    RankingReport,
    Report,
    Result,
)
from portal import clock
from portal.auth.models import User
from portal.extensions import db
from portal.periods import Period
from service.models import Complaint, Part, PartReturn, Revisit, WorkOrder, WorkOrderPart
from tenants.models import ProductModel

_seq = itertools.count(1)
ZONE = ZoneInfo("Asia/Shanghai")
Q = Period(2026, 2)  # the quarter the tests evaluate (ended)


def at(day: date, hour: int = 10, minute: int = 0) -> datetime:
    """A local wall-clock time on `day`, as aware UTC."""
    return datetime.combine(day, time(hour, minute), tzinfo=ZONE).astimezone(UTC)


def _model(line) -> int:
    return db.session.scalar(select(ProductModel.id).where(
        ProductModel.product_line_id == line.id).order_by(ProductModel.id))


def order(agency, line, *, day: date | None = None, service_type: str = "carry_in",
          hours: float = 1.0, first_time_fix: bool = True, certified: bool = True,
          rework_of: WorkOrder | None = None, text: str = "") -> WorkOrder:
    """A completed order whose SLA clock (response, or arrival on site) is `hours` after
    receipt; completed that evening, a service day in the quarter."""
    day = day or Q.first_day + timedelta(days=10)
    received = at(day, 9)
    sla = received + timedelta(hours=hours)
    n = next(_seq)
    row = WorkOrder(
        agency_id=agency.id, number=f"WO-E{n:05d}", service_type=service_type,
        status="completed", customer_name=f"客户{n} {text}".strip(),
        customer_phone="13800000000", product_line_id=line.id, product_model_id=_model(line),
        serial_number=f"SNE{n:07d}", purchase_date=day - timedelta(days=90),
        is_in_warranty=True, received_at=received,
        responded_at=received + timedelta(minutes=30) if service_type == "onsite" else sla,
        arrived_at=sla if service_type == "onsite" else None,
        completed_at=max(sla, received) + timedelta(hours=2), service_date=day,
        distance_km=Decimal("5.00") if service_type == "onsite" else None,
        is_first_time_fix=first_time_fix, is_engineer_certified=certified,
        is_rework=rework_of is not None, rework_of_id=rework_of.id if rework_of else None,
        resolution=f"修复 {text}".strip())
    # The completion must not precede the SLA clock; it is a day later for late clocks.
    if row.completed_at.astimezone(ZONE).date() != day:
        row.service_date = row.completed_at.astimezone(ZONE).date()
    db.session.add(row)
    db.session.flush()
    return row


def revisit(o: WorkOrder, score: int, comment: str = "") -> Revisit:
    row = Revisit(agency_id=o.agency_id, work_order_id=o.id, score=score, comment=comment,
                  revisited_at=o.completed_at + timedelta(days=1))
    db.session.add(row)
    db.session.flush()
    return row


def complaint(agency, *, closed_on: date, substantiated: bool = True, o=None,
              text: str = "客户投诉") -> Complaint:
    received = at(closed_on - timedelta(days=3))
    row = Complaint(agency_id=agency.id, work_order_id=o.id if o else None, channel="hotline",
                    severity="major", description=text, status="closed",
                    received_at=received, response="已处理", responded_at=received,
                    verdict="substantiated" if substantiated else "not_substantiated",
                    verdict_note="经核实", closed_at=at(closed_on, 15))
    db.session.add(row)
    db.session.flush()
    return row


def part_for(line) -> Part:
    part = db.session.scalars(select(Part).where(Part.product_line_id == line.id)).first()
    if part is None:
        n = next(_seq)
        part = Part(part_number=f"EP-{n}", name_zh="压缩机", name_en="Compressor",
                    product_line_id=line.id, unit_price=Decimal("100.00"), is_returnable=True)
        db.session.add(part)
        db.session.flush()
    return part


def part_return(agency, line, *, due_on: date, shipped_on: date | None,
                status: str | None = None) -> PartReturn:
    """A return obligation due `due_on`, shipped on `shipped_on` (None: still due)."""
    o = order(agency, line, day=Q.previous().first_day + timedelta(days=10))  # not counted
    part = part_for(line)
    used = WorkOrderPart(agency_id=agency.id, work_order_id=o.id, part_id=part.id, quantity=1,
                         unit_price=part.unit_price)
    db.session.add(used)
    db.session.flush()
    status = status or ("due" if shipped_on is None else "shipped")
    row = PartReturn(agency_id=agency.id, work_order_part_id=used.id, work_order_id=o.id,
                     part_id=part.id, quantity=1, unit_price=part.unit_price, status=status,
                     due_on=due_on, shipped_on=shipped_on,
                     shipped_at=at(shipped_on) if shipped_on else None,
                     inspected_at=at(shipped_on) if status in ("accepted", "rejected") else None,
                     reject_reason="非原装件" if status == "rejected" else None)
    db.session.add(row)
    db.session.flush()
    return row


def settlement_lines(agency, line, *, month: int, decisions: list[str], year: int = Q.year):
    """An approved settlement of `month` with one order line per decision."""
    from settlement.models import Claim, Settlement, SettlementLine

    n = next(_seq)
    now = at(date(year, month, 28))
    settlement = Settlement(agency_id=agency.id, number=f"ST-E{n:05d}", year=year, month=month,
                            status="approved", computed_on=date(year, month, 28),
                            submitted_at=now, approved_at=now, line_count=len(decisions))
    db.session.add(settlement)
    db.session.flush()
    for decision in decisions:
        o = order(agency, line, day=date(year, month, 5))
        claim = Claim(agency_id=agency.id, settlement_id=settlement.id, work_order_id=o.id)
        db.session.add(claim)
        db.session.flush()
        db.session.add(SettlementLine(
            agency_id=agency.id, settlement_id=settlement.id, claim_id=claim.id, kind="order",
            work_order_id=o.id, claimed_amount=Decimal("0.00"), decision=decision,
            approved_amount=Decimal("0.00") if decision != "pending" else None,
            reason_code="other" if decision in ("adjusted", "denied") else None))
    db.session.flush()
    return settlement


# --- evaluations ----------------------------------------------------------------------------------


def computed(period: Period = Q) -> Quarter:
    return compute.compute_quarter(period)


def published(period: Period = Q, inspections: dict | None = None) -> Quarter:
    """Computed, with the given inspection scores ({agency: score}), and published."""
    quarter = computed(period)
    if inspections:
        for agency, score in inspections.items():
            inspect(quarter, agency, score)
        quarter = computed(period)
    publication.publish_quarter(quarter)
    return quarter


def inspect(quarter: Quarter, agency, score: int) -> Inspection:
    row = Inspection(agency_id=agency.id, quarter_id=quarter.id, score=score)
    db.session.add(row)
    db.session.flush()
    return row


def result_of(quarter: Quarter, agency) -> Result:
    return db.session.scalars(select(Result).where(Result.quarter_id == quarter.id,
                                                   Result.agency_id == agency.id)).one()


def values_of(result: Result) -> dict[str, KpiValue]:
    return {v.code: v for v in db.session.scalars(select(KpiValue).where(
        KpiValue.agency_id == result.agency_id, KpiValue.result_id == result.id))}


# --- light rows for the isolation test (no computation, no PDF) -----------------------------------


LIGHT = Period(2025, 1)


def light_quarter(period: Period = LIGHT) -> Quarter:
    """A published quarter without any computation (made once)."""
    quarter = db.session.scalars(select(Quarter).where(
        Quarter.year == period.year, Quarter.quarter == period.quarter)).one_or_none()
    if quarter is None:
        now = clock.now()
        quarter = Quarter(year=period.year, quarter=period.quarter, scheme_id=1,
                          status="published", agency_count=3, published_at=now,
                          appeal_deadline_at=now + timedelta(days=7))
        db.session.add(quarter)
        db.session.flush()
    return quarter


def made_result(agency, quarter, **values) -> tuple[Result, bool]:
    """The agency's result of `quarter`, made with `values` when it has none; (result, made)."""
    result = db.session.scalars(select(Result).where(Result.quarter_id == quarter.id,
                                                     Result.agency_id == agency.id)
                                ).one_or_none()
    if result is not None:
        return result, False
    result = Result(agency_id=agency.id, quarter_id=quarter.id, region_id=agency.region_id,
                    tier_at=agency.tier, agency_status_at=agency.status, **values)
    db.session.add(result)
    db.session.flush()
    return result, True


def light_result(agency, status: str = "published") -> Result:
    return made_result(agency, light_quarter(), score=Decimal("85.00"), grade="B",
                     rank_national=1, rank_national_of=3, rank_region=1, rank_region_of=2,
                     status=status, report_version=1)[0]


def light_report(agency) -> Report:
    result = light_result(agency)
    n = next(_seq)
    report = Report(agency_id=agency.id, result_id=result.id, version=1 + n, locale="en",
                    number=f"EVL-T-{n}", sha256=f"{n:064x}", fingerprint=f"{n:064x}",
                    size_bytes=20, content=b"%PDF-1.4 test " + agency.legal_name.encode())
    db.session.add(report)
    db.session.flush()
    return report


def light_appeal(agency) -> Appeal:
    result = light_result(agency)
    appeal = db.session.scalars(select(Appeal).where(Appeal.result_id == result.id,
                                                     Appeal.agency_id == agency.id)).one_or_none()
    if appeal is None:
        appeal = Appeal(agency_id=agency.id, result_id=result.id,
                        reason=f"申诉理由 {agency.legal_name}")
        db.session.add(appeal)
        db.session.flush()
    return appeal


def light_proposal(agency) -> Proposal:
    result = light_result(agency)
    proposal = Proposal(agency_id=agency.id, result_id=result.id, kind="demote", from_tier=3,
                        to_tier=2, reasons="grade_d")
    db.session.add(proposal)
    db.session.flush()
    return proposal


def light_ranking() -> RankingReport:
    quarter = light_quarter()
    found = db.session.scalars(select(RankingReport).where(
        RankingReport.quarter_id == quarter.id)).first()
    if found is None:
        found = RankingReport(quarter_id=quarter.id, version=1, locale="en",
                              number="EVL-T-NET", sha256="f" * 64, fingerprint="f" * 64,
                              size_bytes=10, content=b"%PDF-1.4 x")
        db.session.add(found)
        db.session.flush()
    return found




def person(role) -> User:
    """A user of `role` in the standard world: who performs a service in a service test."""
    return db.session.scalars(select(User).where(User.role == role).order_by(User.id)).first()
