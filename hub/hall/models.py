"""Partner sites (合作网站) subscribed to the release hall, and the outbox of what they were sent."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict
from pydantic import Field as PydanticField
from sqlalchemy import Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from hub.sqltypes import UTCDateTime, str_enum, utcnow


class Partner(SQLModel, table=True):
    """A partner site receiving every new hall entry by signed webhook. The secret is encrypted."""

    __tablename__ = "partners"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100, unique=True)
    url: str = Field(max_length=1000)
    secret_encrypted: str = Field(sa_column=Column(Text, nullable=False))
    # Entries with an id above this one are sent: a new partner gets new entries, not the archive.
    since_entry_id: int = 0
    active: bool = True
    created_by: int | None = Field(default=None, foreign_key="users.id")
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )

    def __repr__(self) -> str:  # the secret never appears
        return f"Partner(id={self.id!r}, name={self.name!r}, url={self.url!r}, secret=<redacted>)"

    __str__ = __repr__


class PartnerDeliveryStatus(StrEnum):
    pending = "pending"
    sending = "sending"
    sent = "sent"
    failed = "failed"  # rejected by the partner, or out of attempts


class PartnerEvent(StrEnum):
    published = "published"  # the entry, signed (``post.published``)
    withdrawn = "withdrawn"  # the entry was withdrawn after the partner had it (``post.withdrawn``)


class PartnerDelivery(SQLModel, table=True):
    """One event about one hall entry for one partner: the outbox row that makes it go out once."""

    __tablename__ = "partner_deliveries"
    __table_args__ = (
        UniqueConstraint(
            "partner_id", "entry_id", "event", name="uq_partner_deliveries_partner_entry_event"
        ),
        Index("ix_partner_deliveries_status_next", "status", "next_attempt_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    partner_id: int = Field(foreign_key="partners.id", index=True)
    entry_id: int = Field(foreign_key="hall_entries.id", index=True)
    event: PartnerEvent = Field(default=PartnerEvent.published, sa_type=str_enum(PartnerEvent))
    status: PartnerDeliveryStatus = Field(
        default=PartnerDeliveryStatus.pending, sa_type=str_enum(PartnerDeliveryStatus)
    )
    attempts: int = 0
    next_attempt_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
    lease_until: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    last_error: str = Field(default="", sa_column=Column(Text, nullable=False))
    sent_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )


# -- API schemas ---------------------------------------------------------------------------------


class PartnerCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = PydanticField(min_length=1, max_length=100)
    url: str = PydanticField(min_length=1, max_length=1000)
    secret: str = PydanticField(min_length=16, max_length=200)


class PartnerPublic(BaseModel):
    """What the API shows of a partner: never its secret."""

    id: int
    name: str
    url: str
    active: bool
    created_at: datetime
    pending: int = 0
    sent: int = 0
    failed: int = 0
