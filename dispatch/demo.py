"""Demo coverage: every active agency serves its own city for each product line and service
type it is authorized for, approved by HQ; one declaration waits for HQ, one was rejected.
And this morning's calls at the hotline: requests waiting for dispatch, one called twice, one
cancelled."""
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from dispatch import coverage, requests
from portal import clock, demo
from portal.extensions import db
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


# (minutes ago, customer, phone, street, serial, fault, service type)
CALLS = [
    (95, "陈女士", "13916650021", "世纪大道 100 号 12 楼", "DEMO-SR-0001",
     "空调制冷效果差，外机有异响", "onsite"),
    (70, "赵先生", "13761120456", "人民路 18 弄 3 号", "DEMO-SR-0002", "冰箱冷藏室不制冷",
     "onsite"),
    (42, "孙女士", "13602231187", "", "DEMO-SR-0003", "电视开机黑屏，有声音", "carry_in"),
    (15, "钱先生", "13800138000", "滨江路 9 号", "DEMO-SR-0004", "洗衣机脱水时震动很大", "onsite"),
]


def _calls(ctx: dict, agencies) -> None:
    """The hotline this morning: four requests waiting for dispatch (the first customer
    called twice), and one cancelled because the customer solved it."""
    dispatcher = ctx.get("users", {}).get("dispatcher@hq.demo")
    now = clock.now()
    places = [a for a in agencies if a.product_lines][:len(CALLS) + 1]
    for (minutes, name, phone, street, serial, fault, kind), agency in zip(CALLS, places,
                                                                          strict=False):
        model = db.session.scalars(select(ProductModel).where(
            ProductModel.product_line_id == agency.product_lines[0].id)
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
