"""Every operation of /api/v1/openapi.json, fuzzed by Schemathesis from the document itself, as
an agency owner (agency A), an HQ dispatcher and HQ settlement: no answer is a server error,
every answer matches the document (status, body and headers; a status only through the
document's "default" is a failure too), and a refused call (4xx) writes nothing.

The fuzzing reaches real rows: a network (``Net``, as the offer tests) where agency A has an
accepted offer with its dispatched work order and its appointment, an open offer, an approved
settlement, a parts request and an inbox item, and foreign agency B has the same. A per-id
operation runs on the first rows each caller's list shows (If-Match: as generated, the row's
current ETag, or none), and, as A's owner, on B's rows: each must answer exactly as a missing
row does (404, or the same refusal before the row is looked up), even with B's real ETag.

Generic over whatever the document lists: a resource added later is fuzzed without a change
here. A few examples per operation and role, no shrinking, so that it stays fast; every
failure is collected (one per operation, role and kind) and all are reported together.
"""
import itertools
import traceback
from datetime import timedelta

import pytest
import schemathesis
import time_machine
from flask import g
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import event

from api import PREFIX
from portal.auth.roles import Role
from portal.extensions import db
from portal.tenancy import unscoped
from tests.api.helpers import token_for

DOCUMENT = PREFIX + "/openapi.json"
ROLES = (Role.AGENCY_OWNER, Role.HQ_DISPATCHER, Role.HQ_SETTLEMENT)
FOREIGN = Role.AGENCY_OWNER  # also fuzzed on agency B's rows, which it must not see
EXAMPLES = 10
IDS = 2  # rows per operation reached by their real ids
MISSING_ID = 987_654_321  # no row has it
BASE = "http://portal.test"  # the tests' SERVER_NAME
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance, response_headers_conformance]
# A Friday morning (10:00 in Shanghai): the offers' answer windows are open.
FRIDAY_1000 = "2026-11-20T02:00:00+00:00"
# Written by any authenticated call, refused or not: when the token was last used.


def _fingerprint(app) -> str:
    """A hash of every row of every table (a token's last use left out): any write shows."""
    from tests.test_isolation import _fingerprint as fingerprint

    with app.app_context():
        return fingerprint()


def _operations(schema):
    for result in schema.get_all_operations():
        yield result.ok()


class Writes:
    """Counts the statements that change rows (INSERT, UPDATE, DELETE) on the test's
    connection: a call that sent none cannot have changed the database."""

    def __init__(self, connection):
        self.count = 0
        self.connection = connection

    def __enter__(self):
        event.listen(self.connection, "before_cursor_execute", self._seen)
        return self

    def __exit__(self, *exc):
        event.remove(self.connection, "before_cursor_execute", self._seen)

    def _seen(self, conn, cursor, statement, *args):
        if statement.lstrip()[:7].upper().startswith(("INSERT", "UPDATE", "DELETE", "REPLACE")):
            self.count += 1


def _visible_ids(client, token, path: str) -> dict[str, list[int]]:
    """For a path /x/{x_id}/...: ids the list /x/ shows to the token's account (the first of
    each state, then the first), so that the fuzzing reaches real rows as well as missing
    ones. Read again for each operation: an offer an earlier operation accepted is not picked
    as the open one."""
    head, brace, tail = path.partition("{")
    if not brace:
        return {}
    name = tail.partition("}")[0]
    listed = client.get(head, base_url=BASE, headers={"Authorization": f"Bearer {token}"})
    if listed.status_code != 200 or not isinstance(listed.json, dict):
        return {name: []}
    picked, states = [], set()
    items = [item for item in listed.json.get("items", [])
             if isinstance(item, dict) and isinstance(item.get("id"), int)]
    for item in items:  # rows in different states first: an open offer and an accepted one
        if len(picked) < IDS and item.get("status") not in states:
            states.add(item.get("status"))
            picked.append(item["id"])
    picked += [item["id"] for item in items if item["id"] not in picked][:IDS - len(picked)]
    return {name: picked}


# --- the rows the fuzzing reaches -----------------------------------------------------------


def _claim(world, agency):
    """A settlement of `agency` for last month (one completed order): submitted and approved
    by HQ settlement, as tests/api/test_settlements.py makes it. Returns it and its order."""
    from portal import clock
    from settlement import review, services
    from settlement.config import rate_card_in_force
    from tests.settlement import factories as f

    today = clock.local_today()
    year, month = clock.last_ended_month(today)
    if rate_card_in_force(today) is None:
        f.rate_card([world.line])
    code = f.repair_code(world.line, "1.00")
    order = f.order(agency, world.line, day=today.replace(year=year, month=month, day=10),
                    repairs=[code], service_type="carry_in")
    claim = services.open_settlement(agency, year, month, acting_user=None, today=today)
    services.submit_settlement(claim, acting_user=None, seen_version=claim.version,
                               today=today)
    if claim.awaits_regional_review:
        claim.regional_reviewed_at = claim.submitted_at  # the regional step is not fuzzed
    hq = world.user(Role.HQ_SETTLEMENT)
    review.approve_clean_lines(claim, acting_user=hq, seen_version=claim.version)
    review.approve_settlement(claim, acting_user=hq, seen_version=claim.version, today=today)
    return claim, order


