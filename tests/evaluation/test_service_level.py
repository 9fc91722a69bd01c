"""HQ's own service level in each result and region, and the agencies' ratings of HQ."""
from datetime import timedelta
from decimal import Decimal

import pytest
from flask import g
from sqlalchemy import select

from evaluation import reports, services
from evaluation.models import HqRating, ServiceLevel
from portal.auth.roles import Role
from portal.errors_domain import DomainError
from portal.extensions import db
from portal.tenancy import unscoped
from service.models import PartsRequest
from tests.evaluation import factories as f
from tests.factories import sign_in

Q = f.Q


def _request(agency, submitted, hours):
    row = PartsRequest(agency_id=agency.id, number=f"PR-{agency.id}-{hours}", status="shipped",
                       submitted_at=submitted, shipped_at=submitted + timedelta(hours=hours),
                       carrier="SF", tracking_number="1")
    db.session.add(row)
    db.session.flush()


def test_hq_figures_for_the_agency_its_region_and_the_network(hq):
    day = Q.first_day + timedelta(days=5)
    _request(hq.a, f.at(day), 24)
    _request(hq.a, f.at(day), 48)
    _request(hq.a2, f.at(day), 12)
    _request(hq.b, f.at(day), 6)
    _request(hq.b, f.at(Q.last_day + timedelta(days=2)), 1)  # shipped next quarter
    f.complaint(hq.a, closed_on=Q.first_day + timedelta(days=9))  # received 3 days before
    quarter = f.computed()
    result = f.result_of(quarter, hq.a)
    mine = reports.result_service(result)
    assert mine["parts_hours"] == Decimal("36.0") and mine["parts_count"] == 2
    assert mine["verdict_days"] is not None and mine["verdict_count"] == 1
    levels = {lv.region_id: lv for lv in db.session.scalars(select(ServiceLevel))}
    region = reports.level_figures(levels[hq.region1.id])
    network = reports.level_figures(levels[None])
    assert region["parts_hours"] == Decimal("28.0")   # (24 + 48 + 12) / 3
    assert network["parts_hours"] == Decimal("22.5")  # (24 + 48 + 12 + 6) / 4
    assert network["settlement_days"] is None and network["settlement_count"] == 0


@pytest.fixture
def published_quarter(hq, fast_pdfs):
    return f.published()


def test_an_agency_rates_hq_once_a_quarter(hq, published_quarter):
    data = {"parts": 4, "settlement": 2, "support": 5, "training": 3, "comment": "ok"}
    services.rate_hq(published_quarter, hq.a.id, data, acting_user=None)
    with pytest.raises(DomainError, match="already rated"):
        services.rate_hq(published_quarter, hq.a.id, data, acting_user=None)
    for bad in ({**data, "parts": 0}, {**data, "training": 6}, {**data, "support": "5"},
                {**data, "comment": "x" * 2001}):
        with pytest.raises(DomainError):
            services.rate_hq(published_quarter, hq.a2.id, bad, acting_user=None)


def test_a_draft_quarter_is_not_rated(hq):
    quarter = f.computed()
    with pytest.raises(DomainError, match="once the quarter is published"):
        services.rate_hq(quarter, hq.a.id, {"parts": 4, "settlement": 4, "support": 4,
                                            "training": 4}, acting_user=None)


def test_hq_reads_the_ratings_by_region_and_agencies_only_their_own(app, client, world,
                                                                    fast_pdfs):
    with app.app_context(), unscoped("test"):
        g._audit_actor = None
        quarter = f.published()
        for agency, score in ((world.a, 5), (world.a2, 3), (world.b, 2)):
            services.rate_hq(quarter, agency.id, {"parts": score, "settlement": score,
                                                  "support": score, "training": score,
                                                  "comment": f"comment {agency.code}"},
                                                      acting_user=None)
        db.session.commit()
        qid = quarter.id
    sign_in(client, world.user(Role.HQ_ADMIN))
    body = client.get(f"/evaluation/service-level?quarter={qid}").get_data(as_text=True)
    assert "4.0" in body and "2.0" in body  # region 1: (5 + 3) / 2; region 2: 2
    owner = app.test_client()
    sign_in(owner, world.user(Role.AGENCY_OWNER))
    body = owner.get(f"/evaluation/service-level?quarter={qid}").get_data(as_text=True)
    assert "comment A-OWN" in body and "comment A-SIB" not in body
    assert "comment B-FOR" not in body


def test_rating_form_page(app, client, world, fast_pdfs):
    with app.app_context(), unscoped("test"):
        g._audit_actor = None
        qid = f.published().id
        db.session.commit()
    sign_in(client, world.user(Role.AGENCY_OWNER))
    url = f"/evaluation/quarters/{qid}/rating"
    assert client.get(url).status_code == 200
    assert client.post(url, data={"parts": 9, "settlement": 4, "support": 4,
                                  "training": 4}).status_code == 200
    assert client.post(url, data={"parts": 4, "settlement": 4, "support": 4,
                                  "training": 4}).status_code == 302
    with app.app_context(), unscoped("test"):
        assert db.session.scalars(select(HqRating)).one().agency_id == world.a.id


def test_totals_beyond_32_bits_are_kept(hq):
    """At network scale a region's turnarounds summed past 2**31 seconds and overflowed a
    32-bit column on PostgreSQL ("integer out of range"): the quarter failed to compute."""
    shipped = f.at(Q.first_day + timedelta(days=5))
    waited = timedelta(days=70 * 365)  # one request alone is over 2**31 seconds
    db.session.add(PartsRequest(agency_id=hq.a.id, number="PR-LONG", status="shipped",
                                submitted_at=shipped - waited, shipped_at=shipped,
                                carrier="SF", tracking_number="1"))
    db.session.flush()
    quarter = f.computed()
    result = f.result_of(quarter, hq.a)
    assert result.hq_parts_seconds == int(waited.total_seconds()) > 2**31
    levels = db.session.scalars(select(ServiceLevel).where(
        ServiceLevel.quarter_id == quarter.id)).all()
    assert max(level.parts_seconds for level in levels) == int(waited.total_seconds())
