"""KPI schemes: the default ships, HQ admin makes a new version for a future quarter."""
import pytest
from sqlalchemy import select

from evaluation import kpis, schemes
from evaluation.models import Scheme
from portal.auth.roles import Role
from portal.errors_domain import DomainError
from portal.extensions import db
from portal.periods import Period
from portal.tenancy import unscoped
from tests.evaluation import factories as f
from tests.factories import sign_in


def _next() -> Period:
    return Period.of_day(schemes.local_today()).next()


def _data(**overrides):
    data = {**schemes.default_terms(), "period": _next(), "note": "new"}
    data.update(overrides)
    return data


def test_the_default_scheme_ships_with_the_catalogs_defaults(hq):
    scheme = db.session.scalars(select(Scheme)).one()
    assert scheme.version == 1 and scheme.sla_minutes == {"phone": 120, "onsite": 1440,
                                                          "carry_in": 1440}
    for code, (weight, minimum, curve, _position) in schemes.scheme_terms(scheme).items():
        kpi = kpis.BY_CODE[code]
        assert (weight, minimum, curve) == (kpi.weight, kpi.min_count, kpi.curve)


def test_a_new_version_takes_effect_in_its_quarter(hq):
    scheme = schemes.create_scheme(_data(weight_satisfaction=25, weight_settlement=0,
                                         sla_phone_minutes=90), acting_user=f.person(Role.HQ_ADMIN))
    assert scheme.version == 2
    NEXT = _next()
    assert schemes.scheme_in_force(NEXT).id == scheme.id
    assert schemes.scheme_in_force(NEXT.previous()).version == 1
    assert schemes.scheme_in_force(NEXT.next()).id == scheme.id
    assert "1.5 h" in kpis.formula_text(kpis.BY_CODE["timeliness"], scheme.sla_minutes)


@pytest.mark.parametrize("overrides, field", [
    ({"period": Period(2020, 1)}, "period"),
    ({"period": None}, "period"),
    ({"weight_satisfaction": 21}, "weight_satisfaction"),
    ({"weight_rework": -1}, "weight_rework"),
    ({"min_returns": "3"}, "min_returns"),
    ({"sla_onsite_minutes": 0}, "sla_onsite_minutes"),
    ({"curve_timeliness": "100:0, 60:100"}, "curve_timeliness"),
])
def test_bad_schemes_are_refused(hq, overrides, field):
    with pytest.raises(DomainError) as caught:
        schemes.create_scheme(_data(**overrides), acting_user=f.person(Role.HQ_ADMIN))
    assert caught.value.field == field


def test_one_version_per_quarter(hq):
    schemes.create_scheme(_data(), acting_user=f.person(Role.HQ_ADMIN))
    with pytest.raises(DomainError, match="already takes effect"):
        schemes.create_scheme(_data(), acting_user=f.person(Role.HQ_ADMIN))


def test_scheme_form(app, client, world):
    with app.app_context():
        NEXT = _next()
    sign_in(client, world.user(Role.HQ_ADMIN))
    page = client.get("/evaluation/schemes/new").get_data(as_text=True)
    assert "70:0, 90:80, 100:100" in page
    form = {k: v for k, v in schemes.default_terms().items()}
    response = client.post("/evaluation/schemes/new", data={**form, "period": "soon"})
    assert response.status_code == 200
    response = client.post("/evaluation/schemes/new", data={**form, "period": NEXT.label,
                                                            "weight_rework": 11})
    assert response.status_code == 200 and "add up to 101" in response.get_data(as_text=True)
    response = client.post("/evaluation/schemes/new", data={**form, "period": NEXT.label})
    assert response.status_code == 302
    with app.app_context(), unscoped("test"):
        assert db.session.scalar(select(Scheme.version).order_by(Scheme.id.desc())) == 2
    assert client.get("/evaluation/schemes/new").status_code == 200
    other = app.test_client()
    sign_in(other, world.user(Role.HQ_SERVICE))
    assert other.get("/evaluation/schemes/new").status_code == 403
    assert other.get("/evaluation/schemes/").status_code == 200
