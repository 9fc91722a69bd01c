"""The date rules at the network's nasty hours: 23:45 on the last day of a month, a quarter and
a year (Shanghai), and 00:30 on the day after — still the last day in UTC, already the first in
Shanghai. Every rule judges by the local day.

Each test runs at all six instants (time-machine, the clock frozen) and reads the day through
the rules themselves; at 00:30 a rule that took the UTC day would be a day behind and fail.
"""
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

import pytest
import time_machine
from flask import g
from sqlalchemy import select

from portal import clock
from portal.auth.roles import Role
from portal.errors_domain import DomainError
from portal.extensions import db
from portal.periods import Period
from portal.tenancy import ALL, agency_scope, region_scope, scoped, unscoped
from tests.factories import build_world, make_user, sign_in

LAST_DAYS = {"month": date(2026, 11, 30), "quarter": date(2026, 9, 30),
             "year": date(2026, 12, 31)}


@dataclass
class Moment:
    """An instant, the network's day at it, and the last day of the period around it."""

    instant: datetime
    today: date
    last: date
    traveller: object = field(default=None, repr=False)

    @property
    def after_midnight(self) -> bool:
        """The period is over: we are on the first day of the next one."""
        return self.today > self.last

    def go(self, moment: datetime) -> None:
        self.traveller.move_to(moment)


def _local(day: date, hour: int, minute: int) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=clock.local_zone())


def _moments():
    for kind, last in LAST_DAYS.items():
        following = last + timedelta(days=1)
        yield pytest.param(Moment(_local(last, 23, 45), last, last), id=f"{kind}-end-23:45")
        yield pytest.param(Moment(_local(following, 0, 30), following, last),
                           id=f"{kind}-end-next-00:30")


@pytest.fixture(params=list(_moments()))
def moment(request):
    """The clock frozen at the instant for the whole test, fixtures included."""
    with time_machine.travel(request.param.instant, tick=False) as traveller:
        request.param.traveller = traveller
        yield request.param


@pytest.fixture
def world(moment, app, _transaction):
    """The standard world, made at the instant (the rows' times are the clock's)."""
    with app.app_context():
        return build_world()


@pytest.fixture(autouse=True)
def _no_grades(no_grade_source):
    """Settlement grades come from the evaluation area; these tests have none."""


@pytest.fixture
def hq(moment, ctx, world):
    with unscoped("tests act as HQ and write their fixtures"):
        g._audit_actor = None
        yield world


def _agency(world):
    return scoped(agency_scope(world.a.id))


def _recent(moment, minutes: int) -> datetime:
    """`minutes` before the instant: the same local day at both hours."""
    return moment.instant - timedelta(minutes=minutes)


def _completed_order(hq, engineer, moment, later: timedelta = timedelta(0)):
    """A work order of agency A received, answered and completed minutes before the instant
    (plus `later`), written by the agency's staff."""
    from service import services
    from tests.service import factories as sf

    return services.create_work_order(hq.a, sf.completed_data(
        hq.line, engineer, received_at=_recent(moment, 20) + later,
        responded_at=_recent(moment, 15) + later, completed_at=_recent(moment, 5) + later),
        acting_user=sf.staff(hq.a))


# --- certification ------------------------------------------------------------------------------


def test_a_certificate_is_valid_through_its_last_local_day(moment, app, world, client):
    from tests.certification import factories as cf

    with app.app_context(), unscoped("a certificate of agency A"):
        engineer = cf.make_engineer(world.a, lines=[world.line])
        cert = cf.make_certificate(engineer, cf.get_program(world.line, 2),
                                   valid_from=moment.last - timedelta(days=300),
                                   valid_to=moment.last)
        cert_id, number = cert.id, cert.number
        db.session.commit()
    sign_in(client, world.user(Role.AGENCY_OWNER))
    page = client.get(f"/certification/certificates/{cert_id}").get_data(as_text=True)
    state = "Expired" if moment.after_midnight else "Expiring"
    assert f">{state}</span>" in page
    # Issued at the instant: the page shows the local day of issue.
    assert f"{moment.today:%b} {moment.today.day}, {moment.today.year}" in page
    expired = client.get("/certification/certificates/?state=expired").get_data(as_text=True)
    assert (number in expired) is moment.after_midnight


def test_an_order_is_certified_when_the_local_service_day_is_within_the_validity(moment, hq):
    from tests.service import factories as sf

    engineer = sf.make_engineer(hq.a, hq.line)
    sf.certify(engineer, hq.line, moment.last - timedelta(days=300), moment.last)
    with _agency(hq):
        order = _completed_order(hq, engineer, moment)
    assert order.service_date == moment.today
    assert order.is_engineer_certified is not moment.after_midnight


