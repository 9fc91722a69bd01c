"""Tenant isolation, written once: the scope of a request and the guard that applies it.

Every agency-owned model inherits :class:`AgencyOwned`. The session guard adds the owner filter
to every ORM SELECT, UPDATE and DELETE (``do_orm_execute`` + ``with_loader_criteria``), the
mapper guard stamps the owner on insert and refuses to move a row to another owner, and on
PostgreSQL the same scope is handed to row-level security per transaction. Core and ``text()``
statements bypass the ORM guard: row-level security and the strict test mode catch those.
"""
import logging
import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache

from flask import abort, g, has_app_context
from flask_sqlalchemy.session import Session as FlaskSession
from sqlalchemy import (
    BigInteger,
    ForeignKey,
    ForeignKeyConstraint,
    UniqueConstraint,
    column,
    event,
    inspect,
    select,
    table,
    text,
    true,
)
from sqlalchemy.orm import Mapped, declared_attr, mapped_column, with_loader_criteria
from sqlalchemy.types import Integer

log = logging.getLogger(__name__)

# A lightweight handle on the agencies table: the region criterion needs it, and the core must
# not import the network package that defines the Agency model.
_agencies = table("agencies", column("id", Integer), column("region_id", Integer))


class TenancyViolation(Exception):
    """A write tried to create or move a row outside the current scope."""


@dataclass(frozen=True)
class Scope:
    """What the current request or job may see: the whole network, one region or one agency."""

    kind: str  # "all", "region", "agency" or "none"
    id: int | None = None
    # The signed-in account, which may always read its own row (a regional manager's account
    # belongs to no agency of their region).
    user_id: int | None = field(default=None, compare=False)

    def encode(self) -> str:
        return f"{self.kind}:{self.id}" if self.id is not None else self.kind

    @property
    def is_restricted(self) -> bool:
        return self.kind != "all"


ALL = Scope("all")
NONE = Scope("none")


def agency_scope(agency_id: int, user_id: int | None = None) -> Scope:
    return Scope("agency", agency_id, user_id)


def region_scope(region_id: int, user_id: int | None = None) -> Scope:
    return Scope("region", region_id, user_id)


def current_scope() -> Scope:
    """The scope in force; without one (no request user, no job scope) nothing is visible."""
    if has_app_context():
        return g.get("_tenant_scope", NONE)
    return NONE


def set_scope(scope: Scope) -> None:
    """Make `scope` the scope of this app context (request, CLI command or job)."""
    g._tenant_scope = scope
    _push_to_database()


@contextmanager
def scoped(scope: Scope):
    """Run a block under `scope`, then restore the previous one (jobs, CLI, tests)."""
    previous = current_scope()
    set_scope(scope)
    try:
        yield
    except BaseException:
        _restore_after_error(previous)
        raise
    set_scope(previous)


def _restore_after_error(previous: Scope) -> None:
    """Restore the scope while an error leaves the block, without masking that error.

    On PostgreSQL a failed statement aborts the transaction, and re-sending the scope then
    fails too ("current transaction is aborted"); that transaction must be rolled back anyway,
    and the next one starts with the restored scope.
    """
    from sqlalchemy.exc import SQLAlchemyError

    try:
        set_scope(previous)
    except SQLAlchemyError as error:
        g._tenant_scope = previous
        log.debug("scope not re-sent to the failed transaction: %s", error)


@contextmanager
def unscoped(reason: str):
    """Run a block with the whole network visible; `reason` says why, for readers and the log.

    Used for loading the signed-in user, the public certificate check and system jobs.
    """
    if not reason or not reason.strip():
        raise ValueError("an unscoped block needs a reason")
    previous_reason = g.get("_unscoped_reason")
    g._unscoped_reason = reason
    try:
        with scoped(ALL):
            yield
    finally:
        g._unscoped_reason = previous_reason


@contextmanager
def raw_sql_allowed(reason: str):
    """Let Core/text() statements run in a restricted scope without the owner filter.

    Only row-level security then stands between them and foreign rows: use it to test that wall.
    """
    if not reason or not reason.strip():
        raise ValueError("raw SQL needs a reason")
    g._raw_sql_reason = reason
    try:
        yield
    finally:
        g._raw_sql_reason = None


# --- the owner column -------------------------------------------------------------------

_tenant_models: list[type] = []


def tenant_models() -> list[type]:
    """Every mapped class whose rows are scoped (agencies, users, agency-owned rows)."""
    return list(_tenant_models)


class TenantScoped:
    """Base of every scoped model: subclasses say how a scope filters them."""

    # A regex for what the owner filter leaves in a statement (the strict test guard's check).
    __owner_marker__ = r"\bagency_id\b"

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "__tablename__" in cls.__dict__:
            _tenant_models.append(cls)

    @classmethod
    def tenant_criteria(cls, scope: Scope):
        raise NotImplementedError

    def check_tenant_insert(self, scope: Scope) -> None:
        """Refuse creating this row in `scope` (default: only the whole-network scope may)."""
        if scope.is_restricted:
            raise TenancyViolation(f"{type(self).__name__} created in scope {scope.encode()}")


