"""The call center through the API: a service request made with an idempotency key, read
back with its ETag; customer details masked for readers other than the dispatchers; the
same key with another body refused; errors as problem documents in the caller's language."""
from sqlalchemy import func, select

from dispatch.requests import ServiceRequest
from portal.auth.roles import Role
from portal.extensions import db
from portal.tenancy import unscoped
from tests.api.helpers import caller
from tests.dispatch.test_offers import Net


def _call(net, serial="SN-API-1", **changes):
    data = {"customer_name": "王小明", "customer_phone": "13912345678",
            "province_id": net.province_id, "city": net.city, "district": "南山区",
            "street": "科技园路 1 号", "product_line_id": net.world.line.id,
            "product_model_id": net.model_id, "serial_number": serial,
            "fault_description": "不制冷", "service_type": "onsite"}
    data.update(changes)
    return data


def _requests(app) -> int:
    with app.app_context(), unscoped("the test counts"):
        return db.session.scalar(select(func.count()).select_from(ServiceRequest))


def test_call_center_creates_a_request_once_whatever_the_retries(app, client, world):
    with app.app_context():
        net = Net(world)
        db.session.commit()
    hotline = caller(app, client, world.user(Role.HQ_DISPATCHER))
    first = hotline.post("/api/v1/service-requests/", json=_call(net),
                         headers={"Idempotency-Key": "call-1"})
    assert first.status_code == 201, first.get_data(as_text=True)
    made = first.json["request"]
    assert made["customer_name"] == "王小明" and made["status"] == "new"
    again = hotline.post("/api/v1/service-requests/", json=_call(net),
                         headers={"Idempotency-Key": "call-1"})
    assert again.status_code == 201 and again.json == first.json
    assert again.headers["Idempotent-Replayed"] == "true"
    assert _requests(app) == 1
    other = hotline.post("/api/v1/service-requests/", json=_call(net, serial="SN-API-2"),
                         headers={"Idempotency-Key": "call-1"})
    assert other.status_code == 422 and other.mimetype == "application/problem+json"
    assert _requests(app) == 1

    read = hotline.get(first.headers["Location"])
    assert read.status_code == 200 and read.headers["ETag"].endswith(f'-v{made["version"]}"')
    service = caller(app, client, world.user(Role.HQ_SERVICE))
    masked = service.get(first.headers["Location"]).json
    assert masked["customer_name"] != "王小明" and "*" in masked["customer_name"]


def test_bad_fields_are_listed_in_the_callers_language(app, client, world):
    with app.app_context():
        net = Net(world)
        db.session.commit()
    hotline = caller(app, client, world.user(Role.HQ_DISPATCHER), language="zh-CN")
    response = hotline.post("/api/v1/service-requests/",
                            json=_call(net, service_type="teleport", city=""))
    assert response.status_code == 422
    problem = response.json
    assert problem["status"] == 422 and {e["field"] for e in problem["errors"]} >= {
        "service_type", "city"}
    assert response.headers["Content-Language"].startswith("zh")
    assert _requests(app) == 0
    refused = hotline.post("/api/v1/service-requests/", json=_call(net, province_id=999999))
    assert refused.status_code == 422 and refused.json["errors"][0]["field"] == "province_id"


def test_agencies_and_anonymous_callers_are_refused(app, client, world):
    owner = caller(app, client, world.user(Role.AGENCY_OWNER))
    assert owner.get("/api/v1/service-requests/").status_code == 403
    anonymous = client.get("/api/v1/service-requests/")
    assert anonymous.status_code == 401 and anonymous.headers["WWW-Authenticate"]
    wrong = client.get("/api/v1/service-requests/",
                       headers={"Authorization": "Bearer snp_abcdefgh_nottherealsecret"})
    assert wrong.status_code == 401
