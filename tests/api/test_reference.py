"""The reference data a call center needs to fill a request, for every role."""
from portal.auth.roles import Role
from tests.api.helpers import caller


def test_every_role_reads_provinces_and_product_lines_with_their_models(app, client, world):
    for role in (Role.HQ_DISPATCHER, Role.AGENCY_OWNER, Role.AUDITOR):
        reader = caller(app, client, world.user(role))
        lines = reader.get("/api/v1/reference/product-lines")
        assert lines.status_code == 200
        line = next(x for x in lines.json["items"] if x["id"] == world.line.id)
        assert line["models"] and {"id", "code", "name"} <= set(line["models"][0])
        provinces = reader.get("/api/v1/reference/provinces")
        assert provinces.status_code == 200 and provinces.json["items"]
