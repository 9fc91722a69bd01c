"""Every list page and dashboard, for every role that may open it, runs the same number of SQL
statements on a small synthetic network and after much more data is added (PRODUCT.md §3).

The pages are discovered from the URL map, so a new page is covered without anyone
remembering: every GET route, with the URL parameters filled by the resolvers below with the
object of the measured agency that has the most children (the biggest settlement, the order
with parts, the engineer with certificates, …). A parameter without a resolver fails the
test; a route that shows one stored file or one row's form is listed in SINGLE_ROW, with why.
"""
from collections import Counter
from datetime import timedelta

from flask import url_for
from sqlalchemy import func, select, update

from api.models import ApiToken
from certification.models import Certificate, Engineer, ExamSeat, Program
from evaluation.models import Quarter, QuarterStatus, Result, Scheme
from inbox.models import Announcement
from portal import clock, synth
from portal.auth.access import policy_of
from portal.auth.roles import AGENCY_ROLES, Role
from portal.extensions import db
from portal.tenancy import unscoped
from service.models import (
    Complaint,
    FaultCode,
    Part,
    PartReturn,
    PartsRequest,
    PartsRequestLine,
    RepairCode,
    Revisit,
    WorkOrder,
    WorkOrderPart,
)
from settlement.models import RateCardFee, Settlement
from tenants.models import Agency, ProductModel
from tests.api.helpers import token_for

# Small enough that every list is shorter than a page (a query per row would show), large
# enough that every page has an object to show.
SMALL = synth.Sizes(agencies=2, orders=24, engineers=6, quarters=1)
LARGE = synth.Sizes(agencies=12, orders=3600, engineers=120, quarters=1)

# Pages about one row or one stored file: no list whose length could grow with the data.
SINGLE_ROW = {
    "settlement.download": "the stored bytes of one evidence file",
    "evaluation.report_download": "the stored bytes of one report",
    "evaluation.ranking_download": "the stored bytes of one ranking report",
    "evaluation.resolve": "the form deciding one appeal",
    "jobs.show": "one job's progress",
    "jobs.download": "the stored bytes of one job's file (an import's rows with errors)",
    "jobs.progress": "one job's progress (JSON)",
    "tenants.issuer_image": "the stored bytes of the document issuer's logo or seal",
    "api_inbox.get_item": "one inbox item of one account (each role reads its own only)",
}
SKIPPED = {"static", "bootstrap.static"}
# List pages measured with their filters too.
FILTERED = {
    "service.orders": ["status=completed&type=onsite&warranty=in&rework=0",
                       "from=2000-01-01&to=2100-12-31&certified=1&sort=-completed", "page=2"],
    "settlement.settlements": ["status=submitted", "status=paid&page=2"],
    "audit.index": ["action=work_order&page=2", "object_type=Settlement", "signins=only",
                    "object=ST&page=2", "agency=A&actor=a", "from=2000-01-01&to=2100-01-01"],
    "audit.export": ["action=work_order"],
    "tenants.agencies": ["page=2&sort=-code"],
}
HQ_KEYS = {Role.HQ_ADMIN: "admin", Role.HQ_CERTIFIER: "certifier",
           Role.HQ_SETTLEMENT: "settlement", Role.HQ_PARTS: "parts",
           Role.HQ_SERVICE: "service", Role.HQ_DISPATCHER: "dispatcher",
           Role.AUDITOR: "auditor"}


def _one(stmt):
    return db.session.scalar(stmt.limit(1))


def _most(model, count_model, *join_on, agency_id):
    """The agency's row of `model` with the most `count_model` children."""
    return _one(select(model.id).outerjoin(count_model, *join_on)
                .where(model.agency_id == agency_id).group_by(model.id)
                .order_by(func.count(count_model.id).desc(), model.id))


def _service_request(fresh: bool = False):
    """The synthetic network has no hotline yet: one request waiting for dispatch (`fresh`:
    another one, for a second network's offer: a request has one open offer at most)."""
    from dispatch.requests import ServiceRequest, ServiceRequestCall
    from tenants.models import Province

    found = _one(select(ServiceRequest.id).order_by(ServiceRequest.id))
    if found is not None and not fresh:
        return found
    model = db.session.scalars(select(ProductModel).limit(1)).one()
    now = clock.now()
    n = db.session.scalar(select(func.count(ServiceRequest.id))) + 1
    row = ServiceRequest(number=f"SR20000101-{n:04d}", received_at=now, customer_name="王小明",
                         customer_phone="13800000000", province_id=_one(select(Province.id)),
                         city="深圳市", district="南山区", product_line_id=model.product_line_id,
                         product_model_id=model.id, serial_number=f"SYN-{n}",
                         serial_key=f"SYN-{n}",
                         fault_description="synthetic", service_type="onsite")
    db.session.add(row)
    db.session.flush()
    db.session.add(ServiceRequestCall(request_id=row.id, at=now))
    db.session.flush()
    return row.id


