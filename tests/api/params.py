"""Isolation-test parameters of the API pages (see tests/isolation_params.py).

A token belongs to one account: the factory makes one for the given agency's owner, which
nobody else may revoke. Service accounts are HQ's (no agency): a reference HQ admin reads.
"""
import itertools

from sqlalchemy import select

from api.service_accounts import create_service_account
from api.tokens import create_token
from portal.auth.models import User
from portal.auth.roles import Role
from portal.extensions import db

# Imported by tests/isolation_params.py once it has defined these (never import this first).
from tests.isolation_params import Owned, Reference  # noqa: E402,I001

_seq = itertools.count(1)


def _token(world, agency) -> int:
    owner = db.session.scalars(select(User).where(User.agency_id == agency.id,
                                                  User.role == str(Role.AGENCY_OWNER))).first()
    row, _secret = create_token(owner, acting_user=None, name=f"Shop {agency.code}", days=30)
    return row.id


def _service_account(world) -> int:
    account = create_service_account(f"erp.{next(_seq)}@hq.example", name="ERP",
                                     role=Role.HQ_SETTLEMENT, acting_user=None)
    return account.id


PARAMS = {
    "token_id": Owned(_token),
    "account_id": Reference(_service_account),
}

from tests.api.params_webhooks import PARAMS as _webhooks  # noqa: E402

PARAMS.update(_webhooks)
