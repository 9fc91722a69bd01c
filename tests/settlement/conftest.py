"""Settlement tests: the world with a rate card, and helpers to act as each side."""
import pytest


@pytest.fixture(autouse=True)
def _no_grades(no_grade_source):
    """Settlement tests set their own grades; the evaluation area's source comes back after."""


class Env:
    """The standard world with a rate card, and helpers to act as each side."""

    def __init__(self, world):
        from datetime import date

        from portal.auth.roles import Role
        from portal.clock import last_ended_month, local_today

        self.world, self.Role = world, Role
        self.today = local_today()  # the network's day, as the services judge it
        self.year, self.month = last_ended_month(self.today)
        self.day = date(self.year, self.month, 10)  # a service day inside the claim window
        self.owner = world.user(Role.AGENCY_OWNER)
        self.staff = world.user(Role.AGENCY_STAFF)
        self.reviewer = world.user(Role.HQ_SETTLEMENT)
        self.admin = world.user(Role.HQ_ADMIN)
        self.manager = world.user(Role.REGIONAL_MANAGER)

    def fixture(self):
        from portal.tenancy import unscoped

        return unscoped("test fixtures")

    def agency(self, agency=None):
        from portal.tenancy import agency_scope, scoped

        agency_id = agency if isinstance(agency, int) else (agency or self.world.a).id
        return scoped(agency_scope(agency_id))

    def hq(self):
        from portal.tenancy import ALL, scoped

        return scoped(ALL)

    def region(self):
        from portal.tenancy import region_scope, scoped

        return scoped(region_scope(self.world.region1.id))

    def order(self, agency=None, **kw):
        from tests.settlement import factories as f

        kw.setdefault("day", self.day)
        line = kw.pop("line", self.world.line)
        with self.fixture():
            return f.order(agency or self.world.a, line, **kw)

    def code(self, hours="1.50"):
        from tests.settlement import factories as f

        with self.fixture():
            return f.repair_code(self.world.line, hours)

    def open(self, agency=None, *, year=None, month=None, today=None, actor=None):
        from settlement import services

        agency = agency or self.world.a
        with self.agency(agency):
            settlement = services.open_settlement(agency, year or self.year, month or self.month,
                                                  acting_user=actor or self.owner,
                                                  today=today or self.today)
            # Loaded in the agency's scope: under PostgreSQL's row-level security a lazy load
            # outside any scope would read nothing.
            assert settlement.lines is not None
            return settlement

    def submit(self, settlement, today=None):
        from settlement import services

        with self.agency(settlement.agency_id):
            services.submit_settlement(settlement, acting_user=self.owner,
                                       seen_version=settlement.version, today=today or self.today)

    def forward(self, settlement):
        """The regional manager passes the claim to HQ."""
        from settlement import review

        with self.region():
            review.regional_review(settlement, True, "", acting_user=self.manager,
                                   seen_version=settlement.version)


@pytest.fixture
def stl(ctx, world):
    from tests.settlement import factories as f

    env = Env(world)
    with env.fixture():
        f.rate_card([world.line])
    return env


@pytest.fixture
def web(app, world):
    """The world with a rate card and two completed orders of last month for agency A
    (130.00 and 450.00, the second above the standard hours), committed for the client."""
    from portal.auth.roles import Role
    from portal.extensions import db
    from portal.tenancy import unscoped
    from tests.factories import make_user
    from tests.settlement import factories as f

    with app.app_context(), unscoped("test fixtures"):
        env = Env(world)
        f.rate_card([world.line])
        small, long = f.repair_code(world.line, "1.00"), f.repair_code(world.line, "5.00")
        f.order(world.a, world.line, day=env.day, repairs=[small], service_type="carry_in")
        f.order(world.a, world.line, day=env.day, repairs=[long], service_type="carry_in")
        env.second_reviewer = make_user(Role.HQ_SETTLEMENT)
        db.session.commit()
    env.app = app
    return env
