"""Shared fixtures.

Integration tests run on SQLite (always) and again on PostgreSQL + Redis when
``GOVHUB_TEST_DATABASE_URL`` / ``GOVHUB_TEST_REDIS_URL`` are set; when they are set and the service
does not answer, the run fails — it never silently skips.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from hub.config import get_settings
from hub.db import engine_for
from hub.migrate import upgrade

ROOT = Path(__file__).resolve().parents[1]
PG_URL = os.environ.get("GOVHUB_TEST_DATABASE_URL", "")
REDIS_URL = os.environ.get("GOVHUB_TEST_REDIS_URL", "")

DATABASES = ["sqlite"] + (["postgresql"] if PG_URL else [])


def _check_services() -> None:
    if PG_URL:
        try:
            with engine_for(PG_URL).connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as exc:
            pytest.exit(f"GOVHUB_TEST_DATABASE_URL is set but PostgreSQL does not answer: {exc}", 3)
    if REDIS_URL:
        import redis

        try:
            redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3).ping()
        except Exception as exc:
            pytest.exit(f"GOVHUB_TEST_REDIS_URL is set but Redis does not answer: {exc}", 3)


def pytest_sessionstart(session: pytest.Session) -> None:
    _check_services()


_pg_migrated = False


def _reset_postgres(url: str) -> None:
    global _pg_migrated
    engine = engine_for(url)
    if not _pg_migrated:
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        upgrade(url)
        _pg_migrated = True
        return
    with engine.begin() as conn:
        # the tables as they are now (a migration test may have changed them)
        tables = (
            conn.execute(
                text(
                    "SELECT tablename FROM pg_tables WHERE schemaname='public' "
                    "AND tablename NOT IN ('alembic_version')"
                )
            )
            .scalars()
            .all()
        )
        sequences = (
            conn.execute(text("SELECT sequencename FROM pg_sequences WHERE schemaname='public'"))
            .scalars()
            .all()
        )
        # DELETE with the foreign-key triggers off (this transaction only) and every sequence
        # back to 1: what TRUNCATE ... RESTART IDENTITY CASCADE did, in a few ms instead of
        # 0.2-0.3 s (TRUNCATE makes new files for each of the ~50 tables; a test leaves few rows)
        conn.exec_driver_sql(
            " ".join(
                ["SET LOCAL session_replication_role = replica;"]
                + [f'DELETE FROM "{table}";' for table in tables]
                + [f"SELECT setval('\"{sequence}\"', 1, false);" for sequence in sequences]
            )
        )


_sqlite_migrated: Path | None = None


def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SQLite file migrated once per run; each test gets a copy (migrating a fresh file cost
    ~0.3 s a test; the migrations themselves are tested in tests/integration/test_migrations.py)."""
    global _sqlite_migrated
    if _sqlite_migrated is None:
        template = tmp_path_factory.mktemp("db-template") / "govhub.sqlite3"
        upgrade(f"sqlite:///{template}")
        engine_for(f"sqlite:///{template}").dispose()
        _sqlite_migrated = template
    return _sqlite_migrated


@pytest.fixture(params=DATABASES)
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A migrated, empty database: a fresh SQLite file, or the PostgreSQL test database reset."""
    if request.param == "postgresql":
        _reset_postgres(PG_URL)
        if REDIS_URL:
            # Redis holds state keyed by row ids (pace slots, tokens, queued tasks): ids restart
            # at 1 with the database, so a test would inherit the last test's pace for account 1.
            import redis

            redis.Redis.from_url(REDIS_URL).flushdb()
        yield PG_URL
        return
    path = tmp_path_factory.mktemp("db") / "govhub.sqlite3"
    shutil.copyfile(_sqlite_template(tmp_path_factory), path)
    url = f"sqlite:///{path}"
    yield url
    engine_for(url).dispose()


@pytest.fixture
def hub_env(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, str]]:
    """Point the hub's settings at the test database (and a per-test broker and media dir)."""
    env = {
        "GOVHUB_DATABASE_URL": database_url,
        "GOVHUB_BROKER_URL": f"sqla+sqlite:///{tmp_path / 'broker.sqlite3'}",
        "GOVHUB_MEDIA_DIR": str(tmp_path / "media"),
        "GOVHUB_PUBLIC_BASE_URL": "http://hall.test",
        # the unit's egress IP: Weibo's rip when the acting person's IP is unknown (TestClient)
        "GOVHUB_WEIBO_FALLBACK_RIP": "203.0.113.10",
    }
    if REDIS_URL and make_url(database_url).get_backend_name() == "postgresql":
        env["GOVHUB_REDIS_URL"] = REDIS_URL
        env["GOVHUB_BROKER_URL"] = REDIS_URL
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    _clear_caches()
    yield env
    _clear_caches()


def _clear_caches() -> None:
    """Settings and the Celery app are read once per process; tests change them."""
    from scheduler.app import get_celery

    get_settings.cache_clear()
    get_celery.cache_clear()
