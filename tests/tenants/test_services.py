"""Network rules: the agency lifecycle and who may create which account."""
import pytest
from sqlalchemy import func, select, update

from portal.audit.models import AuditEntry
from portal.auth.roles import Role
from portal.errors_domain import DomainError
from portal.extensions import db
from portal.tenancy import agency_scope, scoped, unscoped
from tenants import services
from tenants.models import Agency, AgencyStatus, AgencyStatusChange, Region


def _acting(user):
    """The acting user in the test's session (the policy reads their agency)."""
    with unscoped("the test's acting user"):
        user = db.session.merge(user)
        _ = user.agency
        return user


def _audits(action):
    with unscoped("test counts audit entries"):
        return db.session.scalar(select(func.count(AuditEntry.id))
                                 .where(AuditEntry.action == action))


@pytest.mark.parametrize("path,ok", [
    (["probation", "active", "suspended", "active"], True),
    (["probation", "terminated"], True),
    (["active"], False),                    # an applicant must go through probation
    (["probation", "active", "applicant"], False),
    (["terminated", "probation"], False),   # terminated is final
])
def test_lifecycle_follows_the_allowed_steps(ctx, world, path, ok):
    with unscoped("HQ admin"):
        agency = world.b
        agency.status = AgencyStatus.APPLICANT
        try:
            for step in path:
                services.change_agency_status(agency, step, "reason", acting_user=None)
        except DomainError:
            assert not ok
        else:
            assert ok
            assert agency.status == path[-1]
            history = db.session.scalar(select(func.count(AgencyStatusChange.id))
                                        .where(AgencyStatusChange.agency_id == agency.id))
            assert history == len(path)


def test_status_change_needs_a_reason_and_is_audited(ctx, world):
    with unscoped("HQ admin"):
        with pytest.raises(DomainError):
            services.change_agency_status(world.a, "suspended", "  ", acting_user=None)
        services.change_agency_status(world.a, "suspended", "quality problems",
                                      acting_user=None)
    assert _audits("agency.status_changed") == 1


def test_agency_code_is_unique_case_insensitively(ctx, world):
    with unscoped("HQ admin"), pytest.raises(DomainError, match="already used"):
        services.create_agency({"code": "a-own", "legal_name": "x", "region_id": world.region1.id,
                                "agency_type": "station", "tier": 1}, [], acting_user=None)


def test_province_must_belong_to_the_region(ctx, world):
    from tenants.models import Province

    with unscoped("HQ admin"):
        other = db.session.scalars(select(Province.id)
                                   .where(Province.region_id == world.region2.id)).first()
        with pytest.raises(DomainError, match="province"):
            services.create_agency({"code": "NEW1", "legal_name": "x", "tier": 1,
                                    "region_id": world.region1.id, "province_id": other,
                                    "agency_type": "station"}, [], acting_user=None)


def _domains(agency, domains: str) -> None:
    with unscoped("HQ sets the agency's e-mail domains"):
        db.session.execute(update(Agency).where(Agency.id == agency.id)
                           .values(email_domains=domains))
        db.session.commit()


def test_owner_creates_staff_of_their_own_agency_only(ctx, world):
    owner = _acting(world.user(Role.AGENCY_OWNER))
    _domains(world.a, "a.example")
    with scoped(agency_scope(world.a.id)):
        user = services.create_account("new.staff@a.example", acting_user=owner, name="N",
                                       role=Role.AGENCY_STAFF, password_hash="x",
                                       agency_id=world.b.id)  # ignored: always their own
        assert user.agency_id == world.a.id
        for role in (Role.HQ_ADMIN, Role.AUDITOR, Role.AGENCY_OWNER, Role.REGIONAL_MANAGER):
            with pytest.raises(DomainError, match="may not give this role"):
                services.create_account(f"{role}@a.example", acting_user=owner, name="N",
                                        role=role, password_hash="x")


