"""The media library: every image uploaded, per org, with its alt text."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict
from pydantic import Field as Length
from sqlalchemy import Column, Index
from sqlmodel import Field, SQLModel

from hub.media.rules import ALT_MAX
from hub.sqltypes import UTCDateTime, utcnow


class MediaItem(SQLModel, table=True):
    """One uploaded image. ``path`` (``uploads/<name>``, under GOVHUB_MEDIA_DIR) is what posts
    and live entries refer to; ``alt`` is read out to people who cannot see it (public pages)."""

    __tablename__ = "media"
    __table_args__ = (Index("ix_media_org_created", "org_id", "created_at"),)

    id: int | None = Field(default=None, primary_key=True)
    org_id: int = Field(foreign_key="orgs.id")
    path: str = Field(max_length=200, unique=True)
    original_name: str = Field(default="", max_length=255)
    content_hash: str = Field(max_length=64, index=True)
    content_type: str = Field(max_length=40)
    size: int
    width: int
    height: int
    alt: str = Field(default="", max_length=ALT_MAX)
    uploaded_by: int | None = Field(default=None, foreign_key="users.id")
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )


class MediaPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    path: str  # relative to GOVHUB_MEDIA_DIR: what PostCreate.images takes
    url: str  # where the hub serves it
    org_code: str = ""
    original_name: str = ""
    content_type: str = ""
    size: int = 0
    width: int = 0
    height: int = 0
    alt: str = ""
    uploaded_by: str = ""
    created_at: datetime | None = None


class MediaPage(BaseModel):
    items: list[MediaPublic]
    total: int
    page: int
    per_page: int


class MediaUpdate(BaseModel):
    alt: str = Length(max_length=ALT_MAX)
