"""Tables of reach: ``reach_counts`` (one row per copy, day and count) and ``reach_pulls``
(when each account's counts were last pulled and when they are next due).

A row of ``reach_counts`` holds a running total as the platform reported it for that day
(since the copy was published, up to the end of the day, or up to the pull for today). The
counts are key/value (``metric`` is a connector's metric key such as ``reads`` or ``reposts``)
so that a platform adds counts without a migration; ``account_id`` is kept beside
``delivery_id`` so rankings group without a join. Re-pulling a day replaces that day's rows.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Column, Date, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from hub.sqltypes import UTCDateTime, utcnow


class ReachCount(SQLModel, table=True):
    __tablename__ = "reach_counts"
    __table_args__ = (
        UniqueConstraint("delivery_id", "day", "metric", name="uq_reach_counts_copy_day_metric"),
        Index("ix_reach_counts_account_day", "account_id", "day"),
    )

    id: int | None = Field(default=None, primary_key=True)
    delivery_id: int = Field(foreign_key="deliveries.id", index=True)
    account_id: int = Field(foreign_key="accounts.id")
    day: date = Field(sa_column=Column(Date(), nullable=False))
    metric: str = Field(max_length=40)
    value: int = Field(default=0, sa_column=Column(BigInteger(), nullable=False))
    pulled_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )


class ReachPull(SQLModel, table=True):
    """An account's pull state: per-account pacing (``next_pull_at``) and back-off."""

    __tablename__ = "reach_pulls"

    account_id: int = Field(foreign_key="accounts.id", primary_key=True)
    last_pulled_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    last_day: date | None = Field(default=None, sa_column=Column(Date()))
    next_pull_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    failures: int = 0
    last_error: str = Field(default="", sa_column=Column(Text, nullable=False))
