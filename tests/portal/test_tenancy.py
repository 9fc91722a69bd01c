"""The tenant guard: reads, updates and deletes are scoped; owners are stamped and fixed."""
import pytest
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.exc import IntegrityError

from certification.models import Certificate, Engineer, Program
from portal.auth.models import User
from portal.extensions import db
from portal.tenancy import (
    ALL,
    TenancyViolation,
    agency_scope,
    raw_sql_allowed,
    region_scope,
    scoped,
    unscoped,
)
from tenants.models import Agency, AgencyStatusChange
from tests.factories import make_agency


def _engineer(agency, name="E"):
    from datetime import date

    engineer = Engineer(agency_id=agency.id, name=name, id_number=f"ID{name}{agency.id}",
                        hire_date=date(2020, 1, 1))
    db.session.add(engineer)
    db.session.flush()
    return engineer


@pytest.fixture
def engineers(ctx, world):
    with unscoped("fixture"):
        made = {"a": _engineer(world.a, "a"), "a2": _engineer(world.a2, "s"),
                "b": _engineer(world.b, "b")}
        db.session.commit()
    return made


def test_agency_scope_sees_only_its_rows(ctx, world, engineers):
    with scoped(agency_scope(world.a.id)):
        assert db.session.scalars(select(Engineer.name)).all() == ["a"]
        assert db.session.scalar(select(func.count(Engineer.id))) == 1
        assert [a.code for a in db.session.scalars(select(Agency))] == ["A-OWN"]
        assert {u.agency_id for u in db.session.scalars(select(User))} == {world.a.id}


def test_region_scope_sees_its_agencies(ctx, world, engineers):
    with scoped(region_scope(world.region1.id)):
        assert sorted(db.session.scalars(select(Engineer.name))) == ["a", "s"]
        assert sorted(a.code for a in db.session.scalars(select(Agency))) == ["A-OWN", "A-SIB"]


def test_no_scope_sees_nothing(ctx, world, engineers):
    from portal.tenancy import NONE

    with scoped(NONE):
        assert db.session.scalars(select(Engineer)).all() == []
        assert db.session.scalars(select(Agency)).all() == []
        assert db.session.scalars(select(User)).all() == []


def test_joins_and_subqueries_are_scoped_too(ctx, world, engineers):
    with scoped(agency_scope(world.a.id)):
        rows = db.session.execute(select(Agency.code, Engineer.name)
                                  .join(Engineer, Engineer.agency_id == Agency.id)).all()
        assert rows == [("A-OWN", "a")]
        sub = select(Engineer.id).where(Engineer.name == "b").scalar_subquery()
        assert db.session.scalar(select(func.count()).select_from(Engineer)
                                 .where(Engineer.id == sub)) == 0


def test_bulk_update_and_delete_are_scoped(ctx, world, engineers):
    with scoped(agency_scope(world.a.id)):
        db.session.execute(update(Engineer).values(phone="changed"))
        db.session.execute(delete(Engineer).where(Engineer.name.in_(["b", "s"])))
    with unscoped("test reads back"):
        phones = dict(db.session.execute(select(Engineer.name, Engineer.phone)).all())
    assert phones == {"a": "changed", "s": "", "b": ""}


def test_owner_is_stamped_on_insert(ctx, world):
    from datetime import date

    with scoped(agency_scope(world.a.id)):
        engineer = Engineer(name="new", id_number="X1", hire_date=date(2021, 1, 1))
        db.session.add(engineer)
        db.session.flush()
        assert engineer.agency_id == world.a.id


def test_insert_for_another_agency_is_refused(ctx, world):
    from datetime import date

    with scoped(agency_scope(world.a.id)):
        db.session.add(Engineer(agency_id=world.b.id, name="x", id_number="X2",
                                hire_date=date(2021, 1, 1)))
        with pytest.raises(TenancyViolation):
            db.session.flush()
    db.session.rollback()


def test_region_scope_cannot_insert_outside_its_region(ctx, world):
    with scoped(region_scope(world.region1.id)):
        db.session.add(AgencyStatusChange(agency_id=world.b.id, to_status="active",
                                          reason="x"))
        with pytest.raises(TenancyViolation):
            db.session.flush()
    db.session.rollback()


