"""The demo loader: the four quarters with work orders evaluated through the services, the
last one left as a draft that the README's commands compute and publish."""
import random
from datetime import timedelta

from flask import g
from sqlalchemy import func, select

from evaluation import demo, services
from evaluation.models import Appeal, HqRating, Inspection, Proposal, Quarter, Result
from evaluation.schemes import local_today
from portal.auth.roles import Role
from portal.extensions import db
from portal.periods import Period
from portal.tenancy import unscoped
from tests.evaluation import factories as f
from tests.factories import make_user


def _by_period(quarters) -> dict:
    return {Period(q.year, q.quarter): q for q in quarters}


def test_the_demo_evaluates_four_quarters_and_leaves_the_last_for_the_operator(app, world,
                                                                              fast_pdfs):
    with app.app_context():
        quarters = demo.demo_quarters()
        assert quarters[-1] == Period.of_day(local_today()).previous()  # the last one ended
    assert quarters == quarters[-1].last(4)
    with app.app_context(), unscoped("test loads the demo evaluations"):
        g._audit_actor = None
        for period in quarters:  # a year of orders: every agency a C or a D
            for agency in (world.a, world.a2, world.b):
                for k in range(14):
                    f.order(agency, world.line, day=period.first_day + timedelta(days=k + 3),
                            hours=1 if k % 3 else 30, first_time_fix=k % 4 != 0)
        owners = {"owner@sh-c01.demo": world.user(Role.AGENCY_OWNER),
                  "owner@a2.demo": make_user(Role.AGENCY_OWNER, agency=world.a2),
                  "owner@gd-c01.demo": make_user(Role.AGENCY_OWNER, agency=world.b)}
        users = {"service@hq.demo": world.user(Role.HQ_SERVICE),
                 "admin@hq.demo": world.user(Role.HQ_ADMIN),
                 "east.manager@hq.demo": world.user(Role.REGIONAL_MANAGER), **owners}
        # The demo's people act in this session (the policy reads their role and agency).
        users = {email: db.session.merge(user) for email, user in users.items()}
        demo.load({"rng": random.Random(7), "agencies": {"SH-C01": world.a, "GD-C01": world.b},
                   "users": users})
        db.session.commit()
        found = _by_period(db.session.scalars(select(Quarter)))
        assert [found[p].status for p in quarters] == ["final", "final", "published", "draft"]
        current, draft = found[quarters[2]], found[quarters[3]]
        # published ten days after its end: the 7 days are over
        assert current.published_at.date() == quarters[2].last_day + timedelta(days=10)
        appeals = {(a.result.quarter_id, a.agency_id): a.status
                   for a in db.session.scalars(select(Appeal))}
        assert set(appeals.values()) == {"open", "upheld", "rejected"}
        assert appeals[(current.id, world.b.id)] == "open"
        silent = f.result_of(current, world.a)
        assert silent.status == "published"  # SH-C01 never answered: its result stands
        assert services.final_grade(world.a.id, current.year, current.quarter) == silent.grade
        older = [found[p].id for p in quarters[:2]]
        assert db.session.scalar(select(func.count(Proposal.id)).join(
            Result, (Result.agency_id == Proposal.agency_id) & (Result.id == Proposal.result_id))
            .where(Result.quarter_id.in_(older), Proposal.status == "proposed")) == 0
        rated = set(db.session.scalars(select(HqRating.quarter_id)))
        assert rated and rated <= {found[p].id for p in quarters[:3]}
        # the draft: computed, every agency inspected, nothing issued
        assert draft.agency_count == 3 and draft.published_at is None
        assert db.session.scalar(select(func.count(Inspection.id)).where(
            Inspection.quarter_id == draft.id)) == 3
        label = draft.label
    # the README's commands: recompute (inspection scores kept) and publish, with progress
    runner = app.test_cli_runner()
    for command in ("compute", "publish"):
        outcome = runner.invoke(args=["evaluation", command, label])
        assert outcome.exit_code == 0, outcome.output
    with app.app_context(), unscoped("test"):
        draft = db.session.scalars(select(Quarter).where(Quarter.id == draft.id)).one()
        assert draft.status == "published" and draft.compute_count == 2
        assert db.session.scalar(select(func.count(Inspection.id)).where(
            Inspection.quarter_id == draft.id)) == 3
        fresh = f.result_of(draft, world.a)
        assert fresh.status == "published" and fresh.report_version == 1
