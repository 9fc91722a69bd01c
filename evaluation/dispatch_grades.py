"""The grade the dispatcher's suggestion shows (dispatch/suggest.py): each agency's latest
published grade. Dispatch sits below evaluation and may not import it; evaluation registers
:func:`latest_grades` with ``dispatch.suggest.grade_source`` when the app starts.

"Published" is the rule of the publication guard (`evaluation.queries.published_quarters`):
a quarter out of draft. The guard itself hides drafts only in an agency's scope and the
dispatcher is HQ, so the rule is applied here explicitly: a draft quarter's grades, which HQ
may still recompute, never reach dispatch. Of the published results (awaiting
acknowledgement, under appeal or final) the latest quarter with a grade is the agency's.
"""
from sqlalchemy import Select, and_, or_, select
from sqlalchemy.orm import aliased

from evaluation.models import Quarter, Result, ResultStatus
from evaluation.queries import published_quarters


def _graded(result):
    return and_(result.quarter_id.in_(published_quarters()),
                result.status != ResultStatus.DRAFT, result.grade.is_not(None))


def latest_grades() -> Select:
    """SELECT agency_id, grade, score: one row per agency with a published grade, from its
    latest such quarter. Correlated by agency, so that a query joining it on agency_id reads
    an agency's few results by the (agency_id, quarter_id) index."""
    later, later_quarter = aliased(Result), aliased(Quarter)
    newer = (select(later.id).select_from(later).join(later_quarter,
                                                      later_quarter.id == later.quarter_id)
             .where(later.agency_id == Result.agency_id, _graded(later),
                    or_(later_quarter.year > Quarter.year,
                        and_(later_quarter.year == Quarter.year,
                             later_quarter.quarter > Quarter.quarter)))
             .exists())
    return (select(Result.agency_id.label("agency_id"), Result.grade.label("grade"),
                   Result.score.label("score"))
            .join(Quarter, Quarter.id == Result.quarter_id)
            .where(_graded(Result), ~newer))


def register() -> None:
    from dispatch.suggest import grade_source

    grade_source(latest_grades)
