"""The public interaction inbox (互动留言) as stored: cases, threads, their history, replies,
routing rules and per-org settings.

- A **case** (留言) is one message from the public: a Weibo comment on a matrix status or a
  WeChat follower's message. ``(channel, account_id, remote_id)`` is unique, so a message
  ingested twice is one case.
- A **thread** groups the cases of one author on one account; for WeChat it also holds the time
  of the author's last message, which opens the 48-hour customer-service window.
- ``case_events`` is the case's history (triage, assignment, transfer with its reason, notes,
  replies, status changes), appended and never updated.
- Each case starts two compliance clocks (``case_first_response``, ``case_answer``); the case
  keeps their ids, and a transfer moves them to the new org without restarting them.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict
from pydantic import Field as PydanticField
from sqlalchemy import Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from hub.sqltypes import Id, Int32, UTCDateTime, str_enum, utcnow


class Channel(StrEnum):
    weibo_comment = "weibo_comment"
    wechat_message = "wechat_message"
    manual = "manual"  # entered by an editor (a phone call, a letter)


class Category(StrEnum):
    untriaged = "untriaged"
    question = "question"
    complaint = "complaint"
    suggestion = "suggestion"
    praise = "praise"
    spam = "spam"  # kept, hidden
    abusive = "abusive"  # kept, hidden


class CaseStatus(StrEnum):
    new = "new"
    assigned = "assigned"
    in_progress = "in_progress"
    replied = "replied"
    closed = "closed"


class ReplyStatus(StrEnum):
    queued = "queued"  # written, about to be sent (committed first: sending is outside the tx)
    pending_review = "pending_review"
    sent = "sent"
    refused = "refused"  # the platform refused (e.g. WeChat's 48-hour window)
    failed = "failed"
    rejected = "rejected"  # a reviewer rejected it


class Thread(SQLModel, table=True):
    __tablename__ = "inbox_threads"
    __table_args__ = (
        UniqueConstraint("channel", "account_id", "author_id", name="uq_inbox_threads_author"),
    )

    id: int | None = Field(default=None, primary_key=True)
    channel: Channel = Field(sa_type=str_enum(Channel))
    account_id: int | None = Field(default=None, foreign_key="accounts.id", index=True)
    author_id: str = Field(max_length=200)
    author_handle: str = Field(default="", max_length=200)
    last_inbound_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )


class Case(SQLModel, table=True):
    __tablename__ = "cases"
    __table_args__ = (
        UniqueConstraint("channel", "account_id", "remote_id", name="uq_cases_channel_remote"),
        Index("ix_cases_org_status", "org_id", "status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    channel: Channel = Field(sa_type=str_enum(Channel))
    account_id: int | None = Field(default=None, foreign_key="accounts.id", index=True)
    thread_id: int = Field(foreign_key="inbox_threads.id", index=True)
    remote_id: str = Field(max_length=200)
    author_id: str = Field(default="", max_length=200)
    author_handle: str = Field(default="", max_length=200)
    msg_type: str = Field(default="text", max_length=20)
    text: str = Field(default="", sa_column=Column(Text, nullable=False))
    media_url: str = Field(default="", max_length=1000)
    received_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False, index=True))
    post_remote_id: str = Field(default="", max_length=200)
    post_url: str = Field(default="", max_length=1000)
    post_excerpt: str = Field(default="", max_length=300)
    category: Category = Field(default=Category.untriaged, sa_type=str_enum(Category))
    hidden: bool = Field(default=False)
    status: CaseStatus = Field(default=CaseStatus.new, sa_type=str_enum(CaseStatus), index=True)
    org_id: int = Field(foreign_key="orgs.id", index=True)
    first_response_clock_id: int | None = Field(default=None, foreign_key="clocks.id")
    answer_clock_id: int | None = Field(default=None, foreign_key="clocks.id", index=True)
    first_response_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    replied_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    closed_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    needs_other_channel: bool = Field(default=False)  # 请通过其他方式答复
    public_answer: bool = Field(default=False)  # shown on the hall's answered questions
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
    updated_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )


class CaseEvent(SQLModel, table=True):
    """One entry of a case's history (appended, never updated); ``kind="note"`` is internal."""

    __tablename__ = "case_events"

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="cases.id", index=True)
    at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    actor_id: int | None = Field(default=None, foreign_key="users.id")
    actor_name: str = Field(default="system", max_length=80)
    kind: str = Field(max_length=20)  # created|triage|assign|transfer|status|note|reply|close
    from_org_id: int | None = Field(default=None, foreign_key="orgs.id")
    to_org_id: int | None = Field(default=None, foreign_key="orgs.id")
    detail: str = Field(default="", sa_column=Column(Text, nullable=False))


