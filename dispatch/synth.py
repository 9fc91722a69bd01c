"""Synthetic network, dispatch: coverage areas and the hotline's waiting calls.

Every agency that works (not an applicant) serves its city for each line and service type it
is authorized for: mostly the whole city, otherwise one to three of its districts (some
agencies add a district row beside the whole city); HQ approved them. A few declarations wait
for HQ, a few were rejected, a few approved ones were withdrawn. Then a few hundred service
requests wait for dispatch, taken in the last hours in the agencies' cities, so that the
suggestion has candidates to rank (bench/suggest.py).

The generator reads what it needs (agencies, their lines, the product models, the accounts)
from the rows the earlier generators wrote, so :func:`top_up` can add the same rows to a
network built before this generator was registered.
"""
from collections import defaultdict
from datetime import timedelta

from sqlalchemy import select

from dispatch.coverage import Coverage, CoverageStatus
from dispatch.requests import RequestStatus, ServiceRequest, ServiceRequestCall
from portal import synth
from portal.auth.models import User
from portal.auth.roles import Role
from tenants.models import Agency, AgencyProductLine, AgencyStatus, ProductModel

DISTRICTS = ("城区", "新区", "高新区", "经开区", "老城区", "江北区", "南区", "郊县")
KINDS, KIND_WEIGHTS = ["phone", "onsite", "carry_in"], [1, 6, 3]
WHOLE_CITY_SHARE = 0.6  # agencies that declare the whole city (the rest: some districts)
FAULTS = ("空调制冷效果差，外机有异响", "冰箱冷藏室不制冷", "电视开机黑屏，有声音",
          "洗衣机脱水时震动很大", "热水器出水不热", "油烟机吸力变小", "微波炉不加热")
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾"


