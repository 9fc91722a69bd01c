"""Coverage areas (服务区域): agencies declare, HQ admin decides, approved areas are withdrawn;
rules, permissions, isolation, bad input, audit and constant query counts."""
import pytest
from sqlalchemy import func, select

from dispatch import coverage
from dispatch.coverage import Coverage, CoverageStatus
from portal.audit.models import AuditEntry
from portal.auth.roles import Role
from portal.errors_domain import DomainError
from portal.extensions import db
from portal.tenancy import agency_scope, scoped, unscoped
from tenants.models import Agency, ProductLine
from tests.factories import make_product_line, sign_in
from tests.hostile import HOSTILE_TEXT


def _agency(agency_id) -> Agency:
    return db.session.scalars(select(Agency).where(Agency.id == agency_id)).one()


def make_coverage(agency: Agency, *, status=CoverageStatus.PROPOSED, district="",
                  service_type="onsite", line_id=None) -> Coverage:
    """A declaration of `agency` for its own city (decided as `status` asks), system-made."""
    agency = _agency(agency.id)
    row = coverage.declare_coverage(
        agency, province_id=agency.province_id, city=agency.city, district=district,
        product_line_id=line_id or agency.product_lines[0].id, service_type=service_type,
        acting_user=None)
    if status in (CoverageStatus.APPROVED, CoverageStatus.WITHDRAWN):
        coverage.decide_coverage(row, approve=True, acting_user=None, seen_version=row.version)
    if status == CoverageStatus.REJECTED:
        coverage.decide_coverage(row, approve=False, reason="not ours", acting_user=None,
                                 seen_version=row.version)
    if status == CoverageStatus.WITHDRAWN:
        coverage.withdraw_coverage(row, acting_user=None, seen_version=row.version)
    return row


def _declare(agency, user, **changes):
    agency = _agency(agency.id)
    data = {"province_id": agency.province_id, "city": agency.city, "district": "",
            "product_line_id": agency.product_lines[0].id, "service_type": "onsite"}
    return coverage.declare_coverage(agency, **{**data, **changes}, acting_user=user)


def _form(world, agency, **changes) -> dict:
    return {"province_id": str(agency.province_id), "city": "杭州市", "district": "西湖区",
            "product_line_id": str(world.line.id), "service_type": "onsite",
            **changes}


def _rows(app, *where) -> list[Coverage]:
    with app.app_context(), unscoped("the test reads every declaration"):
        rows = list(db.session.scalars(select(Coverage).where(*where).order_by(Coverage.id)))
        db.session.expunge_all()
        return rows


def _actions(app) -> list[str]:
    with app.app_context(), unscoped("the test reads the audit log"):
        return list(db.session.scalars(select(AuditEntry.action).where(
            AuditEntry.action.like("coverage.%")).order_by(AuditEntry.id)))


def _make(app, agency_id, **kw) -> tuple[int, int]:
    with app.app_context(), unscoped("the test makes a declaration"):
        row = make_coverage(_agency(agency_id), **kw)
        db.session.commit()
        return row.id, row.version


@pytest.fixture
def owner(ctx, world):
    with scoped(agency_scope(world.a.id, world.user(Role.AGENCY_OWNER).id)):
        yield world.user(Role.AGENCY_OWNER)


# --- the rules (services, no HTTP) ----------------------------------------------------------


def test_a_declaration_walks_proposed_approved_withdrawn_with_one_audit_entry_each(ctx, world):
    with unscoped("HQ's system decides"):
        row = make_coverage(world.a, status=CoverageStatus.WITHDRAWN)
        assert row.status == CoverageStatus.WITHDRAWN and row.withdrawn_at is not None
        entries = list(db.session.scalars(select(AuditEntry).where(
            AuditEntry.object_type == "Coverage", AuditEntry.object_id == str(row.id))
            .order_by(AuditEntry.id)))
    assert [e.action for e in entries] == ["coverage.declared", "coverage.decided",
                                           "coverage.withdrawn"]
    assert entries[0].after["status"] == "proposed" and entries[0].agency_id == world.a.id
    assert (entries[1].before["status"], entries[1].after["status"]) == ("proposed",
                                                                         "approved")


