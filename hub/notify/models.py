"""Notifications (通知) as stored: each user's list, their choices per kind and channel, and the
webhook targets (企业微信 / 钉钉 group robots) of a user or an org.

A notification row is written for every recipient whatever they chose; ``in_app`` says whether
it shows in their list (the row is also what the e-mail and webhook tasks send, and its
``dedupe`` key makes a repeated event — the same token expiring, the same copy failing at the
same attempt — notify once).
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from hub.sqltypes import UTCDateTime, utcnow


class Notification(SQLModel, table=True):
    __tablename__ = "notifications"
    __table_args__ = (UniqueConstraint("user_id", "dedupe", name="uq_notifications_dedupe"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True)
    kind: str = Field(max_length=40)
    title: str = Field(max_length=300)
    body: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    link: str = Field(default="", max_length=500)
    in_app: bool = Field(default=True)
    dedupe: str | None = Field(default=None, max_length=200)
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
    read_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))


class NotifyPreference(SQLModel, table=True):
    """One choice that differs from the default (rules.DEFAULTS) for a kind on a channel."""

    __tablename__ = "notify_preferences"
    __table_args__ = (UniqueConstraint("user_id", "kind", "channel", name="uq_notify_pref"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True)
    kind: str = Field(max_length=40)
    channel: str = Field(max_length=20)
    enabled: bool


class NotifyWebhook(SQLModel, table=True):
    """A group robot that receives a user's webhook notifications (user_id set), or those of every
    user of an org without one of their own (org_id set). The signing secret is encrypted
    (``*_encrypted``: ``govhub secrets rotate`` re-encrypts it)."""

    __tablename__ = "notify_webhooks"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int | None = Field(default=None, foreign_key="users.id", index=True, unique=True)
    org_id: int | None = Field(default=None, foreign_key="orgs.id", index=True, unique=True)
    flavor: str = Field(max_length=20)  # wecom | dingtalk
    url: str = Field(max_length=1000)
    secret_encrypted: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    updated_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )


class NotificationPublic(BaseModel):
    id: int
    kind: str
    kind_label: str
    title: str
    body: str
    link: str
    created_at: datetime
    read_at: datetime | None


class PreferenceIn(BaseModel):
    kind: str
    channel: str
    enabled: bool


class PreferencePublic(BaseModel):
    kind: str
    kind_label: str
    in_app: bool
    email: bool
    webhook: bool


class WebhookIn(BaseModel):
    flavor: str
    url: str
    secret: str = ""


class WebhookPublic(BaseModel):
    flavor: str
    url: str
    signed: bool
