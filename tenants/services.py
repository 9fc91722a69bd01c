"""The rules of the network: agencies and their lifecycle, reference data and accounts.

Every change is a transition (portal.transitions) named as its audit action; who may do it is
in tenants.policy."""
import re

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import delete, func, literal, select

from portal import profile
from portal.audit.services import changes, snapshot
from portal.auth.models import User
from portal.auth.roles import AGENCY_ROLES, Role
from portal.errors_domain import DomainError
from portal.extensions import db
from portal.text import clean
from portal.transitions import describe, note, transition
from tenants import models as m
from tenants import policy
from tenants.models import Agency, AgencyStatus

describe(Agency, _l("agency"), lambda a: m.STATUS_LABELS[AgencyStatus(a.status)])

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
        raise DomainError(str(message), field=column.key)


def _changed(before: dict, after: dict, **extra) -> None:
    """The audit entry of an edit: only the fields that differ."""
    old, new = changes(before, after)
    note(before=old, after={**new, **extra})


def _check_province(region_id: int, province_id: int | None) -> None:
    if province_id is None:
        return
    province = db.session.scalars(select(m.Province)
                                  .where(m.Province.id == province_id)).first()
    if province is None or province.region_id != region_id:
        raise DomainError(_("The province does not belong to the region."), field="province_id")


def _set_product_lines(agency: Agency, product_line_ids: list[int]) -> None:
    known = set(db.session.scalars(
        select(m.ProductLine.id).where(m.ProductLine.id.in_(product_line_ids or [0]))))
    if set(product_line_ids) - known:
        raise DomainError(_("Unknown product line."), field="product_line_ids")
    db.session.execute(delete(m.AgencyProductLine)
                       .where(m.AgencyProductLine.agency_id == agency.id))
    for pl_id in sorted(known):
        db.session.add(m.AgencyProductLine(agency_id=agency.id, product_line_id=pl_id))


def clean_email_domains(text: str | None) -> str:
    """The account e-mail domains HQ typed, as stored: lower case, each once, comma-separated.

    Raises DomainError for something that is not a domain name, or too many of them."""
    domains: list[str] = []
    for item in re.split(r"[\s,;，；、]+", clean(text).lower()):
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
    """Check a profile as typed (code, province, e-mail domains) and return it as stored."""
    _unique(Agency, Agency.code, data["code"], exclude_id=exclude_id,
            message=_("This agency code is already used."))
    _check_province(data["region_id"], data.get("province_id"))
    if "email_domains" in data:
        data = {**data, "email_domains": clean_email_domains(data["email_domains"])}
        _check_domains_free(data["email_domains"], exclude_id)
    return data


@transition("agency.created", Agency, label=_l("Agency registered"),
            permission=policy.AGENCY_CREATE, creates=True)
def create_agency(data: dict, product_line_ids: list[int], *, acting_user) -> Agency:
    """Create an agency as an applicant. Raises DomainError for a taken code, a bad region, or
    an e-mail domain that is not one or belongs to another agency."""
    data = _clean_agency_data(data)
    agency = Agency(**{k: data[k] for k in AGENCY_FIELDS if k in data},
                    status=AgencyStatus.APPLICANT)
    db.session.add(agency)
    db.session.flush()
    _set_product_lines(agency, product_line_ids)
    db.session.add(m.AgencyStatusChange(agency_id=agency.id, from_status=None,
                                        to_status=AgencyStatus.APPLICANT,
                                        reason=_("Agency registered")))
    db.session.flush()
    note(after={**snapshot(agency), "product_line_ids": sorted(product_line_ids)})
    return agency


@transition("agency.updated", Agency, label=_l("Agency profile changed"),
            permission=policy.AGENCY_EDIT)
