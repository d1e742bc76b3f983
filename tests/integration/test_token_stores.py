"""The shared access-token cache on every backend: memory, SQLite, PostgreSQL, Redis.

PostgreSQL runs when ``GOVHUB_TEST_DATABASE_URL`` is set. Redis runs when
``GOVHUB_TEST_REDIS_URL`` is set (and then must answer: the session start fails otherwise), or
when a Redis answers on 127.0.0.1:6379; only without either is it skipped.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import MetaData, create_engine, inspect

from connectors.tokens import (
    MemoryTokenStore,
    RedisTokenStore,
    SqlTokenStore,
    TokenLockTimeout,
    TokenStore,
    platform_tokens_table,
)
from hub.db import engine_for

PG_URL = os.environ.get("GOVHUB_TEST_DATABASE_URL", "")
REDIS_URL = os.environ.get("GOVHUB_TEST_REDIS_URL", "")
LOCAL_REDIS = "redis://127.0.0.1:6379/0"

Clock = Callable[[], datetime]
# makes a store on the shared backend ("another process"), with a clock and a lock wait
Factory = Callable[..., TokenStore]

BACKENDS = ["memory", "sqlite", "redis"] + (["postgresql"] if PG_URL else [])


def _redis_url() -> str:
    if REDIS_URL:
        return REDIS_URL  # must work: never skip when it was asked for
    import redis

    try:
        redis.Redis.from_url(LOCAL_REDIS, socket_connect_timeout=1).ping()
    except redis.RedisError:
        pytest.skip("no Redis on 127.0.0.1:6379 and GOVHUB_TEST_REDIS_URL is unset")
    return LOCAL_REDIS


@pytest.fixture(params=BACKENDS)
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Factory]:
    backend: str = request.param
    if backend == "memory":
        shared = MemoryTokenStore()

        def memory(clock: Clock | None = None, wait_seconds: float = 30.0) -> TokenStore:
            shared._wait = wait_seconds
            if clock is not None:
                shared._clock = clock
            return shared  # one process: the instance is the backend

        yield memory
    elif backend in ("sqlite", "postgresql"):
        url = f"sqlite:///{tmp_path / 'tokens.sqlite3'}" if backend == "sqlite" else PG_URL
        engine = engine_for(url)
        table = platform_tokens_table(MetaData())
        table.create(engine, checkfirst=True)

        def sql(clock: Clock | None = None, wait_seconds: float = 30.0) -> TokenStore:
            return SqlTokenStore(
                engine, table=table, wait_seconds=wait_seconds, clock=clock or _utcnow
            )

        yield sql
        if backend == "sqlite":
            engine.dispose()
    else:
        url = _redis_url()
        prefix = f"govhub-test:{uuid.uuid4().hex}:"

        def redis_store(clock: Clock | None = None, wait_seconds: float = 30.0) -> TokenStore:
            return RedisTokenStore(
                url, prefix=prefix, wait_seconds=wait_seconds, clock=clock or _utcnow
            )

        yield redis_store
        import redis

        client = redis.Redis.from_url(url)
        for key in client.scan_iter(match=prefix + "*"):
            client.delete(key)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def key() -> str:
    return f"wechat:wx{uuid.uuid4().hex[:16]}"


def test_put_then_get_round_trips_in_utc(make_store: Factory) -> None:
    store, k = make_store(), key()
    assert store.get(k) is None
    beijing = timezone(timedelta(hours=8))
    expires = datetime.now(beijing).replace(microsecond=0) + timedelta(hours=2)
    store.put(k, "T" * 512, expires)
    cached = store.get(k)
    assert cached is not None
    assert cached.token == "T" * 512
    assert cached.expires_at == expires
    assert cached.expires_at.tzinfo is not None
    assert "T" * 20 not in repr(cached)


def test_put_overwrites_and_is_seen_by_another_process(make_store: Factory) -> None:
    first, second, k = make_store(), make_store(), key()
    expires = datetime.now(UTC) + timedelta(hours=1)
    first.put(k, "old", expires)
    first.put(k, "new", expires)
    cached = second.get(k)
    assert cached is not None
    assert cached.token == "new"


def test_expired_tokens_are_not_returned(make_store: Factory) -> None:
    now = datetime.now(UTC)
    store, k = make_store(), key()
    store.put(k, "tok", now + timedelta(minutes=10))
    later = make_store(clock=lambda: now + timedelta(minutes=11))
    assert later.get(k) is None


def test_naive_datetimes_are_refused(make_store: Factory) -> None:
    with pytest.raises(ValueError):
        make_store().put(key(), "tok", datetime.now() + timedelta(hours=1))


def test_lock_is_exclusive_across_instances(make_store: Factory) -> None:
    k = key()
    holder, other = make_store(), make_store(wait_seconds=0.2)
    inside = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with holder.lock(k):
            inside.set()
            release.wait(10)

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert inside.wait(10)
        with pytest.raises(TokenLockTimeout), other.lock(k):
            pass
    finally:
        release.set()
        thread.join(10)
    with other.lock(k):  # free again once released
        pass


def test_only_one_refresher_at_a_time(make_store: Factory) -> None:
    """Eight threads each refresh-if-missing under the lock: exactly one fetch happens."""
    k = key()
    fetches: list[int] = []
    barrier = threading.Barrier(8)

    def worker() -> None:
        store = make_store()
        barrier.wait(10)
        with store.lock(k):
            if store.get(k) is None:
                fetches.append(1)
                store.put(k, "fresh", datetime.now(UTC) + timedelta(hours=1))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(fetches) == 1


def test_sql_lease_of_a_crashed_holder_lapses(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 't.sqlite3'}")
    table = platform_tokens_table(MetaData())
    table.create(engine)
    now = datetime.now(UTC)
    crashed = SqlTokenStore(engine, table=table, lease_seconds=30, clock=lambda: now)
    k = key()
    lock = crashed.lock(k)
    lock.__enter__()  # never released: the process "crashed"
    waiting = SqlTokenStore(engine, table=table, wait_seconds=0.1, clock=lambda: now)
    with pytest.raises(TokenLockTimeout), waiting.lock(k):
        pass
    after = SqlTokenStore(
        engine, table=table, wait_seconds=0.1, clock=lambda: now + timedelta(seconds=31)
    )
    with after.lock(k):
        # the crashed holder's late release must not free the lease it lost
        lock.__exit__(None, None, None)
        with pytest.raises(TokenLockTimeout), waiting.lock(k):
            pass


def test_table_matches_the_migration_contract(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 't.sqlite3'}")
    platform_tokens_table(MetaData()).create(engine)
    columns = {c["name"]: c for c in inspect(engine).get_columns("platform_tokens")}
    assert set(columns) == {"key", "token", "expires_at", "updated_at"}
    assert inspect(engine).get_pk_constraint("platform_tokens")["constrained_columns"] == ["key"]
    assert getattr(columns["token"]["type"], "length", None) is None  # sealed tokens: ~800 chars
    assert not columns["expires_at"]["nullable"]


def test_sql_store_works_on_the_migrated_table(database_url: str) -> None:
    """The hub's own migration creates ``platform_tokens``; the store uses it as is."""
    store = SqlTokenStore(engine_for(database_url))
    k = key()
    expires = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
    with store.lock(k):
        store.put(k, "tok", expires)
    cached = store.get(k)
    assert cached is not None
    assert (cached.token, cached.expires_at) == ("tok", expires)


