"""Portal accounts: HQ staff, regional managers, auditors and agency users."""
import secrets
from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import CheckConstraint, ForeignKey, Index, String, false, or_
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.auth.roles import AGENCY_ROLES, Role
from portal.extensions import db
from portal.models import UTCDateTime, utcnow
from portal.tenancy import Scope, TenantScoped, agency_scope, owner_criteria, region_scope

_AGENCY_ROLE_SQL = ", ".join(f"'{r.value}'" for r in sorted(AGENCY_ROLES))


def new_session_token() -> str:
    return secrets.token_urlsafe(24)


class User(UserMixin, TenantScoped, db.Model):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint(
            f"(role IN ({_AGENCY_ROLE_SQL})) = (agency_id IS NOT NULL)",
            name="agency_role_has_agency",
        ),
        CheckConstraint(
            "(role = 'regional_manager') = (region_id IS NOT NULL)", name="regional_has_region"
        ),
        Index("ix_users_agency_id_role", "agency_id", "role"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[Role] = mapped_column(String(32))
    agency_id: Mapped[int | None] = mapped_column(ForeignKey("agencies.id", ondelete="RESTRICT"))
    region_id: Mapped[int | None] = mapped_column(ForeignKey("regions.id", ondelete="RESTRICT"))
    locale: Mapped[str | None] = mapped_column(String(10))
    is_active_account: Mapped[bool] = mapped_column(default=True)
    # A machine's account (the call center, the ERP): it works through API tokens only and
    # never signs in on the pages.
    is_service_account: Mapped[bool] = mapped_column(default=False, server_default=false())
    # Part of the session id: rotating it ends every session and remember-me cookie.
    session_token: Mapped[str] = mapped_column(String(64), default=new_session_token)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_sign_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    agency = relationship("Agency", foreign_keys=[agency_id], lazy="joined")
    region = relationship("Region", foreign_keys=[region_id])

    @classmethod
    def tenant_criteria(cls, scope: Scope):
        if scope.kind == "none":
            return cls.id.is_(None)
        if scope.user_id is not None:
            return or_(owner_criteria(cls.agency_id, scope), cls.id == scope.user_id)
        return owner_criteria(cls.agency_id, scope)

    def check_tenant_insert(self, scope: Scope) -> None:
        # An agency owner creates accounts of their own agency only.
        if scope.kind == "agency" and self.agency_id == scope.id:
            return
        super().check_tenant_insert(scope)

    # Flask-Login
    def get_id(self) -> str:
        return f"{self.id}.{self.session_token}"

    @property
    def is_active(self) -> bool:
        if not self.is_active_account:
            return False
        return self.agency is None or self.agency.allows_sign_in

    @property
    def role_enum(self) -> Role:
        return Role(self.role)

    def has_role(self, *roles: Role) -> bool:
        return self.role in roles

    @property
    def scope(self) -> Scope:
        """What this user may see: their agency, their region, or the whole network."""
        if self.agency_id is not None:
            return agency_scope(self.agency_id, self.id)
        if self.role == Role.REGIONAL_MANAGER:
            return region_scope(self.region_id, self.id)
        return Scope("all", user_id=self.id)

    def rotate_session_token(self) -> None:
        self.session_token = new_session_token()

    def __repr__(self) -> str:
        return f"<User {self.email} {self.role}>"
