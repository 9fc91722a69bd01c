"""The quarter list and the quarter's ranking count results the same way: a published result
nobody answered stands final once the 7 days to answer are over (issue #16)."""
import re
from collections import Counter
from datetime import timedelta
from decimal import Decimal

import pytest
from flask import g
from sqlalchemy import select

from evaluation.models import Quarter, Result, Scheme
from portal import clock
from portal.auth.roles import Role
from portal.extensions import db
from portal.tenancy import unscoped
from tests.factories import make_agency, sign_in

# The labels the ranking shows, and the columns of the quarter list, by state.
BADGES = {"awaiting": "Awaiting acknowledgement", "appealed": "Under appeal", "final": "Final"}
STATES = ("awaiting", "appealed", "final")


def _quarter(app, world, *, published: int, appealed: int, final: int, closed: bool) -> int:
    """A published 2025Q3 with that many results in each stored status; its 7 days to answer
    are over (`closed`) or still running."""
    with app.app_context(), unscoped("test builds a quarter's results"):
        g._audit_actor = None
        now = clock.now()
        published_at = now - timedelta(days=10 if closed else 2)
        quarter = Quarter(year=2025, quarter=3, status="published", agency_count=0,
                          scheme_id=db.session.scalar(select(Scheme.id).order_by(Scheme.id)),
                          published_at=published_at,
                          appeal_deadline_at=published_at + timedelta(days=7))
        db.session.add(quarter)
        db.session.flush()
        statuses = ["published"] * published + ["appealed"] * appealed + ["final"] * final
        agencies = [world.a, world.a2, world.b]
        agencies += [make_agency(world.region1, canary=f"Q{n}")
                     for n in range(len(statuses) - len(agencies))]
        for rank, (agency, status) in enumerate(zip(agencies, statuses, strict=False), start=1):
            db.session.add(Result(
                agency_id=agency.id, quarter_id=quarter.id, region_id=agency.region_id,
                tier_at=agency.tier, agency_status_at=agency.status, status=status,
                score=Decimal(90 - rank), grade="B", rank_national=rank,
                rank_national_of=len(statuses), report_version=1,
                finalized_at=now if status == "final" else None,
                final_reason="acknowledged" if status == "final" else None))
        quarter.agency_count = len(statuses)
        db.session.commit()
        return quarter.id


def _list_counts(body: str, quarter_id: int) -> dict:
    """The quarter list's figures of one quarter: agencies, awaiting, appealed, final."""
    row = re.search(rf'<tr><td><a href="/evaluation/quarters/{quarter_id}">.*?</tr>', body,
                    re.S).group(0)
    numbers = [int(n) for n in re.findall(r'<td class="text-end">\s*(\d+)\s*</td>', row)]
    return dict(zip(("agencies", *STATES), numbers, strict=True))


def _ranking_counts(body: str) -> dict:
    """How many results of the ranking table show each state's label."""
    table = body[body.index(">Ranking</h2>"):]
    labels = Counter(re.findall(r'<span class="badge [^"]*">([^<]+)</span></td></tr>', table))
    return {state: labels.get(label, 0) for state, label in BADGES.items()}


@pytest.mark.parametrize("closed", [False, True], ids=["answers-open", "answers-closed"])
@pytest.mark.parametrize("role", [Role.HQ_SERVICE, Role.AUDITOR])
def test_the_list_and_the_ranking_agree_on_each_state(app, client, world, closed, role):
    quarter = _quarter(app, world, published=5, appealed=1, final=2, closed=closed)
    sign_in(client, world.user(role))
    listed = _list_counts(client.get("/evaluation/").get_data(as_text=True), quarter)
    page = client.get(f"/evaluation/quarters/{quarter}").get_data(as_text=True)
    ranked = _ranking_counts(page)
    expected = ({"awaiting": 0, "appealed": 1, "final": 7} if closed
                else {"awaiting": 5, "appealed": 1, "final": 2})
    assert ranked == expected
    assert listed == {"agencies": 8, **expected}
    # The quarter page's own summary says the same, in words.
    awaiting = ("0 agencies awaiting answer" if closed else "5 agencies awaiting answer")
    assert awaiting in page and "1 agency under appeal" in page
    assert ("7 final results" if closed else "2 final results") in page


def test_singular_and_plural_wording(app, client, world):
    quarter = _quarter(app, world, published=1, appealed=2, final=1, closed=False)
    sign_in(client, world.user(Role.HQ_SERVICE))
    page = client.get(f"/evaluation/quarters/{quarter}").get_data(as_text=True)
    for words in ("1 agency awaiting answer", "2 agencies under appeal", "1 final result",
                  "4 agencies evaluated"):
        assert words in page, words
    assert "1 agencies" not in page


def test_a_regional_manager_counts_their_region_only(app, client, world):
    quarter = _quarter(app, world, published=2, appealed=0, final=1, closed=True)
    sign_in(client, world.user(Role.REGIONAL_MANAGER))
    listed = _list_counts(client.get("/evaluation/").get_data(as_text=True), quarter)
    ranked = _ranking_counts(client.get(f"/evaluation/quarters/{quarter}")
                             .get_data(as_text=True))
    # A and A2 (region 1) published, B (region 2) final: both stand final in region 1.
    assert ranked == {"awaiting": 0, "appealed": 0, "final": 2}
    assert listed == {"agencies": 2, **ranked}
