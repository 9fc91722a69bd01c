"""Demo coverage: every active agency serves its own city for each product line and service
type it is authorized for, approved by HQ; one declaration waits for HQ, one was rejected.

And a day at the hotline (the dispatcher's console on `make run`): requests waiting for
dispatch (one called twice), offers waiting for the agency (one about to expire), a refusal
with its reason, orders with appointments today, clocks in every state (on time, warning,
breached, breached and escalated, met), one cancelled request. Times are set back in
business time on the network calendar, so the states hold whenever the demo is loaded."""
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from certification.models import Engineer, EngineerStatus
from dispatch import appointments, calendar, coverage, network_calendar, offers, requests, sla
from portal import clock, demo
from portal.extensions import db
from service.services import PLAIN_FIELDS, update_work_order
from tenants.models import Agency, AgencyStatus, ProductModel


def register() -> None:
    demo.register("dispatch", load, order=35)


def _declare(agency: Agency, line_id: int, service_type: str, district: str = ""):
    return coverage.declare_coverage(
        agency, province_id=agency.province_id, city=agency.city, district=district,
        product_line_id=line_id, service_type=service_type, acting_user=None)


def load(ctx: dict) -> None:
    agencies = list(db.session.scalars(
        select(Agency).where(Agency.status == AgencyStatus.ACTIVE,
                             Agency.province_id.is_not(None), Agency.city != "")
        .options(selectinload(Agency.product_lines)).order_by(Agency.code)))
    for agency in agencies:
        for line in agency.product_lines:
            for service_type in agency.service_type_list:
                row = _declare(agency, line.id, service_type)
                coverage.decide_coverage(row, approve=True, acting_user=None,
                                         seen_version=row.version)
    waiting = [a for a in agencies if a.product_lines and a.service_type_list][:2]
    if waiting:
        agency = waiting[0]
        _declare(agency, agency.product_lines[0].id, agency.service_type_list[0],
                 district="新区")
    if len(waiting) > 1:
        agency = waiting[1]
        row = _declare(agency, agency.product_lines[0].id, agency.service_type_list[0],
                       district="郊县")
        coverage.decide_coverage(
            row, approve=False, acting_user=None, seen_version=row.version,
            reason="该区县由就近的服务站覆盖，请与大区经理确认后再申报。")
    demo.checkpoint()
    _calls(ctx, agencies)
    _dispatch_day(ctx, agencies)


# (minutes ago, customer, phone, street, serial, fault, service type)
CALLS = [
    (95, "陈女士", "13916650021", "世纪大道 100 号 12 楼", "DEMO-SR-0001",
     "空调制冷效果差，外机有异响", "onsite", "AC"),
    (70, "赵先生", "13761120456", "人民路 18 弄 3 号", "DEMO-SR-0002", "冰箱冷藏室不制冷",
     "onsite", "RF"),
    (42, "孙女士", "13602231187", "", "DEMO-SR-0003", "电视开机黑屏，有声音", "carry_in", "TV"),
    (15, "钱先生", "13800138000", "滨江路 9 号", "DEMO-SR-0004", "洗衣机脱水时震动很大", "onsite",
     "WM"),
]


def _place(agencies, used: set, line_code: str):
    """The first agency not called about yet that serves the line, with that line (else the
    first such agency's first line: a demo network without the line)."""
    for agency in agencies:
        line = next((x for x in agency.product_lines if x.code == line_code), None)
        if line is not None and agency.id not in used:
            return agency, line
    agency = next((a for a in agencies if a.product_lines and a.id not in used), None)
    return (agency, agency.product_lines[0]) if agency is not None else (None, None)


