"""Users, their role and the org subtree they act on."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Column
from sqlmodel import Field, SQLModel

from hub.sqltypes import UTCDateTime, str_enum, utcnow


class Role(StrEnum):
    admin = "admin"
    supervisor = "supervisor"
    editor = "editor"
    reviewer = "reviewer"


class User(SQLModel, table=True):
    __tablename__ = "users"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=80, unique=True, index=True)
    display_name: str = Field(default="", max_length=120)
    email: str = Field(default="", max_length=200)
    password_hash: str = Field(max_length=200, repr=False)
    role: Role = Field(sa_type=str_enum(Role))
    org_id: int = Field(foreign_key="orgs.id", index=True)
    is_active: bool = Field(default=True)
    token_version: int = Field(default=0)
    locale: str = Field(default="zh-CN", max_length=10)
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
    last_login_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))


class UserSession(SQLModel, table=True):
    """One signed-in browser. The cookie holds only the random ``id``; deleting the row signs that
    browser out (logout, disable, password change, "sign out everywhere"), wherever the cookie was
    copied to."""

    __tablename__ = "user_sessions"

    id: str = Field(primary_key=True, max_length=64)
    user_id: int = Field(foreign_key="users.id", index=True)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    last_seen_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    client_ip: str = Field(default="", max_length=64)


class LoginFailure(SQLModel, table=True):
    """Failed logins per username and per client address for throttling; shared by every
    process. Keys are ``user:<username>`` and ``ip:<address>``."""

    __tablename__ = "login_failures"

    key: str = Field(primary_key=True, max_length=200)
    count: int = 0
    first_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str
    password: str
    role: Role
    org_code: str
    display_name: str = ""
    email: str = ""


class UserUpdate(BaseModel):
    """What an administrator may change on a user (PATCH /api/v1/users/{id})."""

    model_config = ConfigDict(extra="forbid")

    is_active: bool | None = None
    display_name: str | None = None
    email: str | None = None


class PasswordReset(BaseModel):
    model_config = ConfigDict(extra="forbid")

    password: str


class PasswordChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    current_password: str
    new_password: str


class UserPublic(BaseModel):
    id: int
    username: str
    display_name: str
    role: Role
    org_code: str
    org_name: str
    is_active: bool