def update_agency(agency: Agency, data: dict, product_line_ids: list[int], *,
                  acting_user) -> None:
    """Change an agency's profile (not its status). Raises DomainError for a taken code or
    e-mail domain."""
    data = _clean_agency_data(data, exclude_id=agency.id)
    before = {**snapshot(agency), "product_line_ids": [p.id for p in agency.product_lines]}
    for key in AGENCY_FIELDS:
        if key in data:
            setattr(agency, key, data[key])
    _set_product_lines(agency, product_line_ids)
    db.session.flush()
    db.session.expire(agency, ["product_lines"])
    _changed(before, {**snapshot(agency), "product_line_ids": sorted(product_line_ids)})


def allowed_statuses(agency: Agency) -> list[AgencyStatus]:
    """The statuses the lifecycle lets `agency` move to, in the lifecycle's order."""
    allowed = m.TRANSITIONS[AgencyStatus(agency.status)]
    return [s for s in AgencyStatus if s in allowed]


def status_concerns(agency: Agency, to_status) -> list[str]:
    """What the evidence of the areas above says against moving `agency` to `to_status`
    (portal.profile concerns: an elimination warning, open settlements, open orders…)."""
    try:
        target = AgencyStatus(to_status)
    except ValueError:
        return []
    if target not in m.TRANSITIONS[AgencyStatus(agency.status)]:
        return []
    return profile.concerns_for(agency, target)


def needs_confirmation(to_status, concerns: list[str]) -> bool:
    """A move against the evidence, and any termination (it cannot be undone), is confirmed."""
    return bool(concerns) or to_status == AgencyStatus.TERMINATED


def consequence(agency: Agency, to_status) -> str:
    """What the move does, in words the confirmation names (see User.is_active, the coverage
    of certification.queries, evaluation.figures.EVALUATED_STATUSES and the audiences of
    inbox.announcements: a terminated agency is in none of them)."""
    code = agency.code
    if to_status == AgencyStatus.TERMINATED:
        return _("Terminating %(code)s stops its users from signing in and ends their open "
                 "sessions at once; it leaves the certification coverage, the quarterly "
                 "evaluation and HQ's announcements, and can never be reactivated.", code=code)
    if to_status == AgencyStatus.SUSPENDED:
        return _("Suspending %(code)s leaves its users signed in and its open work with it; it "
                 "stays in the quarterly evaluation until it is reactivated or terminated.",
                 code=code)
    if to_status == AgencyStatus.ACTIVE:
        return _("Activating %(code)s authorizes it fully, although the evidence above speaks "
                 "against it.", code=code)
    return _("Putting %(code)s on probation lets it work on trial as an authorized agency, "
             "although the evidence above speaks against it.", code=code)


@transition("agency.status_changed", Agency, label=_l("Agency status changed"),
            permission=policy.AGENCY_CHANGE_STATUS, audit=lambda a: {"status": a.status})
def change_agency_status(agency: Agency, to_status: str, reason: str, *, acting_user,
                         confirmed: bool | None = None) -> None:
    """Move an agency along its lifecycle (tenants.models.TRANSITIONS); raises DomainError for
    a move it does not allow.

    A terminated agency's users can no longer sign in (User.is_active follows the agency).

    `confirmed`: a person's form says whether they ticked the confirmation; a move the evidence
    speaks against (status_concerns), and any termination, is refused without it, and the
    audit entry keeps the warnings they confirmed over. None: a caller that decided on the
    evidence itself (an accepted evaluation proposal, the demo) asks no confirmation.
    """
    current = AgencyStatus(agency.status)
    try:
        target = AgencyStatus(to_status)
    except ValueError:
        raise DomainError(_("Unknown status."), field="to_status") from None
    if target not in m.TRANSITIONS[current]:
        raise DomainError(_("An agency cannot go from %(old)s to %(new)s.",
                            old=m.STATUS_LABELS[current], new=m.STATUS_LABELS[target]),
                          field="to_status")
    reason = clean(reason, multiline=True)
    if not reason:
        raise DomainError(_("Give a reason."), field="reason")
    if confirmed is not None:
        concerns = status_concerns(agency, target)
        if needs_confirmation(target, concerns) and not confirmed:
            raise DomainError(_("Read the warnings, then tick the box to confirm this change.")
                              if concerns else
                              _("Tick the box to confirm the termination."), field="confirm")
        if concerns:
            note(after={"confirmed_concerns": concerns})
    agency.status = target
    db.session.add(m.AgencyStatusChange(agency_id=agency.id, from_status=current,
                                        to_status=target, reason=reason,
                                        actor_id=getattr(acting_user, "id", None)))
    note(reason=reason)


