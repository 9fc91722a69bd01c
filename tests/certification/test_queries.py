"""Reads other areas rely on, SQL states that match the Python ones, coverage and reminders."""
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from certification import queries
from certification.models import Certificate, EngineerStatus
from certification.states import CertificateState, state_of
from portal.extensions import db
from tests.certification import factories as f
from tests.certification.conftest import TODAY


def _exists(engineer, line, day, **kw) -> bool:
    return db.session.scalar(select(queries.valid_certificate_exists(
        engineer.id, line.id, day, **kw)))


def test_valid_certificate_exists_at_its_boundaries(hq, cast):
    world = hq
    f.make_certificate(cast.engineer, cast.l2, valid_from=date(2026, 1, 1),
                       valid_to=date(2027, 12, 31), revoked_on=date(2027, 6, 1),
                       revoked_at=None)
    line = world.line
    assert not _exists(cast.engineer, line, date(2025, 12, 31))   # the day before valid_from
    assert _exists(cast.engineer, line, date(2026, 1, 1))         # valid_from itself
    assert _exists(cast.engineer, line, date(2027, 5, 31))        # the day before revoked_on
    assert not _exists(cast.engineer, line, date(2027, 6, 1))     # revoked from that day
    assert not _exists(cast.other, line, date(2026, 6, 1))        # another engineer
    assert _exists(cast.engineer, line, date(2026, 6, 1), min_level=2)
    assert not _exists(cast.engineer, line, date(2026, 6, 1), min_level=3)


def test_valid_to_is_the_last_valid_day(hq, cast):
    f.make_certificate(cast.engineer, cast.l1, valid_from=date(2026, 1, 1),
                       valid_to=date(2026, 12, 31))
    assert _exists(cast.engineer, hq.line, date(2026, 12, 31))
    assert not _exists(cast.engineer, hq.line, date(2027, 1, 1))


def test_works_as_a_correlated_clause(hq, cast):
    """Other areas pass columns: the clause correlates with their rows."""
    from certification.models import Engineer

    f.make_certificate(cast.engineer, cast.l1, valid_from=TODAY - timedelta(days=10))
    rows = db.session.scalars(select(Engineer.id).where(
        queries.valid_certificate_exists(Engineer.id, hq.line.id, TODAY))).all()
    assert rows == [cast.engineer.id]


def test_sql_states_match_python_states(hq, cast):
    soon, far = TODAY + timedelta(days=60), TODAY + timedelta(days=61)
    made = {
        "valid": f.make_certificate(cast.engineer, cast.l1, valid_from=TODAY, valid_to=far),
        "expiring": f.make_certificate(cast.engineer, cast.l1, valid_from=TODAY,
                                       valid_to=soon),
        "expired": f.make_certificate(cast.engineer, cast.l1, valid_from=TODAY - timedelta(
            days=30), valid_to=TODAY - timedelta(days=1)),
        "revoked": f.make_certificate(cast.engineer, cast.l1, valid_from=TODAY,
                                      valid_to=far, revoked_on=TODAY),
        "not_yet_valid": f.make_certificate(cast.engineer, cast.l1,
                                            valid_from=TODAY + timedelta(days=1)),
    }
    old = f.make_certificate(cast.engineer, cast.l1, valid_from=TODAY, valid_to=far)
    f.make_certificate(cast.engineer, cast.l1, valid_from=TODAY, valid_to=far,
                       renewal_of_id=old.id)
    made["renewed"] = old
    for name, cert in made.items():
        renewed = cert.id == old.id
        assert state_of(cert, TODAY, renewed=renewed) == CertificateState(name)
        ids = set(db.session.scalars(select(Certificate.id).where(
            queries.state_condition(name, TODAY))))
        assert cert.id in ids, name
        for other_name, other in made.items():
            if other_name != name:
                assert other.id not in ids, (name, other_name)


def test_coverage_counts_active_engineers_with_a_valid_l2(hq, cast):
    world = hq
    a_line = {r.agency_id: r for r in db.session.execute(queries.coverage_statement(TODAY))
              if r.product_line_id == world.line.id}
    assert a_line[world.a.id].holders == 0 and a_line[world.a.id].gap == 1
    f.make_certificate(cast.engineer, cast.l2, valid_from=TODAY - timedelta(days=5))
    f.make_certificate(cast.engineer, cast.l3, valid_from=TODAY - timedelta(days=5))
    left = f.make_engineer(world.a, lines=[world.line], status=EngineerStatus.LEFT)
    f.make_certificate(left, cast.l2, valid_from=TODAY - timedelta(days=5))
    f.make_certificate(cast.other, cast.l1, valid_from=TODAY - timedelta(days=5))
    rows = {r.agency_id: r for r in db.session.execute(queries.coverage_statement(TODAY))}
    assert rows[world.a.id].holders == 1 and rows[world.a.id].gap == 0   # one person, two certs
    assert rows[world.a2.id].holders == 0 and rows[world.a2.id].gap == 1  # L1 does not count
    gaps = db.session.execute(queries.coverage_statement(TODAY, gaps_only=True)).all()
    assert world.a.id not in {r.agency_id for r in gaps}
    summary = queries.coverage_summary(TODAY)
    assert summary["lines"] == 3 and summary["covered"] == 1 and summary["agencies_short"] == 2


def test_expiring_lists_live_certificates_within_sixty_days(hq, cast):
    due = f.make_certificate(cast.engineer, cast.l1, valid_from=TODAY - timedelta(days=600),
                             valid_to=TODAY + timedelta(days=60))
    f.make_certificate(cast.engineer, cast.l1, valid_from=TODAY - timedelta(days=600),
                       valid_to=TODAY + timedelta(days=61))
    f.make_certificate(cast.other, cast.l1, valid_from=TODAY - timedelta(days=600),
                       valid_to=TODAY + timedelta(days=10), revoked_on=TODAY)
    found = db.session.scalars(queries.expiring_statement(TODAY)).all()
    assert [c.id for c in found] == [due.id]


@pytest.mark.parametrize("days,expected", [(59, 0), (60, 1)])
def test_reminders_window(hq, cast, days, expected):
    from certification.cli import reminders_due

    f.make_certificate(cast.engineer, cast.l1, valid_from=TODAY - timedelta(days=600),
                       valid_to=TODAY + timedelta(days=60))
    rows = reminders_due(TODAY, days)
    assert len([r for r in rows if r[0] == "expiring"]) == expected
    assert {r[1] for r in rows if r[0] == "coverage_gap"} == {"A-OWN", "A-SIB", "B-FOR"}
