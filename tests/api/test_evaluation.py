"""Evaluation results through the API: an agency owner reads their agency's results of
published quarters only (a draft quarter's result is missing, its score never shown), never a
sibling's or a foreign agency's; HQ reads all, drafts too; the regional manager their region."""
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import select

from evaluation.models import KpiValue, Quarter
from portal import clock
from portal.auth.roles import Role
from portal.extensions import db
from portal.tenancy import unscoped
from tests.api.helpers import caller
from tests.evaluation import factories as f

DRAFT_SCORE = "13.57"


def _results(app, world) -> dict:
    """A published quarter's result for A, A2 and B (A's with two KPIs) and a draft quarter's
    result for A."""
    with app.app_context(), unscoped("the test makes results"):
        made = {key: f.light_result(agency).id
                for key, agency in (("a", world.a), ("a2", world.a2), ("b", world.b))}
        for position, code in enumerate(("timeliness", "first_time_fix")):
            db.session.add(KpiValue(agency_id=world.a.id, result_id=made["a"], code=code,
                                    position=position, weight=20, min_count=10, numerator=9,
                                    denominator=10, raw=Decimal("90.00"),
                                    points=Decimal("18.00"), effective_weight=Decimal("20"),
                                    is_sufficient=True))
        period = f.LIGHT.next()
        draft = db.session.scalars(select(Quarter).where(
            Quarter.year == period.year, Quarter.quarter == period.quarter)).one_or_none()
        if draft is None:
            draft = Quarter(year=period.year, quarter=period.quarter, scheme_id=1,
                            status="draft", agency_count=3, compute_count=1)
            db.session.add(draft)
            db.session.flush()
        made["draft"] = f.made_result(world.a, draft, score=Decimal(DRAFT_SCORE), grade="D",
                                      status="draft")[0].id
        db.session.commit()
    return made


def _ids(response) -> set:
    assert response.status_code == 200, response.get_data(as_text=True)
    return {row["id"] for row in response.json["items"]}


def test_agency_reads_its_published_results_only(app, client, world):
    made = _results(app, world)
    owner = caller(app, client, world.users[Role.AGENCY_OWNER])
    listed = owner.get("/api/v1/evaluation/results/")
    assert _ids(listed) == {made["a"]}
    assert DRAFT_SCORE not in listed.get_data(as_text=True)
    row = listed.json["items"][0]
    assert row["score"] == "85.00" and row["grade"] == "B" and row["label"] == "2025Q1"
    assert row["standing"] == "published" and row["published_at"]

    one = owner.get(f"/api/v1/evaluation/results/{made['a']}")
    assert one.status_code == 200
    assert one.headers["ETag"] == f'"result-{made["a"]}-v{one.json["version"]}"'
    assert [k["code"] for k in one.json["kpis"]] == ["timeliness", "first_time_fix"]
    assert one.json["kpis"][0]["points"] == "18.00"

    for key in ("draft", "a2", "b"):
        hidden = owner.get(f"/api/v1/evaluation/results/{made[key]}")
        assert hidden.status_code == 404, key
        assert hidden.mimetype == "application/problem+json"
        assert DRAFT_SCORE not in hidden.get_data(as_text=True)
    period = f.LIGHT.next()
    drafts = owner.get("/api/v1/evaluation/results/",
                       query_string={"year": period.year, "quarter": period.quarter})
    assert _ids(drafts) == set()
    # The agency filter cannot reach past the scope.
    assert _ids(owner.get("/api/v1/evaluation/results/",
                          query_string={"agency_id": world.b.id})) == set()


def test_staff_and_engineers_are_refused_as_on_the_pages(app, client, world):
    _results(app, world)
    for role in (Role.AGENCY_STAFF, Role.ENGINEER):
        response = caller(app, client, world.users[role]).get("/api/v1/evaluation/results/")
        assert response.status_code == 403, role


def test_hq_reads_every_result_and_the_regional_manager_their_region(app, client, world):
    made = _results(app, world)
    hq = caller(app, client, world.users[Role.HQ_SERVICE])
    assert _ids(hq.get("/api/v1/evaluation/results/")) >= set(made.values())
    draft = hq.get(f"/api/v1/evaluation/results/{made['draft']}")
    assert draft.status_code == 200 and draft.json["score"] == DRAFT_SCORE
    assert draft.json["status"] == "draft" and draft.json["published_at"] is None
    assert _ids(hq.get("/api/v1/evaluation/results/",
                       query_string={"year": 2025, "quarter": 1,
                                     "agency_id": world.a2.id})) == {made["a2"]}
    assert _ids(hq.get("/api/v1/evaluation/results/",
                       query_string={"status": "draft"})) == {made["draft"]}

    manager = caller(app, client, world.users[Role.REGIONAL_MANAGER])
    seen = _ids(manager.get("/api/v1/evaluation/results/"))
    assert {made["a"], made["a2"]} <= seen and made["b"] not in seen
    assert manager.get(f"/api/v1/evaluation/results/{made['b']}").status_code == 404

    auditor = caller(app, client, world.users[Role.AUDITOR])
    assert _ids(auditor.get("/api/v1/evaluation/results/")) >= set(made.values())


def test_updated_since_and_cursor(app, client, world):
    made = _results(app, world)
    hq = caller(app, client, world.users[Role.HQ_ADMIN])
    later = (clock.now() + timedelta(hours=1)).isoformat()
    assert _ids(hq.get("/api/v1/evaluation/results/",
                       query_string={"updated_since": later})) == set()
    earlier = (clock.now() - timedelta(hours=1)).isoformat()
    assert _ids(hq.get("/api/v1/evaluation/results/",
                       query_string={"updated_since": earlier})) >= set(made.values())
    first = hq.get("/api/v1/evaluation/results/", query_string={"limit": 2})
    rest = hq.get("/api/v1/evaluation/results/",
                  query_string={"cursor": first.json["next_cursor"]})
    assert not _ids(first) & _ids(rest) and _ids(first) | _ids(rest) >= set(made.values())
    assert hq.get("/api/v1/evaluation/results/",
                  query_string={"cursor": "junk"}).status_code == 422