# --- reference data --------------------------------------------------------------------------


def _reference(model, noun, created, updated, taken):
    """The two transitions of a kind of reference data: "<kind>.created" and "<kind>.updated"
    (region, province, product.line, product.model); a code is used once."""
    kind = model.__tablename__.rstrip("s").replace("_", ".")
    describe(model, noun)

    @transition(f"{kind}.created", model, label=created, permission=policy.REFERENCE_EDIT,
                creates=True, audit=snapshot)
    def create(data: dict, *, acting_user):
        _unique(model, model.code, data["code"], message=taken)
        obj = model(**data)
        db.session.add(obj)
        return obj

    @transition(f"{kind}.updated", model, label=updated, permission=policy.REFERENCE_EDIT)
    def update(obj, data: dict, *, acting_user) -> None:
        _unique(model, model.code, data["code"], exclude_id=obj.id, message=taken)
        before = snapshot(obj)
        for key, value in data.items():
            setattr(obj, key, value)
        db.session.flush()
        _changed(before, snapshot(obj))

    return create, update


# Each kind: its (create, update) services.
REFERENCE = {model: _reference(model, *texts) for model, *texts in (
    (m.Region, _l("region"), _l("Region created"), _l("Region changed"),
     _l("This region code is already used.")),
    (m.Province, _l("province"), _l("Province created"), _l("Province changed"),
     _l("This province code is already used.")),
    (m.ProductLine, _l("product line"), _l("Product line created"), _l("Product line changed"),
     _l("This product line code is already used.")),
    (m.ProductModel, _l("model"), _l("Model created"), _l("Model changed"),
     _l("This model code is already used.")),
)}


# --- accounts ----------------------------------------------------------------------------


def _check_role(acting_user, role: Role) -> None:
    if acting_user is not None and role not in policy.assignable_roles(acting_user):
        raise DomainError(_("You may not give this role."), field="role")


def _check_role_placement(role: Role, agency_id, region_id) -> None:
    if role in AGENCY_ROLES and not agency_id:
        raise DomainError(_("An agency account needs an agency."), field="agency_id")
    if role not in AGENCY_ROLES and agency_id:
        raise DomainError(_("An HQ account cannot belong to an agency."), field="agency_id")
    if role == Role.REGIONAL_MANAGER and not region_id:
        raise DomainError(_("A regional manager needs a region."), field="region_id")


def account_email_domains(user) -> list[str] | None:
    """The domains `user`'s new addresses must be in; None when any address will do (HQ).

    An empty list: the agency has none yet, and its owner cannot create accounts."""
    if user is None or policy.places_anywhere(user) or not user.agency_id:
        return None
    domains = db.session.scalar(select(Agency.email_domains)
                                .where(Agency.id == user.agency_id))
    return [d for d in (domains or "").split(",") if d]


def _check_email(acting_user, email: str, exclude_id: int | None = None) -> None:
    """An address HQ gives is free in the whole network; one an agency owner gives is also in
    the agency's domains.

    Whether an address is taken by another agency or by HQ is none of the owner's business:
    such a clash (possible only when HQ gave a domain to two tenants) gets the same answer as
    any address that cannot be used, and says nothing about the account.
    """
    domains = account_email_domains(acting_user)
    if domains is None:
        _email_free(email, exclude_id=exclude_id)
        return
    if not domains:
        raise DomainError(_("HQ has not set the e-mail domains of your agency yet. Until it "
                            "does, ask HQ to create accounts."), field="email")
    address = email.strip().lower()
    if address.rpartition("@")[2] not in domains:
        raise DomainError(_("Use an address in your agency's domains: %(domains)s.",
                            domains=", ".join(domains)), field="email")
    own = select(func.count()).select_from(User).where(
        User.agency_id == acting_user.agency_id, func.lower(User.email) == address)
    if exclude_id is not None:
        own = own.where(User.id != exclude_id)
    if db.session.scalar(own):
        raise DomainError(_("Your agency already has an account with this address."),
                          field="email")
    try:
        _email_free(email, exclude_id=exclude_id)
    except DomainError:
        raise DomainError(_("This address cannot be used. Ask HQ."), field="email") from None


