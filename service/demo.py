"""Demo service work: catalogs and a year of orders, parts, returns, revisits and complaints.

History is inserted in bulk with the fields the services would derive (warranty, service
date, rework links, stock balances); the engineers' certification flags are then computed in
one set-based UPDATE with the same EXISTS clause the services use.
"""
from collections import defaultdict
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from sqlalchemy import insert, select, update

from certification.models import Certificate
from certification.queries import valid_certificate_exists
from portal import clock, demo
from portal.extensions import db
from service import demo_catalog as cat
from service import models as svc
from service.common import is_in_warranty, return_due_days


def register() -> None:
    demo.register("service", load, order=30)


def load(ctx: dict) -> None:
    now = clock.now().replace(microsecond=0)
    today = clock.local_day(now)
    # From the first day of the quarter a year before the last one that ended: the demo's
    # four evaluated quarters are whole quarters of work (14 months on 2026-11-30).
    last_ended_quarter_start = clock.add_months(today.replace(day=1), -((today.month - 1) % 3) - 3)
    start = clock.add_months(last_ended_quarter_start, -9)
    catalog = _catalog(ctx["product_lines"])
    users = ctx["users"]
    hq = {"service": users["service@hq.demo"].id, "parts": users["parts@hq.demo"].id}
    orders = 0
    certified = _certified_spans()
    for index, (code, agency) in enumerate(sorted(ctx["agencies"].items())):
        if agency.status == "applicant":
            continue
        engineers = [e for e in ctx["engineers"].get(code, []) if e.status == "active"]
        if not engineers:
            continue
        work = _AgencyYear(ctx["rng"], agency, engineers, catalog, start, now, hq, index)
        work.certified = certified
        orders += work.run()
    db.session.execute(
        update(svc.WorkOrder).where(svc.WorkOrder.engineer_id.is_not(None))
        .values(is_engineer_certified=valid_certificate_exists(
            svc.WorkOrder.engineer_id, svc.WorkOrder.product_line_id, svc.WorkOrder.service_date))
        .execution_options(synchronize_session=False))
    db.session.flush()
    ctx["service_orders"] = orders


def _catalog(lines: dict) -> dict:
    """Insert the catalogs; {line code: {"repairs": [...], "faults": [...], "parts": [...]}}."""
    out = {}
    for code, line in lines.items():
        repairs = [svc.RepairCode(product_line_id=line.id, code=f"{code}-{c}", description_zh=zh,
                              description_en=en, standard_hours=Decimal(h))
                   for c, zh, en, h in cat.REPAIR_CODES.get(code, [])]
        faults = [svc.FaultCode(product_line_id=line.id, code=f"{code}-{c}", description_zh=zh,
                            description_en=en) for c, zh, en in cat.FAULT_CODES.get(code, [])]
        parts = [svc.Part(part_number=n, name_zh=zh, name_en=en, product_line_id=line.id,
                      unit_price=Decimal(p), is_returnable=r)
                 for n, zh, en, p, r in cat.PARTS.get(code, [])]
        db.session.add_all([*repairs, *faults, *parts])
        out[line.id] = {"repairs": repairs, "faults": faults, "parts": parts,
                        "models": list(line.models)}
    db.session.flush()
    return out


def _bulk(model, rows: list[dict]) -> list[int]:
    if not rows:
        return []
    return list(db.session.scalars(
        insert(model).returning(model.id, sort_by_parameter_order=True), rows))


def _certified_spans() -> dict[tuple[int, int], list[tuple[date, date]]]:
    """(engineer, product line) → the days their certificates cover, for dispatching orders
    the way a station does: mostly to an engineer certified for the product."""
    spans = defaultdict(list)
    for engineer_id, line_id, start, end, revoked in db.session.execute(select(
            Certificate.engineer_id, Certificate.product_line_id, Certificate.valid_from,
            Certificate.valid_to, Certificate.revoked_on)):
        last = min(end, revoked - timedelta(days=1)) if revoked else end
        spans[(engineer_id, line_id)].append((start, last))
    return spans


