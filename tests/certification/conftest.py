"""Fixtures of the certification tests: an HQ scope for service tests, a small cast."""
from dataclasses import dataclass
from datetime import date

import pytest
from flask import g
from sqlalchemy import func, select

from portal.audit.models import AuditEntry
from portal.auth.models import User
from portal.auth.roles import Role
from portal.extensions import db
from portal.tenancy import unscoped
from tests.certification import factories as f

# Service tests pass this day explicitly; view tests use the real local day.
TODAY = date(2026, 6, 15)


@pytest.fixture
def hq(ctx, world):
    """Service tests act as HQ: the whole network visible, no signed-in actor."""
    with unscoped("service tests act as the HQ training department"):
        g._audit_actor = None
        yield world


@dataclass
class Cast:
    l1: object
    l2: object
    l3: object
    engineer: object      # agency A, college, hired 2018, works on the world's line
    other: object         # agency A2


@pytest.fixture
def cast(hq):
    world = hq
    return Cast(l1=f.get_program(world.line, 1), l2=f.get_program(world.line, 2),
                l3=f.get_program(world.line, 3),
                engineer=f.make_engineer(world.a, lines=[world.line]),
                other=f.make_engineer(world.a2, lines=[world.line]))


def _first(role: Role) -> User:
    """The standard world's first user of `role` (an agency role: agency A's)."""
    with unscoped("tests act as a user of the standard world"):
        return db.session.scalars(select(User).where(User.role == role)
                                  .order_by(User.id)).first()


def owner() -> User:
    """Who registers engineers and nominates them (``acting_user=owner()``)."""
    return _first(Role.AGENCY_OWNER)


def certifier() -> User:
    """Who runs programs, sessions and certificates (``acting_user=certifier()``)."""
    return _first(Role.HQ_CERTIFIER)


def audits(action: str) -> int:
    with unscoped("tests count audit entries"):
        return db.session.scalar(select(func.count(AuditEntry.id))
                                 .where(AuditEntry.action == action))


def build(app, make):
    """Run `make()` with the whole network visible, commit, and return its result's ids."""
    with app.app_context(), unscoped("tests build certification data"):
        g._audit_actor = None
        result = make()
        db.session.commit()
        return result


def count(app, model, *where) -> int:
    with app.app_context(), unscoped("tests count rows"):
        return db.session.scalar(select(func.count()).select_from(model).where(*where))


def local_day(app) -> date:
    from portal.clock import local_today

    with app.app_context():
        return local_today()
