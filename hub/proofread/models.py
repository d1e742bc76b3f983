"""Proofreading tables: lexicon rows of a province or org, the leaders registry, reviewers'
acknowledgements of ``warn`` hits, and inspectors' findings of serious misstatements."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict
from pydantic import Field as PydanticField
from sqlalchemy import JSON, Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from hub.sqltypes import UTCDateTime, utcnow


class LexiconRow(SQLModel, table=True):
    """An entry a province or an org adds (or, with ``enabled`` false, switches off) for its
    subtree; it replaces a preset entry with the same category and term."""

    __tablename__ = "proofread_entries"
    __table_args__ = (
        UniqueConstraint("org_id", "category", "term", name="uq_proofread_entries_org_term"),
    )

    id: int | None = Field(default=None, primary_key=True)
    org_id: int = Field(foreign_key="orgs.id", index=True)
    category: str = Field(max_length=20)
    term: str = Field(max_length=50)
    correct: str = Field(default="", max_length=200)
    message: str = Field(default="", max_length=500)
    severity: str = Field(default="warn", max_length=10)
    exceptions: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    enabled: bool = True
    created_by: int | None = Field(default=None, foreign_key="users.id")
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
    updated_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )


class LeaderRow(SQLModel, table=True):
    """领导人名录: a leader of an org, with their titles and protocol order (``rank``)."""

    __tablename__ = "proofread_leaders"

    id: int | None = Field(default=None, primary_key=True)
    org_id: int = Field(foreign_key="orgs.id", index=True)
    name: str = Field(max_length=20)
    title: str = Field(max_length=200)
    rank: int = 100
    active: bool = True
    note: str = Field(default="", max_length=200)
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
    updated_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )


class Acknowledgement(SQLModel, table=True):
    """A ``warn`` hit a reviewer let through at approval, with the reason they gave."""

    __tablename__ = "proofread_acks"

    id: int | None = Field(default=None, primary_key=True)
    post_id: int = Field(foreign_key="posts.id", index=True)
    version: int
    org_id: int = Field(foreign_key="orgs.id", index=True)
    reviewer_id: int = Field(foreign_key="users.id")
    category: str = Field(max_length=20)
    text: str = Field(max_length=200)
    message: str = Field(default="", sa_column=Column(Text, nullable=False))
    reason: str = Field(sa_column=Column(Text, nullable=False))
    at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))


class Finding(SQLModel, table=True):
    """An inspector's finding of a serious misstatement (严重表述错误) on published content."""

    __tablename__ = "misstatement_findings"

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="accounts.id", index=True)
    org_id: int = Field(foreign_key="orgs.id", index=True)
    link: str = Field(max_length=1000)
    found_on: date
    text: str = Field(sa_column=Column(Text, nullable=False))
    note: str = Field(default="", sa_column=Column(Text, nullable=False))
    recorded_by: int = Field(foreign_key="users.id")
    at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))


# -- API schemas ---------------------------------------------------------------------------------


class HitPublic(BaseModel):
    category: str
    category_label: str
    severity: str
    start: int
    end: int
    text: str
    message: str
    suggestion: str
    field: str
    description: str


class CheckBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = PydanticField(max_length=200_000)
    org_code: str | None = None


class EntryCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    org_code: str = PydanticField(min_length=1, max_length=32)
    category: str = PydanticField(max_length=20)
    term: str = PydanticField(min_length=1, max_length=50)
    correct: str = PydanticField(default="", max_length=200)
    message: str = PydanticField(default="", max_length=500)
    severity: str = PydanticField(default="warn", max_length=10)
    exceptions: list[str] = PydanticField(default_factory=list, max_length=100)
    enabled: bool = True


class EntryUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    correct: str | None = PydanticField(default=None, max_length=200)
    message: str | None = PydanticField(default=None, max_length=500)
    severity: str | None = PydanticField(default=None, max_length=10)
    exceptions: list[str] | None = PydanticField(default=None, max_length=100)
    enabled: bool | None = None


class EntryPublic(BaseModel):
    id: int | None
    org_code: str
    category: str
    term: str
    correct: str
    message: str
    severity: str
    exceptions: list[str]
    enabled: bool
    source: str


class LeaderCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    org_code: str = PydanticField(min_length=1, max_length=32)
    name: str = PydanticField(min_length=2, max_length=20)
    title: str = PydanticField(min_length=1, max_length=200)
    rank: int = PydanticField(default=100, ge=0, le=10_000)
    note: str = PydanticField(default="", max_length=200)


class LeaderUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = PydanticField(default=None, min_length=2, max_length=20)
    title: str | None = PydanticField(default=None, min_length=1, max_length=200)
    rank: int | None = PydanticField(default=None, ge=0, le=10_000)
    active: bool | None = None
    note: str | None = PydanticField(default=None, max_length=200)


class LeaderPublic(BaseModel):
    id: int
    org_code: str
    org_name: str
    name: str
    title: str
    rank: int
    active: bool
    note: str


class AcknowledgementPublic(BaseModel):
    id: int
    post_id: int
    version: int
    org_code: str
    reviewer: str
    category: str
    text: str
    message: str
    reason: str
    at: datetime


class FindingCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    account_id: int = PydanticField(ge=1, le=2**31 - 1)
    link: str = PydanticField(min_length=1, max_length=1000)
    found_on: date
    text: str = PydanticField(min_length=1, max_length=5000)
    note: str = PydanticField(default="", max_length=2000)


class FindingPublic(BaseModel):
    id: int
    account_id: int
    account_name: str
    org_code: str
    link: str
    found_on: date
    text: str
    note: str
    recorded_by: str
    at: datetime