def test_a_process_reuses_its_token_briefly_but_a_refresher_reads_the_shared_store(
    make_store: Factory,
) -> None:
    from connectors.tokens import ProcessCachedStore

    now = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)

    def clock() -> datetime:
        return now

    shared = make_store(clock=clock)
    worker_a = ProcessCachedStore(make_store(clock=clock), max_age_seconds=60, clock=clock)
    worker_b = ProcessCachedStore(make_store(clock=clock), max_age_seconds=60, clock=clock)
    shared.put("wechat:app", "token-1", now + timedelta(hours=2))
    got = worker_a.get("wechat:app")
    assert got is not None and got.token == "token-1"
    # Another process replaces the token (WeChat refused the old one there).
    with worker_b.lock("wechat:app"):
        worker_b.put("wechat:app", "token-2", now + timedelta(hours=2))
    reused = worker_a.get("wechat:app")
    assert reused is not None and reused.token == "token-1", "reused without a shared read"
    # Whoever refreshes (WeChat refused token-1 here too) reads the shared store under the lock.
    with worker_a.lock("wechat:app"):
        fresh = worker_a.get("wechat:app")
    assert fresh is not None and fresh.token == "token-2"
    # And without any refusal, the local copy is given up after max_age.
    with worker_b.lock("wechat:app"):
        worker_b.put("wechat:app", "token-3", now + timedelta(hours=2))
    now += timedelta(seconds=61)
    later = worker_a.get("wechat:app")
    assert later is not None and later.token == "token-3"
    # Never past the token's own expiry.
    worker_a.put("wechat:app", "token-4", now + timedelta(seconds=5))
    now += timedelta(seconds=6)
    assert worker_a.get("wechat:app") is None


def test_the_hubs_store_keeps_tokens_sealed_and_reads_foreign_values_as_missing(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a database dump shows of a cached WeChat token: ciphertext, never the token. A row the
    configured key cannot read (written before sealing, or under a key rotated away) is a miss, so
    the connector fetches a new token instead of failing."""
    from sqlalchemy import text

    from hub.config import get_settings
    from hub.delivery.channels import token_store

    monkeypatch.setenv("GOVHUB_DATABASE_URL", database_url)
    monkeypatch.delenv("GOVHUB_REDIS_URL", raising=False)
    get_settings.cache_clear()
    try:
        store = token_store(get_settings())
        k = key()
        token = "ACCESS_" + "x" * 505  # WeChat: up to 512 characters
        expires = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=2)
        with store.lock(k):
            store.put(k, token, expires)
        with engine_for(database_url).connect() as conn:
            stored = conn.execute(
                text("SELECT token FROM platform_tokens WHERE key = :k"), {"k": k}
            ).scalar_one()
        assert token not in stored and "ACCESS_" not in stored
        fresh = SqlTokenStore(engine_for(database_url))  # another process: no local cache
        assert fresh.get(k) is not None
        again = token_store(get_settings())
        assert again is store
        cached = store.get(k)
        assert cached is not None and cached.token == token

        other = key()
        fresh.put(other, "plaintext-from-before", expires)
        from connectors.tokens import ProcessCachedStore

        assert isinstance(store, ProcessCachedStore)
        assert store.get(other) is None
    finally:
        get_settings.cache_clear()