def _inbox_item(user, label):
    from inbox import registry
    from inbox.models import InboxItem
    from portal import clock

    declared = registry.get("settlement.returned")
    item = InboxItem(recipient_id=user.id, agency_id=user.agency_id, event="settlement.returned",
                     category=declared.category, kind=declared.kind,
                     subject_type="settlements", subject_id=1, label=label, params={},
                     created_at=clock.now())
    db.session.add(item)
    return item


def build_rows(app, world) -> dict:
    """Agency A's and agency B's rows, in the order their ids follow: per agency dispatched
    on-site work orders from accepted offers (three for A, one for B; the first with its
    appointment tomorrow, 10:00-12:00), open offers (two for A, one for B), an approved
    settlement (with its completed order, revisited), a parts request, and an inbox item for
    its owner (and one per HQ caller). Returns the ids made, by agency and kind."""
    from dispatch.appointments import book_appointment
    from service import quality
    from tests.dispatch.test_offers import Net, as_agency, as_hq
    from tests.service import factories as sf

    made = {}
    with app.test_request_context(), unscoped("the fuzz test builds its rows"):
        g._audit_actor = None
        net = Net(world)
        net.cover(world.b)
        desk = world.user(Role.HQ_SERVICE)
        for name, agency, owner, orders, offers in (
                ("a", world.a, world.user(Role.AGENCY_OWNER), 3, 2),
                ("b", world.b, world.b_users[Role.AGENCY_OWNER], 1, 1)):
            engineer = sf.make_engineer(agency, world.line)
            rows = made[name] = {"order": [], "open_offer": [], "engineer": engineer.id}
            for n in range(orders):
                with as_agency(owner):
                    order = net.accept(net.offer(net.call(), agency), owner)
                    if n == 0:
                        tomorrow = order.received_at + timedelta(days=1)
                        book_appointment(order, engineer.id, tomorrow,
                                         tomorrow + timedelta(hours=2), acting_user=owner)
                rows["order"].append(order.id)
            rows["open_offer"] = [net.offer(net.call(), agency).id for _ in range(offers)]
            with as_hq():
                claim, completed = _claim(world, agency)
                rows["revisit"] = quality.record_revisit(completed, 4, "ok",
                                                         acting_user=desk).id
            rows["settlement"] = claim.id
            rows["parts_request"] = sf.make_request(agency, world.line).id
            _inbox_item(owner, f"FUZZ-{name}")
        for role in ROLES[1:]:
            _inbox_item(world.user(role), f"FUZZ-{role.value}")
        catalog = sf.catalog_of(world.line)
        made["hints"] = {"engineer_id": made["a"]["engineer"],
                         "fault_code_id": catalog["fault"].id, "part_id": catalog["part"].id,
                         "repair_code_ids": [catalog["repair"].id],
                         "work_order_id": made["a"]["order"][-1]}
        db.session.commit()
    return made


@pytest.fixture
def schema(app, client):
    return schemathesis.openapi.from_wsgi(DOCUMENT, app, headers={"Host": "portal.test"})


@pytest.fixture
def friday():
    with time_machine.travel(FRIDAY_1000, tick=False) as traveller:
        yield traveller


def _with_hints(body, hints: dict):
    """`body` with the fields named in `hints` (at any depth) set to real ids of the caller's
    agency (its engineer, the line's fault code, part, repair code, an order): a generated
    body that names them gets past "no such engineer" to the service's rules."""
    if isinstance(body, dict):
        return {key: hints[key] if key in hints and not isinstance(value, dict)
                and isinstance(value, list) == isinstance(hints[key], list)
                else _with_hints(value, hints) for key, value in body.items()}
    if isinstance(body, list):
        return [_with_hints(value, hints) for value in body]
    return body


def _resource_path(path: str, parameters: dict) -> str:
    """/x/{x_id}/accept -> /x/7: the row the operation changes."""
    head = path.partition("}")[0] + "}"
    return head.format(**parameters)


