"""SLA milestones (服务时效): the targets per service type (and product line), and the clocks
that run on the network calendar from the customer's call.

Every clock starts at the call (the request's ``received_at``) and its target is the business
time allowed from the call to the milestone. The accept clock is the request's (HQ's row: it
runs while HQ dispatches and the agency answers); the later milestones' clocks are the
agency's work order's (``sla_clocks``, agency-owned), created when the agency accepts.

A clock stores its instants (``warn_at`` 75 %, ``due_at`` 100 %, ``escalate_at`` 150 %),
computed with :func:`dispatch.calendar.add_business` over the network calendar and the clock's
pauses, so the SLA board and the tick sort and select with plain SQL. A pause with an end
(the customer asked for a later date: until the appointment) moves them at once; a change of
the network calendar recomputes the open clocks (:func:`recompute_open_clocks`).
"""
from datetime import datetime
from enum import StrEnum

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, case, select, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from dispatch import calendar, network_calendar, policy
from portal import clock
from portal.errors_domain import DomainError
from portal.extensions import db
from portal.models import UTCDateTime, utcnow
from portal.tenancy import AgencyOwned, owner_fk
from portal.transitions import describe, note, transition
from tenants.models import ServiceType

WARN_SHARE, SECOND_LEVEL = 0.75, 1.5
MAX_MINUTES = 60 * 24 * 60  # sixty days of business time: a typo, not a target


class Milestone(StrEnum):
    ANSWER = "answer"            # an offer's window to accept or refuse (from the offer)
    ACCEPT = "accept"            # 接单: an agency has accepted
    APPOINTMENT = "appointment"  # 预约: a window is booked with the customer
    ARRIVAL = "arrival"          # 上门: the engineer is at the door (on-site)
    DIAGNOSIS = "diagnosis"      # 检测: the fault is diagnosed (carry-in)
    COMPLETION = "completion"    # 完工


MILESTONE_LABELS = {
    Milestone.ANSWER: _l("Offer answered"),
    Milestone.ACCEPT: _l("Accepted by the agency"),
    Milestone.APPOINTMENT: _l("Appointment booked"),
    Milestone.ARRIVAL: _l("On site"),
    Milestone.DIAGNOSIS: _l("Diagnosed"),
    Milestone.COMPLETION: _l("Completed"),
}
# The milestones each service type runs, in order (the offer's answer window is not one).
MILESTONES = {
    ServiceType.ONSITE: (Milestone.ACCEPT, Milestone.APPOINTMENT, Milestone.ARRIVAL,
                         Milestone.COMPLETION),
    ServiceType.CARRY_IN: (Milestone.ACCEPT, Milestone.APPOINTMENT, Milestone.DIAGNOSIS,
                           Milestone.COMPLETION),
    ServiceType.PHONE: (Milestone.ACCEPT, Milestone.COMPLETION),
}
# The network's defaults, in business minutes from the call (the answer window: from the
# offer). A business day is 9 hours (08:30–17:30).
DEFAULT_MINUTES = {
    ServiceType.ONSITE: {Milestone.ANSWER: 30, Milestone.ACCEPT: 60,
                         Milestone.APPOINTMENT: 240, Milestone.ARRIVAL: 1080,
                         Milestone.COMPLETION: 2700},
    ServiceType.CARRY_IN: {Milestone.ANSWER: 30, Milestone.ACCEPT: 60,
                           Milestone.APPOINTMENT: 240, Milestone.DIAGNOSIS: 1080,
                           Milestone.COMPLETION: 2160},
    ServiceType.PHONE: {Milestone.ANSWER: 30, Milestone.ACCEPT: 60, Milestone.COMPLETION: 540},
}


class ClockState(StrEnum):
    ON_TIME = "on_time"
    WARNING = "warning"
    BREACHED = "breached"
    ESCALATED = "breached_2"
    PAUSED = "paused"
    MET = "met"            # reached within the target
    MET_LATE = "met_late"  # reached after it: counts as breached


CLOCK_STATE_LABELS = {
    ClockState.ON_TIME: _l("On time"), ClockState.WARNING: _l("Warning"),
    ClockState.BREACHED: _l("Breached"), ClockState.ESCALATED: _l("Breached, escalated"),
    ClockState.PAUSED: _l("Paused"), ClockState.MET: _l("Met"),
    ClockState.MET_LATE: _l("Met late"),
}
CLOCK_STATE_STYLES = {
    ClockState.ON_TIME: "success", ClockState.WARNING: "warning",
    ClockState.BREACHED: "danger", ClockState.ESCALATED: "danger",
    ClockState.PAUSED: "secondary", ClockState.MET: "success", ClockState.MET_LATE: "danger",
}
PAUSE_REASONS = {"customer_later": _l("The customer asked for a later date")}


