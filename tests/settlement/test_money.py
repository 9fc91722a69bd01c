"""Money through the database: the SQL sums of stored amounts equal the Python sums of the same
Decimals, exactly, over thousands of generated cases (SQLite and PostgreSQL alike)."""
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import bindparam, func, select, update

from portal.extensions import db
from settlement import building
from settlement.cli import mismatched_totals
from settlement.models import KIND_ORDER, Claim, Decision, LineKind, Settlement, SettlementLine

D = Decimal
LINES = 40
# Up to ten billion yuan either way, in fen: far beyond any claim, well inside BIGINT sums.
FEN = st.integers(min_value=-10**12, max_value=10**12)


@pytest.fixture
def ledger(stl):
    """A settlement of agency A with LINES bonus lines whose amounts the cases overwrite."""
    with stl.agency():
        s = Settlement(agency_id=stl.world.a.id, number="ST-MONEY-01", year=stl.year,
                       month=stl.month, computed_on=stl.today)
        db.session.add(s)
        db.session.flush()
        claims = [Claim(agency_id=s.agency_id, settlement_id=s.id, grade_period=f"M{n:03d}")
                  for n in range(LINES)]
        db.session.add_all(claims)
        db.session.flush()
        lines = [SettlementLine(agency_id=s.agency_id, settlement_id=s.id, claim_id=c.id,
                                kind=LineKind.GRADE, kind_order=KIND_ORDER[LineKind.GRADE],
                                grade="B", grade_period=c.grade_period,
                                claimed_amount=D("0.00")) for c in claims]
        db.session.add_all(lines)
        db.session.flush()
        return s, [ln.id for ln in lines]


_set_amounts = (update(SettlementLine.__table__)
                .where(SettlementLine.__table__.c.agency_id == bindparam("owner"),
                       SettlementLine.__table__.c.id == bindparam("line"))
                .values(claimed_amount=bindparam("claimed"),
                        approved_amount=bindparam("approved"),
                        decision=bindparam("decision")))


@settings(max_examples=1000, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(cases=st.lists(st.tuples(FEN, st.none() | FEN), max_size=LINES))
def test_sql_sums_of_stored_amounts_equal_python_sums(stl, ledger, cases):
    s, line_ids = ledger
    cases = cases + [(0, None)] * (LINES - len(cases))
    claimed = [D(c).scaleb(-2) for c, _a in cases]
    approved = [None if a is None else D(a).scaleb(-2) for _c, a in cases]
    with stl.agency():
        db.session.execute(_set_amounts, [
            {"owner": s.agency_id, "line": line_id, "claimed": c, "approved": a,
             "decision": Decision.PENDING if a is None else Decision.APPROVED}
            for line_id, c, a in zip(line_ids, claimed, approved, strict=True)])
        sql_claimed, sql_approved, count = building.totals_in_sql(s)
        stored = db.session.scalars(select(SettlementLine.claimed_amount).where(
            SettlementLine.agency_id == s.agency_id, SettlementLine.settlement_id == s.id))
        assert sorted(stored) == sorted(claimed)  # every amount comes back exact
    assert count == LINES
    assert sql_claimed == sum(claimed, D("0.00"))
    assert sql_approved == sum((a for a in approved if a is not None), D("0.00"))
    assert sql_claimed.as_tuple().exponent == -2 and sql_approved.as_tuple().exponent == -2


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(cases=st.lists(FEN, min_size=1, max_size=LINES))
def test_stored_totals_are_recheckable_against_their_lines(stl, ledger, cases):
    """retotal() stores the SQL sums; the operator's re-check finds them equal to the lines."""
    s, line_ids = ledger
    cases = cases + [0] * (LINES - len(cases))
    with stl.agency():
        db.session.execute(_set_amounts, [
            {"owner": s.agency_id, "line": line_id, "claimed": D(c).scaleb(-2),
             "approved": D(c).scaleb(-2), "decision": Decision.APPROVED}
            for line_id, c in zip(line_ids, cases, strict=True)])
        building.retotal(s)
        db.session.flush()
        assert s.claimed_total == s.approved_total == D(sum(cases)).scaleb(-2)
        by_sql = db.session.scalar(select(func.sum(Settlement.claimed_total)).where(
            Settlement.agency_id == s.agency_id, Settlement.id == s.id))
        assert by_sql == s.claimed_total
    with stl.hq():
        assert mismatched_totals() == []
