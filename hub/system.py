"""Process heartbeats: when each part of the hub (worker, beat) last showed it was alive."""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import lru_cache

from sqlalchemy import Column
from sqlmodel import Field, SQLModel

from hub.config import Settings
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


# -- readiness: what /readyz, `govhub status` and the admins' banner report ----------------------

HEARTBEAT_INTERVAL = timedelta(seconds=60)  # scheduler.app.BEAT_SCHEDULE["system.heartbeat"]
STALE_AFTER = 2 * HEARTBEAT_INTERVAL
PROCESSES = ("worker", "beat")


def heartbeat_state(at: datetime | None, *, now: datetime, stale_after: timedelta) -> str:
    """``"ok"``, or why not, in words (pure)."""
    if at is None:
        return "never seen"
    age = now - at
    if age > stale_after:
        return f"stale: last seen {int(age.total_seconds())} s ago"
    return "ok"


def stalled_processes(now: datetime | None = None) -> list[str]:
    """The processes (``worker``, ``beat``) whose heartbeat is missing or stale."""
    now = now or utcnow()
    beats = last_heartbeats()
    return [
        name
        for name in PROCESSES
        if heartbeat_state(beats.get(name), now=now, stale_after=STALE_AFTER) != "ok"
    ]


@lru_cache(maxsize=4)
def _migration_heads(database_url: str) -> str:
    from alembic.script import ScriptDirectory

    from hub.migrate import alembic_config

    return ",".join(sorted(ScriptDirectory.from_config(alembic_config(database_url)).get_heads()))


def readiness(settings: Settings) -> dict[str, str]:
    """Each part the hub needs to publish on time: ``"ok"`` or what is wrong with it."""
    from sqlalchemy import text

    from hub.db import get_engine
    from hub.migrate import current
    from scheduler.app import broker_reachable

    checks: dict[str, str] = {}
    try:
        with get_engine().connect() as conn:
            conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # any driver error means "not ready"
        checks["database"] = f"{type(exc).__name__}: {exc}"
    if checks["database"] == "ok":
        at, head = current(settings.database_url), _migration_heads(settings.database_url)
        checks["migrations"] = "ok" if at == head else f"at {at or 'nothing'}, head is {head}"
    else:
        checks["migrations"] = "unknown: no database"
    broker_ok, broker = broker_reachable(settings)
    checks["broker"] = "ok" if broker_ok else broker
    if checks["database"] == "ok":
        beats, now = last_heartbeats(), utcnow()
        for name in PROCESSES:
            checks[name] = heartbeat_state(beats.get(name), now=now, stale_after=STALE_AFTER)
    else:
        checks.update({name: "unknown: no database" for name in PROCESSES})
    return checks
