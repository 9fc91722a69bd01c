"""The certificate list: valid certificates first by default, the one expiring soonest first;
sortable by issue date, expiry, number and holder; filtered by state; constant queries."""
import re
from datetime import UTC, datetime, time, timedelta

import pytest

from portal.auth.roles import Role
from tests.certification import factories as f
from tests.certification.conftest import build, local_day
from tests.factories import sign_in

# name: (holder, days from today to valid_from, to valid_to, days ago issued, revoked)
CERTIFICATES = {
    "C-EXPIRED-OLD": ("Dora", -800, -400, 800, False),   # an expired certificate of 2024
    "C-EXPIRED-NEW": ("Abel", -700, -10, 700, False),
    "C-EXPIRING": ("Emil", -600, 30, 600, False),
    "C-VALID-FAR": ("Bea", -100, 600, 100, False),
    "C-VALID-MID": ("Cleo", -500, 200, 500, False),
    "C-FUTURE": ("Fynn", 10, 700, 5, False),
    "C-REVOKED": ("Gus", -300, 300, 300, True),
}
DEFAULT_ORDER = ["C-EXPIRING", "C-VALID-MID", "C-VALID-FAR", "C-FUTURE", "C-EXPIRED-NEW",
                 "C-EXPIRED-OLD", "C-REVOKED"]


@pytest.fixture
def certificates(app, world):
    today = local_day(app)

    def make():
        program = f.get_program(world.line, 2)
        for number, (holder, start, end, issued, revoked) in CERTIFICATES.items():
            engineer = f.make_engineer(world.a, lines=[world.line], name=holder)
            issued_at = datetime.combine(today - timedelta(days=issued), time(3), tzinfo=UTC)
            f.make_certificate(engineer, program, number=number,
                               valid_from=today + timedelta(days=start),
                               valid_to=today + timedelta(days=end), issued_at=issued_at,
                               revoked_on=today - timedelta(days=1) if revoked else None,
                               revoke_reason="test" if revoked else None)
    build(app, make)


def _listed(client, query: str = "") -> list[str]:
    response = client.get(f"/certification/certificates/{query}")
    assert response.status_code == 200
    return re.findall(r'/certification/certificates/\d+">(C-[A-Z0-9-]+)</a>',
                      response.get_data(as_text=True))


@pytest.mark.parametrize("role", [Role.HQ_CERTIFIER, Role.AGENCY_OWNER])
def test_valid_certificates_come_first_the_soonest_expiring_first(client, world, certificates,
                                                                 role):
    sign_in(client, world.user(role))
    assert _listed(client) == DEFAULT_ORDER
    assert _listed(client, "?sort=state") == DEFAULT_ORDER
    assert _listed(client, "?sort=nonsense") == DEFAULT_ORDER


@pytest.mark.parametrize("sort,key", [
    ("issued", lambda n: -CERTIFICATES[n][3]),
    ("valid_to", lambda n: CERTIFICATES[n][2]),
    ("number", lambda n: n),
    ("engineer", lambda n: CERTIFICATES[n][0]),
])
def test_each_sort_both_ways(client, world, certificates, sort, key):
    sign_in(client, world.user(Role.HQ_CERTIFIER))
    ascending = sorted(CERTIFICATES, key=key)
    assert _listed(client, f"?sort={sort}") == ascending
    assert _listed(client, f"?sort=-{sort}") == ascending[::-1]


def test_the_sort_links_keep_the_filters(client, world, certificates):
    sign_in(client, world.user(Role.HQ_CERTIFIER))
    page = client.get("/certification/certificates/?state=expired").get_data(as_text=True)
    for key in ("issued", "valid_to", "number", "engineer"):
        assert re.search(rf'href="[^"]*sort={key}[^"]*"', page), key
    assert re.search(r'href="[^"]*state=expired[^"]*sort=issued|'
                     r'href="[^"]*sort=issued[^"]*state=expired', page)


@pytest.mark.parametrize("state,expected", [
    ("valid", ["C-VALID-MID", "C-VALID-FAR"]),
    ("expiring", ["C-EXPIRING"]),
    ("expired", ["C-EXPIRED-NEW", "C-EXPIRED-OLD"]),
    ("revoked", ["C-REVOKED"]),
    ("not_yet_valid", ["C-FUTURE"]),
])
def test_filter_by_state_keeps_the_order(client, world, certificates, state, expected):
    sign_in(client, world.user(Role.HQ_CERTIFIER))
    assert _listed(client, f"?state={state}") == expected


def test_the_list_runs_a_constant_number_of_queries(app, client, world, certificates,
                                                    query_counter):
    sign_in(client, world.user(Role.HQ_CERTIFIER))
    counts = {}
    for sort in ("", "?sort=-issued"):
        with query_counter as counter:
            assert len(_listed(client, sort)) == 7
        counts[sort] = counter.count

    def more():
        program = f.get_program(world.line, 2)
        for n in range(12):
            engineer = f.make_engineer(world.b if n % 2 else world.a2, lines=[world.line])
            f.make_certificate(engineer, program, number=f"C-MORE-{n:02d}")
    build(app, more)
    for sort in counts:
        with query_counter as counter:
            assert len(_listed(client, sort)) == 19
        assert counter.count == counts[sort], (sort, counts, counter.count)
