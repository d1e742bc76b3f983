"""Tables of the matrix audit (矩阵检查): account activity, spokespersons, saved audit runs.

- ``account_activity``: one row per post seen on an account's timeline (activity ingestion);
  the audit takes ``max(posted_at)`` per account as of a date from it.
- ``spokespersons``: 新闻发言人 (spokesperson) and 助理 (assistant) per org. History is the rows:
  a new appointment ends the previous holder of the same role.
- ``audit_runs``: saved audits (the whole result as JSON) so two can be compared later.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import JSON, Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from hub.sqltypes import UTCDateTime, str_enum, utcnow


class AccountActivity(SQLModel, table=True):
    """A post seen on an account's timeline (whether made through govhub or not)."""

    __tablename__ = "account_activity"
    __table_args__ = (
        UniqueConstraint("account_id", "remote_id", name="uq_account_activity_account_remote"),
        Index("ix_account_activity_account_posted", "account_id", "posted_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="accounts.id")
    remote_id: str = Field(max_length=200)
    posted_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    url: str = Field(default="", max_length=1000)
    excerpt: str = Field(default="", max_length=300)


class SpokespersonRole(StrEnum):
    spokesperson = "spokesperson"  # 新闻发言人
    assistant = "assistant"  # 新闻发言人助理


class Spokesperson(SQLModel, table=True):
    """One appointment. ``ended_on`` is set when the next holder of the role is appointed."""

    __tablename__ = "spokespersons"

    id: int | None = Field(default=None, primary_key=True)
    org_id: int = Field(foreign_key="orgs.id", index=True)
    name: str = Field(max_length=100)
    role: SpokespersonRole = Field(
        default=SpokespersonRole.spokesperson, sa_type=str_enum(SpokespersonRole)
    )
    title: str = Field(default="", max_length=200)
    phone: str = Field(default="", max_length=40)
    email: str = Field(default="", max_length=200)
    appointed_on: date
    ended_on: date | None = None
    filed_on: date | None = None
    """Filed with the provincial press office (备案)."""
    published_on: date | None = None
    """Announced to the public (向社会公布)."""
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
    updated_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )


class SpokespersonCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    role: SpokespersonRole = SpokespersonRole.spokesperson
    title: str = ""
    phone: str = ""
    email: str = ""
    appointed_on: date
    filed_on: date | None = None
    published_on: date | None = None


class SpokespersonUpdate(BaseModel):
    """Record filing, publication or the end of an appointment (or correct contact details)."""

    model_config = ConfigDict(extra="forbid")

    title: str | None = None
    phone: str | None = None
    email: str | None = None
    ended_on: date | None = None
    filed_on: date | None = None
    published_on: date | None = None


class SpokespersonPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    role: SpokespersonRole
    title: str
    phone: str
    email: str
    appointed_on: date
    ended_on: date | None
    filed_on: date | None
    published_on: date | None


class AuditRun(SQLModel, table=True):
    """A saved audit: its summary (for lists) and the whole result (for comparisons)."""

    __tablename__ = "audit_runs"

    id: int | None = Field(default=None, primary_key=True)
    as_of: date = Field(index=True)
    policy: str = Field(max_length=200)
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False, index=True)
    )
    created_by: str = Field(default="", max_length=80)
    note: str = Field(default="", sa_column=Column(Text, nullable=False))
    summary: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    result: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class AuditRunCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    as_of: date | None = None
    policy: str | None = None
    note: str = ""


class AuditRunPublic(BaseModel):
    id: int
    as_of: date
    policy: str
    created_at: datetime
    created_by: str
    note: str
    summary: dict[str, Any]
