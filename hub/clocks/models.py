"""Compliance clocks (时限) as stored: clocks, calendar overrides, reminders sent, recurring
obligations (常规义务) and the records that satisfy them.

What is stored and what is derived:

- ``clocks.state`` holds only the *facts*: ``running`` (not stopped, not cancelled), ``met``,
  ``met_late`` or ``cancelled``. Whether a running clock is ``overdue`` depends on the time of
  the question, so the public ``status`` is computed at read time with
  :func:`hub.clocks.rules.clock_status` (``running`` becomes ``overdue`` after ``due_at``);
  nothing has to refresh rows when a deadline passes.
- ``clock_reminders`` has one row per (clock, threshold), unique: inserting it is the claim that
  makes a reminder go out once, even after a restart or with two beat processes.
"""

from __future__ import annotations

import datetime as dt
from datetime import date, datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict
from pydantic import Field as PydanticField
from sqlalchemy import Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from hub.clocks.rules import ClockStatus, ObligationState
from hub.sqltypes import UTCDateTime, str_enum, utcnow


class ClockState(StrEnum):
    """The stored facts; ``overdue`` is never stored (see the module docstring)."""

    running = "running"
    met = "met"
    met_late = "met_late"
    cancelled = "cancelled"


class Clock(SQLModel, table=True):
    """One deadline started by an event (an emergency, a hot topic, information formed...)."""

    __tablename__ = "clocks"

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=40, index=True)  # a [clocks.<kind>] key of the policy
    org_id: int = Field(foreign_key="orgs.id", index=True)
    subject: str = Field(max_length=500)
    started_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    due_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False, index=True))
    calendar_confirmed: bool = Field(default=True)
    state: ClockState = Field(default=ClockState.running, sa_type=str_enum(ClockState), index=True)
    stopped_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    cancelled_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    cancelled_reason: str = Field(default="", sa_column=Column(Text, nullable=False))
    created_by: int | None = Field(default=None, foreign_key="users.id")
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )


class ClockPost(SQLModel, table=True):
    """A post whose first published delivery stops the clock (emergency and hot-topic posts)."""

    __tablename__ = "clock_posts"

    clock_id: int = Field(foreign_key="clocks.id", primary_key=True)
    post_id: int = Field(foreign_key="posts.id", primary_key=True, index=True)


class CalendarOverride(SQLModel, table=True):
    """An administrator's answer for one day: a local day off or an extra working day."""

    __tablename__ = "calendar_overrides"

    id: int | None = Field(default=None, primary_key=True)
    day: date = Field(unique=True, index=True)
    is_workday: bool
    note: str = Field(default="", max_length=200)
    created_by: int | None = Field(default=None, foreign_key="users.id")
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )


class CalendarYear(SQLModel, table=True):
    """A year whose holiday arrangement the administrator has entered in full as overrides, so
    that deadlines in it count as confirmed although the calendar package has no data for it."""

    __tablename__ = "calendar_years"

    year: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    note: str = Field(default="", max_length=200)
    created_by: int | None = Field(default=None, foreign_key="users.id")
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )


class ClockReminder(SQLModel, table=True):
    """A reminder claimed (inserted before sending: the unique key is the claim) and sent."""

    __tablename__ = "clock_reminders"
    __table_args__ = (
        UniqueConstraint("clock_id", "threshold", name="uq_clock_reminders_clock_threshold"),
    )

    id: int | None = Field(default=None, primary_key=True)
    clock_id: int = Field(foreign_key="clocks.id", index=True)
    threshold: str = Field(max_length=10)  # "50" | "80" | "overdue"
    claimed_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    sent_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    channels: str = Field(default="", max_length=200)  # "email:3,webhook" or "none"
    error: str = Field(default="", sa_column=Column(Text, nullable=False))


class Obligation(SQLModel, table=True):
    """One period of a recurring obligation for one org (a ``[recurring.<kind>]`` rule)."""

    __tablename__ = "obligations"
    __table_args__ = (
        UniqueConstraint("kind", "org_id", "period_start", name="uq_obligations_kind_org_period"),
    )

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=40, index=True)
    org_id: int = Field(foreign_key="orgs.id", index=True)
    period_label: str = Field(max_length=10)  # 2026-10 | 2026-Q4 | 2026
    period_start: date
    period_end: date
    due_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    required: int = 1
    count: int = 0
    status: ObligationState = Field(
        default=ObligationState.open, sa_type=str_enum(ObligationState), index=True
    )
    met_at: date | None = None  # the day of the record that completed it
    updated_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )


class ObligationRecord(SQLModel, table=True):
    """Something that counts towards an obligation: a press conference held, a spokesperson's
    release, a self-inspection report filed. ``kind`` is the recurring rule's key."""

    __tablename__ = "obligation_records"

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=40, index=True)
    org_id: int = Field(foreign_key="orgs.id", index=True)
    held_on: date = Field(index=True)
    title: str = Field(max_length=300)
    url: str = Field(default="", max_length=1000)
    created_by: int | None = Field(default=None, foreign_key="users.id")
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )


# -- API schemas ---------------------------------------------------------------------------------


class ClockCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: str = PydanticField(min_length=1, max_length=40)
    org_code: str = PydanticField(min_length=1, max_length=32)
    subject: str = PydanticField(min_length=1, max_length=500)
    started_at: datetime


class ClockStop(BaseModel):
    model_config = ConfigDict(extra="forbid")

    stopped_at: datetime | None = None
    """When the response was published; now when left out."""


class ClockCancel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = PydanticField(min_length=1, max_length=2000)


class ClockPublic(BaseModel):
    id: int
    kind: str
    kind_title: str
    org_code: str
    org_name: str
    subject: str
    started_at: datetime
    due_at: datetime
    calendar_confirmed: bool
    status: ClockStatus
    stopped_at: datetime | None
    cancelled_reason: str
    post_ids: list[int]
    reminders_sent: list[str]


class CalendarOverrideCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    date: dt.date
    is_workday: bool
    note: str = PydanticField(default="", max_length=200)


class CalendarOverridePublic(BaseModel):
    date: dt.date
    is_workday: bool
    note: str
    clocks_redated: int = 0


class CalendarYearCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    year: int = PydanticField(ge=2000, le=2200)
    note: str = PydanticField(default="", max_length=200)


class CalendarYearPublic(BaseModel):
    year: int
    note: str
    clocks_redated: int = 0


class ObligationRecordCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: str = PydanticField(min_length=1, max_length=40)
    org_code: str = PydanticField(min_length=1, max_length=32)
    held_on: date
    title: str = PydanticField(min_length=1, max_length=300)
    url: str = PydanticField(default="", max_length=1000)


class ObligationRecordPublic(BaseModel):
    id: int
    kind: str
    org_code: str
    held_on: date
    title: str
    url: str


class ObligationPublic(BaseModel):
    id: int
    kind: str
    kind_title: str
    org_code: str
    org_name: str
    period: str
    period_start: date
    period_end: date
    due_at: datetime
    required: int
    count: int
    status: ObligationState
    met_at: date | None
