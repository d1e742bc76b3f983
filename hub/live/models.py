"""Live sessions (微直播场次), their entries (条目), the event log readers replay, and fan-out.

Nothing is overwritten silently: an edit appends an ``entry_revisions`` row and an ``update``
event; a deletion sets a flag and appends a ``delete`` event. ``live_events`` is the log a
reconnecting reader replays from ``Last-Event-ID``: its ``event_id`` rises by one per session and
is assigned under the session row's lock, so events commit in id order.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic import Field as PydanticField
from sqlalchemy import JSON, Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from hub.sqltypes import Id, UTCDateTime, str_enum, utcnow


class LiveStatus(StrEnum):
    scheduled = "scheduled"
    live = "live"
    ended = "ended"
    archived = "archived"


class MeetingKind(StrEnum):
    executive = "executive"  # 常务会议
    press = "press"  # 新闻发布会
    conference = "conference"  # 工作会议
    other = "other"


class EventType(StrEnum):
    entry = "entry"
    update = "update"
    delete = "delete"
    pin = "pin"
    status = "status"


class LiveSession(SQLModel, table=True):
    __tablename__ = "live_sessions"

    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(max_length=80, unique=True, index=True)
    title: str = Field(max_length=200)
    meeting_kind: MeetingKind = Field(default=MeetingKind.other, sa_type=str_enum(MeetingKind))
    org_id: int = Field(foreign_key="orgs.id", index=True)
    created_by: int = Field(foreign_key="users.id")
    editor_ids: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    target_account_ids: list[int] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    status: LiveStatus = Field(default=LiveStatus.scheduled, sa_type=str_enum(LiveStatus))
    starts_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    started_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    ended_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    approval_required: bool = True  # 提交总编审核: contributors' entries wait for approval
    # Key events reach social media only after one of these users (never the event's author)
    # approved it, or when a reviewer approved the session's ``plan`` before it started.
    approver_ids: list[int] = Field(
        default_factory=list,
        sa_column=Column(JSON, nullable=False, server_default="[]"),
    )
    plan: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    plan_approved_by: int | None = None
    plan_approved_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    poll_interval_seconds: int = 5  # the JSON poll's interval: raise it to shed load (0 = stop)
    last_seq: int = 0
    last_event_id: int = 0
    summary_post_id: int | None = Field(default=None, foreign_key="posts.id")
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )


class LiveEntry(SQLModel, table=True):
    __tablename__ = "live_entries"
    __table_args__ = (UniqueConstraint("session_id", "seq", name="uq_live_entries_session_seq"),)

    id: int | None = Field(default=None, primary_key=True)
    session_id: int = Field(foreign_key="live_sessions.id", index=True)
    seq: int
    text: str = Field(sa_column=Column(Text, nullable=False))
    images: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    key_event: bool = False
    pinned: bool = False
    author_id: int = Field(foreign_key="users.id")
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
    edited_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    correction_note: str = Field(default="", sa_column=Column(Text, nullable=False))
    deleted: bool = False
    approved: bool = True
    # The IP of the console user who made it a visible key event (its author, or its approver
    # when the session requires approval): Weibo's ``rip`` when it is fanned out.
    client_ip: str = Field(default="", max_length=64, sa_column_kwargs={"server_default": ""})
    # Who made it a key event (its author, or whoever marked it later) and who approved it for
    # social media (one of the session's approvers, never ``key_by`` nor the author).
    key_by: int | None = None
    key_approved_by: int | None = None
    key_approved_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))


class EntryRevision(SQLModel, table=True):
    """The entry as it was before an edit or deletion (修订记录)."""

    __tablename__ = "entry_revisions"

    id: int | None = Field(default=None, primary_key=True)
    entry_id: int = Field(foreign_key="live_entries.id", index=True)
    text: str = Field(sa_column=Column(Text, nullable=False))
    images: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    key_event: bool = False
    correction_note: str = Field(default="", sa_column=Column(Text, nullable=False))
    changed_by: int = Field(foreign_key="users.id")
    changed_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )


class LiveEvent(SQLModel, table=True):
    __tablename__ = "live_events"
    __table_args__ = (
        UniqueConstraint("session_id", "event_id", name="uq_live_events_session_event"),
    )

    id: int | None = Field(default=None, primary_key=True)
    session_id: int = Field(foreign_key="live_sessions.id", index=True)
    event_id: int
    type: EventType = Field(sa_type=str_enum(EventType))
    seq: int | None = None
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )


class LiveFanout(SQLModel, table=True):
    """Which key event went to which Weibo account in which post (merged posts: several rows)."""

    __tablename__ = "live_fanouts"
    __table_args__ = (
        UniqueConstraint("session_id", "account_id", "seq", name="uq_live_fanouts_account_seq"),
    )

    id: int | None = Field(default=None, primary_key=True)
    session_id: int = Field(foreign_key="live_sessions.id", index=True)
    account_id: int = Field(foreign_key="accounts.id", index=True)
    seq: int
    post_id: int = Field(foreign_key="posts.id")
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False, index=True)
    )


# -- API schemas ---------------------------------------------------------------------------------


class LiveSessionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = PydanticField(min_length=1, max_length=200)
    org_code: str | None = None
    target_account_ids: list[Id] = PydanticField(default_factory=list, max_length=50)
    starts_at: datetime | None = None
    meeting_kind: MeetingKind = MeetingKind.other
    editor_ids: list[Id] = PydanticField(default_factory=list, max_length=50)
    approval_required: bool = True
    poll_interval_seconds: int = PydanticField(default=5, ge=0, le=3600)
    approver_ids: list[Id] = PydanticField(default_factory=list, max_length=20)
    plan: str = PydanticField(default="", max_length=5000)


class LiveSessionUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    poll_interval_seconds: int | None = PydanticField(default=None, ge=0, le=3600)
    approval_required: bool | None = None
    approver_ids: list[Id] | None = PydanticField(default=None, max_length=20)
    plan: str | None = PydanticField(default=None, max_length=5000)


class LiveSessionPublic(BaseModel):
    id: int
    slug: str
    title: str
    meeting_kind: MeetingKind
    status: LiveStatus
    org_id: int
    starts_at: datetime | None
    started_at: datetime | None
    ended_at: datetime | None
    target_account_ids: list[int]
    editor_ids: list[int]
    approval_required: bool
    approver_ids: list[int] = []
    plan: str = ""
    plan_approved_by: int | None = None
    plan_approved_at: datetime | None = None
    poll_interval_seconds: int
    last_seq: int
    last_event_id: int
    summary_post_id: int | None
    public_url: str


class EntryCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = PydanticField(min_length=1, max_length=5000)
    key_event: bool = False
    pinned: bool = False
    images: list[str] = PydanticField(default_factory=list, max_length=9)


class EntryUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str | None = PydanticField(default=None, min_length=1, max_length=5000)
    key_event: bool | None = None
    pinned: bool | None = None
    correction_note: str = PydanticField(default="", max_length=500)


class EntryDelete(BaseModel):
    model_config = ConfigDict(extra="forbid")

    correction_note: str = PydanticField(min_length=1, max_length=500)


class EntryPublic(BaseModel):
    seq: int
    text: str
    images: list[str]
    key_event: bool
    pinned: bool
    author: str
    created_at: datetime
    edited_at: datetime | None
    correction_note: str
    deleted: bool
    approved: bool