def _calls(ctx: dict, agencies) -> None:
    """The hotline this morning: four requests waiting for dispatch (the first customer
    called twice), and one cancelled because the customer solved it; each about a product of
    the line its fault speaks of, in the city of an agency serving that line."""
    dispatcher = ctx.get("users", {}).get("dispatcher@hq.demo")
    now = clock.now()
    used: set = set()
    for minutes, name, phone, street, serial, fault, kind, line_code in CALLS:
        agency, line = _place(agencies, used, line_code)
        if agency is None:
            break
        used.add(agency.id)
        model = db.session.scalars(select(ProductModel).where(
            ProductModel.product_line_id == line.id)
            .order_by(ProductModel.code).limit(1)).one()
        data = {"customer_name": name, "customer_phone": phone,
                "province_id": agency.province_id, "city": agency.city, "district": "城区",
                "street": street, "service_type": kind,
                "product_line_id": model.product_line_id, "product_model_id": model.id,
                "serial_number": serial, "purchase_date": clock.local_day(now)
                - timedelta(days=400), "fault_description": fault}
        taken = requests.take_call(data, acting_user=dispatcher,
                                   now=now - timedelta(minutes=minutes))
        if serial == "DEMO-SR-0001":  # she called again: linked, not a second request
            requests.take_call({**data, "note": "客户再次来电催促"}, acting_user=dispatcher,
                               now=now - timedelta(minutes=30))
        if serial == "DEMO-SR-0004":
            requests.cancel_service_request(taken.request, "客户来电说明已自行解决（未放平）",
                                            acting_user=dispatcher,
                                            seen_version=taken.request.version)
    demo.checkpoint()


def _ago(business_minutes: int):
    """The instant `business_minutes` of network working time before now (a few minutes of
    wall time more when now is outside working hours)."""
    cal, now = network_calendar.load(), clock.now()
    moment = now
    while calendar.business_seconds(cal, moment, now) < business_minutes * 60:
        moment -= timedelta(minutes=5)
    return moment


# (request business minutes ago, customer, phone, street, serial, fault, what happened): air
# conditioners in Guangzhou, GD-C01's city and first product line.
DAY = [
    (25, "周先生", "13524460019", "天河路 66 号", "DEMO-SR-0101", "空调不制热，显示 E5",
     "expiring"),
    (12, "吴女士", "13817790033", "环市东路 500 号 7 楼", "DEMO-SR-0102", "空调出风口滴水",
     "offered"),
    (50, "郑先生", "13651102278", "东风中路 21 号", "DEMO-SR-0103", "空调开机后自动停机",
     "refused"),
    (200, "王女士", "13901234567", "中山大道 88 号 5 楼", "DEMO-SR-0104",
     "空调内机漏水", "appointment_today"),
    (1150, "冯先生", "13788812345", "江南大道 12 号", "DEMO-SR-0105", "空调压缩机不启动",
     "breached"),
    (1700, "褚女士", "13611112222", "黄埔大道 200 号", "DEMO-SR-0106", "空调外机噪音大",
     "escalated"),
    (1500, "卫先生", "13933334444", "越秀南路 3 号", "DEMO-SR-0107", "空调室外机结霜严重",
     "arrived"),
    (850, "蒋女士", "13555556666", "工业大道 9 号", "DEMO-SR-0108", "空调遥控失灵，主板报警",
     "warning"),
]