def _email_free(email: str, exclude_id=None) -> None:
    from portal.tenancy import unscoped

    # Emails are unique across the network: the check must see every account.
    with unscoped("email uniqueness spans all agencies; only a count is read"):
        _unique(User, User.email, email.strip(), exclude_id=exclude_id,
                message=_("An account with this email already exists."))


@transition("user.created", User, label=_l("Account created"), permission=policy.USER_CREATE,
            creates=True, audit=snapshot)
def create_account(email: str, *, name: str, role: Role, password_hash: str,
                   agency_id: int | None = None, region_id: int | None = None,
                   acting_user) -> User:
    """Create an account. Raises DomainError for a taken email or a role the actor may not give.

    An agency owner creates staff and engineers of their own agency only (the tenant guard
    stamps and checks the agency), with addresses in the agency's e-mail domains; only HQ
    admin creates HQ accounts and agency owners. `acting_user` None: a command or the demo.
    """
    _check_role(acting_user, role)
    if acting_user is not None and not policy.places_anywhere(acting_user):
        agency_id = acting_user.agency_id
    if role != Role.REGIONAL_MANAGER:
        region_id = None
    _check_role_placement(role, agency_id, region_id)
    if agency_id and not db.session.scalar(select(func.count(Agency.id))
                                           .where(Agency.id == agency_id)):
        raise DomainError(_("Unknown agency."), field="agency_id")
    _check_email(acting_user, email)
    user = User(email=email.strip().lower(), name=name.strip(), role=role.value,
                agency_id=agency_id, region_id=region_id, password_hash=password_hash)
    db.session.add(user)
    return user


@transition("user.updated", User, label=_l("Account changed"), permission=policy.USER_MANAGE)
def update_account(user: User, *, email: str, name: str, role: Role, region_id: int | None,
                   password_hash: str | None, acting_user) -> None:
    """Edit an account; raises DomainError for a role the actor may not give."""
    _check_role(acting_user, role)
    if role != Role.REGIONAL_MANAGER:
        region_id = None
    _check_role_placement(role, user.agency_id, region_id)
    if policy.places_anywhere(acting_user) or email.strip().lower() != user.email.lower():
        _check_email(acting_user, email, exclude_id=user.id)
    before = snapshot(user)
    user.email, user.name, user.role, user.region_id = (email.strip().lower(), name.strip(),
                                                        role.value, region_id)
    if password_hash:
        user.password_hash = password_hash
        user.rotate_session_token()
    db.session.flush()
    _changed(before, snapshot(user), password_reset=bool(password_hash))


def _is_active(user: User) -> dict:
    return {"is_active": user.is_active_account}


@transition("user.activated", User, label=_l("Account activated"),
            permission=policy.USER_MANAGE, state_attr="is_active_account", source={False},
            target=True, audit=_is_active, wrong_state=_l("This account is already active."))
def activate_account(user: User, *, acting_user) -> None:
    """Let a deactivated account sign in again."""
    user.rotate_session_token()


@transition("user.deactivated", User, label=_l("Account deactivated"),
            permission=policy.USER_MANAGE, state_attr="is_active_account", source={True},
            target=False, audit=_is_active,
            wrong_state=_l("This account is already deactivated."))
def deactivate_account(user: User, *, acting_user) -> None:
    """Stop an account from signing in, ending every session; never one's own."""
    if user.id == getattr(acting_user, "id", None):
        raise DomainError(_("You cannot deactivate your own account."))
    user.rotate_session_token()
