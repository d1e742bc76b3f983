"""Process heartbeats: when each part of the hub (worker, beat) last showed it was alive."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column
from sqlmodel import Field, SQLModel

from hub.db import session_scope
from hub.sqltypes import UTCDateTime, utcnow


class Heartbeat(SQLModel, table=True):
    __tablename__ = "heartbeats"

    name: str = Field(primary_key=True, max_length=80)
    at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


def record_heartbeat(name: str) -> str:
    now = utcnow()
    with session_scope() as session:
        row = session.get(Heartbeat, name)
        if row is None:
            row = Heartbeat(name=name, at=now)
        row.at = now
        session.add(row)
    return now.isoformat()


def last_heartbeats() -> dict[str, datetime]:
    from sqlmodel import select

    with session_scope() as session:
        return {row.name: row.at for row in session.exec(select(Heartbeat)).all()}
