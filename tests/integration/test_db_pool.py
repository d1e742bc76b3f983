"""The connection pool checks a connection that sat idle before handing it out, and trusts one
that was in use a moment ago (``hub.db._ping_when_idle``): a task in a fan-out takes a
connection another task returned milliseconds before, and a ping per task was a fifth of a
copy's database round trips. A connection that died (a database restart, a firewall, an
``idle_session_timeout``) is replaced unseen when it was idle; when it died within the moment,
the first statement fails, the pool drops it, and the next checkout gets a working one."""

from __future__ import annotations

import pytest
from sqlalchemy import exc, text
from sqlalchemy.engine import Engine, make_url

from hub import db


def _kill(engine: Engine, url: str) -> object:
    """Cut the connection the pool holds, from underneath the pool; returns it."""
    with engine.connect() as connection:
        raw = connection.connection.driver_connection
        assert raw is not None
        pid = raw.info.backend_pid if make_url(url).get_backend_name() == "postgresql" else None
    if pid is None:
        raw.close()  # SQLite: the file handle goes away as a dropped socket would
    else:
        import psycopg

        with psycopg.connect(
            make_url(url).set(drivername="postgresql").render_as_string(False), autocommit=True
        ) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    return raw


def test_a_connection_that_died_while_idle_is_replaced_before_anyone_uses_it(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = db.engine_for(database_url)
    dead = _kill(engine, database_url)
    monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 0.0)  # every connection counts as idle
    with engine.connect() as connection:
        assert connection.execute(text("SELECT 1")).scalar() == 1
        assert connection.connection.driver_connection is not dead


def test_a_connection_in_use_a_moment_ago_is_not_pinged_and_the_pool_recovers_if_it_died(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = db.engine_for(database_url)
    monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 3600.0)  # every connection counts as fresh
    dead = _kill(engine, database_url)
    with pytest.raises(exc.DBAPIError) as failed, engine.connect() as connection:
        assert connection.connection.driver_connection is dead  # handed out without a ping
        connection.execute(text("SELECT 1"))
    assert failed.value.connection_invalidated
    with engine.connect() as connection:
        assert connection.execute(text("SELECT 1")).scalar() == 1
