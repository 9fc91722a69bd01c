"""Synthetic network, settlement: rate cards, and per agency one claim a month for the
completed in-warranty orders of that month, with overdue returns and substantiated complaints
deducted; older months paid, recent ones in review, submitted, returned or still drafts.

Every line is worked out by the area's own pure rules (``rules.compute_order``, the automatic
checks and dispositions) on the rates in force on its service date, read back from the orders
the service generator wrote (hours and parts values summed in SQL).
"""
from collections import defaultdict
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from functools import lru_cache

from sqlalchemy import and_, func, or_, select, type_coerce

from portal import synth
from portal.auth.roles import Role
from portal.clock import local_day
from portal.extensions import db
from portal.models import Hours, Money, money
from service.api import Complaint, PartReturn, WorkOrder, WorkOrderPart, WorkOrderRepair
from settlement import config, rules
from settlement.building import month_bounds
from settlement.demo import FEES, LINE_FACTOR, TIER_RATES
from settlement.models import (
    KIND_ORDER,
    Claim,
    LineDecisionRecord,
    LineKind,
    RateCard,
    RateCardFee,
    RateCardTierRate,
    Settlement,
    SettlementEvent,
    SettlementLine,
)
from tenants.models import ProductLine

ZERO = Decimal("0.00")
PAY_RULES = {"approved": 0.94, "adjusted": 0.04}  # the rest of the reviewed lines: denied




def build(net: synth.Network) -> None:
    network = net.data["network"]
    _rate_cards(net, network.lines)
    net.writer.flush()
    book, settings = config.RateBook(), config.current_settings()
    dispositions = config.current_dispositions()
    months = _claim_months(net)
    working = [a for a in network.agencies if a.works]
    step = net.step("settlement: claims", len(working))
    claims = _Claims(net, book, settings, dispositions, network)
    for agency in working:
        claims.agency(agency, months, net.rng(f"settlement:{agency.code}"))
        step.advance()


def _claim_months(net) -> list[tuple[int, int]]:
    """Every month from the history's start to the last complete month."""
    out, day = [], net.history_start.replace(day=1)
    while (day.year, day.month) < (net.today.year, net.today.month):
        out.append((day.year, day.month))
        day = month_bounds(day.year, day.month)[1]
    return out


def _rate_cards(net, lines) -> None:
    """Two versions (a 5 % raise half-way) when there are none; fees for the new lines."""
    cards = list(db.session.execute(select(RateCard.id, RateCard.effective_from)))
    admin = net.data["network"].hq["admin"]
    if not cards:
        raised = net.history_start + timedelta(days=200)
        for effective, bump in ((net.history_start - timedelta(days=300), Decimal("1.00")),
                                (raised.replace(day=1), Decimal("1.05"))):
            [card_id] = net.ids(RateCard, 1)
            net.add(RateCard, {"id": card_id, "effective_from": effective,
                               "note": "服务费标准" if bump == 1 else "服务费标准上调 5%",
                               "created_by_id": admin.id, "version": 1})
            for tier, rate in TIER_RATES.items():
                net.add(RateCardTierRate, {"rate_card_id": card_id, "tier": tier,
                                           "hourly_rate": money(Decimal(rate) * bump)})
            cards.append((card_id, effective))
        line_ids = list(db.session.scalars(select(ProductLine.id)))
        line_ids += [line.id for line in lines if line.id not in line_ids]
    else:
        line_ids = [line.id for line in lines]
    net.writer.flush()
    codes = {line.id: line.code.rsplit("-", 1)[-1] for line in lines}
    for n, (card_id, _effective) in enumerate(sorted(cards, key=lambda c: c[1])):
        bump = Decimal("1.05") ** min(n, 1)
        for line_id in line_ids:
            factor = LINE_FACTOR.get(codes.get(line_id, ""), Decimal("1.00")) * bump
            for kind, (callout, free, per_km, cap, pct) in FEES.items():
                net.add(RateCardFee, {
                    "rate_card_id": card_id, "product_line_id": line_id,
                    "service_type": kind.value, "callout_fee": money(Decimal(callout) * factor),
                    "free_km": Decimal(free), "per_km": Decimal(per_km),
                    "max_km": Decimal(cap), "parts_handling_pct": Decimal(pct)})