def _in(column: str, values) -> str:
    return f"{column} IN ({', '.join(repr(str(v)) for v in values)})"


class SlaTarget(db.Model):
    """The business minutes allowed from the call to a milestone, for a service type; a row
    with a product line overrides the type's default for that line."""

    __tablename__ = "sla_targets"
    __table_args__ = (
        Index("uq_sla_targets_default", "service_type", "milestone", unique=True,
              postgresql_where=text("product_line_id IS NULL"),
              sqlite_where=text("product_line_id IS NULL")),
        Index("uq_sla_targets_line", "service_type", "product_line_id", "milestone",
              unique=True, postgresql_where=text("product_line_id IS NOT NULL"),
              sqlite_where=text("product_line_id IS NOT NULL")),
        CheckConstraint(_in("service_type", ServiceType), name="service_type_known"),
        CheckConstraint(_in("milestone", Milestone), name="milestone_known"),
        CheckConstraint(f"minutes > 0 AND minutes <= {MAX_MINUTES}", name="minutes_range"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    service_type: Mapped[str] = mapped_column(String(16))
    product_line_id: Mapped[int | None] = mapped_column(
        ForeignKey("product_lines.id", ondelete="CASCADE"))
    milestone: Mapped[str] = mapped_column(String(16))
    minutes: Mapped[int]
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id",
                                                                ondelete="SET NULL"))

    product_line = relationship("ProductLine")


