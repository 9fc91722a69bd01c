"""Synthetic network, service work: catalogs, and per agency its work orders (every service
type, timestamps, rework, repairs, parts, in and out of warranty), revisits, complaints,
defective-part returns, monthly parts requests and the resulting stock.

Derived fields are worked out as the services would: warranty on the day of receipt, the
service day of completion, the engineer's certificate on that day, and rework by the rule of
``services.find_rework_origin`` (the latest completed non-phone repair of the serial number
within the 30 days before receipt, in the same agency).
"""
from collections import defaultdict, deque
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from portal import synth
from portal.auth.roles import Role
from portal.clock import local_day, local_zone
from portal.clock import now as clock_now
from service import demo_catalog as cat
from service import models as svc
from service.common import is_in_warranty, return_due_days, rework_days

KINDS, KIND_WEIGHTS = ["phone", "onsite", "carry_in"], [2, 5, 3]
SCORES, SCORE_WEIGHTS = [5, 4, 3, 2, 1], [55, 28, 10, 5, 2]
CHANNELS = ["hotline", "hotline", "online", "email", "letter", "regulator"]




def build(net: synth.Network) -> None:
    network = net.data["network"]
    catalog = make_catalog(net, network.lines)
    working = [a for a in network.agencies if a.works]
    counts = synth.spread(net.sizes.orders, [a.weight for a in working])
    step = net.step("service: work orders", net.sizes.orders)
    clock = Clock(net.now)
    certification = net.data.get("certification")
    hq = network.hq
    for agency, count in zip(working, counts, strict=True):
        engineers = certification.engineers.get(agency.id, []) if certification else []
        history = AgencyHistory(net, net.rng(f"service:{agency.code}"), clock, catalog, agency,
                                engineers, certification, hq)
        history.run(count, net.history_start, net.today)
        step.advance(count)
    net.data["service"] = {"catalog": catalog}


def make_catalog(net, lines) -> dict:
    """Repair codes, fault codes and parts of each product line, from the demo catalogs.

    {line id: {"repairs": [(id, hours)], "faults": [id], "parts": [(id, price, returnable)]}}
    """
    out = {}
    for line in lines:
        short = line.code.rsplit("-", 1)[-1]
        entry = {"repairs": [], "faults": [], "parts": []}
        for code, zh, en, hours in cat.REPAIR_CODES.get(short, []):
            [repair_id] = net.ids(svc.RepairCode, 1)
            net.add(svc.RepairCode, {"id": repair_id, "product_line_id": line.id,
                                 "code": f"{short}-{code}", "description_zh": zh,
                                 "description_en": en, "standard_hours": Decimal(hours),
                                 "is_active": True})
            entry["repairs"].append((repair_id, Decimal(hours)))
        for code, zh, en in cat.FAULT_CODES.get(short, []):
            [fault_id] = net.ids(svc.FaultCode, 1)
            net.add(svc.FaultCode, {"id": fault_id, "product_line_id": line.id,
                                "code": f"{short}-{code}", "description_zh": zh,
                                "description_en": en, "is_active": True})
            entry["faults"].append(fault_id)
        for number, zh, en, price, returnable in cat.PARTS.get(short, []):
            [part_id] = net.ids(svc.Part, 1)
            net.add(svc.Part, {"id": part_id, "part_number": f"{net.tag}-{number}", "name_zh": zh,
                           "name_en": en, "product_line_id": line.id,
                           "unit_price": Decimal(price), "is_returnable": returnable,
                           "is_active": True})
            entry["parts"].append((part_id, Decimal(price), returnable))
        entry["models"] = line.models
        out[line.id] = entry
    net.writer.flush()
    return out


class Clock:
    """Local days and their UTC start, cached (millions of timestamps are made)."""

    def __init__(self, now: datetime):
        self.zone = local_zone()
        self.now = now
        self._starts: dict = {}

    def start_of(self, day: date) -> datetime:
        found = self._starts.get(day)
        if found is None:
            found = self._starts[day] = datetime.combine(day, time(0), tzinfo=self.zone
                                                         ).astimezone(UTC)
        return found

    def day_of(self, moment: datetime) -> date:
        return moment.astimezone(self.zone).date()


