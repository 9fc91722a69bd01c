"""Isolation-test parameters of the evaluation area (see tests/isolation_params.py).

Owned rows are light (no computation, no PDF rendering) and carry the agency's canary where
they hold text; quarters, schemes, ranking reports and KPI codes are HQ's or reference data.
Rows of results, and quarters themselves, also come as rows of a draft quarter (computed, not
published): an agency must see nothing of them.
"""
from decimal import Decimal

from sqlalchemy import select

from evaluation.models import Appeal, Inspection, Proposal, Quarter, Report, Result
from portal.extensions import db
from tests.evaluation import factories as f

# Imported by tests/isolation_params.py once it has defined these two (never import this module
# first: the isolation parameters import it back).
from tests.isolation_params import Owned, Reference  # noqa: E402,I001

DRAFT = f.LIGHT.next()  # computed after the light quarter, not published yet
# What a draft quarter holds that no agency page may show: the score and the inspection note.
DRAFT_SCORE = "13.57"
DRAFT_CANARY = "CANARY-DRAFT"
UNPUBLISHED_CANARIES = [DRAFT_SCORE, DRAFT_CANARY]


def draft_quarter() -> Quarter:
    quarter = db.session.scalars(select(Quarter).where(
        Quarter.year == DRAFT.year, Quarter.quarter == DRAFT.quarter)).one_or_none()
    if quarter is None:
        quarter = Quarter(year=DRAFT.year, quarter=DRAFT.quarter, scheme_id=1, status="draft",
                          agency_count=3, compute_count=1)
        db.session.add(quarter)
        db.session.flush()
    return quarter


def draft_result(agency) -> Result:
    """The agency's result of the draft quarter, with the regional manager's inspection."""
    quarter = draft_quarter()
    result, made = f.made_result(agency, quarter, score=Decimal(DRAFT_SCORE), grade="D",
                                 status="draft")
    if made:
        db.session.add(Inspection(agency_id=agency.id, quarter_id=quarter.id, score=41,
                                  note=f"{DRAFT_CANARY} 现场检查"))
        db.session.flush()
    return result


def _draft_child(model, agency, **values) -> int:
    """A row hanging from the draft result (none exists before publication: the guard must
    hide one all the same)."""
    row = model(agency_id=agency.id, result_id=draft_result(agency).id, **values)
    db.session.add(row)
    db.session.flush()
    return row.id


def _existing(model, agency) -> int | None:
    return db.session.scalars(select(model.id).where(
        model.agency_id == agency.id, model.result_id == draft_result(agency).id)).first()


def _draft_report(world, agency) -> int:
    return _existing(Report, agency) or _draft_child(
        Report, agency, version=1, locale="en", number=f"EVL-{DRAFT.label}-{agency.code}",
        sha256="d" * 64, fingerprint="d" * 64, size_bytes=20,
        content=f"%PDF-1.4 {DRAFT_CANARY}".encode())


def _draft_appeal(world, agency) -> int:
    return _existing(Appeal, agency) or _draft_child(Appeal, agency,
                                                     reason=f"{DRAFT_CANARY} 申诉")


def _draft_proposal(world, agency) -> int:
    return _draft_child(Proposal, agency, kind="demote", from_tier=3, to_tier=2,
                        reasons="grade_d")


PARAMS: dict = {
    "result_id": Owned(lambda world, agency: f.light_result(agency).id,
                       unpublished=lambda world, agency: draft_result(agency).id),
    "report_id": Owned(lambda world, agency: f.light_report(agency).id,
                       unpublished=_draft_report),
    # settlement has its own appeal_id
    "evaluation_appeal_id": Owned(lambda world, agency: f.light_appeal(agency).id,
                                  unpublished=_draft_appeal),
    "proposal_id": Owned(lambda world, agency: f.light_proposal(agency).id,
                         unpublished=_draft_proposal),
    "quarter_id": Reference(lambda world: f.light_quarter().id,
                            unpublished=lambda world: draft_quarter().id),
    "ranking_report_id": Reference(lambda world: f.light_ranking().id),
    "scheme_id": Reference(lambda world: 1),
    "kpi_code": Reference(lambda world: "timeliness"),
}
