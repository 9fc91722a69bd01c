"""Small factories for tests, and the standard world: three agencies in two regions."""
import itertools
from dataclasses import dataclass, field

from flask import g

from portal.auth.models import User
from portal.auth.passwords import hash_password
from portal.auth.roles import AGENCY_ROLES, Role
from portal.extensions import db
from portal.tenancy import unscoped
from tenants.models import (
    Agency,
    AgencyProductLine,
    AgencyStatus,
    ProductLine,
    ProductModel,
    Province,
    Region,
)

PASSWORD = "correct horse battery"
_seq = itertools.count(1)
_hash_cache: dict = {}


def password_hash() -> str:
    if "h" not in _hash_cache:
        _hash_cache["h"] = hash_password(PASSWORD)
    return _hash_cache["h"]


def make_region(code=None, **kw) -> Region:
    n = next(_seq)
    region = Region(code=code or f"R{n}", name_zh=kw.pop("name_zh", f"大区{n}"),
                    name_en=kw.pop("name_en", f"Region {n}"), **kw)
    db.session.add(region)
    db.session.flush()
    return region


def make_product_line(code=None) -> ProductLine:
    n = next(_seq)
    line = ProductLine(code=code or f"PL{n}", name_zh=f"产品线{n}", name_en=f"Line {n}")
    db.session.add(line)
    db.session.flush()
    db.session.add(ProductModel(product_line_id=line.id, code=f"M{n}", name=f"Model {n}",
                                warranty_months=12))
    db.session.flush()
    return line


def make_agency(region: Region, code=None, *, status=AgencyStatus.ACTIVE, canary="",
                product_lines=(), **kw) -> Agency:
    n = next(_seq)
    province = Province(region_id=region.id, code=f"P{n}", name_zh=f"省{n}", name_en=f"P{n}")
    db.session.add(province)
    db.session.flush()
    agency = Agency(code=code or f"AG{n}", legal_name=f"Agency {n} {canary}".strip(),
                    region_id=region.id, province_id=province.id, city=f"City {canary}",
                    address=f"Road {n} {canary}", contact_name=f"Contact {canary}",
                    contact_phone="13800000000", tier=3, status=status,
                    service_types="carry_in,onsite,phone", bank_name="ICBC",
                    bank_account="6222000011112222", **kw)
    db.session.add(agency)
    db.session.flush()
    for line in product_lines:
        db.session.add(AgencyProductLine(agency_id=agency.id, product_line_id=line.id))
    db.session.flush()
    return agency


def make_user(role: Role, *, agency: Agency | None = None, region: Region | None = None,
              email=None, name=None, **kw) -> User:
    n = next(_seq)
    user = User(email=email or f"{role.value}.{n}@test.example", name=name or f"User {n}",
                role=role.value, agency_id=agency.id if agency else None,
                region_id=region.id if region else None, password_hash=password_hash(), **kw)
    db.session.add(user)
    db.session.flush()
    return user


@dataclass
class World:
    """Region 1 holds agencies A (own) and A2 (a sibling); region 2 holds agency B (foreign).

    Every agency's text carries a canary (CANARY-A…, CANARY-B…) that must never appear in a
    page rendered for another agency's users.
    """

    region1: Region
    region2: Region
    line: ProductLine
    a: Agency
    a2: Agency
    b: Agency
    users: dict = field(default_factory=dict)  # role -> user (agency roles belong to A)
    b_users: dict = field(default_factory=dict)
    a2_users: dict = field(default_factory=dict)

    def user(self, role: Role) -> User:
        return self.users[role]


def build_world() -> World:
    with unscoped("test fixtures build the whole network"):
        g._audit_actor = None
        r1, r2 = make_region("R-ONE"), make_region("R-TWO")
        line = make_product_line()
        a = make_agency(r1, "A-OWN", canary="CANARY-A", product_lines=[line])
        a2 = make_agency(r1, "A-SIB", canary="CANARY-S", product_lines=[line])
        b = make_agency(r2, "B-FOR", canary="CANARY-B", product_lines=[line])
        world = World(region1=r1, region2=r2, line=line, a=a, a2=a2, b=b)
        for role in Role:
            if role in AGENCY_ROLES:
                world.users[role] = make_user(role, agency=a, name=f"{role.value} CANARY-A")
                world.b_users[role] = make_user(role, agency=b, name=f"{role.value} CANARY-B")
                world.a2_users[role] = make_user(role, agency=a2, name=f"{role.value} CANARY-S")
            elif role == Role.REGIONAL_MANAGER:
                world.users[role] = make_user(role, region=r1)
            else:
                world.users[role] = make_user(role)
        db.session.commit()
    return world


def sign_in(client, user: User, password: str = PASSWORD):
    response = client.post("/auth/sign-in", data={"email": user.email, "password": password})
    assert response.status_code == 302, response.data[:500]
    return response


def signed_in(app, user: User):
    """A new test client of `app`, signed in as `user`."""
    client = app.test_client()
    sign_in(client, user)
    return client