def test_every_operation_survives_fuzzing(app, friday, client, world, schema, monkeypatch,
                                          capsys, _transaction, no_grade_source):
    monkeypatch.setitem(app.config, "API_RATE_LIMIT", "1000000/minute")
    made = build_rows(app, world)
    tokens = {role: token_for(app, world.user(role), name="fuzz") for role in ROLES}
    foreign_token = token_for(app, world.b_users[FOREIGN], name="fuzz")
    document = client.get(DOCUMENT, base_url=BASE).json
    failures: dict[tuple, str] = {}
    seen = {"calls": 0, "fingerprints": 0, "rows": 0, "foreign": 0, "statuses": set()}
    state = {"fingerprint": None}

    def fingerprint():
        seen["fingerprints"] += 1
        return _fingerprint(app)

    def fail(key, text):
        failures.setdefault(key, text)

    def current_etag(path, parameters, token):
        read = client.get(_resource_path(path, parameters), base_url=BASE,
                          headers={"Authorization": f"Bearer {token}"})
        return read.headers.get("ETag") if read.status_code == 200 else None

    def fuzz(operation, role, token, path_parameters=None, examples=EXAMPLES, owner=None):
        """`owner`: the token that reads the rows of `path_parameters` (the caller's own when
        None); another's means the rows are foreign to the caller."""
        described = document["paths"][operation.path][operation.method.lower()]
        documented = set(described["responses"]) - {"default"}
        needs_if_match = any(p.get("name") == "If-Match" for p in described.get("parameters", []))
        modes = itertools.cycle(("generated", "current", "none"))
        foreign = owner is not None

        @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
                  phases=[Phase.explicit, Phase.generate],
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy(path_parameters=path_parameters))
        def run(case):
            where = f"{operation.label} as {role.value}" + (" on a foreign row" if foreign
                                                            else "")
            headers = {"Authorization": f"Bearer {token}", "Accept-Language": "en"}
            mode = next(modes)
            if mode == "current" and not foreign and role == Role.AGENCY_OWNER:
                case.body = _with_hints(case.body, made["hints"])
            if needs_if_match and path_parameters:
                case.headers = dict(case.headers or {})
                if mode == "current":
                    etag = current_etag(operation.path, case.path_parameters, owner or token)
                    if etag:
                        case.headers["If-Match"] = etag
                elif mode == "none":
                    case.headers.pop("If-Match", None)
            if state["fingerprint"] is None:
                state["fingerprint"] = fingerprint()
            seen["calls"] += 1
            missing = None
            with Writes(_transaction) as writes:
                try:
                    response = case.call(base_url=BASE, headers=headers)
                    if foreign:  # the same call on a row that does not exist
                        name = next(iter(path_parameters))
                        row = case.path_parameters[name]
                        case.path_parameters[name] = MISSING_ID
                        missing = case.call(base_url=BASE, headers=headers)
                        case.path_parameters[name] = row
                except Exception:  # noqa: BLE001 - a crash is what we look for
                    fail((where, "crash"), f"{where}: the app raised on\n    "
                         f"{case.as_curl_command(headers=headers)}\n"
                         + traceback.format_exc(limit=-8))
                    state["fingerprint"] = None
                    return
            seen["statuses"].add((operation.label, role.value, response.status_code))
            curl = case.as_curl_command(headers=headers)
            try:
                case.validate_response(response, checks=CHECKS, headers=headers)
            except FailureGroup as error:
                for failure in error.exceptions:
                    fail((where, type(failure).__name__), (
                        f"{where} answered {response.status_code}: {failure}\n    {curl}\n"
                        f"    body: {response.text[:500]}"))
            if str(response.status_code) not in documented:
                fail((where, "undocumented", response.status_code), (
                    f"{where} answered {response.status_code}, which the document names only "
                    f"as its default answer\n    {curl}\n    body: {response.text[:500]}"))
            if missing is not None and (response.status_code < 400
                                        or missing.status_code != response.status_code):
                fail((where, "foreign"), (
                    f"{where}: answered {response.status_code} on agency B's row, "
                    f"{missing.status_code} on a missing one\n    {curl}\n"
                    f"    body: {response.text[:500]}"))
            if not writes.count:
                return  # nothing sent that changes a row: the fingerprint still holds
            after = fingerprint()
            if response.status_code >= 400 and after != state["fingerprint"]:
                fail((where, "write"), (
                    f"{where}: answered {response.status_code} but wrote to the database\n"
                    f"    {curl}"))
            state["fingerprint"] = after

        run()

    operations = list(_operations(schema))
    assert operations, f"{DOCUMENT} lists no operation"
    for operation in operations:
        for role, token in tokens.items():
            fuzz(operation, role, token)  # ids as generated: mostly missing rows
            own = _visible_ids(client, token, operation.path)
            for name, ids in own.items():
                for row_id in ids:  # rows the account sees
                    seen["rows"] += 1
                    fuzz(operation, role, token, {name: row_id}, examples=EXAMPLES // 2)
            if role != FOREIGN:
                continue
            for name, ids in _visible_ids(client, foreign_token, operation.path).items():
                for row_id in [i for i in ids if i not in own.get(name, [])]:
                    seen["foreign"] += 1
                    fuzz(operation, role, token, {name: row_id}, examples=EXAMPLES // 2,
                         owner=foreign_token)
    with capsys.disabled():
        print(f"\nschemathesis: {len(operations)} operations × {len(ROLES)} roles, "
              f"{seen['calls']} calls ({seen['rows']} runs on the caller's rows, "
              f"{seen['foreign']} on foreign rows), "
              f"{seen['fingerprints']} database fingerprints, "
              f"{len({s[:2] for s in seen['statuses'] if s[2] < 400})} (operation, role) pairs "
              f"answered 2xx, {len(failures)} failures")
    assert made["a"] and made["b"]
    assert not failures, "\n\n".join(failures.values())