class AgencyHistory:
    """One agency's orders over a span of days, in order of receipt, and what hangs on them."""

    def __init__(self, net, rng, clock: Clock, catalog: dict, agency, engineers, certification,
                 hq: dict):
        self.net, self.rng, self.clock, self.catalog = net, rng, clock, catalog
        self.agency, self.certification, self.hq = agency, certification, hq
        self.lines = [line for line in agency.line_ids if line in catalog]
        self.by_line: dict = defaultdict(list)
        for engineer_id, line_ids, left_on in engineers:
            for line in line_ids:
                self.by_line[line].append((engineer_id, left_on))
        self.favourite = engineers[0][0] if engineers else None
        self.staff = agency.accounts.get(Role.AGENCY_STAFF)
        self.window = timedelta(days=rework_days())
        self.due_days = timedelta(days=return_due_days())
        self.recent: deque = deque(maxlen=400)  # completed non-phone: (completed, serial, …)
        self.serials: dict = defaultdict(list)  # serial -> [(completed_at, order id)]
        self.used: dict = defaultdict(lambda: defaultdict(int))  # month -> part -> quantity
        self.per_day: dict = defaultdict(int)
        self.complained = 0

    # --- orders ----------------------------------------------------------------------------------

    def run(self, count: int, first: date, last: date, *, completed_in_warranty=False) -> list:
        if not self.lines or count <= 0:
            return []
        rng, clock = self.rng, self.clock
        span = (last - first).days
        moments = sorted(clock.start_of(first + timedelta(days=rng.randint(0, span)))
                         + timedelta(seconds=rng.randint(8 * 3600, 20 * 3600 - 1))
                         for _n in range(count))
        latest = clock.now - timedelta(minutes=30)
        moments = [m if m < latest else latest - timedelta(minutes=rng.randint(1, 600))
                   for m in moments]
        ids = self.net.ids(svc.WorkOrder, len(moments))
        orders = [self.order(order_id, at, completed_in_warranty)
                  for order_id, at in zip(ids, sorted(moments), strict=True)]
        if not completed_in_warranty:
            done = [o for o in orders if o["status"] == "completed"]
            if not self.complained and done:  # every agency has had a complaint
                self.complaint(done[-1]["id"], done[-1]["completed_at"], rng)
            self.requests()
        return orders

    def engineer_for(self, line: int, day: date) -> int | None:
        if self.favourite is not None and self.rng.random() < 0.3 and any(
                e == self.favourite for e, _left in self.by_line.get(line, ())):
            return self.favourite
        able = [e for e, left_on in self.by_line.get(line, ()) if left_on is None or left_on > day]
        return self.rng.choice(able) if able else None

    def times(self, kind: str, at: datetime):
        rng = self.rng
        slow = rng.random() < 0.1
        responded = at + timedelta(minutes=rng.randint(5, 90) if kind == "phone" else
                                   rng.randint(20, 240), hours=rng.randint(3, 30) if slow else 0)
        arrived = (responded + timedelta(hours=rng.randint(2, 20) + (12 if slow else 0))
                   if kind == "onsite" else None)
        if kind == "phone":
            completed = responded + timedelta(minutes=rng.randint(5, 40))
        elif kind == "onsite":
            completed = arrived + timedelta(minutes=rng.randint(30, 180))
        else:
            completed = at + timedelta(days=rng.randint(1, 5), hours=rng.randint(0, 6))
        return responded, arrived, completed

    def order(self, order_id: int, at: datetime, completed_in_warranty: bool) -> dict:
        rng, clock, now = self.rng, self.clock, self.clock.now
        day = clock.day_of(at)
        line = rng.choice(self.lines)
        models = self.catalog[line]["models"]
        model_id, model_code, months = rng.choice(models)
        kind = rng.choices(KINDS, weights=KIND_WEIGHTS)[0]
        serial = f"{model_code.rsplit('-', 1)[-1]}{rng.randint(10**9, 10**10 - 1)}"
        if kind != "phone" and self.recent and rng.random() < 0.06:
            floor = at - self.window + timedelta(days=1)
            candidates = [r for r in self.recent if floor < r[0] < at]
            if candidates:
                _c, serial, line, model_id, months = rng.choice(candidates)
        responded, arrived, completed = self.times(kind, at)
        if completed_in_warranty:
            completed = min(completed, now - timedelta(minutes=5))
            status = "completed"
        elif completed >= now or (at > now - timedelta(days=4) and rng.random() < 0.6):
            status = "cancelled" if rng.random() < 0.08 else "open"
        else:
            status = "cancelled" if rng.random() < 0.02 else "completed"
        done = status == "completed"
        if completed_in_warranty:
            purchase = day - timedelta(days=rng.randint(5, 300))
        else:
            purchase = day - timedelta(days=rng.randint(5, 1400))
        origin = None
        if kind != "phone":
            eligible = [(c, i) for c, i in self.serials.get(serial, ())
                        if at - self.window <= c <= at]
            origin = max(eligible)[1] if eligible else None
        service_date = clock.day_of(completed) if done else day
        engineer = self.engineer_for(line, day)
        self.per_day[day] += 1
        row = {
            "id": order_id, "agency_id": self.agency.id,
            "number": f"WO{day:%Y%m%d}-{self.per_day[day]:04d}", "service_type": kind,
            "status": status,
            "customer_name": rng.choice(cat.SURNAMES) + rng.choice(["先生", "女士"]),
            "customer_phone": f"1{rng.choice('3589')}{rng.randint(10**8, 10**9 - 1)}",
            "customer_address": (f"{self.agency.city}{rng.choice(cat.STREETS)}"
                                 f"{rng.randint(1, 300)}号") if kind == "onsite" else "",
            "product_line_id": line, "product_model_id": model_id, "serial_number": serial,
            "purchase_date": purchase, "is_in_warranty": is_in_warranty(purchase, months, day),
            "received_at": at, "responded_at": responded if responded < now else None,
            "arrived_at": arrived if arrived is not None and arrived < now else None,
            "completed_at": completed if done else None, "service_date": service_date,
            "distance_km": (Decimal(rng.randint(10, 600)) / 10 if kind == "onsite" and (
                done or (arrived is not None and arrived < now)) else None),
            "engineer_id": engineer,
            "is_engineer_certified": bool(engineer and self.certification
                                          and self.certification.is_certified(
                                              engineer, line, service_date)),
            "fault_code_id": rng.choice(self.catalog[line]["faults"]),
            "fault_description": rng.choice(cat.FAULT_TEXTS),
            "resolution": (rng.choice(cat.PHONE_RESOLUTIONS) if kind == "phone" else
                           rng.choice(cat.RESOLUTIONS)) if done else "",
            "is_first_time_fix": origin is None and rng.random() < 0.9,
            "is_rework": origin is not None, "rework_of_id": origin,
            "cancel_reason": "客户取消预约" if status == "cancelled" else None,
            "created_by_id": self.staff.id if self.staff else None, "created_at": at,
            "updated_at": completed if done else at, "version": 1}
        self.net.add(svc.WorkOrder, row)
        self.net.audit("work_order.completed" if done else "work_order.created", "WorkOrder",
                       order_id, at=at, actor=self.staff, agency_id=self.agency.id,
                       after={"number": row["number"], "status": status, "service_type": kind})
        if done:
            self.children(row, line, kind, completed, service_date, rng)
            if kind != "phone":
                self.serials[serial].append((completed, order_id))
                self.recent.append((completed, serial, line, model_id, months))
        return row

    # --- what hangs on a completed order ---------------------------------------------------------

    def children(self, row: dict, line: int, kind: str, completed: datetime, service_date,
                 rng) -> None:
        net, agency_id, order_id = self.net, self.agency.id, row["id"]
        entry = self.catalog[line]
        if kind != "phone":
            for repair_id, hours in rng.sample(entry["repairs"], rng.choice([1, 1, 2])):
                net.add(svc.WorkOrderRepair, {"agency_id": agency_id, "work_order_id": order_id,
                                          "repair_code_id": repair_id, "standard_hours": hours})
            if entry["parts"] and rng.random() < 0.4:
                part_id, price, returnable = rng.choice(entry["parts"])
                quantity = 2 if rng.random() < 0.1 else 1
                [used_id] = net.ids(svc.WorkOrderPart, 1)
                net.add(svc.WorkOrderPart, {"id": used_id, "agency_id": agency_id,
                                        "work_order_id": order_id, "part_id": part_id,
                                        "quantity": quantity, "unit_price": price})
                self.used[(service_date.year, service_date.month)][part_id] += quantity
                if returnable and row["is_in_warranty"]:
                    self.part_return(used_id, order_id, part_id, quantity, price, completed,
                                     service_date, rng)
        revisit_at = completed + timedelta(days=rng.randint(1, 5), hours=rng.randint(0, 8))
        if revisit_at < self.clock.now and rng.random() < 0.6:
            score = rng.choices(SCORES, weights=SCORE_WEIGHTS)[0]
            if row["is_rework"]:
                score = min(score, rng.choice([1, 2, 3]))
            net.add(svc.Revisit, {"agency_id": agency_id, "work_order_id": order_id, "score": score,
                              "comment": rng.choice(cat.REVISIT_COMMENTS[score]),
                              "revisited_at": revisit_at,
                              "recorded_by_id": self.hq["service"].id})
        if rng.random() < 0.012:
            self.complaint(order_id, completed, rng)
            self.complained += 1

    def part_return(self, used_id, order_id, part_id, quantity, price, completed, service_date,
                    rng) -> None:
        now = self.clock.now
        due = service_date + self.due_days
        row = {"agency_id": self.agency.id, "work_order_part_id": used_id,
               "work_order_id": order_id, "part_id": part_id, "quantity": quantity,
               "unit_price": price, "status": "due", "due_on": due, "carrier": None,
               "tracking_number": None, "shipped_at": None, "shipped_on": None,
               "inspected_at": None, "inspected_by_id": None, "reject_reason": None,
               "created_at": completed, "version": 1}
        roll = rng.random()
        if roll < 0.95:
            late = roll < 0.07
            shipped = completed + timedelta(days=rng.randint(31, 45) if late else
                                            rng.randint(2, 28), hours=rng.randint(0, 8))
            if shipped < now - timedelta(hours=1):
                row.update(status="shipped", carrier=rng.choice(cat.CARRIERS),
                           tracking_number=f"YT{rng.randint(10**11, 10**12 - 1)}",
                           shipped_at=shipped, shipped_on=self.clock.day_of(shipped))
                inspected = shipped + timedelta(days=rng.randint(3, 8))
                if inspected < now:
                    rejected = rng.random() < 0.08
                    row.update(status="rejected" if rejected else "accepted",
                               inspected_at=inspected, inspected_by_id=self.hq["parts"].id,
                               reject_reason="非原装件或缺少故障标签" if rejected else None)
        self.net.add(svc.PartReturn, row)

    def complaint(self, order_id: int | None, completed: datetime, rng) -> None:
        now = self.clock.now
        received = min(completed + timedelta(hours=rng.randint(2, 72)), now - timedelta(hours=2))
        responded = received + timedelta(hours=rng.randint(3, 40))
        closed = responded + timedelta(days=rng.randint(1, 6))
        state = "closed" if closed < now else ("responded" if responded < now else "open")
        verdict = rng.choice(["substantiated", "not_substantiated"])
        self.net.add(svc.Complaint, {
            "agency_id": self.agency.id, "work_order_id": order_id,
            "channel": rng.choice(CHANNELS), "severity": rng.choice(["minor", "minor", "major",
                                                                      "critical"]),
            "description": rng.choice(cat.COMPLAINTS), "status": state, "received_at": received,
            "recorded_by_id": self.hq["service"].id,
            "response": rng.choice(cat.RESPONSES) if state != "open" else None,
            "responded_at": responded if state != "open" else None,
            "responded_by_id": self.agency.accounts[Role.AGENCY_OWNER].id
            if state != "open" else None,
            "verdict": verdict if state == "closed" else None,
            "verdict_note": rng.choice(cat.VERDICT_NOTES[verdict]) if state == "closed" else None,
            "closed_at": closed if state == "closed" else None,
            "closed_by_id": self.hq["service"].id if state == "closed" else None, "version": 1})

    # --- parts supply ----------------------------------------------------------------------------

    def requests(self) -> None:
        """One request a month for what the month used (and a few spares): received, but the
        current month's, which is on its way; its usage came from the month before's spares."""
        if not self.used:
            return
        rng, clock, agency_id = self.rng, self.clock, self.agency.id
        months = sorted(self.used)
        today = clock.day_of(clock.now)
        current = (today.year, today.month)  # the network's month, as service dates are
        received_total: dict = defaultdict(int)
        ask: dict = {m: dict(self.used[m]) for m in months}
        if months[-1] == current and len(months) > 1:
            for part_id, quantity in ask[current].items():
                ask[months[-2]][part_id] = ask[months[-2]].get(part_id, 0) + quantity
        for month in months:
            [request_id] = self.net.ids(svc.PartsRequest, 1)
            submitted = clock.start_of(date(*month, 1)) + timedelta(hours=9 + rng.randint(0, 8))
            times = [submitted, submitted + timedelta(hours=rng.randint(4, 30))]
            times += [times[1] + timedelta(hours=rng.randint(6, 48))]
            times += [times[2] + timedelta(days=rng.randint(1, 4))]
            reached = sum(t < clock.now for t in times)
            status = ["submitted", "submitted", "approved", "shipped", "received"][reached]
            shipped = status in ("shipped", "received")
            self.net.add(svc.PartsRequest, {
                "id": request_id, "agency_id": agency_id,
                "number": f"PR{month[0]}{month[1]:02d}-01", "status": status,
                "note": "月度备货", "submitted_at": times[0],
                "submitted_by_id": self.staff.id if self.staff else None,
                "decided_at": times[1] if reached >= 2 else None,
                "decided_by_id": self.hq["parts"].id if reached >= 2 else None,
                "carrier": rng.choice(cat.CARRIERS) if shipped else None,
                "tracking_number": f"SF{rng.randint(10**11, 10**12 - 1)}" if shipped else None,
                "shipped_at": times[2] if shipped else None,
                "shipped_by_id": self.hq["parts"].id if shipped else None,
                "received_at": times[3] if status == "received" else None, "version": 1})
            for part_id, quantity in sorted(ask[month].items()):
                quantity += rng.randint(0, 2)
                approved = reached >= 2
                got = quantity if status == "received" else None
                if got:
                    received_total[part_id] += got
                self.net.add(svc.PartsRequestLine, {
                    "agency_id": agency_id, "request_id": request_id, "part_id": part_id,
                    "quantity": quantity, "reason": "stock", "work_order_id": None,
                    "decision": "approved" if approved else "pending",
                    "approved_quantity": quantity if approved else None, "reject_reason": None,
                    "received_quantity": got, "discrepancy_note": None})
        used_total: dict = defaultdict(int)
        for month in months:
            for part_id, quantity in self.used[month].items():
                used_total[part_id] += quantity
        for part_id in sorted(set(received_total) | set(used_total)):
            received, used = received_total[part_id], used_total[part_id]
            if received < used:  # a single month of history: what was used had been stocked
                received = used
            self.net.add(svc.PartStock, {"agency_id": agency_id, "part_id": part_id,
                                     "quantity": received - used, "received_total": received,
                                     "used_total": used, "updated_at": clock.now})


