"""What each agency role may open, on its own agency's rows (PRODUCT.md §1).

The README's tables ("Demo accounts", "Who uses it") say the same in words: the owner runs
the agency (accounts, claims, evaluation); staff handle orders and parts and read the agency's
settlements with their statements, exports and evidence; engineers read their certificates
and the orders assigned to them. A page a role may not open answers 403 and is not offered in
its menu. Rows are made with the isolation test's factories, so each is the agency's own.
"""
import pytest
from flask import url_for

from portal.auth.roles import Role
from portal.extensions import db
from portal.tenancy import unscoped
from tests.factories import sign_in
from tests.isolation_params import Owned, param_for

OK, NO = 200, 403
ROLES = (Role.AGENCY_OWNER, Role.AGENCY_STAFF, Role.ENGINEER)

# (endpoint, what the owner, staff and an engineer get)
AREAS = [
    # work orders and parts: the staff's daily work
    ("service.orders", (OK, OK, OK)),
    ("service.order_new", (OK, OK, NO)),
    ("service.orders_export", (OK, OK, OK)),
    ("service.parts_requests", (OK, OK, NO)),
    ("service.parts_request_new", (OK, OK, NO)),
    ("service.stock", (OK, OK, NO)),
    ("service.returns", (OK, OK, NO)),
    ("service.complaints", (OK, OK, NO)),
    # engineers and certificates: the owner manages, staff read, engineers read their own
    ("certification.engineers", (OK, OK, NO)),
    ("certification.engineer_new", (OK, NO, NO)),
    ("certification.nominations", (OK, OK, NO)),
    ("certification.certificates", (OK, OK, OK)),
    ("tenants.users", (OK, NO, NO)),
    # settlements: the owner claims, staff read (with statements, exports and evidence)
    ("settlement.settlements", (OK, OK, NO)),
    ("settlement.settlement", (OK, OK, NO)),
    ("settlement.statement_pdf", (OK, OK, NO)),
    ("settlement.export_lines", (OK, OK, NO)),
    ("settlement.download", (OK, OK, NO)),
    ("settlement.open_claim", (OK, NO, NO)),
    # evaluation: the owner's (results, KPI records, reports, HQ's service level)
    ("evaluation.index", (OK, NO, NO)),
    ("evaluation.result", (OK, NO, NO)),
    ("evaluation.drilldown", (OK, NO, NO)),
    ("evaluation.trend", (OK, NO, NO)),
    ("evaluation.report_download", (OK, NO, NO)),
    ("evaluation.service_level", (OK, NO, NO)),
    ("evaluation.rating", (OK, NO, NO)),
    # HQ's
    ("audit.index", (NO, NO, NO)),
    ("tenants.agencies", (NO, NO, NO)),
]
# Menu entries: (endpoint, offered to the owner, staff, an engineer)
MENU = [("service.orders", (True, True, True)),
        ("settlement.settlements", (True, True, False)),
        ("evaluation.index", (True, False, False)),
        ("tenants.users", (True, False, False))]


def _urls(app, world) -> dict[str, str]:
    """A URL of each area, on rows of the user's own agency (agency A)."""
    with app.test_request_context(), unscoped("test makes agency A's rows"):
        urls = {}
        for endpoint, _expected in AREAS:
            rule = next(app.url_map.iter_rules(endpoint))
            values = {}
            for name in rule.arguments:
                kind = param_for(endpoint, name)
                values[name] = (kind.make(world, world.a) if isinstance(kind, Owned)
                                else kind.make(world))
            urls[endpoint] = url_for(endpoint, **values)
        db.session.commit()
    return urls


@pytest.mark.parametrize("role", ROLES, ids=lambda r: r.value)
def test_each_agency_role_opens_what_its_role_allows(app, client, world, role):
    urls = _urls(app, world)
    column = ROLES.index(role)
    sign_in(client, world.user(role))
    wrong = {endpoint: client.get(urls[endpoint]).status_code for endpoint, _e in AREAS}
    wrong = {endpoint: (status, expected[column]) for (endpoint, expected), status
             in zip(AREAS, wrong.values(), strict=True) if status != expected[column]}
    assert not wrong, f"{role.value}: (answered, expected) {wrong}"
    home = client.get("/").get_data(as_text=True)
    with app.test_request_context():
        offered = {endpoint: f'href="{url_for(endpoint)}"' in home for endpoint, _o in MENU}
    assert offered == {endpoint: shown[column] for endpoint, shown in MENU}
