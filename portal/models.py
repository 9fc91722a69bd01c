"""Shared column types and helpers for every area's models."""
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import BigInteger, DateTime
from sqlalchemy.orm import Mapped, declared_attr, mapped_column
from sqlalchemy.types import TypeDecorator

CENT = Decimal("0.01")


def utcnow() -> datetime:
    """Column default for ``*_at`` timestamps: the clock's now (UTC)."""
    from portal import clock

    return clock.now()


def money(value) -> Decimal:
    """Round a line amount to fen, half up (never Babel's half-even, never float)."""
    if isinstance(value, float):
        raise TypeError("money is never a float")
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


class ExactDecimal(TypeDecorator):
    """A Decimal with a fixed number of places, stored as a scaled integer on every database.

    SQLite has no decimal type and binds Numeric as float; integers stay exact everywhere,
    and SUM() over them equals the Python sum of the Decimals.
    """

    impl = BigInteger
    cache_ok = True
    places = 2

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if isinstance(value, float):
            raise TypeError(f"{type(self).__name__} is never a float")
        amount = Decimal(value)
        unit = Decimal(1).scaleb(-self.places)
        if amount != amount.quantize(unit):
            raise ValueError(f"{amount} has more than {self.places} decimal places")
        return int(amount.scaleb(self.places))

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return Decimal(int(value)).scaleb(-self.places).quantize(Decimal(1).scaleb(-self.places))


class Money(ExactDecimal):
    """CNY amounts, exact to the fen (stored as integer fen)."""

    places = 2
    cache_ok = True


class Hours(ExactDecimal):
    """Labor hours and other quantities exact to two places (stored as hundredths)."""

    places = 2
    cache_ok = True


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on SQLite (which drops the zone) and PostgreSQL alike."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime; use portal.models.utcnow()")
        return value.astimezone(UTC)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Versioned:
    """A row people change in turns (a claim, an order, a quarter): its version moves on every
    update, so a page that showed version 3 cannot overwrite version 4 (SQLAlchemy's
    optimistic lock; the write path turns the conflict into one clear message)."""

    version: Mapped[int] = mapped_column(default=1)

    @declared_attr.directive
    def __mapper_args__(cls):
        return {"version_id_col": cls.__table__.c.version}


class Stamped:
    """When a row was made and last changed (UTC; printed in the network's local time)."""

    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
