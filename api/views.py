"""The API's pages: one's own API tokens, and HQ admin's service accounts and their tokens.

A new token is shown once, in the answer to the POST that made it (never in a flash or the
session; pages are never cached). A token belongs to its account (``RecipientOwned``): the
views look tokens up by their account explicitly (HQ's whole-network scope adds no owner
filter in the ORM, row-level security does on PostgreSQL), and HQ admin reads and changes a
service account's tokens in reasoned unscoped blocks, after loading the account.
"""
from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import case, func, select
from sqlalchemy.orm import selectinload

from api import policy
from api.forms import ActionForm, ServiceAccountForm, TokenForm
from api.models import ApiToken
from api.service_accounts import SERVICE_ROLES, create_service_account
from api.tokens import create_token, revoke_token
from portal import clock
from portal import policy as portal_policy
from portal.auth.access import allow, performs
from portal.auth.models import User
from portal.auth.roles import Role
from portal.commit import done, perform
from portal.extensions import db
from portal.listing import paginate
from portal.navigation import add_nav
from portal.tenancy import get_or_404, unscoped

bp = Blueprint("api", __name__)

EVERYONE = tuple(Role)
MANAGERS = portal_policy.roles(policy.SERVICE_ACCOUNT_MANAGE)
# Why HQ admin's requests here read other accounts' tokens.
OTHERS_TOKENS = "HQ admin manages a service account's tokens"

add_nav("api.service_accounts", _l("Service accounts"), MANAGERS, order=96, group="admin")


def _tokens_of(user_id: int) -> list[ApiToken]:
    """An account's tokens: the live first, the newest on top."""
    return list(db.session.scalars(
        select(ApiToken).where(ApiToken.recipient_id == user_id)
        .order_by(case((ApiToken.revoked_at.is_(None), 0), else_=1),
                  ApiToken.created_at.desc(), ApiToken.id.desc())))


def _made(outcome):
    """What the page says of a committed create_token (plain values, read while the row is
    still visible) and the token itself; (None, None) when it was refused."""
    if not outcome:
        return None, None
    row, secret = outcome.value
    return {"name": row.name, "shown": row.shown, "expires_at": row.expires_at}, secret


# --- one's own tokens -------------------------------------------------------------------


def _tokens_page(form: TokenForm, *, made=None, secret=None, status=200):
    return render_template(
        "api/tokens.html", tokens=_tokens_of(current_user.id), form=form, made=made,
        secret=secret, now=clock.now(),
        read_only=current_user.role == Role.AUDITOR), status


@bp.get("/api-tokens/", endpoint="tokens")
@allow(*EVERYONE)
def tokens():
    return _tokens_page(TokenForm(formdata=None))


@bp.post("/api-tokens/new", endpoint="token_create")
@performs("api.token_created", self_service=True)
def token_create():
    """Make a token for oneself and show it, this once."""
    form = TokenForm()
    if form.validate_on_submit():
        made, secret = _made(perform(create_token, current_user._get_current_object(),
                                     name=form.name.data, days=form.days.data, form=form))
        if made is not None:
            # 201 Created: the page shows the new token, this once (never stored in a cookie).
            return _tokens_page(TokenForm(formdata=None), made=made, secret=secret, status=201)
    return _tokens_page(form, status=400)


@bp.post("/api-tokens/<int:token_id>/revoke", endpoint="token_revoke")
@performs("api.token_revoked", self_service=True)
def token_revoke(token_id):
    # One's own only, whatever the role (HQ's unrestricted scope adds no owner filter):
    # another account's token is a 404, like a missing one.
    token = get_or_404(ApiToken, token_id)
    if token.recipient_id != current_user.id:
        abort(404)
    if ActionForm().validate_on_submit() and perform(revoke_token, token):
        return done(_("Token revoked: it no longer works."), "api.tokens")
    return redirect(url_for("api.tokens"))


# --- service accounts (HQ admin) ---------------------------------------------------------


def _account_form(form: ServiceAccountForm) -> ServiceAccountForm:
    from tenants.queries import all_regions

    form.role.choices = [(r.value, r.label) for r in SERVICE_ROLES]
    form.region_id.choices = [(0, "—")] + [(r.id, r.name(str(get_locale())))
                                           for r in all_regions()]
    return form


