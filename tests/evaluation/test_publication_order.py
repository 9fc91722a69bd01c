"""Quarters are published oldest first, and a publication reads the quarters before it as
published: nothing of an earlier draft reaches an agency through a later quarter's result or
report (PRODUCT.md §2.5)."""
import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from evaluation import publication
from evaluation.models import Proposal, RankingReport, Report
from portal.audit.models import AuditEntry
from portal.errors_domain import DomainError
from portal.extensions import db
from tests.evaluation import factories as f

Q, EARLIER = f.Q, f.Q.previous()


@pytest.fixture
def figures_as_pdfs(monkeypatch):
    """Stored "PDFs" that are the figures they were rendered from, as JSON."""
    from evaluation import reports

    def fake(figures, locale):
        return json.dumps({"locale": locale, **figures}).encode()

    monkeypatch.setattr(reports, "render_report", fake)
    monkeypatch.setattr(reports, "render_ranking", fake)


def _orders(world, period, *, late_every: int = 3, n: int = 12) -> None:
    """Enough carry-in orders of A in `period` for a score, one in `late_every` late."""
    for k in range(n):
        f.order(world.a, world.line, day=period.first_day + timedelta(days=10 + k),
                hours=30 if k % late_every == 0 else 1)


def _stored(quarter, agency) -> dict:
    """The figures held by the agency's stored English report of `quarter`."""
    result = f.result_of(quarter, agency)
    content = db.session.scalars(select(Report.content).where(
        Report.result_id == result.id, Report.locale == "en")).one()
    return json.loads(content)


def _count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def test_a_later_quarter_waits_for_the_earlier_draft(hq, figures_as_pdfs):
    _orders(hq, EARLIER)
    _orders(hq, Q)
    f.computed(EARLIER)
    later = f.computed(Q)
    before = (_count(Report), _count(RankingReport), _count(Proposal), _count(AuditEntry))
    with pytest.raises(DomainError, match=f"Publish {EARLIER.label} first"):
        publication.publish_quarter(later)
    db.session.flush()
    assert later.status == "draft" and later.published_at is None
    assert f.result_of(later, hq.a).status == "draft"
    assert (_count(Report), _count(RankingReport), _count(Proposal),
            _count(AuditEntry)) == before


def test_the_later_quarter_shows_the_earlier_as_published(hq, figures_as_pdfs):
    _orders(hq, EARLIER)
    _orders(hq, Q)
    earlier = f.computed(EARLIER)
    draft_grade = f.result_of(earlier, hq.a).grade
    later = f.computed(Q)  # its results carry the earlier draft's grade
    assert f.result_of(later, hq.a).previous_grade == draft_grade
    # The region enters the earlier quarter's inspection, which changes its grade.
    f.inspect(earlier, hq.a, 0)
    earlier = f.computed(EARLIER)
    published_result = f.result_of(earlier, hq.a)
    assert published_result.grade != draft_grade
    publication.publish_quarter(earlier)
    publication.publish_quarter(later)
    published_result = f.result_of(earlier, hq.a)
    result = f.result_of(later, hq.a)
    assert result.previous_grade == published_result.grade
    report = _stored(later, hq.a)
    assert report["previous_grade"] == published_result.grade
    assert report["trend"][-2] == [EARLIER.label, str(published_result.score),
                                   published_result.grade]


def test_a_quarter_without_an_earlier_one_publishes(hq, figures_as_pdfs):
    _orders(hq, Q)
    quarter = f.published(Q)
    assert quarter.status == "published"
    result = f.result_of(quarter, hq.a)
    assert result.status == "published" and result.previous_grade is None
    assert not result.elimination_warning
    assert _stored(quarter, hq.a)["trend"][-2] == [EARLIER.label, None, None]


def test_a_reissue_leaves_out_an_earlier_quarter_computed_afterwards(hq, figures_as_pdfs):
    _orders(hq, Q)
    quarter = f.published(Q)
    _orders(hq, EARLIER)
    draft = f.result_of(f.computed(EARLIER), hq.a)  # computed late, still a draft
    assert draft.score is not None
    result = f.result_of(quarter, hq.a)
    numbers = publication.reissue(result)
    content = db.session.scalars(select(Report.content).where(
        Report.number.in_(numbers), Report.result_id == result.id,
        Report.locale == "en")).one()
    assert json.loads(content)["trend"][-2] == [EARLIER.label, None, None]