class _Claims:
    """Writes one agency's settlements: lines, claims, events and decisions."""

    def __init__(self, net, book, settings, dispositions, network):
        self.net, self.book, self.settings = net, book, settings
        self.dispositions = dispositions
        self.reviewer, self.approver = network.hq["settlement"], network.hq["settlement2"]
        self.admin, self.managers = network.hq["admin"], network.managers
        self.compute = lru_cache(maxsize=200000)(self._compute)

    def _compute(self, facts, day, line_id, tier, claim_day):
        """(computation, codes, disposition) of an order: the same rules as the web's build."""
        terms = self.book.terms(day, line_id, facts.service_type, tier)
        result = rules.compute_order(facts, terms, self.settings.uncertified_share_pct)
        codes = rules.order_exceptions(rules.CheckFacts(
            has_rate_card=result.rate_card_id is not None, is_in_warranty=True,
            days_since_service=(claim_day - day).days,
            claim_window_days=self.settings.claim_window_days, is_duplicate=False,
            is_engineer_certified=facts.is_engineer_certified,
            distance_km=result.distance_km, max_km=result.max_km,
            labor_hours=result.labor_hours, max_order_hours=self.settings.max_order_hours,
            claimed_amount=result.total, evidence_threshold=self.settings.evidence_threshold,
            evidence_count=0))
        return result, codes, rules.disposition_of(codes, self.dispositions)

    def agency(self, agency, months, rng) -> None:
        orders = _orders_of(agency.id)
        returns, complaints = _deductions_of(agency.id)
        for n, (year, month) in enumerate(months):
            age = len(months) - n
            claim_day = min(month_bounds(year, month)[1] + timedelta(days=7), self.net.today)
            due = [r for r in returns if r[3] < claim_day]
            returns = [r for r in returns if r[3] >= claim_day]
            judged = [c for c in complaints if c[1] < claim_day]
            complaints = [c for c in complaints if c[1] >= claim_day]
            found = orders.get((year, month), [])
            if found or due or judged:
                self.settlement(agency, year, month, age, claim_day, found, due, judged, rng)

    def settlement(self, agency, year, month, age, claim_day, orders, returns, complaints, rng):
        net = self.net
        status = _status(age, rng)
        [settlement_id] = net.ids(Settlement, 1)
        owner = agency.accounts[Role.AGENCY_OWNER]
        opened = datetime.combine(claim_day, time(2), tzinfo=UTC)
        decided = status in ("approved", "paid")
        lines = []
        for order in orders:
            lines.append(self.order_line(agency, order, claim_day, decided, rng))
        for return_id, price, quantity, _due, _shipped in returns:
            amount = rules.return_deduction(price, quantity)
            lines.append({"kind": LineKind.PART_RETURN, "part_return_id": return_id,
                          "basis_amount": money(price * quantity), "claimed_amount": amount,
                          "decision": "approved", "approved_amount": amount})
        for complaint_id, _closed in complaints:
            amount = rules.complaint_deduction(self.settings.complaint_deduction)
            lines.append({"kind": LineKind.COMPLAINT, "complaint_id": complaint_id,
                          "basis_amount": money(self.settings.complaint_deduction),
                          "claimed_amount": amount, "decision": "approved",
                          "approved_amount": amount})
        claimed = sum((ln["claimed_amount"] for ln in lines), ZERO)
        approved = sum((ln["approved_amount"] for ln in lines
                        if ln.get("approved_amount") is not None), ZERO)
        times = _timeline(opened, status)
        second = decided and approved > self.settings.second_approval_threshold
        manager = self.managers.get(agency.region_id)
        net.add(Settlement, {
            "id": settlement_id, "agency_id": agency.id,
            "number": f"ST-{agency.code}-{year}{month:02d}-01", "year": year, "month": month,
            "status": status, "claimed_total": claimed, "approved_total": approved,
            "line_count": len(lines), "created_at": opened, "created_by_id": owner.id,
            "computed_on": claim_day, "submitted_at": times.get("submitted"),
            "submitted_by_id": owner.id if "submitted" in times else None,
            "submission_count": 1 if "submitted" in times else 0,
            "needs_regional_review": manager is not None,
            "regional_reviewed_at": times.get("regional") if manager else None,
            "regional_reviewed_by_id": manager.id if manager and "regional" in times else None,
            "first_approved_at": times.get("approved"),
            "first_approved_by_id": self.approver.id if decided else None,
            "second_approved_at": times.get("approved") if second else None,
            "second_approved_by_id": self.admin.id if second else None,
            "approved_at": times.get("approved"), "paid_at": times.get("paid"),
            "paid_on": local_day(times["paid"]) if "paid" in times else None,
            "paid_by_id": self.reviewer.id if "paid" in times else None,
            "payment_reference": f"CMB-{agency.code}-{year}{month:02d}"
            if "paid" in times else None,
            "updated_at": max(times.values()), "version": 1 + len(times)})
        self.write_lines(agency, settlement_id, lines, opened, times.get("approved"))
        self.events(agency, settlement_id, times, owner, manager, claimed, approved)

    def order_line(self, agency, order, claim_day, decided: bool, rng) -> dict:
        (order_id, day, line_id, kind, distance, rework, certified, hours, parts) = order
        facts = rules.OrderFacts(service_type=kind, labor_hours=hours or ZERO,
                                 distance_km=distance, parts_value=parts or ZERO,
                                 is_rework=rework, is_engineer_certified=certified)
        result, codes, disposition = self.compute(facts, day, line_id, agency.tier, claim_day)
        line = {"kind": LineKind.ORDER, "work_order_id": order_id, "service_type": kind,
                "tier": agency.tier, "rules_applied": ",".join(result.rules),
                "exception_codes": ",".join(codes), "disposition": disposition,
                "claimed_amount": result.total, "decision": "pending", "approved_amount": None}
        for name in ("rate_card_id", "callout_fee", "labor_hours", "hourly_rate",
                     "labor_share_pct", "labor_fee", "distance_km", "free_km", "max_km",
                     "paid_km", "per_km", "distance_fee", "parts_value", "parts_handling_pct",
                     "parts_handling_fee"):
            line[name] = getattr(result, name)
        if decided:
            _decide(line, codes, self.dispositions, rng)
        return line

    def write_lines(self, agency, settlement_id, lines, opened, decided_at) -> None:
        net = self.net
        claim_ids = net.ids(Claim, len(lines))
        line_ids = net.ids(SettlementLine, len(lines))
        for claim_id, line_id, line in zip(claim_ids, line_ids, lines, strict=True):
            subject = {k: line.get(k) for k in ("work_order_id", "part_return_id",
                                                "complaint_id")}
            net.add(Claim, {"id": claim_id, "agency_id": agency.id,
                            "settlement_id": settlement_id, **subject, "grade_period": None,
                            "is_live": True, "created_at": opened, "released_at": None})
            manual = line["decision"] in ("adjusted", "denied")
            net.add(SettlementLine, {
                **line, "id": line_id, "agency_id": agency.id, "settlement_id": settlement_id,
                "claim_id": claim_id, "kind_order": KIND_ORDER[line["kind"]],
                "decided_at": decided_at if line["decision"] != "pending" else None,
                "decided_by_id": self.reviewer.id if manual else None, "version": 1})
            if manual:
                net.add(LineDecisionRecord, {
                    "agency_id": agency.id, "settlement_id": settlement_id, "line_id": line_id,
                    "decision": line["decision"], "amount_before": line["claimed_amount"],
                    "amount_after": line["approved_amount"], "reason_code": line["reason_code"],
                    "reason_text": line.get("reason_text"), "is_automatic": False,
                    "actor_id": self.reviewer.id, "at": decided_at})

    def events(self, agency, settlement_id, times, owner, manager, claimed, approved) -> None:
        actors = {"opened": owner, "submitted": owner, "returned": self.reviewer,
                  "regional": manager, "approved": self.approver, "paid": self.reviewer}
        names = {"regional": "regional_forwarded"}
        previous = None
        for step, at in times.items():
            status = {"opened": "draft", "regional": "submitted"}.get(step, step)
            actor = actors[step]
            self.net.add(SettlementEvent, {
                "agency_id": agency.id, "settlement_id": settlement_id,
                "action": names.get(step, step), "from_status": previous, "to_status": status,
                "comment": "", "actor_id": actor.id if actor else None, "at": at})
            self.net.audit(f"settlement.{names.get(step, step)}", "Settlement", settlement_id,
                           at=at, actor=actor, agency_id=agency.id,
                           after={"status": status, "claimed_total": str(claimed),
                                  "approved_total": str(approved)})
            previous = status


