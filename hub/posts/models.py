"""Posts (稿件): what an editor writes once, its versions, approvals and matrix-forwarding offers."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict
from pydantic import Field as PydanticField
from sqlalchemy import JSON, Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from hub.sqltypes import Id, UTCDateTime, str_enum, utcnow


class PostStatus(StrEnum):
    draft = "draft"
    in_review = "in_review"
    cosigning = "cosigning"
    approved = "approved"
    scheduled = "scheduled"
    publishing = "publishing"
    published = "published"
    partly_failed = "partly_failed"
    failed = "failed"
    rejected = "rejected"
    missed = "missed"
    withdrawn = "withdrawn"


class Urgency(StrEnum):
    routine = "routine"
    hot_topic = "hot_topic"
    emergency = "emergency"


class Post(SQLModel, table=True):
    __tablename__ = "posts"

    id: int | None = Field(default=None, primary_key=True)
    org_id: int = Field(foreign_key="orgs.id", index=True)
    author_id: int = Field(foreign_key="users.id", index=True)
    title: str = Field(max_length=200)
    status: PostStatus = Field(default=PostStatus.draft, sa_type=str_enum(PostStatus), index=True)
    urgency: Urgency = Field(default=Urgency.routine, sa_type=str_enum(Urgency))
    current_version: int = 1
    approved_version: int | None = None
    scheduled_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), index=True))
    target_account_ids: list[int] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    target_groups: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    cosign_org_ids: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    # WeChat per account: {"<account id>": "push"} pushes to followers (群发); absent = publish
    wechat_modes: dict[str, str] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False)
    )
    wechat_comments: str = Field(default="closed", max_length=10)  # closed | open | fans
    reason: str = Field(default="", sa_column=Column(Text, nullable=False))  # rejection/withdrawal
    parent_post_id: int | None = Field(default=None, foreign_key="posts.id")
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
    updated_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
    released_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    # 三审三校: the level of the org's review chain waiting for a decision (1-based) while the
    # post is in review under a chain; None without a chain (one approval, as always).
    review_level: int | None = None
    # Emergency and hot-topic posts: when the event happened; their clock runs from it.
    event_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))


class PostVersion(SQLModel, table=True):
    """One immutable version of a post's content; approval is of exactly one version."""

    __tablename__ = "post_versions"
    __table_args__ = (UniqueConstraint("post_id", "version", name="uq_post_versions_post_version"),)

    id: int | None = Field(default=None, primary_key=True)
    post_id: int = Field(foreign_key="posts.id", index=True)
    version: int
    title: str = Field(max_length=200)
    body: str = Field(sa_column=Column(Text, nullable=False))
    summary: str = Field(default="", sa_column=Column(Text, nullable=False))
    images: list[dict[str, str]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    link: str = Field(default="", max_length=1000)
    overrides: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    correction_note: str = Field(default="", sa_column=Column(Text, nullable=False))
    content_hash: str = Field(max_length=64)
    author_id: int = Field(foreign_key="users.id")
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )


class ApprovalKind(StrEnum):
    approve = "approve"
    cosign = "cosign"
    reject = "reject"


class Approval(SQLModel, table=True):
    __tablename__ = "approvals"

    id: int | None = Field(default=None, primary_key=True)
    post_id: int = Field(foreign_key="posts.id", index=True)
    version: int
    kind: ApprovalKind = Field(sa_type=str_enum(ApprovalKind))
    org_id: int = Field(foreign_key="orgs.id")
    reviewer_id: int = Field(foreign_key="users.id")
    comment: str = Field(default="", sa_column=Column(Text, nullable=False))
    at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    # The approver's IP address (Weibo's ``rip``: the person on whose behalf the post goes out).
    client_ip: str = Field(default="", max_length=64, sa_column_kwargs={"server_default": ""})
    # The review-chain level this decision was taken at (1-based); None without a chain.
    level: int | None = None


class ForwardStatus(StrEnum):
    offered = "offered"
    accepted = "accepted"
    declined = "declined"


class ForwardOffer(SQLModel, table=True):
    """矩阵联动: an approved provincial post offered to a lower-level org's accounts."""

    __tablename__ = "forward_offers"
    __table_args__ = (UniqueConstraint("post_id", "org_id", name="uq_forward_offers_post_org"),)

    id: int | None = Field(default=None, primary_key=True)
    post_id: int = Field(foreign_key="posts.id", index=True)
    org_id: int = Field(foreign_key="orgs.id", index=True)
    status: ForwardStatus = Field(default=ForwardStatus.offered, sa_type=str_enum(ForwardStatus))
    due_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    decided_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    decided_by: int | None = Field(default=None, foreign_key="users.id")
    account_ids: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )


class EmergencyPath(StrEnum):
    """How an emergency post goes through an org's review chain (紧急快速通道)."""

    last = "last"  # only the last level (终审) decides
    one = "one"  # one approval by anyone entitled to any level
    full = "full"  # the whole chain, as a routine post