def _live_counts(ids: list[int]) -> dict[int, int]:
    if not ids:
        return {}
    with unscoped(OTHERS_TOKENS):
        rows = db.session.execute(
            select(ApiToken.recipient_id, func.count(ApiToken.id))
            .where(ApiToken.recipient_id.in_(ids), ApiToken.revoked_at.is_(None),
                   ApiToken.expires_at > clock.now())
            .group_by(ApiToken.recipient_id)).all()
    return dict(rows)


def _accounts_page(form: ServiceAccountForm, status=200):
    page = paginate(select(User).options(selectinload(User.region))
                    .where(User.is_service_account.is_(True)).order_by(User.email, User.id))
    return render_template("api/service_accounts.html", page=page, form=form,
                           live=_live_counts([u.id for u in page.items])), status


@bp.get("/service-accounts/", endpoint="service_accounts")
@allow(*MANAGERS)
def service_accounts():
    return _accounts_page(_account_form(ServiceAccountForm(formdata=None)))


@bp.post("/service-accounts/new", endpoint="service_account_create")
@performs("api.service_account_created")
def service_account_create():
    form = _account_form(ServiceAccountForm())
    if form.validate_on_submit():
        ok, account = perform(create_service_account, form.email.data, name=form.name.data,
                              role=form.role.data, region_id=form.region_id.data or None,
                              form=form)
        if ok:
            return done(_("Service account created. Now make it a token."),
                        "api.service_account", account_id=account.id)
    return _accounts_page(form, status=400)


def _account(account_id: int) -> User:
    account = get_or_404(User, account_id)
    if not account.is_service_account:
        abort(404)  # people's accounts are managed on the accounts page
    return account


def _account_page(account: User, form: TokenForm, *, made=None, secret=None, status=200):
    with unscoped(OTHERS_TOKENS):
        tokens = _tokens_of(account.id)
    return render_template(
        "api/service_account.html", account=account, tokens=tokens, form=form, made=made,
        secret=secret, now=clock.now()), status


@bp.get("/service-accounts/<int:account_id>", endpoint="service_account")
@allow(*MANAGERS)
def service_account(account_id):
    return _account_page(_account(account_id), TokenForm(formdata=None))


@bp.post("/service-accounts/<int:account_id>/tokens", endpoint="service_account_token_create")
@allow(*MANAGERS, transitions=("api.token_created",))
def service_account_token_create(account_id):
    account = _account(account_id)
    form = TokenForm()
    if form.validate_on_submit():
        with unscoped(OTHERS_TOKENS):
            made, secret = _made(perform(create_token, account, name=form.name.data,
                                         days=form.days.data, form=form))
        if made is not None:
            return _account_page(account, TokenForm(formdata=None), made=made, secret=secret,
                                 status=201)
    return _account_page(account, form, status=400)


@bp.post("/service-accounts/<int:account_id>/tokens/<int:token_id>/revoke",
         endpoint="service_account_token_revoke")
@allow(*MANAGERS, transitions=("api.token_revoked",))
def service_account_token_revoke(account_id, token_id):
    account = _account(account_id)
    with unscoped(OTHERS_TOKENS):
        token = get_or_404(ApiToken, token_id)
        if token.recipient_id != account.id:
            abort(404)
        revoked = ActionForm().validate_on_submit() and perform(revoke_token, token)
    if revoked:
        return done(_("Token revoked: it no longer works."), "api.service_account",
                    account_id=account.id)
    return redirect(url_for("api.service_account", account_id=account.id))


@bp.post("/service-accounts/<int:account_id>/active", endpoint="service_account_active")
@allow(*MANAGERS, transitions=("user.activated", "user.deactivated"))
def service_account_active(account_id):
    """Deactivate a service account (its tokens stop at once) or activate it again."""
    from tenants.services import activate_account, deactivate_account

    account = _account(account_id)
    active = request.form.get("active") == "1"
    if ActionForm().validate_on_submit() and perform(
            activate_account if active else deactivate_account, account):
        return done(_("Service account activated.") if active else
                    _("Service account deactivated: its tokens no longer work."),
                    "api.service_account", account_id=account.id)
    return redirect(url_for("api.service_account", account_id=account.id))