def _dispatch_day(ctx: dict, agencies) -> None:
    users = ctx.get("users", {})
    dispatcher = users.get("dispatcher@hq.demo")
    by_code = {a.code: a for a in agencies}
    # GD-C01 carries the day's dispatched orders (its owner's inbox fills with their SLA
    # tasks); SH-C01, the browser journeys' agency, keeps a quiet inbox and refuses one offer.
    home = by_code.get("GD-C01") or next((a for a in agencies if a.product_lines), None)
    if home is None or not home.product_lines:
        return
    line_id = home.product_lines[0].id
    kind = "onsite" if "onsite" in home.service_type_list else home.service_type_list[0]
    # A second agency also covers the home city (it will refuse an offer for lack of time).
    neighbour = next((a for a in agencies if a is not home and kind in a.service_type_list
                      and line_id in {line.id for line in a.product_lines}
                      and _owner_of(a) is not None), None)
    if neighbour is not None and neighbour.city != home.city:
        row = coverage.declare_coverage(
            neighbour, province_id=home.province_id, city=home.city, district="城区",
            product_line_id=line_id, service_type=kind, acting_user=None)
        coverage.decide_coverage(row, approve=True, acting_user=None,
                                 seen_version=row.version)
    others = [neighbour] if neighbour is not None else []
    owner = _owner_of(home)
    engineer = db.session.scalars(select(Engineer).where(
        Engineer.agency_id == home.id, Engineer.status == EngineerStatus.ACTIVE)
        .order_by(Engineer.id).limit(1)).first()
    model = db.session.scalars(select(ProductModel).where(
        ProductModel.product_line_id == home.product_lines[0].id)
        .order_by(ProductModel.code).limit(1)).one()
    for minutes, name, phone, street, serial, fault, story in DAY:
        received = _ago(minutes)
        data = {"customer_name": name, "customer_phone": phone,
                "province_id": home.province_id, "city": home.city, "district": "城区",
                "street": street, "service_type": kind,
                "product_line_id": model.product_line_id, "product_model_id": model.id,
                "serial_number": serial, "purchase_date": clock.local_day(received)
                - timedelta(days=300), "fault_description": fault}
        request = requests.take_call(data, acting_user=dispatcher, now=received).request
        if story == "refused" and others:
            agency = others[0]
            if coverage.covers(agency.id, request):
                offer = offers.make_offer(request, agency.id, acting_user=dispatcher,
                                          now=received + timedelta(minutes=3))
                offers.refuse_offer(offer, "capacity", "本周工程师已排满，请改派其他网点。",
                                    acting_user=_owner_of(agency),
                                    now=received + timedelta(minutes=20),
                                    seen_version=offer.version)
            continue
        offered_at = _ago(28) if story == "expiring" else received + timedelta(minutes=2)
        offer = offers.make_offer(request, home.id, acting_user=dispatcher,
                                  now=max(offered_at, received))
        if story in ("expiring", "offered"):
            continue
        order = offers.accept_offer(offer, acting_user=owner, seen_version=offer.version,
                                    now=offer.offered_at + timedelta(minutes=10))
        clocks = sla.order_clocks(home.id, order.id)
        if engineer is None or kind == "phone":
            continue
        _history(order, clocks, engineer, owner, story, received)
    demo.checkpoint()


def _owner_of(agency):
    from portal.auth.models import User
    from portal.auth.roles import Role

    return db.session.scalars(select(User).where(
        User.agency_id == agency.id, User.role == str(Role.AGENCY_OWNER))
        .order_by(User.id).limit(1)).first()


def _history(order, clocks, engineer, owner, story, received) -> None:
    """What the agency did since accepting, with the moments set back (the demo's past)."""
    local = clock.local_now()
    if story == "appointment_today":
        start = clock.from_local(local.replace(tzinfo=None, minute=0, second=0,
                                               microsecond=0) + timedelta(hours=2))
        appointments.book_appointment(order, engineer.id, start, start + timedelta(hours=2),
                                      acting_user=owner, now=received + timedelta(minutes=40))
        return
    booked = received + timedelta(minutes=60)
    soon = clock.now() + timedelta(days=1)
    row = appointments.book_appointment(order, engineer.id, soon, soon + timedelta(hours=2),
                                        acting_user=owner)
    met = {sla.Milestone.APPOINTMENT: booked}
    if story == "arrived":  # the engineer came inside the window, the repair goes on
        window_from = received + timedelta(hours=3)
        row.window_from, row.window_to = window_from, window_from + timedelta(hours=2)
        arrived = window_from + timedelta(minutes=30)
        data = {key: getattr(order, key) for key in PLAIN_FIELDS}
        update_work_order(order.agency, order, {
            **data, "number": order.number, "product_model_id": order.product_model_id,
            "repair_code_ids": [], "parts": [], "arrived_at": arrived}, acting_user=owner)
        met[sla.Milestone.ARRIVAL] = arrived
    for found in clocks:
        if found.milestone in met:
            found.met_at = met[found.milestone]
