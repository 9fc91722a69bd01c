"""The rules of the network: agencies and their lifecycle, reference data and accounts."""
import re

from flask_babel import gettext as _
from sqlalchemy import delete, func, literal, select

from portal.audit.services import changes, record, snapshot
from portal.auth.models import User
from portal.auth.roles import AGENCY_ASSIGNABLE, AGENCY_ROLES, Role
from portal.errors_domain import DomainError
from portal.extensions import db
from tenants.models import (
    STATUS_LABELS,
    TRANSITIONS,
    Agency,
    AgencyProductLine,
    AgencyStatus,
    AgencyStatusChange,
    ProductLine,
    ProductModel,
    Province,
    Region,
)

AGENCY_FIELDS = ("code", "legal_name", "agency_type", "region_id", "province_id", "city",
                 "address", "contact_name", "contact_phone", "tier", "service_types",
                 "auth_valid_from", "auth_valid_to", "bank_name", "bank_account",
                 "required_l2_engineers", "email_domains")
# A host name of two labels or more (IDN in its xn-- form): sh-c01.com, mail.sh-c01.com.cn.
_DOMAIN = re.compile(r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]")
MAX_EMAIL_DOMAINS = 10


def _unique(model, column, value, *, exclude_id=None, message) -> None:
    stmt = select(func.count()).select_from(model).where(func.lower(column) == value.lower())
    if exclude_id is not None:
        stmt = stmt.where(model.id != exclude_id)
    if db.session.scalar(stmt):
        raise DomainError(message, field=column.key)


def _check_province(region_id: int, province_id: int | None) -> None:
    if province_id is None:
        return
    province = db.session.scalars(select(Province).where(Province.id == province_id)).first()
    if province is None or province.region_id != region_id:
        raise DomainError(_("The province does not belong to the region."), field="province_id")


def _set_product_lines(agency: Agency, product_line_ids: list[int]) -> None:
    known = set(db.session.scalars(
        select(ProductLine.id).where(ProductLine.id.in_(product_line_ids or [0]))))
    if set(product_line_ids) - known:
        raise DomainError(_("Unknown product line."), field="product_line_ids")
    db.session.execute(delete(AgencyProductLine).where(AgencyProductLine.agency_id == agency.id))
    for pl_id in sorted(known):
        db.session.add(AgencyProductLine(agency_id=agency.id, product_line_id=pl_id))


def clean_email_domains(text: str | None) -> str:
    """The account e-mail domains HQ typed, as stored: lower case, each once, comma-separated.

    Raises DomainError for something that is not a domain name, or too many of them."""
    domains: list[str] = []
    for item in re.split(r"[\s,;，；、]+", (text or "").strip().lower()):
        item = item.removeprefix("@")
        if not item:
            continue
        if len(item) > 253 or not _DOMAIN.fullmatch(item):
            raise DomainError(_("%(domain)s is not a domain name such as sh-c01.com.",
                                domain=item[:80]), field="email_domains")
        if item not in domains:
            domains.append(item)
    if len(domains) > MAX_EMAIL_DOMAINS:
        raise DomainError(_("Give at most %(count)s domains.", count=MAX_EMAIL_DOMAINS),
                          field="email_domains")
    return ",".join(domains)


def _check_domains_free(domains: str, exclude_id: int | None = None) -> None:
    """A domain belongs to one agency: its owner alone creates accounts in it."""
    listed = literal(",") + Agency.email_domains + literal(",")
    for domain in filter(None, domains.split(",")):
        stmt = select(Agency.code).where(listed.like(f"%,{domain},%"))  # no % or _ in a domain
        if exclude_id is not None:
            stmt = stmt.where(Agency.id != exclude_id)
        if code := db.session.scalar(stmt.limit(1)):
            raise DomainError(_("The domain %(domain)s already belongs to agency %(code)s.",
                                domain=domain, code=code), field="email_domains")


def _clean_agency_data(data: dict, exclude_id: int | None = None) -> dict:
    if "email_domains" in data:
        data = {**data, "email_domains": clean_email_domains(data["email_domains"])}
        _check_domains_free(data["email_domains"], exclude_id)
    return data


def create_agency(data: dict, product_line_ids: list[int]) -> Agency:
    """Create an agency as an applicant. Raises DomainError for a taken code, a bad region, or
    an e-mail domain that is not one or belongs to another agency."""
    _unique(Agency, Agency.code, data["code"], message=_("This agency code is already used."))
    _check_province(data["region_id"], data.get("province_id"))
    data = _clean_agency_data(data)
    agency = Agency(**{k: data[k] for k in AGENCY_FIELDS if k in data},
                    status=AgencyStatus.APPLICANT)
    db.session.add(agency)
    db.session.flush()
    _set_product_lines(agency, product_line_ids)
    db.session.add(AgencyStatusChange(agency_id=agency.id, from_status=None,
                                      to_status=AgencyStatus.APPLICANT,
                                      reason=_("Agency registered")))
    record("agency.created", agency, after={**snapshot(agency),
                                            "product_line_ids": sorted(product_line_ids)})
    db.session.flush()
    return agency


