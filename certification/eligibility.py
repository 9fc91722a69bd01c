"""Who may sit which exam: prerequisites, retake waiting periods and attempt limits.

Each check explains itself: `problems()` returns translated sentences, empty when the engineer
may be nominated (or admitted) for the program on the given day.
"""
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta

from flask_babel import format_date, get_locale
from flask_babel import gettext as _
from sqlalchemy import select

from certification.models import (
    EDUCATION_LABELS,
    EDUCATION_RANK,
    OPEN_NOMINATION_STATUSES,
    Certificate,
    Education,
    Engineer,
    EngineerProductLine,
    ExamResult,
    ExamSeat,
    Nomination,
    Program,
)
from certification.states import EXPIRING_DAYS, is_valid_on
from portal.clock import add_months
from portal.extensions import db


@dataclass
class History:
    """What one engineer has done so far: certificates, scored attempts, open nominations."""

    product_line_ids: set = field(default_factory=set)
    certificates: list = field(default_factory=list)
    attempts: list = field(default_factory=list)        # scored ExamSeats, oldest first
    open_nominations: list = field(default_factory=list)


def _d(day: date) -> str:
    return format_date(day, "medium")


def load_histories(engineer_ids) -> dict[int, History]:
    """Histories of many engineers in four queries, whatever their number."""
    ids = sorted(set(engineer_ids)) or [0]
    out: dict[int, History] = defaultdict(History)
    for eid, line_id in db.session.execute(
            select(EngineerProductLine.engineer_id, EngineerProductLine.product_line_id)
            .where(EngineerProductLine.engineer_id.in_(ids))):
        out[eid].product_line_ids.add(line_id)
    for cert in db.session.scalars(select(Certificate).where(Certificate.engineer_id.in_(ids))):
        out[cert.engineer_id].certificates.append(cert)
    for seat in db.session.scalars(
            select(ExamSeat).where(ExamSeat.engineer_id.in_(ids), ExamSeat.result.is_not(None))
            .order_by(ExamSeat.exam_date, ExamSeat.id)):
        out[seat.engineer_id].attempts.append(seat)
    for nomination in db.session.scalars(
            select(Nomination).where(Nomination.engineer_id.in_(ids),
                                     Nomination.status.in_(OPEN_NOMINATION_STATUSES))):
        out[nomination.engineer_id].open_nominations.append(nomination)
    return out


def load_history(engineer: Engineer) -> History:
    return load_histories([engineer.id])[engineer.id]


def qualifies_from(hire_date: date, years: int) -> date:
    """The first day with `years` full years of experience (calendar anniversaries)."""
    return add_months(hire_date, 12 * years)


def failed_attempts(history: History, program_id: int) -> list:
    """Failed or missed attempts at `program_id` since the engineer last passed it."""
    out = []
    for seat in history.attempts:
        if seat.program_id != program_id:
            continue
        out = [] if seat.result == ExamResult.PASSED else [*out, seat]
    return out


def current_certificate(history: History, program_id: int, day: date):
    """The engineer's certificate of this program valid on `day` (the latest), or None."""
    valid = [c for c in history.certificates if c.program_id == program_id and is_valid_on(c, day)]
    return max(valid, key=lambda c: c.valid_to, default=None)


def problems(engineer: Engineer, program: Program, history: History, day: date, *,
             nomination_id: int | None = None) -> list[str]:
    """Why `engineer` may not sit `program`'s exam on `day` (empty list: they may).

    `nomination_id` is the engineer's own open nomination being admitted, not a duplicate.
    """
    locale = str(get_locale())
    name, line = engineer.name, program.product_line.name(locale)
    out: list[str] = []
    if not engineer.is_active:
        out.append(_("%(name)s has left the agency.", name=name))
    if not program.is_active:
        out.append(_("This program is closed for nominations."))
    if program.product_line_id not in history.product_line_ids:
        out.append(_("%(name)s does not work on %(line)s: add the product line to the "
                     "engineer first.", name=name, line=line))
    out.extend(_entry_requirements(engineer, program, history, day))
    if any(n.program_id == program.id and n.id != nomination_id
           for n in history.open_nominations):
        out.append(_("%(name)s is already nominated for this program.", name=name))
    held = current_certificate(history, program.id, day)
    if held is not None and (held.valid_to - day).days > EXPIRING_DAYS:
        out.append(_("%(name)s already holds certificate %(number)s, valid until %(date)s; "
                     "renewal opens on %(opens)s.", name=name, number=held.number,
                     date=_d(held.valid_to),
                     opens=_d(held.valid_to - timedelta(days=EXPIRING_DAYS))))
    out.extend(_retake_rules(engineer, program, history, day))
    return out


def _entry_requirements(engineer, program, history, day) -> list[str]:
    out = []
    required = Education(program.min_education)
    if EDUCATION_RANK.get(engineer.education, -1) < EDUCATION_RANK[required]:
        out.append(_("Level %(level)s needs an education of at least %(required)s; "
                     "%(name)s has %(actual)s.", level=program.level,
                     required=EDUCATION_LABELS[required], name=engineer.name,
                     actual=EDUCATION_LABELS.get(engineer.education, engineer.education)))
    since = qualifies_from(engineer.hire_date, program.min_experience_years)
    if since > day:
        out.append(_("Level %(level)s needs %(years)s year(s) of experience; %(name)s was "
                     "hired on %(hired)s and qualifies from %(since)s.", level=program.level,
                     years=program.min_experience_years, name=engineer.name,
                     hired=_d(engineer.hire_date), since=_d(since)))
    if program.level > 1:
        below = program.level - 1
        if not any(c.product_line_id == program.product_line_id and c.level >= below
                   and is_valid_on(c, day) for c in history.certificates):
            out.append(_("Level %(level)s needs a valid level %(below)s certificate of the same "
                         "product line; %(name)s holds none on %(date)s.", level=program.level,
                         below=below, name=engineer.name, date=_d(day)))
    return out


def _retake_rules(engineer, program, history, day) -> list[str]:
    failed = failed_attempts(history, program.id)
    if len(failed) >= program.max_attempts:
        return [_("%(name)s has used all %(max)s attempts at this program.",
                  name=engineer.name, max=program.max_attempts)]
    if failed:
        last = failed[-1].exam_date
        retake = last + timedelta(days=program.retake_wait_days)
        if day < retake:
            return [_("After the attempt of %(date)s a retake is possible from %(retake)s.",
                      date=_d(last), retake=_d(retake))]
    return []