def test_scores_are_recorded_from_the_local_exam_day_and_the_certificate_starts_then(moment,
                                                                                     hq):
    from certification import exams
    from certification.models import Certificate
    from certification.states import validity_end
    from tests.certification import factories as cf

    program = cf.get_program(hq.line, 1)
    today = cf.make_session(program, exam_date=moment.today)
    seat = cf.make_seat(today, cf.make_engineer(hq.a, lines=[hq.line]))
    tomorrow = cf.make_session(program, exam_date=moment.today + timedelta(days=1))
    early = cf.make_seat(tomorrow, cf.make_engineer(hq.a, lines=[hq.line]))
    certifier = make_user(Role.HQ_CERTIFIER)
    with pytest.raises(DomainError, match="record the scores from that day on"):
        exams.record_scores(tomorrow, [exams.ScoreRow(early.id, 80, 80)],
                            acting_user=certifier)
    exams.record_scores(today, [exams.ScoreRow(seat.id, 80, 80)], acting_user=certifier)
    cert = db.session.scalars(select(Certificate).where(Certificate.seat_id == seat.id)).one()
    assert cert.valid_from == moment.today
    assert cert.valid_to == validity_end(moment.today, program.validity_months)
    assert f"-{moment.today.year}-" in cert.number


def test_an_engineer_who_left_today_serves_today_and_no_later(moment, hq):
    from certification import services as certification
    from tests.service import factories as sf

    engineer = sf.make_engineer(hq.a, hq.line)
    owner = make_user(Role.AGENCY_OWNER, agency=hq.a)
    with _agency(hq):
        certification.engineer_leaves(engineer, None, acting_user=owner)
        assert engineer.left_on == moment.today
        order = _completed_order(hq, engineer, moment)
        assert order.engineer_id == engineer.id
        moment.go(moment.instant + timedelta(days=1))
        with pytest.raises(DomainError, match="left your agency") as refused:
            _completed_order(hq, engineer, moment, later=timedelta(days=1))
        assert refused.value.field == "engineer_id"


# --- evaluation ---------------------------------------------------------------------------------


def test_a_quarter_ends_at_local_midnight_of_its_last_day(moment, hq):
    from evaluation import compute

    current = Period.of_day(moment.today)
    assert clock.current_quarter() == current
    assert clock.last_ended_quarter() == current.previous()
    with pytest.raises(DomainError, match="has not ended yet"):
        compute.check_computable(current)
    assert compute.check_computable(current.previous()) == current.previous()


def test_the_appeal_deadline_is_seven_days_after_publication_shown_in_local_time(moment, hq):
    from evaluation import services
    from tests.evaluation import factories as ef

    quarter = ef.light_quarter()  # published at the instant
    result = ef.light_result(hq.a)
    deadline = quarter.appeal_deadline_at
    assert deadline == moment.instant + timedelta(days=7)
    moment.go(deadline + timedelta(seconds=1))
    with _agency(hq), pytest.raises(DomainError, match="7 days") as late:
        services.lodge_appeal(result, "The revisits of two orders are another agency's.", None,
                              acting_user=None)
    shown = clock.local_day(deadline)
    assert f"{shown:%b} {shown.day}, {shown.year}" in late.value.message
    moment.go(deadline)
    with _agency(hq):
        services.lodge_appeal(result, "The revisits of two orders are another agency's.", None,
                              acting_user=None)
    assert result.status == "appealed"


# --- settlement ---------------------------------------------------------------------------------


class Claims:
    """Agency A's claims with a rate card, acting as each side; the services read the clock."""

    def __init__(self, world):
        from tests.settlement import factories as f

        self.world, self.f = world, f
        f.rate_card([world.line])
        self.code = f.repair_code(world.line, "1.00")
        self.owner = world.user(Role.AGENCY_OWNER)
        self.reviewer = world.user(Role.HQ_SETTLEMENT)
        self.manager = world.user(Role.REGIONAL_MANAGER)

    def order(self, day: date):
        """A clean completed carry-in order serviced on `day`."""
        return self.f.order(self.world.a, self.world.line, day=day, repairs=[self.code],
                            service_type="carry_in")

    def open(self, year: int, month: int):
        from settlement import services

        with _agency(self.world):
            settlement = services.open_settlement(self.world.a, year, month,
                                                    acting_user=self.owner)
            assert settlement.lines is not None  # loaded in the agency's scope
            return settlement

    def submitted(self, day: date):
        from settlement import services

        self.order(day)
        settlement = self.open(day.year, day.month)
        with _agency(self.world):
            services.submit_settlement(settlement, acting_user=self.owner,
                                       seen_version=settlement.version)
        return settlement

    def approved(self, day: date):
        from settlement import review

        settlement = self.submitted(day)
        with scoped(region_scope(self.world.region1.id)):
            review.regional_review(settlement, True, "", acting_user=self.manager,
                                   seen_version=settlement.version)
        with scoped(ALL):
            review.approve_clean_lines(settlement, acting_user=self.reviewer,
                                       seen_version=settlement.version)
            assert review.approve_settlement(settlement, acting_user=self.reviewer,
                                             seen_version=settlement.version)
        return settlement


