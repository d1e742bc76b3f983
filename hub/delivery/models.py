"""Deliveries (投递): one rendition of one post version to one account, with its own state."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from hub.sqltypes import UTCDateTime, str_enum, utcnow


class DeliveryStatus(StrEnum):
    queued = "queued"
    sending = "sending"
    pending = "pending"  # accepted by the platform, result to come (WeChat freepublish)
    published = "published"
    unconfirmed = "unconfirmed"  # may or may not have gone out: reconcile before anything else
    failed = "failed"
    parked = "parked"  # account needs re-authorisation, or a quota is spent
    cancelled = "cancelled"
    withdrawn = "withdrawn"


class Delivery(SQLModel, table=True):
    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint(
            "post_id", "version", "account_id", name="uq_deliveries_post_version_account"
        ),
        Index("ix_deliveries_status_next", "status", "next_attempt_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    post_id: int = Field(foreign_key="posts.id", index=True)
    version: int
    account_id: int = Field(foreign_key="accounts.id", index=True)
    status: DeliveryStatus = Field(default=DeliveryStatus.queued, sa_type=str_enum(DeliveryStatus))
    remote_id: str = Field(default="", max_length=200)
    remote_url: str = Field(default="", max_length=1000)
    pending_ref: str = Field(default="", max_length=400)
    mode: str = Field(default="", max_length=10)  # WeChat: "" publish (freepublish) | "push" (群发)
    msg_data_id: str = Field(default="", max_length=64)  # WeChat: comments are addressed by it
    # When the call that makes the copy public was (about to be) sent: the reconciliation grace
    # period of a lost freepublish/submit answer counts from here.
    submitted_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    error: str = Field(default="", sa_column=Column(Text, nullable=False))
    error_code: str = Field(default="", max_length=40)
    attempts: int = 0
    next_attempt_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    lease_until: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    # The worker process (``workers.id``) that last claimed it: when that worker stops showing
    # it is alive, the sweeper takes its claim over without waiting for the lease to run out.
    claimed_by: str = Field(default="", max_length=120)
    published_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
    updated_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False, index=True)
    )


class Attempt(SQLModel, table=True):
    """Every call made for a delivery, appended (never updated)."""

    __tablename__ = "delivery_attempts"

    id: int | None = Field(default=None, primary_key=True)
    delivery_id: int = Field(foreign_key="deliveries.id", index=True)
    at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    action: str = Field(max_length=20)  # publish | poll | reconcile | withdraw | callback
    outcome: str = Field(max_length=40)
    http_status: int | None = None
    platform_code: str = Field(default="", max_length=40)
    excerpt: str = Field(default="", sa_column=Column(Text, nullable=False))


class PaceSlot(SQLModel, table=True):
    """One send taken from an account's rate window (database pacing; Redis when configured)."""

    __tablename__ = "pace_slots"
    __table_args__ = (Index("ix_pace_slots_account_at", "account_id", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="accounts.id")
    at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class HallEntry(SQLModel, table=True):
    """A post on the public release hall: published through govhub or ingested from a platform."""

    __tablename__ = "hall_entries"
    __table_args__ = (
        UniqueConstraint("account_id", "remote_id", name="uq_hall_entries_account_remote"),
    )

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="accounts.id", index=True)
    org_id: int = Field(foreign_key="orgs.id", index=True)
    post_id: int | None = Field(default=None, foreign_key="posts.id", index=True)
    version: int | None = None
    remote_id: str = Field(max_length=200)
    idempotency_key: str = Field(default="", max_length=200, index=True)
    platform: str = Field(max_length=20)
    title: str = Field(default="", max_length=300)
    text: str = Field(default="", sa_column=Column(Text, nullable=False))
    html: str = Field(default="", sa_column=Column(Text, nullable=False))
    url: str = Field(default="", max_length=1000)
    published_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False, index=True))
    withdrawn_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    source: str = Field(default="govhub", max_length=20)  # govhub | ingested