synth.register("service", build, order=30)


def add_orders(agency_id: int, count: int, first: date, last: date, *, seed: int = 1,
               now: datetime | None = None) -> int:
    """`count` more completed, in-warranty orders of one existing agency, received between
    `first` and `last` (benchmarks: a month with thousands of orders to claim); returns how
    many were written. Reads the agency's lines, catalog, engineers and certificates first."""
    from sqlalchemy import select

    from certification.models import Certificate, Engineer, EngineerProductLine
    from certification.synth import CertificationInfo
    from portal.auth.models import User
    from portal.extensions import db
    from tenants.models import Agency, AgencyProductLine, ProductModel
    from tenants.synth import AgencyInfo

    agency = db.session.execute(select(Agency.id, Agency.code, Agency.region_id, Agency.tier,
                                       Agency.status, Agency.city)
                                .where(Agency.id == agency_id)).one()
    lines = list(db.session.scalars(select(AgencyProductLine.product_line_id)
                                    .where(AgencyProductLine.agency_id == agency_id)))
    catalog = _catalog_of(lines, ProductModel, select, db)
    accounts = {role: synth.Account(i, email, role) for i, email, role in db.session.execute(
        select(User.id, User.email, User.role).where(User.agency_id == agency_id))}
    hq = {key: synth.Account(i, email, role) for key, (i, email, role) in zip(
        ("service", "parts"), [db.session.execute(select(User.id, User.email, User.role)
                                                  .where(User.role == role).limit(1)).one()
                               for role in (Role.HQ_SERVICE, Role.HQ_PARTS)], strict=True)}
    info = AgencyInfo(id=agency.id, code=agency.code, region_id=agency.region_id,
                      tier=agency.tier, status=agency.status, city=agency.city,
                      line_ids=lines, weight=1.0, accounts=accounts)
    by_engineer: dict = defaultdict(list)
    for engineer_id, line_id in db.session.execute(
            select(EngineerProductLine.engineer_id, EngineerProductLine.product_line_id)
            .where(EngineerProductLine.agency_id == agency_id)):
        by_engineer[engineer_id].append(line_id)
    engineers = [(e, by_engineer[e], left_on) for e, left_on in db.session.execute(
        select(Engineer.id, Engineer.left_on).where(Engineer.agency_id == agency_id)
        .order_by(Engineer.user_id.is_(None), Engineer.id))]
    certification = CertificationInfo()
    for engineer_id, line_id, valid_from, valid_to, revoked_on in db.session.execute(
            select(Certificate.engineer_id, Certificate.product_line_id, Certificate.valid_from,
                   Certificate.valid_to, Certificate.revoked_on)
            .where(Certificate.agency_id == agency_id)):
        certification.windows[engineer_id][line_id].append((valid_from, valid_to, revoked_on))
    now = (now or clock_now()).replace(microsecond=0)
    net = synth.Network(sizes=synth.Sizes(1, count, 0, 0), seed=seed,
                        writer=synth.BulkWriter(db.session.connection()), tag="",
                        now=now, today=local_day(now))
    history = AgencyHistory(net, net.rng(f"surge:{agency_id}"), Clock(now), catalog, info,
                            engineers, certification, hq)
    # Numbers of their own, beside the agency's usual WO… numbers of those days.
    history.per_day = defaultdict(lambda: 5000)
    written = history.run(count, first, last, completed_in_warranty=True)
    net.writer.flush()
    return len(written)


def _catalog_of(lines, product_model, select, db) -> dict:
    out = {}
    for line_id in lines:
        out[line_id] = {
            "repairs": [tuple(r) for r in db.session.execute(
                select(svc.RepairCode.id, svc.RepairCode.standard_hours)
                .where(svc.RepairCode.product_line_id == line_id))],
            "faults": list(db.session.scalars(select(svc.FaultCode.id)
                                              .where(svc.FaultCode.product_line_id == line_id))),
            "parts": [tuple(p) for p in db.session.execute(
                select(svc.Part.id, svc.Part.unit_price, svc.Part.is_returnable)
                .where(svc.Part.product_line_id == line_id))],
            "models": [tuple(m) for m in db.session.execute(
                select(product_model.id, product_model.code, product_model.warranty_months)
                .where(product_model.product_line_id == line_id))]}
    return {k: v for k, v in out.items() if v["models"] and v["faults"] and v["repairs"]}
