"""An agency sees nothing of a quarter before it is published (PRODUCT.md §2.5): neither score,
rank nor inspection, on any page, card, drill-down, chart or download; then everything."""
from datetime import timedelta

import pytest
from flask import g
from sqlalchemy import select

from evaluation import kpis, publication
from evaluation.models import Quarter, Report
from portal.auth.roles import Role
from portal.extensions import db
from portal.tenancy import unscoped
from tests.evaluation import factories as f
from tests.evaluation.test_compute import build_worked_example
from tests.factories import sign_in

Q, EARLIER = f.Q, f.Q.previous()
SCORE = "64.61"  # A's worked-example score with the inspection of 88 (test_views)
NOTE = "INSPECTION-NOTE-DRAFT"


def _earlier_orders(world, n: int = 12):
    """Enough orders of A in the earlier quarter for a score, a third of them late."""
    for k in range(n):
        f.order(world.a, world.line, day=EARLIER.first_day + timedelta(days=10 + k),
                hours=30 if k % 3 == 0 else 1)


def _draft(world, *, inspect: bool = True) -> Quarter:
    """The worked example computed for Q, with the region's inspection score: a draft."""
    build_worked_example(world)
    quarter = f.computed(Q)
    if inspect:
        row = f.inspect(quarter, world.a, 88)
        row.note = NOTE
        quarter = f.computed(Q)
    return quarter


@pytest.fixture
def quarters(app, world, fast_pdfs):
    """EARLIER published, Q computed but not published: ids of both and of A's results."""
    with app.app_context(), unscoped("test builds two quarters"):
        g._audit_actor = None
        _earlier_orders(world)
        earlier = f.published(EARLIER)
        draft = _draft(world)
        ids = {"earlier": earlier.id, "draft": draft.id,
               "earlier_result": f.result_of(earlier, world.a).id,
               "draft_result": f.result_of(draft, world.a).id}
        db.session.commit()
        return ids


def _status(client, url, method="GET") -> tuple[int, str]:
    response = client.open(url, method=method)
    return response.status_code, response.get_data(as_text=True)


def _draft_urls(ids) -> list[tuple[str, str]]:
    result = ids["draft_result"]
    return [("GET", f"/evaluation/results/{result}"),
            ("GET", f"/evaluation/results/{result}/trend.svg"),
            *[("GET", f"/evaluation/results/{result}/kpis/{k.code}") for k in kpis.KPIS],
            ("GET", f"/evaluation/results/{result}/appeal"),
            ("POST", f"/evaluation/results/{result}/acknowledge"),
            ("GET", f"/evaluation/quarters/{ids['draft']}/rating")]


def test_the_owner_sees_nothing_of_a_draft_quarter(client, world, quarters):
    sign_in(client, world.user(Role.AGENCY_OWNER))
    # Every page of the draft answers like a missing one, and shows nothing of it.
    for method, url in _draft_urls(quarters):
        missing = url.replace(str(quarters["draft_result"]), "987654321").replace(
            f"quarters/{quarters['draft']}/", "quarters/987654321/")
        status, body = _status(client, url, method)
        assert status == _status(client, missing, method)[0] == 404, url
        assert SCORE not in body and NOTE not in body, url
    # Lists, the home card and HQ's service level name the published quarter only.
    for url in ("/evaluation/", "/", "/evaluation/service-level",
                f"/evaluation/service-level?quarter={quarters['draft']}"):
        status, body = _status(client, url)
        assert status == 200, url
        assert EARLIER.label in body, url
        assert Q.label not in body and SCORE not in body and NOTE not in body, url
    # The published quarter's chart ends at that quarter.
    status, svg = _status(client, f"/evaluation/results/{quarters['earlier_result']}/trend.svg")
    assert status == 200 and EARLIER.label in svg and Q.label not in svg


def test_the_regional_manager_reads_the_draft(client, world, quarters):
    """HQ, and the region's manager who enters the inspection scores, read drafts."""
    sign_in(client, world.user(Role.REGIONAL_MANAGER))
    status, body = _status(client, f"/evaluation/results/{quarters['draft_result']}")
    assert status == 200 and SCORE in body and NOTE in body
    status, _body = _status(client, f"/evaluation/results/{quarters['draft_result']}/inspection")
    assert status == 200


def test_after_publication_the_owner_sees_everything(app, client, world, quarters):
    with app.app_context(), unscoped("HQ publishes the quarter"):
        g._audit_actor = None
        publication.publish_quarter(db.session.get(Quarter, quarters["draft"]))
        report = db.session.scalars(select(Report.id).where(
            Report.result_id == quarters["draft_result"], Report.locale == "en")).one()
        db.session.commit()
    sign_in(client, world.user(Role.AGENCY_OWNER))
    result = quarters["draft_result"]
    for url in (f"/evaluation/results/{result}", "/evaluation/", "/"):
        status, body = _status(client, url)
        assert status == 200 and Q.label in body and SCORE in body, url
    status, body = _status(client, f"/evaluation/results/{result}")
    assert NOTE in body  # the inspection, with its note
    for code in (k.code for k in kpis.KPIS):
        assert _status(client, f"/evaluation/results/{result}/kpis/{code}")[0] == 200, code
    status, svg = _status(client, f"/evaluation/results/{result}/trend.svg")
    assert status == 200 and EARLIER.label in svg and SCORE in svg
    assert _status(client, f"/evaluation/reports/{report}.pdf")[0] == 200
    assert _status(client, f"/evaluation/quarters/{quarters['draft']}/rating")[0] == 200


def test_trends_skip_a_quarter_that_is_still_a_draft(app, client, world, fast_pdfs):
    """An earlier quarter computed but never published is no point of a later one's trend."""
    with app.app_context(), unscoped("test builds an earlier draft and a published quarter"):
        g._audit_actor = None
        build_worked_example(world)
        published = f.published(Q, inspections={world.a: 88})
        result = f.result_of(published, world.a).id
        _earlier_orders(world)  # computed after Q was published: still a draft
        earlier = f.computed(EARLIER)
        hidden = f"{f.result_of(earlier, world.a).score:.2f}"
        db.session.commit()
    assert hidden not in (SCORE, "0.00")
    sign_in(client, world.user(Role.AGENCY_OWNER))
    status, svg = _status(client, f"/evaluation/results/{result}/trend.svg")
    assert status == 200 and SCORE in svg and hidden not in svg
    status, body = _status(client, f"/evaluation/results/{result}")
    trend = body.split("<tbody>")[1].split("</tbody>")[0]  # the trend table comes first
    assert SCORE in trend and hidden not in trend
    listed = _status(client, "/evaluation/")[1]
    assert listed.count('href="/evaluation/results/') == 1 and EARLIER.label not in listed