class _AgencyYear:
    """One agency's year, generated in time order so that stock and rework stay consistent."""

    def __init__(self, rng, agency, engineers, catalog, start: date, now: datetime, hq: dict,
                 index: int):
        self.rng, self.agency, self.engineers, self.now, self.hq = rng, agency, engineers, now, hq
        self.today = clock.local_day(now)  # the network's day, as service dates are
        self.index, self.start = index, start
        self.lines = [p.id for p in agency.product_lines if p.id in catalog]
        self.catalog = catalog
        self.stock: dict[int, int] = defaultdict(int)
        self.received: dict[int, int] = defaultdict(int)
        self.used: dict[int, int] = defaultdict(int)
        self.parts = {p.id: p for line in self.lines for p in catalog[line]["parts"]}
        self.serial_models: dict[str, tuple] = {}
        self.certified: dict[tuple[int, int], list[tuple[date, date]]] = {}

    # --- helpers ---------------------------------------------------------------------------

    def moment(self, day: date, low=8, high=20) -> datetime:
        wall = time(self.rng.randint(low, high - 1), self.rng.randint(0, 59))
        return clock.from_local(datetime.combine(day, wall))

    def engineer_for(self, line_id: int, day: date):
        """Nine orders in ten go to an engineer certified for the line that day, if any."""
        rng = self.rng
        able = [e for e in self.engineers
                if any(a <= day <= b for a, b in self.certified.get((e.id, line_id), ()))]
        if able and rng.random() < 0.9:
            return rng.choice(able)
        return self.engineers[0] if rng.random() < 0.3 else rng.choice(self.engineers)

    def day(self, offset: int) -> date:
        return self.start + timedelta(days=offset)

    # --- the year --------------------------------------------------------------------------

    def run(self) -> int:
        if not self.lines:
            return 0
        arrivals = self.requests()
        orders = self.orders(arrivals)
        self.complaints(orders)
        self.stock_rows()
        return len(orders)

    def requests(self) -> list[tuple[datetime, int, int]]:
        """Monthly requests, all received but the last five, which show every other state."""
        rng, rows, lines, arrivals = self.rng, [], [], []
        months = (self.today - self.start).days // 30 + 1
        states = ["received"] * (months - 5) + ["rejected", "received", "shipped", "approved",
                                                 "submitted"]
        for n, state in enumerate(states):
            submitted = self.moment(self.day(n * 30 + rng.randint(0, 5)))
            times = [submitted, submitted + timedelta(hours=rng.randint(2, 30))]
            times.append(times[1] + timedelta(hours=rng.randint(4, 48)))
            times.append(times[2] + timedelta(days=rng.randint(1, 4)))
            step = {"submitted": 0, "approved": 1, "rejected": 1, "shipped": 2,
                    "received": 3}[state]
            if times[step] >= self.now:  # the newest requests moved back to have happened
                shift = times[step] - self.now + timedelta(hours=2 + 5 - n % 5)
                times = [t - shift for t in times]
            shipped = step >= 2
            rows.append({
                "agency_id": self.agency.id,
                "number": f"PR{clock.local_day(times[0]):%Y%m%d}-{n + 1:02d}", "status": state,
                "note": "月度备货" if n % 3 else "", "submitted_at": times[0],
                "decided_at": times[1] if step >= 1 else None,
                "decided_by_id": self.hq["parts"] if step >= 1 else None,
                "carrier": rng.choice(cat.CARRIERS) if shipped else None,
                "tracking_number": f"SF{rng.randint(10**11, 10**12 - 1)}" if shipped else None,
                "shipped_at": times[2] if shipped else None,
                "shipped_by_id": self.hq["parts"] if shipped else None,
                "received_at": times[3] if step == 3 else None})
            lines.append(self.request_lines(rows[-1]))
        ids = _bulk(svc.PartsRequest, rows)
        line_rows = []
        for request_id, row, request_lines in zip(ids, rows, lines, strict=True):
            for line in request_lines:
                line_rows.append({**line, "agency_id": self.agency.id, "request_id": request_id})
                if row["status"] == "received":
                    arrivals.append((row["received_at"], line["part_id"],
                                     line["received_quantity"] or 0))
        _bulk(svc.PartsRequestLine, line_rows)
        return sorted(arrivals)

    def request_lines(self, request: dict) -> list[dict]:
        rng, status = self.rng, request["status"]
        out = []
        for part_id in rng.sample(sorted(self.parts), k=min(3, len(self.parts))):
            quantity = rng.randint(2, 8)
            line = {"part_id": part_id, "quantity": quantity, "reason": "stock",
                    "work_order_id": None, "decision": "pending", "approved_quantity": None,
                    "reject_reason": None, "received_quantity": None, "discrepancy_note": None}
            if status == "rejected" or (status != "submitted" and rng.random() < 0.1):
                line.update(decision="rejected", reject_reason="总部库存不足，请下月再申请")
            elif status != "submitted":
                line.update(decision="approved", approved_quantity=quantity - (
                    1 if quantity > 3 and rng.random() < 0.2 else 0))
            if status == "received" and line["decision"] == "approved":
                short = rng.random() < 0.05
                line["received_quantity"] = line["approved_quantity"] - (1 if short else 0)
                line["discrepancy_note"] = "到货少一件，外箱破损" if short else None
            out.append(line)
        if status not in ("submitted", "rejected") and not any(
                line["decision"] == "approved" for line in out):
            out[0].update(decision="approved", approved_quantity=out[0]["quantity"],
                          reject_reason=None,
                          received_quantity=out[0]["quantity"] if status == "received"
                          else None)
        return out

    def orders(self, arrivals) -> list[dict]:
        rng = self.rng
        count = rng.randint(95, 135)
        span = (self.today - self.start).days
        days = [rng.randint(0, span) for _ in range(count)]
        days += [rng.randint(span - 5, span) for _ in range(rng.randint(3, 6))]  # this week
        received = sorted(self.moment(self.day(d)) for d in days)
        received = [r for r in received if r < self.now - timedelta(minutes=30)]
        orders, pending = [], list(arrivals)
        completed_serials: list[tuple[datetime, str]] = []
        per_day: dict[date, int] = defaultdict(int)
        for at in received:
            while pending and pending[0][0] <= at:
                _t, part_id, n = pending.pop(0)
                self.stock[part_id] += n
                self.received[part_id] += n
            order = self.order(at, per_day, completed_serials)
            orders.append(order)
            if order["status"] == "completed" and order["service_type"] != "phone":
                completed_serials.append((order["completed_at"], order["serial_number"]))
        for _t, part_id, n in pending:
            self.stock[part_id] += n
            self.received[part_id] += n
        self.write_orders(orders)
        return orders

    def order(self, at: datetime, per_day, completed_serials) -> dict:
        rng = self.rng
        line_id = rng.choice(self.lines)
        model = rng.choice(self.catalog[line_id]["models"])
        kind = rng.choices(["phone", "onsite", "carry_in"], weights=[2, 5, 3])[0]
        engineer = self.engineer_for(line_id, clock.local_day(at))
        serial, origin = f"{model.code.split('-')[0]}{rng.randint(10**9, 10**10 - 1)}", None
        recent = [s for c, s in completed_serials if timedelta(0) < at - c < timedelta(days=29)]
        if kind != "phone" and recent and rng.random() < 0.06:
            serial = origin = rng.choice(recent)
            line_id, model = self.serial_models[serial]
        self.serial_models.setdefault(serial, (line_id, model))
        slow = rng.random() < 0.1
        responded = at + timedelta(minutes=rng.randint(5, 90) if kind == "phone" else
                                   rng.randint(20, 240)) + timedelta(
            hours=rng.randint(3, 30) if slow else 0)
        arrived = responded + timedelta(hours=rng.randint(2, 20) + (12 if slow else 0)) \
            if kind == "onsite" else None
        completed = {"phone": responded + timedelta(minutes=rng.randint(5, 40)),
                     "onsite": (arrived or responded) + timedelta(minutes=rng.randint(30, 180)),
                     "carry_in": at + timedelta(days=rng.randint(1, 5), hours=rng.randint(0, 6))
                     }[kind]
        # The last days' orders are partly still being worked on.
        fresh = at > self.now - timedelta(days=4) and rng.random() < 0.6
        status = "completed" if completed < self.now and not fresh else "open"
        if status == "open" and rng.random() < 0.08:
            status = "cancelled"
        purchase = clock.local_day(at) - timedelta(days=rng.randint(5, 1400))
        day = clock.local_day(at)
        per_day[day] += 1
        done = status == "completed"
        service_date = clock.local_day(completed) if done else day
        return {
            "agency_id": self.agency.id, "number": f"WO{day:%Y%m%d}-{per_day[day]:04d}",
            "service_type": kind, "status": status,
            "customer_name": rng.choice(cat.SURNAMES) + rng.choice(["先生", "女士"]),
            "customer_phone": f"1{rng.choice('3589')}{rng.randint(10**8, 10**9 - 1)}",
            "customer_address": f"{self.agency.city}{rng.choice(cat.STREETS)}"
                                f"{rng.randint(1, 300)}号" if kind == "onsite" else "",
            "product_line_id": line_id, "product_model_id": model.id, "serial_number": serial,
            "purchase_date": purchase,
            "is_in_warranty": is_in_warranty(purchase, model.warranty_months, day),
            "received_at": at, "responded_at": responded if responded < self.now else None,
            "arrived_at": arrived if arrived and arrived < self.now else None,
            "completed_at": completed if done else None, "service_date": service_date,
            "distance_km": Decimal(rng.randint(10, 600)) / 10 if kind == "onsite" and (
                done or (arrived and arrived < self.now)) else None,
            "engineer_id": engineer.id, "is_engineer_certified": False,
            "fault_code_id": rng.choice(self.catalog[line_id]["faults"]).id,
            "fault_description": rng.choice(cat.FAULT_TEXTS),
            "resolution": (rng.choice(cat.PHONE_RESOLUTIONS) if kind == "phone" else
                           rng.choice(cat.RESOLUTIONS)) if done else "",
            "is_first_time_fix": rng.random() < 0.9 and origin is None,
            "is_rework": False, "rework_of_id": None, "_origin": origin,
            "cancel_reason": "客户取消预约" if status == "cancelled" else None,
            "_parts": self.use_parts(line_id) if done and kind != "phone" else [],
        }

    def use_parts(self, line_id: int) -> list[tuple[int, int]]:
        if self.rng.random() > 0.6:
            return []
        candidates = [p.id for p in self.catalog[line_id]["parts"] if self.stock[p.id] > 0]
        if not candidates:
            return []
        part_id = self.rng.choice(candidates)
        self.stock[part_id] -= 1
        self.used[part_id] += 1
        return [(part_id, 1)]

    def write_orders(self, orders: list[dict]) -> None:
        rows = [{k: v for k, v in o.items() if not k.startswith("_")} for o in orders]
        ids = _bulk(svc.WorkOrder, rows)
        completed: dict[str, list[tuple[datetime, int]]] = defaultdict(list)
        window = timedelta(days=30)
        for order_id, order in zip(ids, orders, strict=True):
            order["id"] = order_id
            # The rule of services.find_rework_origin: the latest repair of the serial that
            # completed within the 30 days before this order was received.
            origins = [(c, i) for c, i in completed[order["serial_number"]]
                       if timedelta(0) <= order["received_at"] - c <= window]
            if (order["_origin"] and origins and order["status"] != "cancelled"):
                db.session.execute(update(svc.WorkOrder.__table__).where(
                    svc.WorkOrder.__table__.c.id == order_id).values(
                    is_rework=True, rework_of_id=max(origins)[1]))
                order["is_rework"] = True
            if order["status"] == "completed" and order["service_type"] != "phone":
                completed[order["serial_number"]].append((order["completed_at"], order_id))
        self.children(orders)

    def children(self, orders: list[dict]) -> None:
        rng, repairs, parts, revisits = self.rng, [], [], []
        for o in orders:
            if o["status"] != "completed":
                continue
            if o["service_type"] != "phone":
                for code in rng.sample(self.catalog[o["product_line_id"]]["repairs"],
                                       k=rng.choice([1, 1, 2])):
                    repairs.append({"agency_id": self.agency.id, "work_order_id": o["id"],
                                    "repair_code_id": code.id,
                                    "standard_hours": code.standard_hours})
            for part_id, quantity in o["_parts"]:
                parts.append({"agency_id": self.agency.id, "work_order_id": o["id"],
                              "part_id": part_id, "quantity": quantity,
                              "unit_price": self.parts[part_id].unit_price, "_order": o})
            revisit_at = o["completed_at"] + timedelta(days=rng.randint(1, 5))
            if rng.random() < 0.6 and revisit_at < self.now:
                score = rng.choices([5, 4, 3, 2, 1], weights=[55, 28, 10, 5, 2])[0]
                if o["is_rework"]:
                    score = min(score, rng.choice([1, 2, 3]))
                revisits.append({"agency_id": self.agency.id, "work_order_id": o["id"],
                                 "score": score, "comment": rng.choice(cat.REVISIT_COMMENTS[score]),
                                 "revisited_at": revisit_at, "recorded_by_id": self.hq["service"]})
        _bulk(svc.WorkOrderRepair, repairs)
        ids = _bulk(svc.WorkOrderPart,
                    [{k: v for k, v in p.items() if k != "_order"} for p in parts])
        _bulk(svc.Revisit, revisits)
        self.returns([(i, p) for i, p in zip(ids, parts, strict=True)])

    def returns(self, used: list[tuple[int, dict]]) -> None:
        rng, rows = self.rng, []
        for part_row_id, p in used:
            o = p["_order"]
            if not (o["is_in_warranty"] and self.parts[p["part_id"]].is_returnable):
                continue
            due = o["service_date"] + timedelta(days=return_due_days())
            row = {"agency_id": self.agency.id, "work_order_part_id": part_row_id,
                   "work_order_id": o["id"], "part_id": p["part_id"], "quantity": p["quantity"],
                   "unit_price": p["unit_price"], "status": "due", "due_on": due,
                   "carrier": None, "tracking_number": None, "shipped_at": None,
                   "shipped_on": None, "inspected_at": None, "inspected_by_id": None,
                   "reject_reason": None, "created_at": o["completed_at"]}
            roll = rng.random()
            late = roll < 0.08
            if roll < 0.88:
                delay = rng.randint(31, 45) if late else rng.randint(2, 28)
                shipped = o["completed_at"] + timedelta(days=delay)
                if shipped < self.now - timedelta(hours=1):
                    row.update(status="shipped", carrier=rng.choice(cat.CARRIERS),
                               tracking_number=f"YT{rng.randint(10**11, 10**12 - 1)}",
                               shipped_at=shipped, shipped_on=clock.local_day(shipped))
                    inspected = shipped + timedelta(days=rng.randint(3, 8))
                    if inspected < self.now:
                        rejected = rng.random() < 0.1
                        row.update(status="rejected" if rejected else "accepted",
                                   inspected_at=inspected, inspected_by_id=self.hq["parts"],
                                   reject_reason="非原装件或缺少故障标签" if rejected else None)
            rows.append(row)
        _bulk(svc.PartReturn, rows)

    def complaints(self, orders: list[dict]) -> None:
        rng, rows = self.rng, []
        done = [o for o in orders if o["status"] == "completed"]
        states = ["closed"] * rng.randint(2, 4) + ["responded", "open"] + (
            ["open"] if self.index % 3 == 0 else [])
        for n, state in enumerate(states):
            recent = state != "closed"
            pool = [o for o in done if (o["completed_at"] > self.now - timedelta(days=10))
                    == recent] or done
            order = rng.choice(pool) if pool and rng.random() < 0.8 else None
            received = (order["completed_at"] if order else self.now - timedelta(
                days=rng.randint(2, 300))) + timedelta(hours=rng.randint(2, 48))
            received = min(received, self.now - timedelta(hours=1 + n))
            responded = received + timedelta(hours=rng.randint(3, 40))
            closed = responded + timedelta(days=rng.randint(1, 6))
            verdict = rng.choice(["substantiated", "not_substantiated"])
            if state != "open" and responded >= self.now:
                responded = received + (self.now - received) / 2
            if state == "closed" and closed >= self.now:
                closed = responded + (self.now - responded) / 2
            rows.append({
                "agency_id": self.agency.id, "work_order_id": order["id"] if order else None,
                "channel": rng.choice(["hotline", "hotline", "online", "email", "letter",
                                       "regulator"]),
                "severity": rng.choice(["minor", "minor", "major", "critical"]),
                "description": rng.choice(cat.COMPLAINTS), "status": state,
                "received_at": received, "recorded_by_id": self.hq["service"],
                "response": rng.choice(cat.RESPONSES) if state != "open" else None,
                "responded_at": responded if state != "open" else None,
                "responded_by_id": None,
                "verdict": verdict if state == "closed" else None,
                "verdict_note": rng.choice(cat.VERDICT_NOTES[verdict])
                if state == "closed" else None,
                "closed_at": closed if state == "closed" else None,
                "closed_by_id": self.hq["service"] if state == "closed" else None})
        _bulk(svc.Complaint, rows)

    def stock_rows(self) -> None:
        rows = [{"agency_id": self.agency.id, "part_id": part_id, "quantity": self.stock[part_id],
                 "received_total": self.received[part_id], "used_total": self.used[part_id]}
                for part_id in sorted(set(self.received) | set(self.used))]
        _bulk(svc.PartStock, rows)
