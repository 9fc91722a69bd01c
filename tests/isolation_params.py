"""What the isolation test puts into each URL parameter.

`Owned` parameters name a row that belongs to an agency: the test fills them with a row of
the user's own agency, of a sibling agency in the same region, of a foreign agency in another
region, and with a missing id. `Reference` parameters name shared reference data (regions,
product lines) that every role may read. A URL parameter missing here fails the test: decide
which kind it is and add a factory. Factories run in an unscoped block and may create rows.

A parameter whose rows can belong to a quarter that is not published yet also names an
`unpublished` factory: the test then tries the user's own row of a draft quarter too, which an
agency must not see either (it answers like a missing id and shows nothing).
"""
from dataclasses import dataclass
from typing import Callable

from sqlalchemy import select

from portal.auth.roles import Role
from portal.extensions import db
from tenants.models import ProductModel, Province


@dataclass(frozen=True)
class Owned:
    make: Callable  # make(world, agency) -> id of a row owned by `agency`
    # unpublished(world, agency) -> id of such a row in a quarter not published yet
    unpublished: Callable | None = None


@dataclass(frozen=True)
class Reference:
    make: Callable  # make(world) -> id
    unpublished: Callable | None = None  # unpublished(world) -> id of a draft quarter's row


def _staff(world, agency):
    users = {world.a.id: world.users, world.a2.id: world.a2_users, world.b.id: world.b_users}
    return users[agency.id][Role.AGENCY_STAFF].id


def _province(world):
    return db.session.scalar(select(Province.id).where(Province.region_id == world.region1.id))


def _model(world):
    return db.session.scalar(select(ProductModel.id)
                             .where(ProductModel.product_line_id == world.line.id))


PARAMS: dict[str, Owned | Reference] = {
    "agency_id": Owned(lambda w, agency: agency.id),
    "user_id": Owned(_staff),
    "region_id": Reference(lambda w: w.region1.id),
    "province_id": Reference(_province),
    "product_line_id": Reference(lambda w: w.line.id),
    "model_id": Reference(_model),
    # The document issuer's logo or seal (HQ's, one of each): "logo" names it.
    "kind": Reference(lambda w: "logo"),
}

# Each area keeps its own parameters beside its tests; they are merged here.
from tests.api.params import PARAMS as _api  # noqa: E402
from tests.certification.params import PARAMS as _certification  # noqa: E402
from tests.dispatch.params import PARAMS as _dispatch  # noqa: E402
from tests.evaluation.params import PARAMS as _evaluation  # noqa: E402
from tests.evaluation.params import UNPUBLISHED_CANARIES  # noqa: E402,F401 - the test reads it
from tests.inbox.params import PARAMS as _inbox  # noqa: E402
from tests.service.params import PARAMS as _service  # noqa: E402
from tests.settlement.params import PARAMS as _settlement  # noqa: E402

# Per blueprint: two areas may use the same parameter name for different rows.
AREA_PARAMS = {"certification": _certification, "service": _service,
               "settlement": _settlement, "evaluation": _evaluation, "inbox": _inbox,
               "dispatch": _dispatch, "api": _api}


# The API's resources name the same rows as the pages of their area: the factories are shared.
API_AREAS = {"api_service_requests": "dispatch", "api_offers": "dispatch",
             "api_work_orders": "dispatch", "api_settlements": "settlement",
             "api_parts_requests": "service", "api_revisits": "service",
             "api_certificates": "certification", "api_evaluation": "evaluation",
             "api_inbox": "inbox", "api_webhooks": "api", "api": "api",
             "api_reference": "api", "webhooks": "api"}


def param_for(endpoint: str, name: str):
    """The kind of URL parameter `name` in `endpoint` (its area's first, then the core's)."""
    blueprint = endpoint.split(".", 1)[0]
    area = AREA_PARAMS.get(API_AREAS.get(blueprint, blueprint), {})
    return area.get(name) or PARAMS.get(name)

# Rules whose every parameter is judged elsewhere (e.g. Flask's static files).
SKIP_ENDPOINTS = {"static", "bootstrap.static"}


def _job(world, agency):
    from portal import jobs

    job = jobs.Job(kind="test.noop", params={}, scope=f"agency:{agency.id}",
                   agency_id=agency.id, status=jobs.FAILED)
    db.session.add(job)
    db.session.flush()
    return job.id


PARAMS["job_id"] = Owned(_job)