def update_agency(agency: Agency, data: dict, product_line_ids: list[int]) -> None:
    """Change an agency's profile (not its status). Raises DomainError for a taken code or
    e-mail domain."""
    _unique(Agency, Agency.code, data["code"], exclude_id=agency.id,
            message=_("This agency code is already used."))
    _check_province(data["region_id"], data.get("province_id"))
    data = _clean_agency_data(data, exclude_id=agency.id)
    before = {**snapshot(agency), "product_line_ids": [p.id for p in agency.product_lines]}
    for key in AGENCY_FIELDS:
        if key in data:
            setattr(agency, key, data[key])
    _set_product_lines(agency, product_line_ids)
    db.session.flush()
    db.session.expire(agency, ["product_lines"])
    after = {**snapshot(agency), "product_line_ids": sorted(product_line_ids)}
    old, new = changes(before, after)
    record("agency.updated", agency, before=old, after=new)
    db.session.flush()


def change_agency_status(agency: Agency, to_status: str, reason: str, actor_id=None) -> None:
    """Move an agency along its lifecycle; raises DomainError for a move it does not allow.

    A terminated agency's users can no longer sign in (User.is_active follows the agency).
    """
    current = AgencyStatus(agency.status)
    try:
        target = AgencyStatus(to_status)
    except ValueError:
        raise DomainError(_("Unknown status."), field="to_status") from None
    if target not in TRANSITIONS[current]:
        raise DomainError(_("An agency cannot go from %(old)s to %(new)s.",
                            old=STATUS_LABELS[current], new=STATUS_LABELS[target]),
                          field="to_status")
    reason = (reason or "").strip()
    if not reason:
        raise DomainError(_("Give a reason."), field="reason")
    agency.status = target
    db.session.add(AgencyStatusChange(agency_id=agency.id, from_status=current,
                                      to_status=target, reason=reason, actor_id=actor_id))
    record("agency.status_changed", agency, before={"status": current.value},
           after={"status": target.value}, reason=reason)
    db.session.flush()


# --- reference data --------------------------------------------------------------------------


def save_reference(obj, data: dict, *, unique_message: str) -> None:
    """Create or update a region, province, product line or model from form data."""
    model = type(obj)
    _unique(model, model.code, data["code"], exclude_id=obj.id, message=unique_message)
    before = snapshot(obj) if obj.id else None
    for key, value in data.items():
        setattr(obj, key, value)
    db.session.add(obj)
    db.session.flush()
    kind = model.__tablename__.rstrip("s").replace("_", ".")
    if before is None:
        record(f"{kind}.created", obj, after=snapshot(obj))
    else:
        old, new = changes(before, snapshot(obj))
        record(f"{kind}.updated", obj, before=old, after=new)
    db.session.flush()


REFERENCE_MODELS = (Region, Province, ProductLine, ProductModel)


# --- accounts ----------------------------------------------------------------------------


def _assignable_roles(actor: User) -> tuple[Role, ...]:
    if actor.role == Role.HQ_ADMIN:
        return tuple(Role)
    if actor.role == Role.AGENCY_OWNER:
        return AGENCY_ASSIGNABLE
    return ()


def assignable_roles(actor: User) -> tuple[Role, ...]:
    return _assignable_roles(actor)


def _check_role_placement(role: Role, agency_id, region_id) -> None:
    if role in AGENCY_ROLES and not agency_id:
        raise DomainError(_("An agency account needs an agency."), field="agency_id")
    if role not in AGENCY_ROLES and agency_id:
        raise DomainError(_("An HQ account cannot belong to an agency."), field="agency_id")
    if role == Role.REGIONAL_MANAGER and not region_id:
        raise DomainError(_("A regional manager needs a region."), field="region_id")


def account_email_domains(actor: User) -> list[str] | None:
    """The domains the actor's new addresses must be in; None when any address will do (HQ).

    An empty list: the agency has none yet, and its owner cannot create accounts."""
    if actor.role != Role.AGENCY_OWNER:
        return None
    domains = db.session.scalar(select(Agency.email_domains)
                                .where(Agency.id == actor.agency_id))
    return [d for d in (domains or "").split(",") if d]


