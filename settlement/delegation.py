"""Approval powers: who may review or approve a settlement, also on behalf of someone away.

An approver out of office (a regional manager, HQ settlement staff, HQ admin) delegates their
powers to an HQ colleague for a date range. The colleague then acts for them; four eyes still
apply to the person who acts.
"""
from dataclasses import dataclass
from datetime import date, timedelta

from flask import g, has_request_context
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from sqlalchemy.orm import joinedload

from portal import clock
from portal.auth.models import User
from portal.auth.roles import Role
from portal.errors_domain import DomainError
from portal.extensions import db
from portal.tenancy import unscoped
from portal.text import clean
from portal.transitions import transition
from settlement import policy
from settlement.models import Delegation
from settlement.policy import DELEGATES, DELEGATORS  # noqa: F401 - who hands over, who holds

MAX_DAYS = 92


@dataclass(frozen=True)
class Power:
    """May act, and on whose behalf (None: in their own right)."""

    allowed: bool
    on_behalf_of_id: int | None = None


NO = Power(False)


def delegations_to(user: User, today: date) -> list[Delegation]:
    """The delegations `user` holds today, with their delegators: read once per request (a
    page asks for every power it may show; its query count must not depend on which)."""
    if user.role not in DELEGATES:
        return []
    if not has_request_context():
        return _delegations_to(user, today)
    known = g.setdefault("_settlement_delegations", {})
    if (user.id, today) not in known:
        known[(user.id, today)] = _delegations_to(user, today)
    return known[(user.id, today)]


def _forget_delegations() -> None:
    if has_request_context():
        g.pop("_settlement_delegations", None)


def _delegations_to(user: User, today: date) -> list[Delegation]:
    with unscoped("a delegate acts for colleagues; their role and region are read"):
        found = list(db.session.scalars(
            select(Delegation).options(joinedload(Delegation.delegator))
            .where(Delegation.delegate_id == user.id, Delegation.ended_at.is_(None),
                   Delegation.starts_on <= today, Delegation.ends_on >= today)
            .order_by(Delegation.id)))
        return [d for d in found if d.delegator is not None
                and d.delegator.is_active_account]


def regional_review_power(user: User, region_id: int, today: date) -> Power:
    """The region's manager, their stand-in, or HQ settlement staff and HQ admin once the
    region has no active manager any more (a claim never waits for someone who left)."""
    if user.role == Role.REGIONAL_MANAGER:
        return Power(user.region_id == region_id)
    for d in delegations_to(user, today):
        if d.delegator.role == Role.REGIONAL_MANAGER and d.delegator.region_id == region_id:
            return Power(True, d.delegator_id)
    if user.role in DELEGATES and not region_has_manager(region_id):
        return Power(True)
    return NO


def _role_power(user: User, role: Role, today: date) -> Power:
    if user.role == role:
        return Power(True)
    for d in delegations_to(user, today):
        if d.delegator.role == role:
            return Power(True, d.delegator_id)
    return NO


def first_approval_power(user: User, today: date) -> Power:
    return _role_power(user, Role.HQ_SETTLEMENT, today)


def second_approval_power(user: User, today: date) -> Power:
    return _role_power(user, Role.HQ_ADMIN, today)


def region_has_manager(region_id: int) -> bool:
    """Whether an active regional manager serves the region (then they review first)."""
    with unscoped("whether the agency's region has a regional manager; a count only"):
        return bool(db.session.scalar(select(func.count(User.id)).where(
            User.role == Role.REGIONAL_MANAGER, User.region_id == region_id,
            User.is_active_account.is_(True))))


def delegate_choices(user: User) -> list[tuple[int, str]]:
    """HQ colleagues who may stand in (names and roles only)."""
    with unscoped("an approver picks an HQ colleague to stand in; names and roles only"):
        rows = db.session.execute(
            select(User.id, User.name, User.role).where(
                User.role.in_([r.value for r in DELEGATES]), User.id != user.id,
                User.is_active_account.is_(True)).order_by(User.name)).all()
    return [(r.id, f"{r.name} · {Role(r.role).label}") for r in rows]


def my_delegations(user: User) -> tuple[list[Delegation], list[Delegation]]:
    """(given by the user, held by the user), latest first."""
    with unscoped("a user's own delegations and the colleagues' names in them"):
        given = list(db.session.scalars(
            select(Delegation).options(joinedload(Delegation.delegate))
            .where(Delegation.delegator_id == user.id).order_by(Delegation.starts_on.desc())))
        held = list(db.session.scalars(
            select(Delegation).options(joinedload(Delegation.delegator))
            .where(Delegation.delegate_id == user.id).order_by(Delegation.starts_on.desc())))
    return given, held


def _delegation_audit(delegation: Delegation) -> dict:
    return {"delegator_id": delegation.delegator_id, "delegate_id": delegation.delegate_id,
            "starts_on": delegation.starts_on, "ends_on": delegation.ends_on}


@transition("settlement.delegation_created", Delegation, label=_l("Delegation created"),
            permission=policy.DELEGATE, creates=True, audit=_delegation_audit)
def create_delegation(delegator: User, delegate_id, starts_on, ends_on, note: str,
                      today: date, *, acting_user) -> Delegation:
    """Hand `delegator`'s (the acting user's) approval powers to an HQ colleague from
    `starts_on` to `ends_on`.

    Raises DomainError for a role that has no powers to hand over (the policy), an unsuitable
    colleague, dates in the past or too far apart, or dates that overlap another delegation of
    theirs.
    """
    with unscoped("the delegate is an HQ colleague outside the delegator's scope"):
        delegate = db.session.scalars(select(User).where(User.id == (delegate_id or 0))
                                      ).one_or_none()
    if (delegate is None or delegate.id == delegator.id or delegate.role not in DELEGATES
            or not delegate.is_active_account):
        raise DomainError(_("Choose an active HQ settlement colleague or HQ administrator."),
                          field="delegate_id")
    if not isinstance(starts_on, date) or starts_on < today:
        raise DomainError(_("The delegation cannot start in the past."), field="starts_on")
    if not isinstance(ends_on, date) or ends_on < starts_on:
        raise DomainError(_("The end date is before the start date."), field="ends_on")
    if ends_on - starts_on > timedelta(days=MAX_DAYS):
        raise DomainError(_("A delegation lasts at most %(days)s days.", days=MAX_DAYS),
                          field="ends_on")
    overlapping = db.session.scalar(select(func.count(Delegation.id)).where(
        Delegation.delegator_id == delegator.id, Delegation.ended_at.is_(None),
        Delegation.starts_on <= ends_on, Delegation.ends_on >= starts_on))
    if overlapping:
        raise DomainError(_("You already delegated for some of these days."),
                          field="starts_on")
    delegation = Delegation(delegator_id=delegator.id, delegate_id=delegate.id,
                            starts_on=starts_on, ends_on=ends_on, note=clean(note))
    db.session.add(delegation)
    _forget_delegations()
    return delegation


@transition("settlement.delegation_ended", Delegation, label=_l("Delegation ended"),
            permission=policy.END_DELEGATION, source={None}, state_attr="ended_at",
            wrong_state=_l("This delegation has already ended."),
            audit=lambda d: {"ended_at": d.ended_at})
def end_delegation(delegation: Delegation, *, acting_user) -> None:
    """End a delegation early (its delegator, or HQ admin). Raises DomainError otherwise."""
    delegation.ended_at = clock.now()
    _forget_delegations()