class ReviewChain(SQLModel, table=True):
    """An org's review levels (三审三校): 1-3 levels, each a role or named users.

    ``levels``: ``[{"name": "初审", "role": "reviewer", "user_ids": []}, ...]`` in order. An org
    without a row reviews with one approval (any reviewer of its reach), as before chains existed.
    """

    __tablename__ = "review_chains"

    id: int | None = Field(default=None, primary_key=True)
    org_id: int = Field(foreign_key="orgs.id", unique=True, index=True)
    levels: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    emergency: EmergencyPath = Field(default=EmergencyPath.last, sa_type=str_enum(EmergencyPath))
    updated_by: int | None = Field(default=None, foreign_key="users.id")
    updated_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )


# -- API schemas ---------------------------------------------------------------------------------


WechatMode = Literal["publish", "push"]
WechatComments = Literal["closed", "open", "fans"]


class TargetGroup(BaseModel):
    """A named group of accounts resolved at approval time within the author's scope.

    ``{"platform": "wechat", "under": "522600", "level": "county"}`` = every WeChat account of
    the counties under 522600.
    """

    model_config = ConfigDict(extra="forbid")

    platform: str | None = None
    under: str | None = None
    level: str | None = None
    org: str | None = None


class PostCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = PydanticField(min_length=1, max_length=200)
    body: str = PydanticField(min_length=1, max_length=100_000)
    summary: str = PydanticField(default="", max_length=2000)
    urgency: Urgency = Urgency.routine
    images: list[str] = PydanticField(default_factory=list, max_length=9)
    target_account_ids: list[Id] = PydanticField(default_factory=list)
    target_groups: list[TargetGroup] = PydanticField(default_factory=list)
    cosign_org_codes: list[str] = PydanticField(default_factory=list)
    scheduled_at: datetime | None = None
    overrides: dict[str, str] = PydanticField(default_factory=dict)
    org_code: str | None = None
    wechat_modes: dict[int, WechatMode] = PydanticField(default_factory=dict)
    wechat_comments: WechatComments | None = None  # None: the org's setting
    event_at: datetime | None = None  # emergency / hot topic: when it happened (default now)
    clock_id: Id | None = None  # link an open clock instead of starting one


class PostUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str | None = PydanticField(default=None, min_length=1, max_length=200)
    body: str | None = PydanticField(default=None, min_length=1, max_length=100_000)
    summary: str | None = PydanticField(default=None, max_length=2000)
    urgency: Urgency | None = None
    images: list[str] | None = PydanticField(default=None, max_length=9)
    target_account_ids: list[Id] | None = None
    target_groups: list[TargetGroup] | None = None
    cosign_org_codes: list[str] | None = None
    scheduled_at: datetime | None = None
    clear_schedule: bool = False
    overrides: dict[str, str] | None = None
    wechat_modes: dict[int, WechatMode] | None = None
    wechat_comments: WechatComments | None = None
    event_at: datetime | None = None  # corrects when the emergency / hot topic happened


class ReasonBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = PydanticField(min_length=1, max_length=2000)


class CorrectBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str = PydanticField(min_length=1, max_length=500)
    title: str | None = None
    body: str | None = None
    summary: str | None = None


class DeliveryPublic(BaseModel):
    id: int
    account_id: int
    account_name: str
    platform: str
    version: int
    status: str
    remote_id: str
    remote_url: str
    error: str
    attempts: int
    next_attempt_at: datetime | None
    updated_at: datetime
    mode: str = ""
    msg_data_id: str = ""


class ReviewLevelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = PydanticField(min_length=1, max_length=20)
    role: Literal["reviewer", "admin"] | None = None
    user_ids: list[Id] = PydanticField(default_factory=list, max_length=20)


class ReviewChainIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    levels: list[ReviewLevelIn] = PydanticField(min_length=1, max_length=3)
    emergency: EmergencyPath = EmergencyPath.last


class ReviewLevelPublic(BaseModel):
    name: str
    role: str | None = None
    user_ids: list[int] = []
    users: list[str] = []


class ReviewChainPublic(BaseModel):
    org_code: str
    configured: bool
    levels: list[ReviewLevelPublic]
    emergency: EmergencyPath


class ReviewStep(BaseModel):
    """One level of a post's chain: who decided it and when (or who may, while it waits)."""

    level: int
    name: str
    state: Literal["approved", "rejected", "waiting", "pending", "skipped"]
    decided_by: str = ""
    decided_at: datetime | None = None
    comment: str = ""


class ReviewPublic(BaseModel):
    current_level: int | None
    fast_path: bool = False
    steps: list[ReviewStep]


class PostPublic(BaseModel):
    id: int
    org_code: str
    author: str
    title: str
    body: str
    summary: str
    urgency: Urgency
    status: PostStatus
    version: int
    approved_version: int | None
    content_hash: str
    scheduled_at: datetime | None
    target_account_ids: list[int]
    target_groups: list[dict[str, Any]]
    cosign_org_codes: list[str]
    wechat_modes: dict[str, str] = {}
    wechat_comments: str = "closed"
    reason: str
    link: str
    created_at: datetime
    updated_at: datetime
    event_at: datetime | None = None
    review: ReviewPublic | None = None
    deliveries: list[DeliveryPublic] = []
