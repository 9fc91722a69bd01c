from portal.auth.roles import Role
from tests.factories import sign_in


def test_sign_in_and_home(client, world):
    sign_in(client, world.user(Role.HQ_ADMIN))
    assert client.get("/").status_code == 200
    assert client.get("/agencies/").status_code == 200
