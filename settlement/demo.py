"""Demo data of the settlement area (after the work orders): two rate card versions, and for the
demo agencies a settlement in every state, with evidence, adjustments and an appeal."""
import struct
import zlib
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from sqlalchemy import select

from portal import demo
from portal.clock import from_local, local_day, local_today
from portal.errors_domain import DomainError
from portal.extensions import db
from settlement import config, evidence, review, services
from settlement.building import load_lines, month_bounds, unclaimed_orders
from settlement.models import (
    Appeal,
    Claim,
    Decision,
    LineDecisionRecord,
    Settlement,
    SettlementEvent,
    Status,
)
from tenants.models import ProductLine, ServiceType

# Per service type: call-out fee, free km, per km, km cap, parts handling %.
FEES = {ServiceType.PHONE: ("8.00", "0", "0", "0", "0"),
        ServiceType.ONSITE: ("45.00", "10.00", "1.50", "80.00", "8.00"),
        ServiceType.CARRY_IN: ("25.00", "0", "0", "0", "6.00")}
LINE_FACTOR = {"AC": Decimal("1.20"), "RF": Decimal("1.10"), "WM": Decimal("1.00"),
               "TV": Decimal("0.90")}
TIER_RATES = {1: "60.00", 2: "66.00", 3: "72.00", 4: "80.00", 5: "88.00"}
DEMO_AGENCIES = ("SH-C01", "GD-C01", "JS-C01", "BJ-C01")


def register() -> None:
    demo.register("settlement", load, order=40)


def load(ctx: dict) -> None:
    today = local_today()
    users = ctx.get("users", {})
    _rate_cards(users.get("admin@hq.demo"), today)
    agencies = ctx.get("agencies", {})
    people = _People(users)
    for code in DEMO_AGENCIES:
        agency = agencies.get(code)
        if agency is not None:
            _agency_story(agency, people, today, full=code in ("SH-C01", "GD-C01"))
    db.session.flush()


class _People:
    def __init__(self, users: dict):
        self.admin = users.get("admin@hq.demo")
        self.reviewer = users.get("settlement@hq.demo")
        self.approver = users.get("settlement2@hq.demo")
        self.managers = {u.region_id: u for u in users.values()
                         if u.role == "regional_manager"}
        self.owners = {u.agency_id: u for u in users.values() if u.role == "agency_owner"}


def _rate_cards(admin, today: date) -> None:
    lines = list(db.session.scalars(select(ProductLine).order_by(ProductLine.code)))
    if not lines:
        return
    raised = date(today.year - (1 if today.month <= 4 else 0), (today.month - 5) % 12 + 1, 1)
    for effective, bump, note in ((date(2025, 1, 1), Decimal("1.00"), "2025 年度服务费标准"),
                                  (raised, Decimal("1.05"), "服务费标准上调 5%")):
        fees = []
        for line in lines:
            for kind, (callout, free, per_km, cap, pct) in FEES.items():
                factor = LINE_FACTOR.get(line.code, Decimal("1.00")) * bump
                fees.append({"product_line_id": line.id, "service_type": kind.value,
                             "callout_fee": (Decimal(callout) * factor).quantize(
                                 Decimal("0.01")),
                             "free_km": Decimal(free), "per_km": Decimal(per_km),
                             "max_km": Decimal(cap), "parts_handling_pct": Decimal(pct)})
        config.create_rate_card({
            "effective_from": effective, "note": note, "fees": fees,
            "tier_rates": {t: (Decimal(r) * bump).quantize(Decimal("0.01"))
                           for t, r in TIER_RATES.items()}}, acting_user=admin)


def _months_back(today: date, n: int) -> tuple[int, int]:
    index = today.year * 12 + today.month - 1 - n
    return index // 12, index % 12 + 1


def _claim_day(year: int, month: int) -> date:
    """The 8th of the next month: when an agency typically submits."""
    return month_bounds(year, month)[1] + timedelta(days=7)


# The oldest month a story may reach back to: the demo's work orders begin 14 months back.
STORY_REACH = 13