def owner_criteria(owner_column, scope: Scope):
    """The filter that limits `owner_column` (an agency id) to `scope`."""
    if scope.kind == "all":
        return true()
    if scope.kind == "agency":
        return owner_column == scope.id
    if scope.kind == "region":
        return owner_column.in_(select(_agencies.c.id).where(_agencies.c.region_id == scope.id))
    # No scope: a criterion on the owner that no row meets (the owner column is NOT NULL).
    return owner_column.is_(None)


class AgencyOwned(TenantScoped):
    """Mixin for rows that belong to one agency.

    Declares ``agency_id`` and the ``(agency_id, id)`` key that children reference with
    composite foreign keys, so the database itself refuses a child of another agency's parent.
    Extra table arguments go in ``__owned_table_args__``.
    """

    __owned_table_args__: tuple = ()

    @declared_attr
    def agency_id(cls) -> Mapped[int]:
        return mapped_column(
            Integer,
            # agency_id leads every composite index below, so no lone index is needed.
            ForeignKey("agencies.id", ondelete="RESTRICT"),
            nullable=False,
        )

    @declared_attr.directive
    def __table_args__(cls):
        return (
            UniqueConstraint("agency_id", "id", name=f"uq_{cls.__tablename__}_agency_id_id"),
            *cls.__owned_table_args__,
        )

    @classmethod
    def tenant_criteria(cls, scope: Scope):
        return owner_criteria(cls.agency_id, scope)


class RecipientOwned(TenantScoped):
    """Mixin for rows of one account (an inbox item, an e-mail, a preference): a signed-in
    user reaches their own rows only, whatever their role, HQ's included; only the system's
    whole-network scope (no account: the write path's receivers, the tick, workers, and
    reasoned unscoped blocks such as HQ admin's outbox) reaches everyone's. The model has a
    ``recipient_id`` column (row-level security: ``dbsecurity.enable_recipient_rls``)."""

    __owner_marker__ = r"\brecipient_id\b"

    @classmethod
    def tenant_criteria(cls, scope: Scope):
        if scope.user_id is not None:
            return cls.recipient_id == scope.user_id
        if scope.kind == "all":
            return cls.recipient_id.isnot(None)
        return cls.recipient_id.is_(None)  # no row: the column is NOT NULL


def owner_fk(columns: str | list[str], parent_table: str, parent_columns=None, **kw):
    """A composite foreign key ``(agency_id, column) -> parent(agency_id, id)``."""
    cols = [columns] if isinstance(columns, str) else list(columns)
    parent_cols = parent_columns or ["id"]
    return ForeignKeyConstraint(
        ["agency_id", *cols],
        [f"{parent_table}.agency_id", *(f"{parent_table}.{c}" for c in parent_cols)],
        **kw,
    )


# --- the session guard --------------------------------------------------------------------


class TenantSession(FlaskSession):
    """The portal's session: identity-map look-ups of scoped rows are refused."""

    def get_bind(self, mapper=None, clause=None, bind=None, **kwargs):
        # A session bound to one connection (the tests' rolled-back transaction) keeps it.
        if bind is None and self.bind is not None:
            return self.bind
        return super().get_bind(mapper, clause=clause, bind=bind, **kwargs)

    def get(self, entity, ident, **kw):
        if isinstance(entity, type) and issubclass(entity, TenantScoped):
            if current_scope().is_restricted:
                raise TypeError(
                    f"session.get({entity.__name__}) skips the tenant filter; "
                    "use portal.tenancy.get_or_404()"
                )
        return super().get(entity, ident, **kw)


@event.listens_for(TenantSession, "do_orm_execute")
def _add_tenant_criteria(state) -> None:
    if state.is_column_load or state.is_relationship_load:
        return  # criteria travel with the parent statement (propagate_to_loaders)
    if not (state.is_select or state.is_update or state.is_delete):
        return
    scope = current_scope()
    if not scope.is_restricted:
        if scope.user_id is not None:
            # HQ's whole network still holds other accounts' own rows (inbox items, API
            # tokens): a signed-in account reads its own, as row-level security says.
            state.statement = state.statement.options(
                *_account_options(scope.user_id, len(_tenant_models)))
        return
    state.statement = state.statement.options(
        *_guard_options(scope.kind, scope.id, scope.user_id, len(_tenant_models)))


@lru_cache(maxsize=4096)
def _account_options(user_id: int, _models: int) -> tuple:
    """The one-account filter of the recipient-owned models, for an account whose scope is
    the whole network."""
    scope = Scope("all", None, user_id)
    return tuple(
        with_loader_criteria(model, model.tenant_criteria(scope), include_aliases=True)
        for model in _tenant_models if issubclass(model, RecipientOwned)
    )


@lru_cache(maxsize=4096)
def _guard_options(kind: str, ident: int | None, user_id: int | None, _models: int) -> tuple:
    """The owner filter of every scoped model for one scope and account, built once (building
    them for each statement was a fifth of an agency page's time). `_models` keys the cache
    on the number of registered models, should one be registered later."""
    scope = Scope(kind, ident, user_id)
    return tuple(
        with_loader_criteria(model, model.tenant_criteria(scope), include_aliases=True)
        for model in _tenant_models
    )