@pytest.fixture
def claims(hq):
    return Claims(hq)


def _last_month_day(moment) -> date:
    """The 20th of the month before today's: a month that has ended at both hours."""
    return (moment.today.replace(day=1) - timedelta(days=1)).replace(day=20)


def test_a_month_is_claimed_once_it_has_ended_locally(moment, claims):
    claims.order(moment.last - timedelta(days=3))
    if moment.after_midnight:
        settlement = claims.open(moment.last.year, moment.last.month)
        assert settlement.line_count == 1
    else:
        with pytest.raises(DomainError) as refused:
            claims.open(moment.last.year, moment.last.month)
        assert refused.value.field == "period"


def test_work_completed_after_local_midnight_belongs_to_the_new_month(moment, hq):
    from settlement import building
    from tests.service import factories as sf

    engineer = sf.make_engineer(hq.a, hq.line)
    with _agency(hq):
        order = _completed_order(hq, engineer, moment)
    assert order.service_date == moment.today
    before = moment.today.replace(day=1) - timedelta(days=1)
    in_month = {o.id for o in building.unclaimed_orders(hq.a.id, moment.today.year,
                                                        moment.today.month)}
    in_month_before = {o.id for o in building.unclaimed_orders(hq.a.id, before.year,
                                                               before.month)}
    assert order.id in in_month and order.id not in in_month_before


def test_the_claim_window_counts_local_days(moment, claims):
    from settlement import config, rules

    window = config.current_settings().claim_window_days
    inside = claims.order(moment.today - timedelta(days=window))
    late = claims.order(moment.today - timedelta(days=window + 1))
    codes = {}
    for year, month in sorted({(o.service_date.year, o.service_date.month)
                               for o in (inside, late)}):
        for line in claims.open(year, month).lines:
            codes[line.work_order_id] = (line.exception_codes or "").split(",")
    assert rules.LATE in codes[late.id]
    assert rules.LATE not in codes[inside.id]


def test_the_payment_date_is_the_local_day(moment, claims):
    from settlement import review
    from settlement.models import Status

    settlement = claims.approved(_last_month_day(moment))  # approved at the instant
    with scoped(ALL):
        for paid_on, message in ((moment.today + timedelta(days=1), "future"),
                                 (moment.today - timedelta(days=1), "before the approval")):
            with pytest.raises(DomainError, match=message):
                review.mark_paid(settlement, "CMB-1", paid_on, acting_user=claims.reviewer,
                                 seen_version=settlement.version)
        review.mark_paid(settlement, "CMB-1", None, acting_user=claims.reviewer,
                         seen_version=settlement.version)
    assert settlement.status == Status.PAID and settlement.paid_on == moment.today


def test_a_delegation_ends_with_its_last_local_day(moment, claims):
    from settlement import delegation, review

    settlement = claims.submitted(_last_month_day(moment))
    stand_in = make_user(Role.HQ_SETTLEMENT)
    today = moment.today
    with scoped(region_scope(claims.world.region1.id)):
        delegation.create_delegation(claims.manager, stand_in.id, today - timedelta(days=7),
                                     today - timedelta(days=1), "Ended yesterday",
                                     today - timedelta(days=7), acting_user=claims.manager)
    with scoped(ALL), pytest.raises(DomainError, match="region's manager"):
        review.regional_review(settlement, True, "", acting_user=stand_in,
                               seen_version=settlement.version)
    with scoped(region_scope(claims.world.region1.id)):
        delegation.create_delegation(claims.manager, stand_in.id, today,
                                     today + timedelta(days=7), "From today", today,
                                     acting_user=claims.manager)
    with scoped(ALL):
        review.regional_review(settlement, True, "", acting_user=stand_in,
                               seen_version=settlement.version)
    assert settlement.regional_reviewed_by_id == stand_in.id


def test_a_delegation_can_start_today_but_not_yesterday(moment, app, world, client):
    with app.app_context(), unscoped("an HQ colleague to stand in"):
        stand_in = make_user(Role.HQ_SETTLEMENT, name="Stand-in").id
        db.session.commit()
    sign_in(client, world.user(Role.REGIONAL_MANAGER))
    page = client.get("/settlements/delegations").get_data(as_text=True)
    assert f'value="{moment.today.isoformat()}"' in page  # the form proposes today
    yesterday = moment.today - timedelta(days=1)
    refused = client.post("/settlements/delegations", data={
        "delegate_id": stand_in, "starts_on": yesterday.isoformat(),
        "ends_on": moment.today.isoformat(), "note": ""})
    assert refused.status_code == 400
    assert "cannot start in the past" in refused.get_data(as_text=True)
    accepted = client.post("/settlements/delegations", data={
        "delegate_id": stand_in, "starts_on": moment.today.isoformat(),
        "ends_on": moment.today.isoformat(), "note": ""})
    assert accepted.status_code == 302