def test_email_is_unique_across_agencies_without_telling_owners_where(ctx, world):
    """HQ is told an address is taken; an agency owner only that it cannot be used (a clash
    inside the owner's own domain exists only if HQ gave the domain to two tenants)."""
    owner = _acting(world.user(Role.AGENCY_OWNER))
    foreign = world.b_users[Role.AGENCY_STAFF]
    _domains(world.a, foreign.email.rpartition("@")[2])
    with scoped(agency_scope(world.a.id)), pytest.raises(DomainError) as refused:
        services.create_account(foreign.email.upper(), acting_user=owner, name="N",
                                role=Role.AGENCY_STAFF, password_hash="x")
    assert refused.value.message == "This address cannot be used. Ask HQ."
    with unscoped("HQ admin"), pytest.raises(DomainError, match="already exists"):
        services.create_account(foreign.email.upper(),
                                acting_user=_acting(world.user(Role.HQ_ADMIN)), name="N",
                                role=Role.AGENCY_STAFF, password_hash="x",
                                agency_id=world.a.id)


def test_owner_cannot_manage_another_owner_or_hq_accounts(ctx, world):
    owner = _acting(world.user(Role.AGENCY_OWNER))
    with pytest.raises(DomainError):
        services.deactivate_account(world.b_users[Role.AGENCY_OWNER], acting_user=owner)
    with pytest.raises(DomainError):
        services.deactivate_account(world.user(Role.HQ_ADMIN), acting_user=owner)


def test_deactivation_rotates_the_session_token(ctx, world):
    admin = _acting(world.user(Role.HQ_ADMIN))
    with unscoped("HQ admin"):
        staff = world.b_users[Role.AGENCY_STAFF]
        staff = db.session.merge(staff)
        before = staff.session_token
        services.deactivate_account(staff, acting_user=admin)
        assert staff.session_token != before and not staff.is_active
        with pytest.raises(DomainError):
            services.deactivate_account(db.session.merge(admin), acting_user=admin)


def test_hq_accounts_never_belong_to_an_agency(ctx, world):
    admin = _acting(world.user(Role.HQ_ADMIN))
    with unscoped("HQ admin"):
        with pytest.raises(DomainError):
            services.create_account("x@hq.example", acting_user=admin, name="X",
                                    role=Role.HQ_PARTS, password_hash="x", agency_id=world.a.id)
        with pytest.raises(DomainError, match="region"):
            services.create_account("y@hq.example", acting_user=admin, name="Y",
                                    role=Role.REGIONAL_MANAGER, password_hash="x")


def test_reference_data_is_audited_as_before(ctx, world):
    """One entry per change: the made row on creation, only the changed fields on an edit."""
    admin = _acting(world.user(Role.HQ_ADMIN))
    create, update = services.REFERENCE[Region]
    with unscoped("HQ admin"):
        region = create({"code": "R-NEW", "name_zh": "新大区", "name_en": "New"},
                        acting_user=admin)
        update(region, {"code": "R-NEW", "name_zh": "新大区", "name_en": "Newer"},
               acting_user=admin)
        with pytest.raises(DomainError, match="already used"):
            create({"code": "r-new", "name_zh": "x", "name_en": "x"}, acting_user=admin)
        entries = db.session.scalars(select(AuditEntry).where(
            AuditEntry.object_type == "Region", AuditEntry.object_id == str(region.id))
            .order_by(AuditEntry.id)).all()
    assert [e.action for e in entries] == ["region.created", "region.updated"]
    assert entries[0].after["code"] == "R-NEW" and entries[0].before is None
    assert (entries[1].before, entries[1].after) == ({"name_en": "New"}, {"name_en": "Newer"})
    assert entries[1].actor_id == admin.id


def test_only_hq_admin_changes_the_network(ctx, world):
    certifier = _acting(world.user(Role.HQ_CERTIFIER))
    with unscoped("HQ"), pytest.raises(DomainError, match="cannot do this"):
        services.change_agency_status(world.a, "suspended", "quality problems",
                                      acting_user=certifier)
    assert _audits("agency.status_changed") == 0


def test_an_account_is_deactivated_once(ctx, world):
    admin = _acting(world.user(Role.HQ_ADMIN))
    with unscoped("HQ admin"):
        staff = db.session.merge(world.b_users[Role.AGENCY_STAFF])
        services.deactivate_account(staff, acting_user=admin)
        with pytest.raises(DomainError, match="already deactivated"):
            services.deactivate_account(staff, acting_user=admin)
        services.activate_account(staff, acting_user=admin)
        assert staff.is_active_account
    assert (_audits("user.deactivated"), _audits("user.activated")) == (1, 1)
