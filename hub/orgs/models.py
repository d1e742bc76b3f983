"""Organisations (机构): the province, its prefectures, counties, new areas and departments."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Column, Index
from sqlmodel import Field, SQLModel

from hub.sqltypes import UTCDateTime, str_enum, utcnow


class OrgLevel(StrEnum):
    province = "province"
    prefecture = "prefecture"
    county = "county"
    new_area = "new_area"
    department = "department"


class Org(SQLModel, table=True):
    """One government or department. ``path`` is the materialised ancestry: ``/520000/522600/``."""

    __tablename__ = "orgs"
    __table_args__ = (Index("ix_orgs_path", "path"),)

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=32, unique=True, index=True)
    name: str = Field(max_length=200)
    level: OrgLevel = Field(sa_type=str_enum(OrgLevel), index=True)
    parent_id: int | None = Field(default=None, foreign_key="orgs.id", index=True)
    path: str = Field(max_length=400)
    livelihood: bool = Field(default=False)
    press_office: bool = Field(default=False)
    wechat_comments: str = Field(
        default="closed", max_length=10
    )  # posts' default: closed|open|fans
    # The media library image (path under GOVHUB_MEDIA_DIR) a copy takes as its cover when the
    # platform needs one and the post has no image ("": none set).
    default_cover: str = Field(default="", max_length=200)
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
    updated_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )


class OrgName(SQLModel, table=True):
    """Name history: every rename keeps the old name with the dates it was in use."""

    __tablename__ = "org_names"

    id: int | None = Field(default=None, primary_key=True)
    org_id: int = Field(foreign_key="orgs.id", index=True)
    name: str = Field(max_length=200)
    valid_from: date
    valid_to: date | None = None


class OrgPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    code: str
    name: str
    level: OrgLevel
    parent_code: str | None
    livelihood: bool
    press_office: bool
    wechat_comments: str = "closed"  # default for its posts' WeChat comments: closed|open|fans
    default_cover: str = ""  # media path of the default cover ("": none)
    former_names: list[str] = []