def test_the_owner_declares_an_area_of_an_authorized_line_and_type(owner, world):
    row = _declare(world.a, owner, city=" 杭州市 ", district="西湖区")
    assert (row.status, row.city, row.district, row.agency_id) == (
        CoverageStatus.PROPOSED, "杭州市", "西湖区", world.a.id)
    assert row.declared_by_id == owner.id


def test_a_line_the_agency_is_not_authorized_for_is_refused(owner, world):
    with unscoped("a new product line"):
        other: ProductLine = make_product_line()
    with pytest.raises(DomainError, match="not authorized for this product line"):
        _declare(world.a, owner, product_line_id=other.id)


def test_a_service_type_the_agency_is_not_authorized_for_is_refused(owner, world):
    _agency(world.a.id).service_types = "carry_in"
    with pytest.raises(DomainError, match="not authorized for this service type"):
        _declare(world.a, owner, service_type="onsite")
    with pytest.raises(DomainError, match="not authorized for this service type"):
        _declare(world.a, owner, service_type="teleport")


@pytest.mark.parametrize("changes,message", [
    ({"province_id": 987654}, "Choose a province"),
    ({"province_id": "x"}, "Choose a province"),
    ({"city": "  "}, "Enter the city"),
    ({"city": "城" * 65}, "At most 64"),
    ({"district": "区" * 65}, "At most 64"),
], ids=["unknown-province", "junk-province", "no-city", "long-city", "long-district"])
def test_bad_areas_are_refused(owner, world, changes, message):
    with pytest.raises(DomainError, match=message):
        _declare(world.a, owner, **changes)


def test_a_live_duplicate_is_refused_a_rejected_or_withdrawn_one_may_be_declared_again(
        owner, world):
    first = _declare(world.a, owner, district="西湖区")
    with pytest.raises(DomainError, match="already declared"):
        _declare(world.a, owner, district="西湖区")
    _declare(world.a, owner, district="上城区")  # another district is another area
    _declare(world.a, owner, district="西湖区", service_type="carry_in")  # another type
    with unscoped("HQ decides"):
        coverage.decide_coverage(first, approve=False, reason="不在范围内", acting_user=None,
                                 seen_version=first.version)
    again = _declare(world.a, owner, district="西湖区")
    with unscoped("HQ decides"):
        coverage.decide_coverage(again, approve=True, acting_user=None,
                                 seen_version=again.version)
    with pytest.raises(DomainError, match="already declared"):
        _declare(world.a, owner, district="西湖区")


def test_the_state_machine_refuses_every_other_step(ctx, world):
    admin = world.user(Role.HQ_ADMIN)
    with unscoped("HQ decides"):
        row = make_coverage(world.a, status=CoverageStatus.REJECTED)
        assert row.reason == "not ours"
        with pytest.raises(DomainError, match="already decided"):
            coverage.decide_coverage(row, approve=True, acting_user=admin,
                                     seen_version=row.version)
        with pytest.raises(DomainError, match="Only an approved area"):
            coverage.withdraw_coverage(row, acting_user=admin, seen_version=row.version)
        waiting = make_coverage(world.a, district="X")
        with pytest.raises(DomainError, match="Only an approved area"):
            coverage.withdraw_coverage(waiting, acting_user=admin, seen_version=waiting.version)
        with pytest.raises(DomainError, match="reason for rejecting this area"):
            coverage.decide_coverage(waiting, approve=False, reason="  ", acting_user=admin,
                                     seen_version=waiting.version)
        with pytest.raises(DomainError, match="out of date"):
            coverage.decide_coverage(waiting, approve=True, acting_user=admin,
                                     seen_version=waiting.version + 1)
        assert waiting.status == CoverageStatus.PROPOSED


def test_a_terminated_agency_declares_nothing(ctx, world):
    with unscoped("HQ's system"):
        _agency(world.a.id).status = "terminated"
        with pytest.raises(DomainError, match="terminated"):
            make_coverage(world.a)


@pytest.mark.parametrize("role", [Role.AGENCY_STAFF, Role.ENGINEER, Role.HQ_SERVICE,
                                  Role.HQ_DISPATCHER, Role.AUDITOR, Role.REGIONAL_MANAGER])