def _offer(agency_id):
    """An offer of the agency (the synthetic network makes none: one open offer)."""
    from dispatch.offers import COPIED, Offer
    from dispatch.requests import ServiceRequest

    found = _one(select(Offer.id).where(Offer.agency_id == agency_id).order_by(Offer.id))
    if found is not None:
        return found
    taken = select(Offer.request_id).where(Offer.status == "open")
    free = _one(select(ServiceRequest.id).where(ServiceRequest.id.not_in(taken))
                .order_by(ServiceRequest.id))
    sr = db.session.get(ServiceRequest, free or _service_request(fresh=True))
    now = clock.now()
    row = Offer(agency_id=agency_id, request_id=sr.id, offered_at=now,
                expires_at=now + timedelta(hours=2), request_number=sr.number,
                **{k: getattr(sr, k) for k in COPIED})
    db.session.add(row)
    db.session.flush()
    return row.id


def _dispatched_order(agency_id):
    """A dispatched order of the agency: one of its orders given running clocks."""
    from dispatch import sla
    from dispatch.requests import ServiceRequest

    found = _one(select(sla.SlaClock.work_order_id).where(sla.SlaClock.agency_id == agency_id))
    if found is not None:
        return found
    order = db.session.scalars(select(WorkOrder).where(WorkOrder.agency_id == agency_id)
                               # open and visited (bookable): the page in the same state
                               # in both networks
                               .order_by((WorkOrder.status != "open"),
                                         (WorkOrder.service_type == "phone"),
                                         (WorkOrder.status == "completed"),
                                         WorkOrder.id)).first()
    if order.status != "open" or order.service_type == "phone":
        # The synthetic network's last days are random: at some hours (00:30 on New Year's
        # Day) the agency has no open visit. Reopen one, so that both networks' pages offer
        # the booking form (its engineer list is one statement more).
        order.status, order.completed_at, order.cancel_reason = "open", None, None
        if order.service_type == "phone":
            order.service_type = "onsite"
        db.session.flush()
    sla.start_order_clocks(order, db.session.get(ServiceRequest, _service_request()),
                           accepted_at=clock.now())
    return order.id


def _resolvers(agency):
    """{URL parameter: id} for pages about `agency` (an AgencyInfo of the network)."""
    a = agency.id
    quarter = _one(select(Quarter.id).order_by(Quarter.year.desc(), Quarter.quarter.desc()))
    # The engineer with the engineer account: the engineer role sees their own rows.
    engineer = _one(select(Engineer.id).where(Engineer.agency_id == a,
                                              Engineer.user_id == agency.accounts[
                                                  Role.ENGINEER].id))
    return {
        "agency_id": a, "region_id": agency.region_id,
        "user_id": agency.accounts[Role.AGENCY_STAFF].id,
        "province_id": db.session.scalar(select(Agency.province_id).where(Agency.id == a)),
        "product_line_id": agency.line_ids[0],
        "model_id": _one(select(ProductModel.id)
                         .where(ProductModel.product_line_id == agency.line_ids[0])),
        "service_request_id": _service_request(),
        "offer_id": _offer(a),
        "work_order_id": _dispatched_order(a),
        "engineer_id": engineer,
        "certificate_id": _one(select(Certificate.id).where(Certificate.agency_id == a,
                                                            Certificate.engineer_id == engineer)),
        "exam_session_id": _one(select(ExamSeat.session_id).where(ExamSeat.agency_id == a)
                                .group_by(ExamSeat.session_id)
                                .order_by(func.count().desc())),
        "program_id": _one(select(Program.id).where(
            Program.product_line_id == agency.line_ids[0])),
        "order_id": _one(select(WorkOrder.id).outerjoin(WorkOrderPart, (
            WorkOrderPart.agency_id == a) & (WorkOrderPart.work_order_id == WorkOrder.id))
            .where(WorkOrder.agency_id == a, WorkOrder.engineer_id == engineer)
            .group_by(WorkOrder.id).order_by(func.count(WorkOrderPart.id).desc(),
                                             WorkOrder.id)),
        "complaint_id": _one(select(Complaint.id).where(Complaint.agency_id == a)),
        "parts_request_id": _most(PartsRequest, PartsRequestLine, (PartsRequestLine.agency_id == a)
                                  & (PartsRequestLine.request_id == PartsRequest.id),
                                  agency_id=a),
        "revisit_id": _one(select(Revisit.id).where(Revisit.agency_id == a)),
        "request_id": _most(PartsRequest, PartsRequestLine, (PartsRequestLine.agency_id == a)
                            & (PartsRequestLine.request_id == PartsRequest.id), agency_id=a),
        "return_id": _one(select(PartReturn.id).where(PartReturn.agency_id == a)),
        "fault_code_id": _one(select(FaultCode.id)),
        "repair_code_id": _one(select(RepairCode.id)),
        "part_id": _one(select(Part.id)),
        "settlement_id": _one(select(Settlement.id).where(Settlement.agency_id == a)
                              .order_by(Settlement.line_count.desc())),
        "rate_card_id": _one(select(RateCardFee.rate_card_id).group_by(RateCardFee.rate_card_id)
                             .order_by(func.count().desc())),
        "quarter_id": quarter,
        "result_id": _one(select(Result.id).where(Result.agency_id == a,
                                                  Result.quarter_id == quarter)),
        "kpi_code": "satisfaction",
        "scheme_id": _one(select(Scheme.id).order_by(Scheme.version.desc())),
        "endpoint_id": _webhook(a)[0], "delivery_id": _webhook(a)[1],
        "account_id": _service_account(),
        # The synthetic network's announcement to every agency (its page lists them all).
        "announcement_id": _one(select(Announcement.id).order_by(Announcement.id.desc())),
    }