def request_count(agencies: int) -> int:
    """Waiting calls of a network of `agencies`: a few hundred at 2,000."""
    return max(20, min(400, agencies // 5))


def build(net: synth.Network) -> None:
    rng = net.rng("dispatch")
    conn = net.writer.connection
    like = f"{net.tag}-%"
    agencies = list(conn.execute(
        select(Agency.id, Agency.code, Agency.province_id, Agency.city, Agency.status,
               Agency.service_types)
        .where(Agency.code.like(like), Agency.province_id.is_not(None), Agency.city != "")
        .order_by(Agency.id)))
    ids = [a.id for a in agencies]
    lines: dict = defaultdict(list)
    for agency_id, line_id in conn.execute(
            select(AgencyProductLine.agency_id, AgencyProductLine.product_line_id)
            .where(AgencyProductLine.agency_id.in_(ids))
            .order_by(AgencyProductLine.agency_id, AgencyProductLine.product_line_id)):
        lines[agency_id].append(line_id)
    models: dict = defaultdict(list)
    for model_id, line_id in conn.execute(
            select(ProductModel.id, ProductModel.product_line_id)
            .where(ProductModel.code.like(like)).order_by(ProductModel.id)):
        models[line_id].append(model_id)
    owners = dict(conn.execute(select(User.agency_id, User.id).where(
        User.role == Role.AGENCY_OWNER.value, User.agency_id.in_(ids))).all())
    hq = dict(conn.execute(select(User.email, User.id).where(
        User.email.in_([f"admin@{net.tag.lower()}.synth",
                        f"dispatcher@{net.tag.lower()}.synth"]))).all())
    admin = hq.get(f"admin@{net.tag.lower()}.synth")
    dispatcher = hq.get(f"dispatcher@{net.tag.lower()}.synth")

    step = net.step("dispatch: coverage", len(agencies))
    for agency in agencies:
        if agency.status != AgencyStatus.APPLICANT:
            _coverage(net, rng, agency, lines[agency.id], owners.get(agency.id), admin)
        step.advance()
    working = [a for a in agencies if a.status in (AgencyStatus.ACTIVE, AgencyStatus.PROBATION)
               and lines[a.id]]
    _requests(net, rng, working, lines, models, dispatcher)


def _coverage(net, rng, agency, line_ids, owner_id, admin_id) -> None:
    types = [t for t in agency.service_types.split(",") if t]
    whole_city = rng.random() < WHOLE_CITY_SHARE
    districts = sorted(rng.sample(DISTRICTS, rng.randint(1, 3)))
    for line_id in line_ids:
        for kind in types:
            areas = [""] if whole_city else list(districts)
            if whole_city and rng.random() < 0.2:  # the city and, closer, its own district
                areas.append(districts[0])
            for district in areas:
                _area(net, rng, agency, owner_id, admin_id, line_id, kind, district,
                      _status(rng))


def _status(rng) -> str:
    roll = rng.random()
    if roll < 0.02:
        return CoverageStatus.PROPOSED
    if roll < 0.03:
        return CoverageStatus.REJECTED
    if roll < 0.04:
        return CoverageStatus.WITHDRAWN
    return CoverageStatus.APPROVED


def _area(net, rng, agency, owner_id, admin_id, line_id, kind, district, status) -> None:
    declared = net.now - timedelta(days=rng.randint(30, 400), minutes=rng.randint(0, 600))
    decided = declared + timedelta(days=rng.randint(0, 5), hours=rng.randint(1, 8))
    row = {"agency_id": agency.id, "province_id": agency.province_id, "city": agency.city,
           "district": district, "product_line_id": line_id, "service_type": kind,
           "status": status, "reason": "", "declared_at": declared,
           "declared_by_id": owner_id, "decided_at": None, "decided_by_id": None,
           "withdrawn_at": None, "withdrawn_by_id": None, "version": 1}
    if status != CoverageStatus.PROPOSED:
        row.update(decided_at=decided, decided_by_id=admin_id, version=2)
    if status == CoverageStatus.REJECTED:
        row["reason"] = "该区域由就近的服务站覆盖，请与大区经理确认后再申报。"
    if status == CoverageStatus.WITHDRAWN:
        row.update(withdrawn_at=decided + timedelta(days=rng.randint(1, 20)),
                   withdrawn_by_id=owner_id, version=3)
    net.add(Coverage, row)


def _requests(net, rng, working, lines, models, dispatcher_id) -> None:
    count = request_count(net.sizes.agencies) if working else 0
    step = net.step("dispatch: service requests", count)
    day = net.today
    for n in range(1, count + 1):
        agency = rng.choice(working)
        line_id = rng.choice(lines[agency.id])
        if not models[line_id]:
            continue
        kind = rng.choices(KINDS, weights=KIND_WEIGHTS)[0]
        received = net.now - timedelta(minutes=rng.randint(1, 8 * 60))
        serial = f"{net.tag}-SR{n:06d}"
        [request_id] = net.ids(ServiceRequest, 1)
        net.add(ServiceRequest, {
            "id": request_id, "number": f"{net.tag}-SR{day:%y%m%d}-{n:04d}",
            "status": RequestStatus.NEW.value, "received_at": received,
            "customer_name": rng.choice(SURNAMES) + rng.choice(("先生", "女士")),
            "customer_phone": f"139{rng.randint(10**7, 10**8 - 1)}",
            "province_id": agency.province_id, "city": agency.city,
            "district": rng.choice(DISTRICTS),
            "street": f"人民路{rng.randint(1, 999)}号" if kind == "onsite" else "",
            "product_line_id": line_id, "product_model_id": rng.choice(models[line_id]),
            "serial_number": serial, "serial_key": serial,
            "purchase_date": day - timedelta(days=rng.randint(30, 900)),
            "fault_description": rng.choice(FAULTS), "service_type": kind,
            "taken_by_id": dispatcher_id, "cancel_reason": "", "version": 1,
            "created_at": received, "updated_at": received})
        net.add(ServiceRequestCall, {"request_id": request_id, "at": received, "note": "",
                                     "taken_by_id": dispatcher_id, "call_key": None})
        step.advance()


def top_up(tag: str, *, seed: int = 2026) -> bool:
    """Add the dispatch rows to the synthetic network `tag` built without this generator
    (an app context, inside `unscoped`); returns whether it added any. Commits."""
    from portal.extensions import db

    connection = db.session.connection()
    if connection.execute(select(Coverage.id).join(Agency, Agency.id == Coverage.agency_id)
                          .where(Agency.code.like(f"{tag}-%")).limit(1)).first():
        return False
    agencies = connection.execute(select(Agency.id).where(Agency.code.like(f"{tag}-%"))
                                  ).all()
    from portal import clock

    now = clock.now().replace(microsecond=0)
    net = synth.Network(sizes=synth.Sizes(agencies=len(agencies), orders=0, engineers=0),
                        seed=seed, writer=synth.BulkWriter(connection), tag=tag, now=now,
                        today=clock.local_day(now))
    build(net)
    net.writer.flush()
    db.session.commit()
    return True


synth.register("dispatch", build, order=35)