def test_only_the_owner_and_hq_admin_declare_only_hq_admin_decides(ctx, world, role):
    with unscoped("roles tried on the services"):
        with pytest.raises(DomainError, match="Your role cannot do this"):
            _declare(world.a, world.user(role))
        row = make_coverage(world.a)
        for who in (world.user(role), world.user(Role.AGENCY_OWNER)):
            with pytest.raises(DomainError, match="Your role cannot do this"):
                coverage.decide_coverage(row, approve=True, acting_user=who,
                                         seen_version=row.version)


# --- pages: permissions and isolation -------------------------------------------------------


def test_the_owner_declares_on_the_page_and_hq_admin_approves(app, client, world):
    sign_in(client, world.user(Role.AGENCY_OWNER))
    page = client.get("/dispatch/coverage")
    assert page.status_code == 200
    assert f'action="/dispatch/agencies/{world.a.id}/coverage/declare"' in page.text
    response = client.post(f"/dispatch/agencies/{world.a.id}/coverage/declare",
                           data=_form(world, world.a))
    assert response.status_code == 302
    [row] = _rows(app)
    assert (row.agency_id, row.city, row.district, row.status) == (
        world.a.id, "杭州市", "西湖区", CoverageStatus.PROPOSED)
    assert "杭州市" in client.get("/dispatch/coverage").text

    admin = app.test_client()
    sign_in(admin, world.user(Role.HQ_ADMIN))
    listing = admin.get("/dispatch/coverage?status=proposed")
    assert listing.status_code == 200 and "A-OWN" in listing.text
    assert f'action="/dispatch/coverage/{row.id}/decide"' in listing.text
    response = admin.post(f"/dispatch/coverage/{row.id}/decide",
                          data={"version": row.version, "approve": "1"})
    assert response.status_code == 302
    [row] = _rows(app)
    assert row.status == CoverageStatus.APPROVED
    assert row.decided_by_id == world.user(Role.HQ_ADMIN).id

    response = client.post(f"/dispatch/coverage/{row.id}/withdraw",
                           data={"version": row.version, "reason": "人手不足"})
    assert response.status_code == 302
    assert _rows(app)[0].status == CoverageStatus.WITHDRAWN
    assert _actions(app) == ["coverage.declared", "coverage.decided", "coverage.withdrawn"]


def test_a_rejection_needs_a_reason_and_shows_it_to_the_agency(app, client, world):
    row_id, version = _make(app, world.a.id)
    sign_in(client, world.user(Role.HQ_ADMIN))
    response = client.post(f"/dispatch/coverage/{row_id}/decide",
                           data={"version": version, "reject": "1", "reason": ""})
    assert response.status_code == 400
    assert "Give the reason for rejecting this area" in response.text
    assert _rows(app)[0].status == CoverageStatus.PROPOSED
    response = client.post(f"/dispatch/coverage/{row_id}/decide",
                           data={"version": version, "reject": "1", "reason": "该区由他站覆盖"})
    assert response.status_code == 302
    owner = app.test_client()
    sign_in(owner, world.user(Role.AGENCY_OWNER))
    assert "该区由他站覆盖" in owner.get("/dispatch/coverage").text
    assert _actions(app) == ["coverage.declared", "coverage.decided"]


def test_staff_read_their_agencys_areas_and_change_nothing(app, client, world):
    row_id, version = _make(app, world.a.id, status=CoverageStatus.APPROVED)
    sign_in(client, world.user(Role.AGENCY_STAFF))
    page = client.get("/dispatch/coverage")
    assert page.status_code == 200 and "CANARY-A" in page.text
    assert "/declare" not in page.text and "/withdraw" not in page.text
    assert client.post(f"/dispatch/agencies/{world.a.id}/coverage/declare",
                       data=_form(world, world.a)).status_code == 403
    assert client.post(f"/dispatch/coverage/{row_id}/withdraw",
                       data={"version": version}).status_code == 403
    assert len(_rows(app)) == 1 and _rows(app)[0].status == CoverageStatus.APPROVED