def _webhook(agency_id: int) -> tuple[int, int]:
    """The agency's webhook endpoint with three deliveries (made once per network: the
    synthetic network has none)."""
    from api.webhooks.models import DELIVERED, WebhookDelivery, WebhookEndpoint

    endpoint = db.session.scalar(select(WebhookEndpoint).where(
        WebhookEndpoint.agency_id == agency_id).limit(1))
    if endpoint is None:
        endpoint = WebhookEndpoint(agency_id=agency_id, name="shop", url="https://hooks.example",
                                   events="offer.made", secret="whsec_test", active=True)
        db.session.add(endpoint)
        db.session.flush()
        for n in range(3):
            db.session.add(WebhookDelivery(agency_id=agency_id, endpoint_id=endpoint.id,
                                           event="offer.made", event_id=f"{n:032d}",
                                           status=DELIVERED, attempts=1, body="{}"))
        db.session.flush()
    delivery = db.session.scalar(select(WebhookDelivery.id).where(
        WebhookDelivery.endpoint_id == endpoint.id).limit(1))
    return endpoint.id, delivery


def _service_account() -> int:
    from api.service_accounts import create_service_account
    from portal.auth.models import User

    found = db.session.scalar(select(User.id).where(User.is_service_account.is_(True)).limit(1))
    if found is None:
        found = create_service_account("erp@hq.example", name="ERP", role=Role.HQ_SETTLEMENT,
                                       acting_user=None).id
    return found


def _subject(net):
    """The network's agency with the most work: its users and objects are measured."""
    working = [a for a in net.data["network"].agencies if a.status == "active"]
    return max(working, key=lambda a: a.weight)


def _account(role: Role, net, hq_net):
    agency = _subject(net)
    if role in AGENCY_ROLES:
        return agency.accounts[role]
    if role == Role.REGIONAL_MANAGER:
        return net.data["network"].managers[agency.region_id]
    return hq_net.data["network"].hq[HQ_KEYS[role]]


def _pages(app, net):
    """[(endpoint, url, roles)] of every GET page, with the network's subject filled in."""
    pages, unknown, absent = [], set(), []
    with app.test_request_context(), unscoped("the test picks the pages' objects"):
        values = _resolvers(_subject(net))
        db.session.commit()  # the rows resolvers made (an offer, a webhook) stay for the pages
        for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
            if "GET" not in rule.methods or rule.endpoint in SKIPPED | SINGLE_ROW.keys():
                continue
            policy = policy_of(rule.endpoint)
            if policy is None or policy.public:
                continue
            missing = [p for p in rule.arguments if p not in values]
            if missing:
                unknown.update((rule.rule, p) for p in missing)
                continue
            if any(values[p] is None for p in rule.arguments):
                absent.append(rule.endpoint)  # the network has no such row for the agency
                continue
            url = url_for(rule.endpoint, **{p: values[p] for p in rule.arguments})
            roles = sorted(policy.roles)
            pages.append((rule.endpoint, url, roles))
            for query in FILTERED.get(rule.endpoint, []):
                pages.append((rule.endpoint, f"{url}?{query}", roles))
    assert not unknown, ("add a resolver (or a SINGLE_ROW entry with its reason) for these "
                         f"URL parameters: {sorted(unknown)}")
    assert not absent, f"the network has no row to show on {absent}"
    return pages


