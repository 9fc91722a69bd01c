"""Strangers cannot lock an account: sign-in limits count the requesting address's failures,
and an account's failures from anywhere slow down only the addresses that failed."""
import time_machine

from portal import clock
from portal.auth.roles import Role
from tests.factories import PASSWORD

WRONG = "not the password"


def _try(client, user, password, address):
    return client.post("/auth/sign-in", data={"email": user.email, "password": password},
                       environ_base={"REMOTE_ADDR": address})


def test_wrong_passwords_from_one_address_do_not_lock_the_owner_out(client, world):
    admin = world.user(Role.HQ_ADMIN)
    for _ in range(5):
        assert _try(client, admin, WRONG, "203.0.113.7").status_code == 200
    # The stranger's address is refused, even with the right password …
    refused = _try(client, admin, PASSWORD, "203.0.113.7")
    assert refused.status_code == 429
    # … and the owner, from their own address, signs in.
    owner = client.application.test_client()
    assert _try(owner, admin, PASSWORD, "198.51.100.20").status_code == 302


def test_failures_from_many_addresses_slow_the_account_down_step_by_step(client, world):
    admin = world.user(Role.HQ_ADMIN)
    waits = []
    with time_machine.travel(clock.now(), tick=False) as traveller:
        for n in range(1, 5):  # the first failures earn no delay
            assert _try(client, admin, WRONG, f"10.0.0.{n}").status_code == 200
        for n in range(5, 12):
            address = f"10.0.0.{n}"
            assert _try(client, admin, WRONG, address).status_code == 200  # heard once
            again = _try(client, admin, WRONG, address)  # at once again: must wait
            assert again.status_code == 429
            wait = int(again.headers["Retry-After"])
            assert f"Wait {wait} second" in again.get_data(as_text=True)
            waits.append(wait)
        assert waits == [1, 2, 4, 8, 16, 32, 60]  # doubling, capped at a minute

        # An address that failed waits even with the right password (nothing is checked) …
        assert _try(client, admin, PASSWORD, "10.0.0.3").status_code == 429
        # … the owner at an address with no failures is never held up …
        assert _try(client.application.test_client(), admin, PASSWORD,
                    "192.0.2.44").status_code == 302
        # … and after the wait, the failed address is heard again.
        traveller.shift(61)
        assert _try(client.application.test_client(), admin, PASSWORD,
                    "10.0.0.3").status_code == 302


def test_waiting_refusals_do_not_count_against_the_address(client, world, app):
    """Knocking during the wait costs the address nothing: the owner who mistyped while a
    stranger hammered the account is not locked out of their own address for it."""
    admin = world.user(Role.HQ_ADMIN)
    with time_machine.travel(clock.now(), tick=False) as traveller:
        for n in range(12):
            _try(client, admin, WRONG, f"10.2.0.{n}")
        assert _try(client, admin, WRONG, "10.2.0.250").status_code == 200  # owner mistypes
        for _ in range(10):
            assert _try(client, admin, PASSWORD, "10.2.0.250").status_code == 429
        traveller.shift(61)
        assert _try(client.application.test_client(), admin, PASSWORD,
                    "10.2.0.250").status_code == 302


def test_an_ipv6_client_is_counted_by_its_network(app):
    from portal.throttle import address_key

    for address, expected in [("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
                              ("2001:db8:1:2:ffff::9", "2001:db8:1:2::/64"),
                              ("::ffff:198.51.100.3", "198.51.100.3"),
                              ("198.51.100.3", "198.51.100.3")]:
        with app.test_request_context(environ_base={"REMOTE_ADDR": address}):
            assert address_key() == expected, address


def test_the_address_limit_covers_an_ipv6_network(client, world):
    admin = world.user(Role.HQ_ADMIN)
    for n in range(30):
        client.post("/auth/sign-in", data={"email": f"x{n}@nobody.example", "password": WRONG},
                    environ_base={"REMOTE_ADDR": f"2001:db8:5:6::{n + 1:x}"})
    assert _try(client, admin, PASSWORD, "2001:db8:5:6::beef").status_code == 429
    assert _try(client.application.test_client(), admin, PASSWORD,
                "2001:db8:5:7::1").status_code == 302