def test_another_agencys_coverage_is_404_for_an_owner(app, client, world):
    foreign_id, version = _make(app, world.b.id, status=CoverageStatus.APPROVED)
    sign_in(client, world.user(Role.AGENCY_OWNER))
    assert client.get(f"/dispatch/agencies/{world.b.id}/coverage").status_code == 404
    assert client.post(f"/dispatch/agencies/{world.b.id}/coverage/declare",
                       data=_form(world, world.b)).status_code == 404
    assert client.post(f"/dispatch/coverage/{foreign_id}/withdraw",
                       data={"version": version}).status_code == 404
    assert client.post("/dispatch/coverage/987654321/withdraw",
                       data={"version": 1}).status_code == 404
    page = client.get("/dispatch/coverage").text
    assert "CANARY-B" not in page
    assert _rows(app)[0].status == CoverageStatus.APPROVED
    assert _actions(app) == ["coverage.declared", "coverage.decided"]


@pytest.mark.parametrize("role", [Role.HQ_SERVICE, Role.HQ_DISPATCHER, Role.AUDITOR,
                                  Role.HQ_CERTIFIER])
def test_other_hq_roles_read_every_declaration_and_decide_nothing(app, client, world, role):
    row_id, version = _make(app, world.b.id)
    sign_in(client, world.user(role))
    page = client.get("/dispatch/coverage")
    assert page.status_code == 200 and "B-FOR" in page.text and "/decide" not in page.text
    assert client.get(f"/dispatch/agencies/{world.b.id}/coverage").status_code == 200
    assert client.post(f"/dispatch/coverage/{row_id}/decide",
                       data={"version": version, "approve": "1"}).status_code == 403
    assert _rows(app)[0].status == CoverageStatus.PROPOSED


def test_the_regional_manager_reads_their_region_only(app, client, world):
    _make(app, world.a.id)
    _make(app, world.b.id)
    sign_in(client, world.user(Role.REGIONAL_MANAGER))
    page = client.get("/dispatch/coverage").text
    assert "A-OWN" in page and "B-FOR" not in page
    assert client.get(f"/dispatch/agencies/{world.b.id}/coverage").status_code == 404


def test_engineers_have_no_coverage_page(client, world):
    sign_in(client, world.user(Role.ENGINEER))
    assert client.get("/dispatch/coverage").status_code == 403


def test_hq_admin_opens_one_agencys_coverage_and_declares_for_it(app, client, world):
    sign_in(client, world.user(Role.HQ_ADMIN))
    page = client.get(f"/dispatch/agencies/{world.b.id}/coverage")
    assert page.status_code == 200 and "B-FOR" in page.text
    response = client.post(f"/dispatch/agencies/{world.b.id}/coverage/declare",
                           data=_form(world, world.b, district=""))
    assert response.status_code == 302
    assert [(r.agency_id, r.district) for r in _rows(app)] == [(world.b.id, "")]
    assert client.get("/dispatch/agencies/987654321/coverage").status_code == 404


# --- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize("changes,message", [
    ({"province_id": "987654"}, "Not a valid choice"),
    ({"province_id": "<script>"}, "This field is required"),
    ({"city": ""}, "This field is required"),
    ({"service_type": "teleport"}, "Not a valid choice"),
    ({"product_line_id": "987654"}, "Not a valid choice"),
    ({"district": "区" * 65}, "64"),
], ids=["unknown-province", "junk-province", "no-city", "unknown-type", "foreign-line",
        "long-district"])
def test_bad_declarations_are_refused_on_the_form_and_change_nothing(app, client, world,
                                                                      changes, message):
    sign_in(client, world.user(Role.AGENCY_OWNER))
    response = client.post(f"/dispatch/agencies/{world.a.id}/coverage/declare",
                           data=_form(world, world.a, **changes))
    assert response.status_code == 400 and message in response.text
    assert _rows(app) == [] and _actions(app) == []


@pytest.mark.parametrize("hostile", HOSTILE_TEXT)
def test_hostile_strings_are_stored_as_text_and_shown_escaped(app, client, world, hostile):
    sign_in(client, world.user(Role.AGENCY_OWNER))
    response = client.post(f"/dispatch/agencies/{world.a.id}/coverage/declare",
                           data=_form(world, world.a, city=f"市{hostile}"[:64],
                                      district=hostile[:64]))
    assert response.status_code in (302, 400)
    page = client.get("/dispatch/coverage")
    assert page.status_code == 200
    assert "<script>alert" not in page.text