def test_owner_cannot_change(ctx, world, engineers):
    with scoped(agency_scope(world.a.id)):
        engineer = db.session.scalars(select(Engineer)).one()
        engineer.agency_id = world.b.id
        with pytest.raises(TenancyViolation):
            db.session.flush()
    db.session.rollback()
    with unscoped("even HQ cannot move a row"):
        engineer = db.session.scalars(select(Engineer).where(Engineer.name == "a")).one()
        engineer.agency_id = world.a2.id
        with pytest.raises(TenancyViolation):
            db.session.flush()
    db.session.rollback()


def test_identity_map_lookups_are_refused_on_scoped_models(ctx, world, engineers):
    with scoped(agency_scope(world.a.id)):
        with pytest.raises(TypeError):
            db.session.get(Engineer, engineers["b"].id)


def test_get_or_404_answers_404_for_foreign_and_missing(ctx, world, engineers):
    from werkzeug.exceptions import NotFound

    from portal.tenancy import get_or_404

    with scoped(agency_scope(world.a.id)):
        assert get_or_404(Engineer, engineers["a"].id).name == "a"
        for ident in (engineers["b"].id, engineers["a2"].id, 10**9, "x", None):
            with pytest.raises(NotFound):
                get_or_404(Engineer, ident)


def test_database_refuses_a_child_of_another_agencys_parent(ctx, world, engineers):
    """Composite foreign keys (agency_id, engineer_id): even unscoped code cannot cross."""
    from datetime import date

    from tests.factories import make_product_line

    with unscoped("test writes as the system"):
        line = make_product_line()
        program = Program(product_line_id=line.id, level=1)
        db.session.add(program)
        db.session.flush()
        db.session.add(Certificate(agency_id=world.a.id, engineer_id=engineers["b"].id,
                                   program_id=program.id, product_line_id=line.id, level=1,
                                   number="C-1", verification_code="abc",
                                   valid_from=date(2026, 1, 1), valid_to=date(2027, 1, 1)))
        with pytest.raises(IntegrityError):
            db.session.flush()
    db.session.rollback()


def test_strict_mode_fails_raw_sql_without_the_owner_filter(ctx, world, engineers):
    with scoped(agency_scope(world.a.id)):
        with pytest.raises(AssertionError, match="without the owner filter"):
            db.session.execute(text("SELECT name FROM engineers")).all()
        db.session.rollback()
        rows = db.session.execute(text("SELECT name FROM engineers WHERE agency_id = :a"),
                                  {"a": world.a.id}).all()
        assert rows == [("a",)]
        with raw_sql_allowed("testing the strict mode's escape hatch"):
            assert len(db.session.execute(text("SELECT name FROM engineers")).all()) >= 1


def test_unscoped_needs_a_reason(ctx):
    with pytest.raises(ValueError):
        with unscoped(" "):
            pass


def test_every_scoped_model_is_agency_owned_or_declares_its_criteria():
    from portal.tenancy import AgencyOwned, RecipientOwned, TenantScoped, tenant_models

    for model in tenant_models():
        assert issubclass(model, TenantScoped)
        if not issubclass(model, AgencyOwned | RecipientOwned):
            # Its own criteria (or a mixin's), never the base's NotImplementedError.
            declared = getattr(model.tenant_criteria, "__func__", None)
            assert declared is not TenantScoped.tenant_criteria.__func__, model


def test_agency_scoped_tables_carry_the_owner_in_every_child_key():
    """Every foreign key from an agency-owned table to another agency-owned table is composite
    with agency_id, so the database refuses cross-agency links."""
    from portal.tenancy import AgencyOwned, tenant_models

    owned = {m.__table__.name for m in tenant_models() if issubclass(m, AgencyOwned)}
    problems = []
    for model in tenant_models():
        if not issubclass(model, AgencyOwned):
            continue
        for fk in model.__table__.foreign_key_constraints:
            if fk.referred_table.name in owned and "agency_id" not in fk.column_keys:
                problems.append(f"{model.__table__.name} -> {fk.referred_table.name}")
    assert not problems, problems


def test_all_scope_sees_everything(ctx, world, engineers):
    with scoped(ALL):
        assert db.session.scalar(select(func.count(Engineer.id))) == 3


def test_make_agency_in_scope_of_other_agency_is_refused(ctx, world):
    with scoped(agency_scope(world.a.id)):
        with pytest.raises(TenancyViolation):
            with db.session.no_autoflush:
                make_agency(world.region1, "X-NEW")
    db.session.rollback()
