"""HQ narrows the service lists to one agency by typing its code (no list of every agency);
an unknown code says so and finds nothing; agency users have no such filter."""
import re

import pytest
from sqlalchemy import func, select

from portal.auth.roles import Role
from portal.extensions import db
from portal.tenancy import unscoped
from service.models import Complaint, WorkOrder
from tests.factories import make_agency, signed_in
from tests.service import factories as f

LISTS = ["/service/orders/", "/service/revisits/", "/service/complaints/",
         "/service/parts-requests/", "/service/stock/", "/service/returns/"]
UNKNOWN = "No agency with this code."


@pytest.fixture
def numbers(app, world):
    """One order of each agency of the world: {agency code: order number}."""
    with app.app_context(), unscoped("orders of three agencies"):
        out = {agency.code: f.make_order(agency, world.line).number
               for agency in (world.a, world.a2, world.b)}
        db.session.commit()
    return out


def _orders_on(page: str, numbers: dict) -> set[str]:
    return {code for code, number in numbers.items() if number in page}


def test_hq_filters_the_orders_by_a_typed_agency_code(app, world, numbers):
    hq = signed_in(app, world.user(Role.HQ_SERVICE))
    page = hq.get("/service/orders/").get_data(as_text=True)
    assert _orders_on(page, numbers) == {"A-OWN", "A-SIB", "B-FOR"}
    # A text input, not a drop-down listing every agency of the network.
    assert re.search(r'<input[^>]*name="agency_code"', page)
    assert 'name="agency"' not in page and '<option value="%s"' % world.b.id not in page
    page = hq.get("/service/orders/?agency_code=B-FOR").get_data(as_text=True)
    assert _orders_on(page, numbers) == {"B-FOR"} and UNKNOWN not in page
    assert re.search(r'name="agency_code" value="B-FOR"', page)
    page = hq.get("/service/orders/?agency_code=+a-sib+").get_data(as_text=True)
    assert _orders_on(page, numbers) == {"A-SIB"}  # any letter case, spaces trimmed
    # Links of earlier versions (?agency=<id>) still work and show the agency's code.
    page = hq.get(f"/service/orders/?agency={world.a.id}").get_data(as_text=True)
    assert _orders_on(page, numbers) == {"A-OWN"} and 'value="A-OWN"' in page


@pytest.mark.parametrize("url", LISTS)
def test_an_unknown_code_says_so_and_lists_nothing(app, world, numbers, url):
    hq = signed_in(app, world.user(Role.HQ_ADMIN))
    for query in ("agency_code=NO-SUCH", "agency_code=%25", "agency_code=" + "X" * 300,
                  "agency=987654"):
        response = hq.get(f"{url}?{query}")
        page = response.get_data(as_text=True)
        assert response.status_code == 200, (url, query)
        assert UNKNOWN in page and 'aria-invalid="true"' in page, (url, query)
        assert not _orders_on(page, numbers), (url, query)


def test_the_message_is_translated(app, world, numbers):
    hq = signed_in(app, world.user(Role.HQ_SERVICE))
    hq.post("/locale", data={"locale": "zh_CN"})
    page = hq.get("/service/orders/?agency_code=NO-SUCH").get_data(as_text=True)
    assert "没有此编码的服务网点。" in page and UNKNOWN not in page


def test_an_agency_user_has_no_agency_filter_and_a_code_reaches_nothing(app, world, numbers):
    owner = signed_in(app, world.user(Role.AGENCY_OWNER))
    for url in LISTS:
        page = owner.get(url).get_data(as_text=True)
        assert 'name="agency_code"' not in page, url
    for query in ("agency_code=B-FOR", f"agency={world.b.id}", "agency_code=NO-SUCH"):
        page = owner.get(f"/service/orders/?{query}").get_data(as_text=True)
        # The filter is not theirs: their own orders, nothing of B, no message.
        assert _orders_on(page, numbers) <= {"A-OWN"} and "CANARY-B" not in page, query
        assert UNKNOWN not in page, query
    page = owner.get("/service/orders/?agency_code=B-FOR").get_data(as_text=True)
    assert _orders_on(page, numbers) == {"A-OWN"}


def test_a_regional_manager_reaches_only_the_agencies_of_the_region(app, world, numbers):
    manager = signed_in(app, world.user(Role.REGIONAL_MANAGER))
    page = manager.get("/service/orders/?agency_code=A-SIB").get_data(as_text=True)
    assert _orders_on(page, numbers) == {"A-SIB"}
    for query in ("agency_code=B-FOR", f"agency={world.b.id}"):
        page = manager.get(f"/service/orders/?{query}").get_data(as_text=True)
        # Another region's agency answers exactly like one that does not exist.
        assert UNKNOWN in page and not _orders_on(page, numbers), query


def test_the_list_runs_the_same_queries_with_many_more_agencies(app, world, numbers,
                                                                query_counter):
    hq = signed_in(app, world.user(Role.HQ_SERVICE))

    def counts():
        out = {}
        for url in ("/service/orders/", "/service/orders/?agency_code=A-OWN",
                    "/service/orders/?agency_code=NO-SUCH", "/service/complaints/"):
            with query_counter as counter:
                page = hq.get(url).get_data(as_text=True)
            out[url] = (counter.count, page.count("<option"))
        return out

    few = counts()
    with app.app_context(), unscoped("forty more agencies"):
        for n in range(40):
            make_agency(world.region2, f"MORE-{n:02d}", product_lines=[world.line])
        db.session.commit()
    assert counts() == few


def test_hq_records_a_complaint_against_a_typed_agency_code(app, world, numbers):
    hq = signed_in(app, world.user(Role.HQ_SERVICE))
    page = hq.get("/service/complaints/new").get_data(as_text=True)
    assert re.search(r'<input[^>]*name="agency_code"', page) and 'name="agency_id"' not in page
    data = {"order_number": "", "channel": "hotline", "severity": "major",
            "description": "上门迟到"}
    response = hq.post("/service/complaints/new", data={**data, "agency_code": "NO-SUCH"})
    assert response.status_code == 200 and UNKNOWN in response.get_data(as_text=True)
    response = hq.post("/service/complaints/new", data={**data, "agency_code": " b-for "})
    assert response.status_code == 302
    with app.app_context(), unscoped("the test reads the complaint"):
        assert db.session.scalar(select(func.count(Complaint.id))) == 1
        assert db.session.scalar(select(Complaint.agency_id)) == world.b.id
        assert db.session.scalar(select(func.count(WorkOrder.id))) == 3