class SlaClock(AgencyOwned, db.Model):
    """One milestone's clock of an agency's dispatched work order."""

    __tablename__ = "sla_clocks"
    __owned_table_args__ = (
        owner_fk("work_order_id", "work_orders", ondelete="CASCADE"),
        Index("uq_sla_clocks_order_milestone", "agency_id", "work_order_id", "milestone",
              unique=True),
        # The board and the tick: open clocks by their next instant.
        Index("ix_sla_clocks_open_due", "due_at", postgresql_where=text("met_at IS NULL"),
              sqlite_where=text("met_at IS NULL")),
        Index("ix_sla_clocks_request_id", "request_id"),
        CheckConstraint(_in("milestone", Milestone), name="milestone_known"),
        CheckConstraint("target_seconds > 0", name="target_positive"),
        CheckConstraint("warn_at <= due_at AND due_at <= escalate_at", name="instants_ordered"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    work_order_id: Mapped[int]
    request_id: Mapped[int] = mapped_column(ForeignKey("service_requests.id",
                                                       ondelete="RESTRICT"))
    milestone: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    target_seconds: Mapped[int]
    warn_at: Mapped[datetime] = mapped_column(UTCDateTime)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    escalate_at: Mapped[datetime] = mapped_column(UTCDateTime)
    met_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    pauses = relationship("SlaPause", viewonly=True, order_by="SlaPause.starts_at")

    @property
    def milestone_label(self):
        return MILESTONE_LABELS.get(self.milestone, self.milestone)

    def state(self, moment: datetime | None = None) -> ClockState:
        return clock_state_of(self.met_at, self.warn_at, self.due_at, self.escalate_at,
                              moment or clock.now(),
                              paused=any(p.covers(moment or clock.now()) for p in self.pauses))


class SlaPause(AgencyOwned, db.Model):
    """A stretch in which a clock does not run, with its reason."""

    __tablename__ = "sla_pauses"
    __owned_table_args__ = (
        owner_fk("clock_id", "sla_clocks", ondelete="CASCADE"),
        Index("ix_sla_pauses_agency_id_clock_id", "agency_id", "clock_id"),
        CheckConstraint("ends_at > starts_at", name="ends_after_start"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    clock_id: Mapped[int]
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    reason: Mapped[str] = mapped_column(String(32))
    note: Mapped[str] = mapped_column(Text, default="")

    @property
    def reason_label(self):
        return PAUSE_REASONS.get(self.reason, self.reason)

    def covers(self, moment: datetime) -> bool:
        return self.starts_at <= moment < self.ends_at


describe(SlaClock, _l("SLA clock"), lambda c: c.milestone_label)


# --- states -----------------------------------------------------------------------------------


def clock_state_of(met_at, warn_at, due_at, escalate_at, moment: datetime, *,
                   paused: bool = False) -> ClockState:
    """A clock's state from its stored instants (the same rule as :func:`state_sql`)."""
    if met_at is not None:
        return ClockState.MET if met_at <= due_at else ClockState.MET_LATE
    if paused:
        return ClockState.PAUSED
    if moment >= escalate_at:
        return ClockState.ESCALATED
    if moment >= due_at:
        return ClockState.BREACHED
    if moment >= warn_at:
        return ClockState.WARNING
    return ClockState.ON_TIME


def state_sql(met_at, warn_at, due_at, escalate_at, moment: datetime):
    """:func:`clock_state_of` as a SQL expression (pauses aside: their instants are moved)."""
    return case(
        (met_at.isnot(None), case((met_at <= due_at, ClockState.MET.value),
                                  else_=ClockState.MET_LATE.value)),
        (escalate_at <= moment, ClockState.ESCALATED.value),
        (due_at <= moment, ClockState.BREACHED.value),
        (warn_at <= moment, ClockState.WARNING.value),
        else_=ClockState.ON_TIME.value)


# --- targets --------------------------------------------------------------------------------


def targets_for(service_type: str, product_line_id: int | None) -> dict[str, int]:
    """Milestone → business seconds for a type and line (the line's rows override the type's;
    the network defaults fill what HQ never set). One query."""
    found = dict(DEFAULT_MINUTES[ServiceType(service_type)])
    rows = db.session.execute(select(SlaTarget.milestone, SlaTarget.minutes,
                                     SlaTarget.product_line_id).where(
        SlaTarget.service_type == service_type,
        (SlaTarget.product_line_id.is_(None)) | (SlaTarget.product_line_id == product_line_id)
    ).order_by(SlaTarget.product_line_id.is_not(None))).all()
    for milestone, minutes, _line in rows:  # defaults first, then the line's
        found[Milestone(milestone)] = minutes
    return {str(m): minutes * 60 for m, minutes in found.items()}


def target_table() -> list[dict]:
    """Every type's milestones with the default in force and the lines' overrides."""
    rows = db.session.scalars(select(SlaTarget).order_by(SlaTarget.service_type,
                                                         SlaTarget.product_line_id,
                                                         SlaTarget.milestone)).all()
    table = []
    for service_type, milestones in MILESTONES.items():
        defaults = DEFAULT_MINUTES[service_type]
        for milestone in (Milestone.ANSWER, *milestones):
            set_default = next((r for r in rows if r.service_type == service_type and
                                r.milestone == milestone and r.product_line_id is None), None)
            table.append({
                "service_type": service_type, "milestone": milestone,
                "label": MILESTONE_LABELS[milestone],
                "minutes": set_default.minutes if set_default else defaults[milestone],
                "overrides": [r for r in rows if r.service_type == service_type and
                              r.milestone == milestone and r.product_line_id is not None]})
    return table


@transition("sla.target_set", SlaTarget, label=_l("SLA target set"),
            permission=policy.SLA_TARGET_SET, creates=True)
def set_target(service_type: str, milestone: str, minutes: int, product_line_id: int | None,
               *, acting_user) -> SlaTarget:
    """Set (or replace) a target; applies to clocks started from now on."""
    if service_type not in {s.value for s in ServiceType}:
        raise DomainError(_("Choose a service type."), field="service_type")
    allowed = {Milestone.ANSWER, *MILESTONES[ServiceType(service_type)]}
    if milestone not in {str(m) for m in allowed}:
        raise DomainError(_("This milestone does not apply to the service type."),
                          field="milestone")
    if isinstance(minutes, bool) or not isinstance(minutes, int) or \
            not 0 < minutes <= MAX_MINUTES:
        raise DomainError(_("Give the target in business minutes, from 1 to %(max)s.",
                            max=MAX_MINUTES), field="minutes")
    row = db.session.scalars(select(SlaTarget).where(
        SlaTarget.service_type == service_type, SlaTarget.milestone == milestone,
        SlaTarget.product_line_id.is_(None) if product_line_id is None
        else SlaTarget.product_line_id == product_line_id)).one_or_none()
    before = row.minutes if row else DEFAULT_MINUTES[ServiceType(service_type)][
        Milestone(milestone)]
    if row is None:
        row = SlaTarget(service_type=service_type, milestone=milestone,
                        product_line_id=product_line_id)
        db.session.add(row)
    row.minutes = minutes
    row.updated_by_id = getattr(acting_user, "id", None)
    note(before={"minutes": before},
         after={"service_type": service_type, "milestone": milestone,
                "product_line_id": product_line_id, "minutes": minutes})
    return row


# --- clocks -----------------------------------------------------------------------------------


def instants(start: datetime, target_seconds: int, pauses=(), cal=None
             ) -> tuple[datetime, datetime, datetime]:
    """(warn_at, due_at, escalate_at) of a clock from start with these pauses."""
    cal = cal or network_calendar.load()
    state = calendar.clock_state(cal, start, start, target_seconds, list(pauses),
                                 warn_at=WARN_SHARE, second_level=SECOND_LEVEL)
    return state.warn_at, state.due_at, state.second_at


def start_order_clocks(order, request, *, accepted_at: datetime) -> list[SlaClock]:
    """The dispatched order's clocks (every milestone after accept), from the call."""
    targets = targets_for(order.service_type, order.product_line_id)
    cal = network_calendar.load()
    made = []
    for milestone in MILESTONES[ServiceType(order.service_type)][1:]:
        seconds = targets[str(milestone)]
        warn, due, escalate = instants(request.received_at, seconds, cal=cal)
        made.append(SlaClock(agency_id=order.agency_id, work_order_id=order.id,
                             request_id=request.id, milestone=milestone,
                             started_at=request.received_at, target_seconds=seconds,
                             warn_at=warn, due_at=due, escalate_at=escalate))
    db.session.add_all(made)
    db.session.flush()
    return made


def order_clocks(agency_id: int, work_order_id: int) -> list[SlaClock]:
    order = {str(m): n for n, m in enumerate(Milestone)}
    rows = db.session.scalars(select(SlaClock).where(
        SlaClock.agency_id == agency_id, SlaClock.work_order_id == work_order_id)).all()
    return sorted(rows, key=lambda c: order[c.milestone])


def meet(clocks: list[SlaClock], milestone: str, at: datetime) -> SlaClock | None:
    """Stop a milestone's clock at `at` (the first time only; the stored time stays)."""
    found = next((c for c in clocks if c.milestone == milestone), None)
    if found is not None and found.met_at is None:
        found.met_at = max(at, found.started_at)
    return found


def reopen(clocks: list[SlaClock], milestone: str) -> None:
    """A milestone undone (the typed time removed): its clock runs again."""
    found = next((c for c in clocks if c.milestone == milestone), None)
    if found is not None:
        found.met_at = None


def pause(found: SlaClock, starts_at: datetime, ends_at: datetime, reason: str,
          text_note: str = "") -> SlaPause:
    """Pause a clock over [starts_at, ends_at) and move its instants."""
    row = SlaPause(agency_id=found.agency_id, clock_id=found.id, starts_at=starts_at,
                   ends_at=ends_at, reason=reason, note=text_note)
    db.session.add(row)
    db.session.flush()
    _recompute(found, [(p.starts_at, p.ends_at) for p in _pauses_of(found)])
    return row


def _pauses_of(found: SlaClock) -> list[SlaPause]:
    return list(db.session.scalars(select(SlaPause).where(
        SlaPause.agency_id == found.agency_id, SlaPause.clock_id == found.id)))


def _recompute(found: SlaClock, pauses, cal=None) -> None:
    found.warn_at, found.due_at, found.escalate_at = instants(
        found.started_at, found.target_seconds, pauses, cal)


def recompute_open_clocks() -> int:
    """After a change of the network calendar: every open clock's instants on the new one.

    The open clocks are the network's live work (hundreds, not millions), each needing the
    calendar's arithmetic, which SQL cannot do."""
    cal = network_calendar.load()
    clocks = db.session.scalars(select(SlaClock).where(SlaClock.met_at.is_(None))).all()
    pauses: dict[int, list] = {}
    for row in db.session.scalars(select(SlaPause).where(
            SlaPause.clock_id.in_([c.id for c in clocks]))) if clocks else ():
        pauses.setdefault(row.clock_id, []).append((row.starts_at, row.ends_at))
    for found in clocks:
        _recompute(found, pauses.get(found.id, []), cal)
    return len(clocks)


# --- milestones reached through the work order's write path ----------------------------------


def _order_changed(_sender, record=None, **_kw) -> None:
    """An order saved: the milestones it now shows stop their clocks at this moment (the
    system's time, not the typed one: the clocks measure when the portal learned it)."""
    clocks = order_clocks(record.agency_id, record.id) if record.id else []
    if not clocks:
        return
    moment = clock.now()
    if record.arrived_at is not None:
        meet(clocks, Milestone.ARRIVAL, moment)
    if record.fault_code_id is not None or record.completed_at is not None:
        meet(clocks, Milestone.DIAGNOSIS, moment)
    if record.completed_at is not None:
        meet(clocks, Milestone.COMPLETION, moment)


def connect() -> None:
    from portal.transitions import signals

    for name in ("work_order.updated", "work_order.completed"):
        signals.signal(name).connect(_order_changed, weak=False)