def _status(age: int, rng) -> str:
    """Where a month's claim stands, by how many months ago it ended."""
    roll = rng.random()
    if age >= 3:
        return "paid"
    if age == 2:
        return "submitted" if roll < 0.2 else ("approved" if roll < 0.7 else "paid")
    return ("draft" if roll < 0.15 else "submitted" if roll < 0.7 else "returned"
            if roll < 0.8 else "approved")


def _timeline(opened: datetime, status: str) -> dict:
    """{step: when} up to the settlement's state (the services' order of events)."""
    days = {"opened": 0, "submitted": 1, "regional": 3, "returned": 6, "approved": 10,
            "paid": 20}
    path = {"draft": ["opened"], "submitted": ["opened", "submitted", "regional"],
            "returned": ["opened", "submitted", "regional", "returned"],
            "approved": ["opened", "submitted", "regional", "approved"],
            "paid": ["opened", "submitted", "regional", "approved", "paid"]}[status]
    return {step: opened + timedelta(days=days[step]) for step in path}


def _decide(line: dict, codes, dispositions, rng) -> None:
    deny = rules.denying_code(codes, dispositions)
    roll = rng.random()
    if deny is not None:
        line.update(decision="denied", approved_amount=ZERO,
                    reason_code=rules.AUTO_DENY_REASONS[deny], reason_text=None)
    elif roll < PAY_RULES["approved"]:
        line.update(decision="approved", approved_amount=line["claimed_amount"])
    elif roll < PAY_RULES["approved"] + PAY_RULES["adjusted"]:
        line.update(decision="adjusted", reason_code="rate_mismatch",
                    approved_amount=money(line["claimed_amount"] * Decimal("0.8")),
                    reason_text="远程费按实际导航里程核减。")
    else:
        line.update(decision="denied", approved_amount=ZERO, reason_code="insufficient_evidence",
                    reason_text="缺少更换零件的照片,无法核实。")


