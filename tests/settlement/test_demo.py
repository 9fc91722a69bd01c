"""The demo loader walks a settlement through every state with the real services."""
from datetime import timedelta

from sqlalchemy import func, select

from portal.auth.roles import Role
from portal.extensions import db
from portal.tenancy import unscoped
from settlement import demo
from settlement.cli import mismatched_totals
from settlement.models import Appeal, Attachment, Settlement
from tests.factories import make_user
from tests.settlement import factories as f


def _demo_context(world) -> dict:
    """The demo loader's context for SH-C01 and the people its story needs."""
    return {"agencies": {"SH-C01": world.a}, "users": {
        "admin@hq.demo": world.user(Role.HQ_ADMIN),
        "settlement@hq.demo": world.user(Role.HQ_SETTLEMENT),
        "settlement2@hq.demo": make_user(Role.HQ_SETTLEMENT),
        "east.manager@hq.demo": world.user(Role.REGIONAL_MANAGER),
        "owner@sh-c01.demo": world.user(Role.AGENCY_OWNER)}}


def test_the_demo_has_settlements_in_every_state(stl, world):
    with unscoped("demo data"):
        code = f.repair_code(world.line, "3.50")
        for back in range(1, 9):
            index = stl.today.year * 12 + stl.today.month - 1 - back
            year, month = index // 12, index % 12 + 1
            day = stl.today.replace(year=year, month=month, day=1) + timedelta(days=9)
            for n in range(3):
                f.order(world.a, world.line, day=day + timedelta(days=n), repairs=[code],
                        distance="30.00")
        demo.load(_demo_context(world))
        stages = {}
        for s in db.session.scalars(select(Settlement).where(
                Settlement.agency_id == world.a.id)):
            key = s.status
            if s.status == "submitted":
                key = "regional" if s.awaits_regional_review else "review"
            stages[key] = stages.get(key, 0) + 1
        assert set(stages) == {"draft", "withdrawn", "regional", "returned", "review",
                               "approved", "paid"}
        assert db.session.scalar(select(func.count(Attachment.id))) >= 7
        assert db.session.scalar(select(func.count(Appeal.id))) == 1
        assert mismatched_totals() == []
        pdf = demo.demo_pdf("2026-10")
        assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
        assert demo.demo_png(1).startswith(b"\x89PNG")


def _stage(settlement: Settlement) -> str:
    if settlement.status == "submitted":
        return "regional" if settlement.awaits_regional_review else "review"
    return settlement.status


def test_a_quiet_month_moves_the_older_claims_back_and_leaves_no_state_out(stl, world):
    """An agency with no claimable order four months back (the demo's work orders are random:
    it happens on some loads) still has a claim in HQ review, a month earlier."""
    quiet = 4
    with unscoped("demo data"):
        code = f.repair_code(world.line, "3.50")
        for back in range(1, 11):
            if back == quiet:
                continue
            index = stl.today.year * 12 + stl.today.month - 1 - back
            year, month = index // 12, index % 12 + 1
            day = stl.today.replace(year=year, month=month, day=1) + timedelta(days=9)
            f.order(world.a, world.line, day=day, repairs=[code], distance="30.00")
        demo.load(_demo_context(world))
        claims = {(s.year, s.month): _stage(s) for s in db.session.scalars(
            select(Settlement).where(Settlement.agency_id == world.a.id))}

    def months_back(n):
        index = stl.today.year * 12 + stl.today.month - 1 - n
        return index // 12, index % 12 + 1

    assert months_back(quiet) not in claims
    assert sorted(claims.values()) == sorted(
        ["draft", "regional", "returned", "review", "approved", "paid", "paid", "withdrawn"])
    assert claims[months_back(3)] == "returned"  # the newer claims stay on their months
    assert claims[months_back(5)] == "review"  # the quiet month's claim, a month earlier
    assert claims[months_back(9)] == "withdrawn"