class Reply(SQLModel, table=True):
    __tablename__ = "case_replies"

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="cases.id", index=True)
    text: str = Field(sa_column=Column(Text, nullable=False))  # plain text, as sent
    status: ReplyStatus = Field(sa_type=str_enum(ReplyStatus))
    publish_on_hall: bool = Field(default=False)
    final: bool = Field(default=True)  # False: an acknowledgement (stops only first response)
    remote_id: str = Field(default="", max_length=200)
    error: str = Field(default="", sa_column=Column(Text, nullable=False))
    error_code: str = Field(default="", max_length=40)
    author_id: int | None = Field(default=None, foreign_key="users.id")
    reviewer_id: int | None = Field(default=None, foreign_key="users.id")
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
    sent_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))


class RoutingRule(SQLModel, table=True):
    """New cases of ``account_id`` (any account when empty) whose text contains one of the
    ``keywords`` (comma-separated; empty: any text) go to ``org_id``; lowest ``priority`` first."""

    __tablename__ = "inbox_routing_rules"

    id: int | None = Field(default=None, primary_key=True)
    account_id: int | None = Field(default=None, foreign_key="accounts.id", index=True)
    keywords: str = Field(default="", max_length=1000)
    org_id: int = Field(foreign_key="orgs.id")
    priority: int = Field(default=100)
    active: bool = Field(default=True)
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )


class InboxSetting(SQLModel, table=True):
    """Per org: are replies reviewed before they go out (先审后发 for answers)?"""

    __tablename__ = "inbox_settings"

    org_id: int = Field(foreign_key="orgs.id", primary_key=True)
    review_replies: bool = Field(default=False)


class InboxCursor(SQLModel, table=True):
    """Per account: the newest remote id ingested (``since_id`` of the next pass)."""

    __tablename__ = "inbox_cursors"

    account_id: int = Field(foreign_key="accounts.id", primary_key=True)
    since_id: str = Field(default="", max_length=200)
    updated_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )


# -- API schemas --------------------------------------------------------------------------------


class CaseCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    account_id: Id | None = None
    org_code: str | None = None
    author_handle: str = PydanticField(min_length=1, max_length=200)
    text: str = PydanticField(min_length=1, max_length=5000)
    received_at: datetime | None = None


class TriageBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    category: Category


class BulkTriageBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    case_ids: list[Id] = PydanticField(min_length=1, max_length=500)
    category: Category


class AssignBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    org_code: str


class TransferBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    org_code: str
    reason: str = PydanticField(min_length=1, max_length=2000)


class NoteBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = PydanticField(min_length=1, max_length=5000)


class ReplyBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = PydanticField(min_length=1, max_length=5000)
    publish_on_hall: bool = False
    final: bool = True


class CloseBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = ""


class RoutingRuleCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    account_id: Id | None = None
    keywords: list[str] = []
    org_code: str
    priority: Int32 = 100


class RoutingRuleUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    keywords: list[str] | None = None
    org_code: str | None = None
    priority: Int32 | None = None
    active: bool | None = None


class RoutingRulePublic(BaseModel):
    id: int
    account_id: int | None
    keywords: list[str]
    org_code: str
    org_name: str
    priority: int
    active: bool


class InboxSettingBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    review_replies: bool


class EventPublic(BaseModel):
    at: datetime
    actor: str
    kind: str
    from_org: str | None
    to_org: str | None
    detail: str


class ReplyPublic(BaseModel):
    id: int
    text: str
    status: ReplyStatus
    publish_on_hall: bool
    final: bool
    remote_id: str
    error: str
    created_at: datetime
    sent_at: datetime | None


class CasePublic(BaseModel):
    id: int
    channel: Channel
    account_id: int | None
    account_name: str
    thread_id: int
    remote_id: str
    author_handle: str
    msg_type: str
    text: str
    received_at: datetime
    post_url: str
    post_excerpt: str
    category: Category
    hidden: bool
    status: CaseStatus
    org_code: str
    org_name: str
    first_response_due_at: datetime | None
    answer_due_at: datetime | None
    overdue: bool
    replied_at: datetime | None
    needs_other_channel: bool
    public_answer: bool
    reply_window_open: bool | None  # WeChat: inside the 48-hour window now


class CaseDetail(CasePublic):
    thread: list[CasePublic]
    events: list[EventPublic]
    replies: list[ReplyPublic]


class OrgStats(BaseModel):
    org_code: str
    org_name: str
    cases: int
    replied: int
    overdue_open: int
    median_first_response_hours: float | None
    answered_within_limit_pct: float | None


class IngestResult(BaseModel):
    accounts_ok: int
    accounts_failed: int
    new_cases: int
    errors: list[str]