def _check_owner_email(actor: User, email: str, exclude_id: int | None = None) -> None:
    """An address an agency owner gives: in the agency's domains, and free.

    Whether an address is taken by another agency or by HQ is none of the owner's business:
    such a clash (possible only when HQ gave a domain to two tenants) gets the same answer as
    any address that cannot be used, and says nothing about the account.
    """
    domains = account_email_domains(actor) or []
    if not domains:
        raise DomainError(_("HQ has not set the e-mail domains of your agency yet. Until it "
                            "does, ask HQ to create accounts."), field="email")
    address = email.strip().lower()
    if address.rpartition("@")[2] not in domains:
        raise DomainError(_("Use an address in your agency's domains: %(domains)s.",
                            domains=", ".join(domains)), field="email")
    own = select(func.count()).select_from(User).where(
        User.agency_id == actor.agency_id, func.lower(User.email) == address)
    if exclude_id is not None:
        own = own.where(User.id != exclude_id)
    if db.session.scalar(own):
        raise DomainError(_("Your agency already has an account with this address."),
                          field="email")
    try:
        _email_free(email, exclude_id=exclude_id)
    except DomainError:
        raise DomainError(_("This address cannot be used. Ask HQ."), field="email") from None


def create_account(*, actor: User | None, email: str, name: str, role: Role,
                   password_hash: str, agency_id: int | None = None,
                   region_id: int | None = None) -> User:
    """Create an account. Raises DomainError for a taken email or a role the actor may not give.

    An agency owner creates staff and engineers of their own agency only (the tenant guard
    stamps and checks the agency), with addresses in the agency's e-mail domains; only HQ
    admin creates HQ accounts and agency owners.
    """
    if actor is not None and role not in _assignable_roles(actor):
        raise DomainError(_("You may not give this role."), field="role")
    is_owner = actor is not None and actor.role == Role.AGENCY_OWNER
    if is_owner:
        agency_id = actor.agency_id
    if role != Role.REGIONAL_MANAGER:
        region_id = None
    _check_role_placement(role, agency_id, region_id)
    if agency_id and not db.session.scalar(select(func.count(Agency.id))
                                           .where(Agency.id == agency_id)):
        raise DomainError(_("Unknown agency."), field="agency_id")
    if is_owner:
        _check_owner_email(actor, email)
    else:
        _email_free(email)
    user = User(email=email.strip().lower(), name=name.strip(), role=role.value,
                agency_id=agency_id, region_id=region_id, password_hash=password_hash)
    db.session.add(user)
    db.session.flush()
    record("user.created", user, after=snapshot(user), actor=actor)
    db.session.flush()
    return user


def _email_free(email: str, exclude_id=None) -> None:
    from portal.tenancy import unscoped

    # Emails are unique across the network: the check must see every account.
    with unscoped("email uniqueness spans all agencies; only a count is read"):
        _unique(User, User.email, email.strip(), exclude_id=exclude_id,
                message=_("An account with this email already exists."))


def update_account(actor: User, user: User, *, email: str, name: str, role: Role,
                   region_id: int | None, password_hash: str | None) -> None:
    """Edit an account; raises DomainError for a role the actor may not give or manage."""
    _check_may_manage(actor, user)
    if role not in _assignable_roles(actor):
        raise DomainError(_("You may not give this role."), field="role")
    if role != Role.REGIONAL_MANAGER:
        region_id = None
    _check_role_placement(role, user.agency_id, region_id)
    if actor.role != Role.AGENCY_OWNER:
        _email_free(email, exclude_id=user.id)
    elif email.strip().lower() != user.email.lower():
        _check_owner_email(actor, email, exclude_id=user.id)
    before = snapshot(user)
    user.email, user.name, user.role, user.region_id = (email.strip().lower(), name.strip(),
                                                        role.value, region_id)
    if password_hash:
        user.password_hash = password_hash
        user.rotate_session_token()
    db.session.flush()
    old, new = changes(before, snapshot(user))
    record("user.updated", user, before=old, after={**new, "password_reset": bool(password_hash)})
    db.session.flush()


def set_account_active(actor: User, user: User, active: bool) -> None:
    """Deactivate (ending every session) or reactivate an account."""
    _check_may_manage(actor, user)
    if user.id == actor.id:
        raise DomainError(_("You cannot deactivate your own account."))
    if user.is_active_account == active:
        return
    user.is_active_account = active
    user.rotate_session_token()
    record("user.activated" if active else "user.deactivated", user,
           before={"is_active": not active}, after={"is_active": active})
    db.session.flush()


def _check_may_manage(actor: User, user: User) -> None:
    if actor.role == Role.HQ_ADMIN:
        return
    if (actor.role == Role.AGENCY_OWNER and user.agency_id == actor.agency_id
            and user.role in AGENCY_ASSIGNABLE):
        return
    raise DomainError(_("You may not manage this account."))
