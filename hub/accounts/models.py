"""Accounts (账号): one org's presence on one platform."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict
from sqlalchemy import JSON, Column, Text
from sqlmodel import Field, SQLModel

from hub.platforms import Platform as Platform
from hub.platforms import PlatformType
from hub.sqltypes import UTCDateTime, str_enum, utcnow


class AccountStatus(StrEnum):
    active = "active"
    needs_reauth = "needs_reauth"
    misconfigured = "misconfigured"  # the platform refused the account's setup: see ``attention``
    suspended = "suspended"
    closed = "closed"


class Account(SQLModel, table=True):
    """Credentials are Fernet-encrypted JSON; they never leave through the API or a page."""

    __tablename__ = "accounts"

    id: int | None = Field(default=None, primary_key=True)
    org_id: int = Field(foreign_key="orgs.id", index=True)
    platform: Platform = Field(sa_type=PlatformType(), index=True)
    name: str = Field(max_length=200)
    handle: str = Field(default="", max_length=200)
    opened_on: date | None = None
    closed_on: date | None = None
    interaction_channel: bool = Field(default=False)
    status: AccountStatus = Field(
        default=AccountStatus.active, sa_type=str_enum(AccountStatus), index=True
    )
    kind: str = Field(default="", max_length=40)  # WeChat: subscription | service
    token_expires_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    # Every secret (for WeChat also the callback token and the EncodingAESKey) is in here.
    credentials_encrypted: str = Field(default="", sa_column=Column(Text, nullable=False))
    last_activity_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    last_seen_remote_id: str = Field(default="", max_length=100)
    # Why the account is flagged (needs_reauth, misconfigured): what the operator must do.
    attention: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    attention_code: str = Field(default="", max_length=40, sa_column_kwargs={"server_default": ""})
    flagged_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    # Beat re-tests a misconfigured account at this time (back-off: check_failures).
    next_check_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    check_failures: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    # Capabilities the platform refused for this account ({"comments": reason}): skipped until
    # an admin re-tests the connection.
    capabilities_off: dict[str, str] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False, server_default="{}")
    )
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
    updated_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )

    def __repr__(self) -> str:  # credentials redacted
        return (
            f"Account(id={self.id!r}, platform={self.platform!r}, name={self.name!r}, "
            f"status={self.status!r}, credentials=<redacted>)"
        )

    __str__ = __repr__


class AccountCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    org_code: str
    platform: Platform
    name: str
    handle: str = ""
    opened_on: date | None = None
    interaction_channel: bool = False
    kind: str = ""
    credentials: dict[str, str] | None = None


class AccountUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    handle: str | None = None
    opened_on: date | None = None
    closed_on: date | None = None
    interaction_channel: bool | None = None
    status: AccountStatus | None = None
    kind: str | None = None
    credentials: dict[str, str] | None = None


class AccountPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    org_code: str
    org_name: str
    platform: Platform
    name: str
    handle: str
    opened_on: date | None
    closed_on: date | None
    interaction_channel: bool
    status: AccountStatus
    kind: str
    token_expires_at: datetime | None
    has_credentials: bool
    last_activity_at: datetime | None
    attention: str = ""  # why the account is flagged, and what to do (Chinese)
    attention_code: str = ""
    flagged_at: datetime | None = None
    next_check_at: datetime | None = None
    capabilities_off: dict[str, str] = {}


class PlatformToken(SQLModel, table=True):
    """Platform access tokens shared by every worker (WeChat: one token per app id)."""

    __tablename__ = "platform_tokens"

    key: str = Field(primary_key=True, max_length=200)
    # sealed with GOVHUB_CREDENTIALS_KEY (connectors.tokens.SealedStore); lock rows hold an owner id
    token: str = Field(sa_column=Column(Text(), nullable=False), repr=False)
    expires_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    updated_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