@event.listens_for(TenantSession, "before_flush")
def _flush_starts(session, flush_context, instances) -> None:
    if has_app_context():
        g._in_flush = True


@event.listens_for(TenantSession, "after_flush_postexec")
def _flush_ends(session, flush_context) -> None:
    if has_app_context():
        g._in_flush = False


@event.listens_for(TenantSession, "after_soft_rollback")
def _flush_failed(session, previous_transaction) -> None:
    if has_app_context():
        g._in_flush = False


@event.listens_for(TenantSession, "after_begin")
def _hand_scope_to_database(session, transaction, connection) -> None:
    if connection.dialect.name == "postgresql":
        _set_database_scope(connection)


def _set_database_scope(connection) -> None:
    # is_local=true: the setting ends with the transaction, so a pooled connection never
    # carries one request's scope into the next request or job.
    scope = current_scope()
    connection.execute(
        text("SELECT set_config('portal.scope', :scope, true), "
             "set_config('portal.user_id', :user_id, true)"),
        {"scope": scope.encode(), "user_id": str(scope.user_id or "")},
    )


def _push_to_database() -> None:
    """Re-send the scope when it changes inside an open PostgreSQL transaction."""
    from portal.extensions import db

    try:
        session = db.session()
    except RuntimeError:  # no app context
        return
    transaction = session.get_transaction()
    # A failed transaction must be rolled back first; the next begin sends the scope anyway.
    if transaction is None or not transaction.is_active:
        return
    if session.get_bind().dialect.name == "postgresql":
        _set_database_scope(session.connection())


# --- the mapper guard: stamp the owner, never move it ---------------------------------------


def _check_scoped_insert(mapper, connection, target) -> None:
    if not isinstance(target, AgencyOwned):
        target.check_tenant_insert(current_scope())


def _check_owner_on_insert(mapper, connection, target) -> None:
    scope = current_scope()
    if scope.kind == "agency":
        if target.agency_id is None:
            target.agency_id = scope.id
        elif target.agency_id != scope.id:
            raise TenancyViolation(f"{type(target).__name__} for another agency")
    elif scope.kind == "region":
        region = connection.execute(
            select(_agencies.c.region_id).where(_agencies.c.id == target.agency_id)
        ).scalar()
        if region != scope.id:
            raise TenancyViolation(f"{type(target).__name__} outside the region")
    elif scope.kind == "none":
        raise TenancyViolation(f"{type(target).__name__} written without a scope")


def _check_owner_unchanged(mapper, connection, target) -> None:
    if inspect(target).attrs.agency_id.history.deleted:
        raise TenancyViolation(f"{type(target).__name__}.agency_id cannot change")


event.listen(AgencyOwned, "before_insert", _check_owner_on_insert, propagate=True)
event.listen(TenantScoped, "before_insert", _check_scoped_insert, propagate=True)
event.listen(AgencyOwned, "before_update", _check_owner_unchanged, propagate=True)


# --- look-ups ----------------------------------------------------------------------------


def get_or_404(model, ident, *options):
    """Load one scoped row by primary key through the guard; foreign and missing ids are 404.
    `options`: loader options (its children in the same statements, whatever their number)."""
    from portal.extensions import db

    try:
        ident = int(ident)
    except (TypeError, ValueError):
        abort(404)
    # Beyond what the id column holds (32 bits unless it is a BIGINT): no such row.
    limit = 2**63 if isinstance(model.__table__.c.id.type, BigInteger) else 2**31
    if not 0 < ident < limit:
        abort(404)
    obj = db.session.scalars(select(model).where(model.id == ident).options(*options)
                             ).unique().one_or_none()
    if obj is None:
        abort(404)
    return obj


# --- strict mode for tests ------------------------------------------------------------------

_STATEMENT_TABLES = re.compile(r'\b(?:FROM|JOIN|UPDATE|INTO)\s+"?(\w+)"?', re.IGNORECASE)


def install_strict_guard(engine) -> None:
    """Fail any statement on a scoped table that lacks the owner filter in a restricted scope.

    For tests: the ORM guard should make this impossible; a hand-written Core or text()
    statement is what it catches, unless it sits in ``raw_sql_allowed`` or ``unscoped``.
    """
    tables = {m.__tablename__: m for m in _tenant_models}

    @event.listens_for(engine, "before_cursor_execute")
    def _strict(conn, cursor, statement, parameters, context, executemany):
        if not has_app_context() or not current_scope().is_restricted:
            return
        # Unit-of-work writes address rows by primary key that were loaded through the
        # guard; the mapper guard checks their owner.
        if g.get("_raw_sql_reason") or g.get("_in_flush"):
            return
        head = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else ""
        if head not in ("SELECT", "UPDATE", "DELETE", "WITH"):
            return
        named = {t.lower() for t in _STATEMENT_TABLES.findall(statement)} & tables.keys()
        for name in named:
            marker = tables[name].__owner_marker__
            if not re.search(marker, statement):
                raise AssertionError(
                    f"statement on {name} without the owner filter ({marker}): {statement[:200]}"
                )

