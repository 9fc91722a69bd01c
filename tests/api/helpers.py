"""Tokens for tests: made through the real service (hashed, audited) and sent as a header."""
from api.tokens import create_token
from portal.extensions import db
from portal.tenancy import unscoped


def token_for(app, user, *, days: int = 30, name: str = "test") -> str:
    """A live token of `user` (committed in the test's transaction)."""
    from portal.auth.models import User

    with app.app_context(), unscoped("the test makes a token"):
        # A User, a synthetic account or an account's id.
        owner = db.session.get(User, user if isinstance(user, int) else user.id)
        _row, secret = create_token(owner, acting_user=None, name=name, days=days)
        db.session.commit()
    return secret


def bearer(token: str, **headers) -> dict:
    return {"Authorization": f"Bearer {token}", **headers}


class Caller:
    """A test client that calls the API as one token's account."""

    def __init__(self, client, token: str, language: str = "en"):
        self.client, self.token, self.language = client, token, language

    def _headers(self, headers):
        return {"Authorization": f"Bearer {self.token}", "Accept-Language": self.language,
                **(headers or {})}

    def get(self, path, headers=None, **kw):
        return self.client.get(path, headers=self._headers(headers), **kw)

    def post(self, path, json=None, headers=None, **kw):
        return self.client.post(path, json=json, headers=self._headers(headers), **kw)

    def patch(self, path, json=None, headers=None, **kw):
        return self.client.patch(path, json=json, headers=self._headers(headers), **kw)

    def put(self, path, json=None, headers=None, **kw):
        return self.client.put(path, json=json, headers=self._headers(headers), **kw)

    def delete(self, path, headers=None, **kw):
        return self.client.delete(path, headers=self._headers(headers), **kw)


def caller(app, client, user, language: str = "en") -> Caller:
    return Caller(client, token_for(app, user), language)