def test_a_double_submit_declares_once(app, client, world):
    sign_in(client, world.user(Role.AGENCY_OWNER))
    url = f"/dispatch/agencies/{world.a.id}/coverage/declare"
    assert client.post(url, data=_form(world, world.a)).status_code == 302
    second = client.post(url, data=_form(world, world.a))
    assert second.status_code == 400 and "already declared" in second.text
    assert len(_rows(app)) == 1 and _actions(app) == ["coverage.declared"]


def test_a_stale_page_is_refused_and_a_double_approval_changes_nothing(app, client, world):
    row_id, version = _make(app, world.a.id)
    sign_in(client, world.user(Role.HQ_ADMIN))
    url = f"/dispatch/coverage/{row_id}/decide"
    assert client.post(url, data={"version": version, "approve": "1"}).status_code == 302
    again = client.post(url, data={"version": version, "reject": "1", "reason": "x"})
    assert again.status_code == 400 and "out of date" in again.text
    assert _rows(app)[0].status == CoverageStatus.APPROVED
    assert _actions(app) == ["coverage.declared", "coverage.decided"]


# --- constant queries ---------------------------------------------------------------------


def _statements(client, url, query_counter) -> int:
    with query_counter as counter:
        assert client.get(url).status_code == 200
    return counter.count


def test_the_lists_run_a_constant_number_of_queries(app, world, query_counter):
    with app.app_context(), unscoped("the test adds lines and agencies"):
        lines = [make_product_line() for _ in range(3)]
        for agency in (world.a, world.b):
            for line in lines:
                db.session.add(coverage_line(agency, line))
        db.session.commit()
    _make(app, world.a.id)
    _make(app, world.b.id, status=CoverageStatus.APPROVED)
    clients = {}
    for role in (Role.HQ_ADMIN, Role.AGENCY_OWNER, Role.REGIONAL_MANAGER):
        clients[role] = app.test_client()
        sign_in(clients[role], world.user(role))
    urls = [(Role.HQ_ADMIN, "/dispatch/coverage"),
            (Role.HQ_ADMIN, "/dispatch/coverage?status=proposed"),
            (Role.HQ_ADMIN, f"/dispatch/agencies/{world.a.id}/coverage"),
            (Role.AGENCY_OWNER, "/dispatch/coverage"),
            (Role.REGIONAL_MANAGER, "/dispatch/coverage")]
    few = [_statements(clients[role], url, query_counter) for role, url in urls]
    with app.app_context(), unscoped("the test adds many declarations"):
        for agency_id in (world.a.id, world.a2.id, world.b.id):
            agency = _agency(agency_id)
            for n, line in enumerate(agency.product_lines):
                for t in agency.service_type_list:
                    make_coverage(agency, district=f"D{n}", service_type=t, line_id=line.id)
        db.session.commit()
        assert db.session.scalar(select(func.count(Coverage.id))) > 20
    many = [_statements(clients[role], url, query_counter) for role, url in urls]
    assert few == many


def coverage_line(agency, line):
    from tenants.models import AgencyProductLine

    return AgencyProductLine(agency_id=agency.id, product_line_id=line.id)


def test_the_demo_covers_each_active_agencys_city_and_keeps_one_waiting_one_rejected(ctx,
                                                                                      world):
    from dispatch import demo

    with unscoped("the demo loads the whole network"):
        demo.load({})
        rows = list(db.session.scalars(select(Coverage)))
        # Each agency its own city; one neighbour also covers the dispatch day's city (the
        # agency that refuses an offer there for lack of time).
        away = [r for r in rows if r.city != r.agency.city]
        assert len(away) <= 1
        assert all(r.status == CoverageStatus.APPROVED and r.district for r in away)
        rows = [r for r in rows if r not in away]
    statuses = [r.status for r in rows]
    assert statuses.count(CoverageStatus.APPROVED) == 3 * 3  # 3 agencies × 1 line × 3 types
    assert statuses.count(CoverageStatus.PROPOSED) == 1
    [rejected] = [r for r in rows if r.status == CoverageStatus.REJECTED]
    assert rejected.reason