def _agency_story(agency, people: _People, today: date, *, full: bool) -> None:
    owner = people.owners.get(agency.id)
    plan = ([(8, "withdrawn"), (7, "paid"), (6, "paid_appeal"), (5, "approved"),
             (4, "review"), (3, "returned"), (2, "regional"), (1, "draft")] if full
            else [(5, "paid"), (4, "approved"), (3, "review"), (2, "regional")])
    for back, target in _on_months_with_work(agency, plan, today):
        year, month = _months_back(today, back)
        day = min(_claim_day(year, month), today)
        try:
            with db.session.begin_nested():
                settlement = services.open_settlement(agency, year, month, acting_user=owner,
                                                      today=day)
                _evidence(settlement, owner, day)
                if target != "draft":
                    _walk(settlement, target, owner, people, day)
                _backdate(settlement, day)
        except DomainError:
            continue  # no unclaimed orders that month: the agency had nothing to claim


def _on_months_with_work(agency, plan: list[tuple[int, str]],
                         today: date) -> list[tuple[int, str]]:
    """The story's claims on the months they can be told on, oldest first: each on its planned
    month or, when the agency had no claimable order that month, on the next older month that
    has one (a quiet month moves the older claims back; it leaves no state out of the story,
    which the demo accounts and the browser journeys count on)."""
    placed, back = [], 0
    for planned, target in sorted(plan):  # the newest claim first
        back = max(back + 1, planned)
        while back <= STORY_REACH and not unclaimed_orders(agency.id,
                                                             *_months_back(today, back)):
            back += 1
        if back > STORY_REACH:
            break
        placed.append((back, target))
    return sorted(placed, reverse=True)


def _evidence(settlement: Settlement, owner, day: date) -> None:
    lines = load_lines(settlement)
    period = settlement.period
    evidence.add_attachment(settlement, None, f"服务费发票-{period}.pdf", demo_pdf(period),
                            acting_user=owner, today=day)
    for n, line in enumerate([ln for ln in lines if ln.claimed_amount > 300][:2], start=1):
        evidence.add_attachment(settlement, line, f"现场照片-{n}.png", demo_png(n),
                                acting_user=owner, today=day)


def _walk(settlement: Settlement, target: str, owner, people: _People, day: date) -> None:
    if target == "withdrawn":  # the agency took it back; its orders wait for a new claim
        services.withdraw_settlement(settlement, acting_user=owner,
                                     seen_version=settlement.version)
        return
    services.submit_settlement(settlement, acting_user=owner, seen_version=settlement.version,
                               today=day)
    if settlement.awaits_regional_review:
        if target == "regional":
            return
        manager = people.managers.get(settlement.agency.region_id)
        review.regional_review(settlement, True, "已核对工单与现场照片,同意提交总部审核。",
                               acting_user=manager, seen_version=settlement.version, today=day)
    if target == "returned":
        review.return_settlement(settlement, "请补充第 1 行的零件发票后重新提交。",
                                 acting_user=people.reviewer, seen_version=settlement.version)
        return
    _decide_lines(settlement, people.reviewer, adjust=target != "paid")
    if target == "review":
        return
    if target == "paid_appeal":
        _appeal(settlement, people)
    review.approve_settlement(settlement, acting_user=people.approver,
                              seen_version=settlement.version, today=day)
    if settlement.status != Status.APPROVED:
        review.approve_settlement(settlement, acting_user=people.admin,
                                  seen_version=settlement.version, today=day)
    if target in ("paid", "paid_appeal"):
        review.mark_paid(settlement, f"CMB-{settlement.number}", None,
                         acting_user=people.reviewer, seen_version=settlement.version)


def _decide_lines(settlement: Settlement, reviewer, *, adjust: bool) -> None:
    pending = [ln for ln in load_lines(settlement) if ln.decision == Decision.PENDING]
    for n, line in enumerate(pending):
        if adjust and n == 0 and line.claimed_amount > 0:
            amount = (line.claimed_amount * Decimal("0.8")).quantize(Decimal("0.01"))
            review.decide_line(settlement, line, "adjusted", acting_user=reviewer,
                               seen_version=settlement.version, amount=str(amount),
                               reason_code="rate_mismatch",
                               reason_text="远程费按实际导航里程核减。")
        elif adjust and n == 1:
            review.decide_line(settlement, line, "denied", acting_user=reviewer,
                               seen_version=settlement.version,
                               reason_code="insufficient_evidence",
                               reason_text="缺少更换零件的照片,无法核实。")
        else:
            review.decide_line(settlement, line, "approved", acting_user=reviewer,
                               seen_version=settlement.version)


