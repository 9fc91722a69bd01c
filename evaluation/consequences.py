"""What a result proposes (奖惩, 淘汰): tier promotion or demotion, probation, termination.

Pure rules over the grade, the trend and certification coverage; HQ admin accepts or rejects
each proposal, and only an accepted one changes the agency.
"""
from dataclasses import dataclass

from flask_babel import lazy_gettext as _l

from tenants.models import AgencyStatus

REASON_LABELS = {
    "two_d": _l("Grade D in two quarters in a row (elimination warning, 淘汰预警)"),
    "grade_d": _l("Grade D this quarter"),
    "grade_c_declining": _l("Grade C with a score that fell two quarters in a row"),
    "coverage_gap": _l("Authorized product lines without enough level-2 certified engineers"),
    "grade_a_sustained": _l("Grade A after a quarter graded A or B, certification complete"),
}


@dataclass(frozen=True)
class Proposed:
    kind: str
    reasons: tuple[str, ...]
    from_tier: int | None = None
    to_tier: int | None = None
    to_status: str | None = None


def _declining(scores: list) -> bool:
    """The score fell two quarters in a row (scores newest first, None where not rated)."""
    if len(scores) < 3 or any(s is None for s in scores[:3]):
        return False
    return scores[0] < scores[1] < scores[2]


def propose(*, grade: str | None, previous_grade: str | None, scores: list, tier: int,
            status: str, coverage_gaps: int) -> list[Proposed]:
    """The proposals a result makes. `scores`: this quarter's and earlier ones, newest first."""
    if grade is None or status == AgencyStatus.TERMINATED:
        return []
    gap = ("coverage_gap",) if coverage_gaps else ()
    if grade == "D" and previous_grade == "D":
        return [Proposed("terminate", ("two_d", *gap), to_status=AgencyStatus.TERMINATED)]
    out = []
    if grade == "D":
        if status == AgencyStatus.ACTIVE:
            out.append(Proposed("probation", ("grade_d", *gap),
                                to_status=AgencyStatus.PROBATION))
        if tier > 1:
            out.append(Proposed("demote", ("grade_d", *gap), tier, tier - 1))
    elif grade == "C" and (_declining(scores) or coverage_gaps) and tier > 1:
        reasons = (("grade_c_declining",) if _declining(scores) else ()) + gap
        out.append(Proposed("demote", reasons, tier, tier - 1))
    elif (grade == "A" and previous_grade in ("A", "B") and not coverage_gaps
          and status == AgencyStatus.ACTIVE and tier < 5):
        out.append(Proposed("promote", ("grade_a_sustained",), tier, tier + 1))
    return out