def _measure(app, pages, clients, query_counter) -> dict:
    """{(url, role): (status, statements)} — each page requested as each role may (the API's
    resources with the role's token)."""
    out = {}
    for endpoint, url, roles in pages:
        for role in roles:
            client, token = clients[role]
            headers = {"Authorization": f"Bearer {token}"} if url.startswith("/api/") else {}
            with query_counter as counter:
                response = client.get(url, headers=headers)
            out[(endpoint, url, role)] = (response.status_code, counter.count)
    return out


def _clients(app, net, hq_net) -> dict:
    """{role: (a signed-in client, a token)} of the measured accounts."""
    clients = {}
    for role in Role:
        account = _account(role, net, hq_net)
        client = app.test_client()
        response = client.post("/auth/sign-in", data={"email": account.email,
                                                      "password": synth.SYNTH_PASSWORD})
        assert response.status_code == 302, account.email
        clients[role] = (client, token_for(app, account))
    with app.app_context(), unscoped("the test's tokens count as used just now"):
        # A token's last use is written at most once a minute: none is written while the
        # pages are measured, so no page's count depends on where that minute turns.
        db.session.execute(update(ApiToken).values(last_used_at=clock.now() + timedelta(days=1)))
        db.session.commit()
    return clients


def _rows(app, net) -> Counter:
    with app.app_context(), unscoped("the test counts what the network holds"):
        return Counter({"orders": db.session.scalar(select(func.count(WorkOrder.id))),
                        "settlements": db.session.scalar(select(func.count(Settlement.id))),
                        "subject orders": db.session.scalar(select(func.count(WorkOrder.id))
                                                            .where(WorkOrder.agency_id
                                                                   == _subject(net).id))})


def _publish_quarters(app) -> None:
    """Agencies see a quarter only once it is published: mark the synthetic ones published,
    so that the owner's evaluation pages are measured rather than answering 404."""
    now = clock.now()
    with app.app_context(), unscoped("the test publishes the synthetic quarters"):
        db.session.execute(update(Quarter).where(Quarter.status == QuarterStatus.DRAFT)
                           .values(status=QuarterStatus.PUBLISHED, published_at=now,
                                   appeal_deadline_at=now + timedelta(days=7)))


def test_every_list_page_runs_a_constant_number_of_queries(app, _transaction, query_counter,
                                                           capsys):
    with app.app_context():
        small = synth.build_network(SMALL, seed=3, commit=False)
    _publish_quarters(app)
    before = _rows(app, small)
    pages = _pages(app, small)
    few = _measure(app, pages, _clients(app, small, small), query_counter)

    with app.app_context():
        large = synth.build_network(LARGE, seed=4, commit=False)
    _publish_quarters(app)
    after = _rows(app, large)
    assert after["orders"] >= 20 * before["orders"]
    assert after["subject orders"] >= 5 * before["subject orders"]
    many = _measure(app, _pages(app, large), _clients(app, large, small), query_counter)

    checked, failures, skipped = 0, [], Counter()
    for (endpoint, small_url, role), (status, count) in few.items():
        match = [v for (e, u, r), v in many.items()
                 if e == endpoint and r == role and u.split("?", 1)[1:] == small_url.split(
                     "?", 1)[1:]]
        assert match, (endpoint, small_url, role)
        big_status, big_count = match[0]
        if status >= 500 or big_status >= 500:
            failures.append(f"{role} {endpoint}: {status}/{big_status}")
        elif status != 200 or big_status != 200:
            skipped[f"{endpoint} as {role}: {status}/{big_status}"] += 1
        elif count != big_count:
            failures.append(f"{role} {small_url}: {count} statements with "
                            f"{before['orders']} orders, {big_count} with {after['orders']}")
        else:
            checked += 1
    endpoints = {e for (e, _u, _r), (s, _c) in few.items() if s == 200}
    with capsys.disabled():
        print(f"\nquery counts: {checked} (page, role) pairs constant over {len(endpoints)} "
              f"pages ({before['orders']} → {after['orders']} orders); "
              f"not 200 for the role (small/large): {sorted(skipped)}")
    assert not failures, "\n".join(failures)
    assert checked > 300