def _appeal(settlement: Settlement, people: _People) -> None:
    line = next((ln for ln in load_lines(settlement) if ln.decision == Decision.DENIED), None)
    owner = people.owners.get(settlement.agency_id)
    if line is None or owner is None:
        return
    appeal = review.lodge_appeal(settlement, line, "已补拍更换零件照片并上传,请复核。",
                                 acting_user=owner, seen_version=settlement.version)
    review.resolve_appeal(settlement, appeal, True, str(line.claimed_amount),
                          "照片已核实,恢复全额支付。", acting_user=people.approver,
                          seen_version=settlement.version)


def _backdate(settlement: Settlement, day: date) -> None:
    """Put the story on the days it happened (the services stamp today), at 10:00 local."""
    base = from_local(datetime.combine(day, time(10)))
    settlement.created_at = base - timedelta(days=2)
    if settlement.submitted_at:
        settlement.submitted_at = base
    if settlement.regional_reviewed_at:
        settlement.regional_reviewed_at = base + timedelta(days=2)
    if settlement.first_approved_at:
        settlement.first_approved_at = base + timedelta(days=9)
    if settlement.second_approved_at:
        settlement.second_approved_at = base + timedelta(days=10)
    if settlement.approved_at:
        settlement.approved_at = base + timedelta(days=10)
    if settlement.paid_at:
        settlement.paid_at = base + timedelta(days=20)
        settlement.paid_on = local_day(settlement.paid_at)
    for claim in db.session.scalars(select(Claim).where(
            Claim.agency_id == settlement.agency_id, Claim.settlement_id == settlement.id)):
        claim.created_at = settlement.created_at
        if claim.released_at is not None:
            claim.released_at = base
    events = db.session.scalars(select(SettlementEvent).where(
        SettlementEvent.agency_id == settlement.agency_id,
        SettlementEvent.settlement_id == settlement.id).order_by(SettlementEvent.id))
    for n, event in enumerate(events):
        event.at = base - timedelta(days=2) + timedelta(days=2 * n)
    review_day = base + timedelta(days=5)  # line decisions and the appeal: during the review
    for record in db.session.scalars(select(LineDecisionRecord).where(
            LineDecisionRecord.agency_id == settlement.agency_id,
            LineDecisionRecord.settlement_id == settlement.id)):
        record.at = review_day
    for line in load_lines(settlement):
        if line.decided_at is not None:
            line.decided_at = review_day
    for appeal in db.session.scalars(select(Appeal).where(
            Appeal.agency_id == settlement.agency_id, Appeal.settlement_id == settlement.id)):
        appeal.lodged_at = review_day + timedelta(days=1)
        if appeal.resolved_at is not None:
            appeal.resolved_at = review_day + timedelta(days=2)
    db.session.flush()


# --- small evidence files -----------------------------------------------------------------------


def demo_pdf(title: str) -> bytes:
    """A one-page PDF (hand-written objects, enough for any viewer)."""
    text = f"Invoice {title}".encode("ascii", "replace")
    stream = b"BT /F1 18 Tf 40 60 Td (" + text + b") Tj ET"
    objects = [b"<</Type/Catalog/Pages 2 0 R>>", b"<</Type/Pages/Kids[3 0 R]/Count 1>>",
               b"<</Type/Page/Parent 2 0 R/MediaBox[0 0 300 120]/Contents 4 0 R"
               b"/Resources<</Font<</F1 5 0 R>>>>>>",
               b"<</Length " + str(len(stream)).encode() + b">>stream\n" + stream
               + b"\nendstream", b"<</Type/Font/Subtype/Type1/BaseFont/Helvetica>>"]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for n, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{n} 0 obj".encode() + body + b"endobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += f"trailer<</Size {len(objects) + 1}/Root 1 0 R>>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def demo_png(seed: int, size: int = 16) -> bytes:
    """A small coloured PNG."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    colour = bytes([(40 * seed) % 256, 120, 200])
    raw = b"".join(b"\x00" + colour * size for _row in range(size))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", size, size, 8, 2, 0,
                                                              0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
