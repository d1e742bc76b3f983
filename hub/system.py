"""Process heartbeats: when each part of the hub (worker, beat) last showed it was alive."""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
from datetime import datetime, timedelta
from functools import lru_cache

from sqlalchemy import Column
from sqlmodel import Field, SQLModel

from hub.config import Settings
from hub.db import session_scope
from hub.sqltypes import UTCDateTime, utcnow

log = logging.getLogger(__name__)


class Heartbeat(SQLModel, table=True):
    __tablename__ = "heartbeats"

    name: str = Field(primary_key=True, max_length=80)
    at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class Worker(SQLModel, table=True):
    """One running worker process: who it is, and when it last showed it was alive.

    A thread of the process itself refreshes ``last_seen`` (not a broker task, which could wait
    behind a fan-out). A delivery's claim names its worker (``deliveries.claimed_by``), so the
    sweeper can take over the claims of a worker that went silent long before their lease ends.
    """

    __tablename__ = "workers"

    id: str = Field(primary_key=True, max_length=120)  # "<node>:<pid>:<random>"
    node: str = Field(max_length=200)  # the Celery node name (GOVHUB_WORKER_NAME or celery@host)
    host: str = Field(max_length=200)
    pid: int
    started_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    last_seen: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


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


# -- worker processes: identity and their own heartbeat ----------------------------------------

_current_worker = ""
FORGET_WORKERS_AFTER = timedelta(days=1)  # rows of workers silent this long are deleted


def current_worker() -> str:
    """This process's worker id, or "" outside a worker (web, CLI, in-process tests)."""
    return _current_worker


def worker_heartbeat_every(dead_seconds: float) -> float:
    """How often a worker refreshes its row: a third of the dead threshold, at most 10 s."""
    return max(1.0, min(10.0, dead_seconds / 3))


def beat_worker(worker_id: str, *, node: str = "", now: datetime | None = None) -> None:
    """Refresh the worker's ``last_seen`` (its row is made again if it went missing)."""
    now = now or utcnow()
    with session_scope() as session:
        row = session.get(Worker, worker_id)
        if row is None:
            row = Worker(
                id=worker_id,
                node=node[:200],
                host=socket.gethostname()[:200],
                pid=os.getpid(),
                started_at=now,
                last_seen=now,
            )
        row.last_seen = now
        session.add(row)


def retire_worker(worker_id: str) -> None:
    """A worker stopping cleanly removes its row (its claims, if any, are taken over)."""
    from sqlmodel import delete

    with session_scope() as session:
        session.execute(delete(Worker).where(Worker.id == worker_id))  # type: ignore[arg-type]


class WorkerHeartbeat(threading.Thread):
    """A daemon thread of the worker process: refreshes the worker's row every few seconds."""

    def __init__(self, worker_id: str, node: str, every: float) -> None:
        super().__init__(name="govhub-worker-heartbeat", daemon=True)
        self.worker_id, self.node, self.every = worker_id, node, every
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.every):
            try:
                beat_worker(self.worker_id, node=self.node)
            except Exception:  # the database is away: the next beat tries again
                log.warning("worker %s could not refresh its heartbeat", self.worker_id)


def start_worker(node: str, *, dead_seconds: float) -> WorkerHeartbeat:
    """Give this process its worker identity, record it, and start its heartbeat thread.

    Called before the worker consumes anything, so every claim it makes names a recorded worker.
    Rows of workers silent for a day are forgotten on the way.
    """
    global _current_worker
    from sqlmodel import delete

    worker_id = f"{node[:90]}:{os.getpid()}:{secrets.token_hex(3)}"
    _current_worker = worker_id
    now = utcnow()
    try:
        beat_worker(worker_id, node=node, now=now)
        with session_scope() as session:
            session.execute(
                delete(Worker).where(Worker.last_seen < now - FORGET_WORKERS_AFTER)  # type: ignore[arg-type]
            )
    except Exception:  # the database is away: the thread records the worker once it is back
        log.warning("worker %s could not record itself", worker_id, exc_info=True)
    thread = WorkerHeartbeat(worker_id, node, worker_heartbeat_every(dead_seconds))
    thread.start()
    return thread


def stop_worker(thread: WorkerHeartbeat | None) -> None:
    """The worker stops cleanly: no more heartbeats, and its row goes."""
    global _current_worker
    if thread is not None:
        thread.stopped.set()
    worker_id, _current_worker = _current_worker, ""
    if worker_id:
        try:
            retire_worker(worker_id)
        except Exception:  # its row goes stale instead; the sweeper treats it the same
            log.warning("worker %s could not remove its row", worker_id, exc_info=True)


def worker_states(now: datetime | None = None, *, dead_seconds: float) -> list[tuple[Worker, str]]:
    """Each recorded worker process with ``"ok"`` or how long it has been silent (``govhub
    status``). Silent ones are dead to the sweeper, which takes their claims over."""
    from sqlmodel import select

    now = now or utcnow()
    with session_scope() as session:
        rows = session.exec(select(Worker)).all()
    stale_after = timedelta(seconds=dead_seconds)
    return [
        (row, heartbeat_state(row.last_seen, now=now, stale_after=stale_after))
        for row in sorted(rows, key=lambda w: (w.node, w.started_at))
    ]


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
