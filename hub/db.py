"""Engine and session factory, built on demand (never at import time).

SQLite (the embedded default) gets WAL, foreign keys and a busy timeout so that the web server,
the worker and beat can share one file; PostgreSQL is used as is.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import event, exc
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session, create_engine

from hub.config import get_settings


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


@lru_cache(maxsize=8)
def engine_for(url: str) -> Engine:
    """One engine per database URL per process."""
    from hub.hall.cache import install

    install()  # every session of a process that writes stamps the hall version on a hall change
    if is_sqlite(url):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=20,
            max_overflow=30,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        _ping_when_idle(engine)
        return engine
    engine = create_engine(url, pool_size=20, max_overflow=30)
    _ping_when_idle(engine)
    return engine


PING_AFTER_IDLE_SECONDS = 1.0
"""A pooled connection idle longer than this is pinged before it is handed out."""


def _ping_when_idle(engine: Engine) -> None:
    """Check a pooled connection before use, unless it was in use a moment ago.

    ``pool_pre_ping`` sends ``SELECT 1`` on every checkout: one round trip per task, a fifth of
    a fan-out's copy. A connection checked in less than ``PING_AFTER_IDLE_SECONDS`` ago was
    talking to the server then; one idle longer (the server restarted, a firewall or
    ``idle_session_timeout`` cut it) is pinged as before, and a dead one is replaced before the
    caller sees it (raising ``DisconnectionError`` in ``checkout`` makes the pool discard it and
    hand out another). Should the server go away inside that second, the first statement fails,
    SQLAlchemy sees the disconnect and invalidates the whole pool, and the delivery engine's
    leases and sweeper take the copy up again, as for any database error.
    """

    def mark(_dbapi_connection: Any, record: Any, *_: Any) -> None:
        record.info["govhub_idle_since"] = time.monotonic()

    def check(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("govhub_idle_since")
        if since is not None and time.monotonic() - since <= PING_AFTER_IDLE_SECONDS:
            return
        dialect = engine.dialect
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as err:
            if dialect.is_disconnect(err, dbapi_connection, None):
                raise exc.DisconnectionError("the pooled connection is gone") from err
            raise

    event.listen(engine, "connect", mark)
    event.listen(engine, "checkin", mark)
    event.listen(engine, "checkout", check)


def get_engine() -> Engine:
    return engine_for(get_settings().database_url)


@contextmanager
def session_scope() -> Iterator[Session]:
    """A session that commits on success and rolls back on error (tasks, CLI).

    It keeps one pooled connection for its whole life: a task runs several short transactions
    (claim, fence, record, settle), and a session bound to the engine would check a connection
    out, and ping it, for each of them.
    """
    with (
        get_engine().connect() as connection,
        Session(bind=connection, expire_on_commit=False) as session,
    ):
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def get_session() -> Iterator[Session]:
    """FastAPI dependency: one session per request."""
    with Session(get_engine(), expire_on_commit=False) as session:
        yield session