def _orders_of(agency_id: int) -> dict:
    """{(year, month): [(id, service day, line, type, km, rework, certified, hours, parts)]}
    of the agency's completed, in-warranty orders (hours and parts values summed in SQL)."""
    hours = (select(type_coerce(func.sum(WorkOrderRepair.standard_hours), Hours))
             .where(WorkOrderRepair.agency_id == WorkOrder.agency_id,
                    WorkOrderRepair.work_order_id == WorkOrder.id).scalar_subquery())
    parts = (select(type_coerce(func.sum(WorkOrderPart.unit_price * WorkOrderPart.quantity),
                                Money))
             .where(WorkOrderPart.agency_id == WorkOrder.agency_id,
                    WorkOrderPart.work_order_id == WorkOrder.id).scalar_subquery())
    out: dict = defaultdict(list)
    for row in db.session.execute(
            select(WorkOrder.id, WorkOrder.service_date, WorkOrder.product_line_id,
                   WorkOrder.service_type, WorkOrder.distance_km, WorkOrder.is_rework,
                   WorkOrder.is_engineer_certified, type_coerce(hours, Hours),
                   type_coerce(parts, Money))
            .where(WorkOrder.agency_id == agency_id, WorkOrder.status == "completed",
                   WorkOrder.is_in_warranty.is_(True))
            .order_by(WorkOrder.service_date, WorkOrder.id)):
        out[(row[1].year, row[1].month)].append(tuple(row))
    return out


def _deductions_of(agency_id: int) -> tuple[list, list]:
    """Returns not shipped by their due day (or shipped after it), oldest first:
    [(id, unit price, quantity, due on, shipped on)]; substantiated complaints:
    [(id, local day closed)]."""
    returns = [tuple(r) for r in db.session.execute(
        select(PartReturn.id, PartReturn.unit_price, PartReturn.quantity, PartReturn.due_on,
               PartReturn.shipped_on)
        .where(PartReturn.agency_id == agency_id,
               or_(PartReturn.shipped_on.is_(None), PartReturn.shipped_on > PartReturn.due_on))
        .order_by(PartReturn.due_on, PartReturn.id))]
    complaints = [(c, local_day(closed) + timedelta(days=1)) for c, closed in db.session.execute(
        select(Complaint.id, Complaint.closed_at)
        .where(and_(Complaint.agency_id == agency_id, Complaint.status == "closed",
                    Complaint.verdict == "substantiated"))
        .order_by(Complaint.closed_at, Complaint.id))]
    return returns, complaints


synth.register("settlement", build, order=40)
