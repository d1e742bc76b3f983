"""The append-only audit log: who did what, to what, when and from where."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import Column, Text
from sqlmodel import Field, SQLModel

from hub.sqltypes import UTCDateTime, utcnow


class AuditEntry(SQLModel, table=True):
    __tablename__ = "audit_log"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False, index=True)
    )
    actor_id: int | None = Field(default=None, index=True)
    actor_name: str = Field(default="", max_length=80)
    action: str = Field(max_length=80, index=True)
    object_type: str = Field(max_length=40, index=True)
    object_id: str = Field(default="", max_length=80)
    org_id: int | None = Field(default=None, index=True)
    summary: str = Field(default="", sa_column=Column(Text, nullable=False))
    client_ip: str = Field(default="", max_length=64)


class AuditEntryPublic(BaseModel):
    id: int
    at: datetime
    actor_name: str
    action: str
    object_type: str
    object_id: str
    summary: str
    client_ip: str
