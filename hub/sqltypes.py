"""Column types shared by every table."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from annotated_types import Ge, Le
from sqlalchemy import DateTime, Enum
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

# The largest value an INTEGER column holds (PostgreSQL's int4; every id in the schema is one).
# A larger number in a URL or a body would make the database refuse the query ("integer out of
# range", or OverflowError on SQLite past 2^63): a 500. So every id and count read from a
# request is bounded, and a 422 names the field instead.
MAX_INT = 2**31 - 1

Id = Annotated[int, Ge(1), Le(MAX_INT)]
"""A row id read from a request (path, query, form or JSON body): 1 .. 2^31-1."""

Int32 = Annotated[int, Ge(-MAX_INT - 1), Le(MAX_INT)]
"""Any integer an INTEGER column holds (priorities and other signed numbers from a request)."""

Count = Annotated[int, Ge(0), Le(MAX_INT)]
"""A non-negative number read from a request (offsets, cursors, sequence numbers)."""


class UTCDateTime(TypeDecorator[datetime]):
    """Stores aware datetimes as UTC and always returns them aware (SQLite drops offsets)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column; pass an aware datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


def str_enum(enum_cls: type[StrEnum], length: int = 20) -> Enum:
    """A StrEnum stored as VARCHAR (no native PostgreSQL enum types to create and drop)."""
    return Enum(
        enum_cls,
        native_enum=False,
        create_constraint=False,
        length=length,
        values_callable=lambda e: [member.value for member in e],
    )
