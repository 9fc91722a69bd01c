"""Isolation-test parameters of the settlement area (see tests/isolation_params.py).

Each factory makes a row owned by the given agency: a settlement with one order line (and,
for attachments, a stored evidence file), so that every route has something real to act on.
"""
import itertools
from datetime import date, timedelta

from flask import g

from portal.auth.roles import Role
from portal.clock import local_today
from settlement import delegation, evidence, review, services
from settlement.demo import demo_png
from settlement.models import Decision

# Imported by tests/isolation_params.py once it has defined these two (never import this module
# first: the isolation parameters import it back).
from tests.isolation_params import Owned, Reference  # noqa: E402,I001
from tests.settlement import factories as f

_days = itertools.count(1)


def _period():
    """An ended month of its own for each settlement made (claims never collide)."""
    today = local_today()
    back = next(_days)
    index = today.year * 12 + today.month - 1 - 1 - back
    return index // 12, index % 12 + 1


def _ensure_rates(world):
    from settlement.config import rate_card_in_force

    if rate_card_in_force(local_today()) is None:
        f.rate_card([world.line], effective=date(2000, 1, 1))


def _settlement(world, agency):
    """A draft settlement of `agency` with one order line above the evidence threshold."""
    g._audit_actor = None
    _ensure_rates(world)
    year, month = _period()
    code = f.repair_code(world.line, "8.00")
    f.order(agency, world.line, day=date(year, month, 10), repairs=[code])
    return services.open_settlement(agency, year, month, acting_user=None, today=local_today())


def _settlement_id(world, agency):
    return _settlement(world, agency).id


def _line_id(world, agency):
    return _settlement(world, agency).lines[0].id


def _attachment_id(world, agency):
    settlement = _settlement(world, agency)
    return evidence.add_attachment(settlement, None, "photo.png", demo_png(1), acting_user=None).id


def _appeal_id(world, agency):
    settlement = _settlement(world, agency)
    services.submit_settlement(settlement, acting_user=None, seen_version=settlement.version,
                               today=local_today())
    if settlement.awaits_regional_review:
        settlement.regional_reviewed_at = settlement.submitted_at  # skip the regional step
    line = settlement.lines[0]
    hq = world.user(Role.HQ_SETTLEMENT)
    if line.decision == Decision.PENDING:
        review.decide_line(settlement, line, "denied", acting_user=hq,
                           seen_version=settlement.version, reason_code="insufficient_evidence",
                           reason_text="")
    owners = {world.a.id: world.users, world.a2.id: world.a2_users, world.b.id: world.b_users}
    return review.lodge_appeal(settlement, line, "Photos were uploaded.",
                               acting_user=owners[agency.id][Role.AGENCY_OWNER],
                               seen_version=settlement.version).id


def _rate_card_id(world):
    _ensure_rates(world)
    from settlement.config import rate_card_in_force

    return rate_card_in_force(local_today()).id


def _delegation_id(world):
    today = local_today()
    start = today + timedelta(days=10 * next(_days))  # delegations of one person never overlap
    admin = world.user(Role.HQ_ADMIN)
    return delegation.create_delegation(admin, world.user(Role.HQ_SETTLEMENT).id, start,
                                        start + timedelta(days=3), "", today,
                                        acting_user=admin).id


PARAMS: dict = {
    "settlement_id": Owned(_settlement_id),
    "line_id": Owned(_line_id),
    "attachment_id": Owned(_attachment_id),
    "appeal_id": Owned(_appeal_id),
    "rate_card_id": Reference(_rate_card_id),
    "delegation_id": Reference(_delegation_id),
}
