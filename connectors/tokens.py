"""Platform access tokens shared by every process of the hub.

WeChat tokens are quota-limited (``stable_token``'s ``force_refresh``: 20 a day; the classic
``/cgi-bin/token``: 2,000 a day, and each call invalidates the previous token after a short
overlap): web servers, workers and beat must therefore share one cached token per app and
refresh it one at a time. A :class:`TokenStore` gives them that:

- ``get(key)`` / ``put(key, token, expires_at)``: the cached token and its expiry (UTC);
- ``lock(key)``: a context manager held while refreshing, exclusive across processes, so that
  exactly one process calls the platform while the others wait and then read its token.

Implementations:

- :class:`MemoryTokenStore`: one process (tests, the embedded single-process setup).
- :class:`RedisTokenStore`: ``SET`` with ``PX`` (the key vanishes when the token expires) and a
  redis-py lock (``SET NX PX`` lease with a random owner value).
- :class:`SqlTokenStore`: the ``platform_tokens`` table (SQLAlchemy Core) on PostgreSQL or SQLite.
  Its lock is a *lease row* in the same table (key ``lock:<key>``, token = owner id, expires_at =
  lease end), taken with an INSERT, or an UPDATE conditional on the lease having lapsed, and
  released with a DELETE conditional on the owner. INSERT-on-primary-key and conditional UPDATE
  are atomic on both databases, so one code path serves both; a crashed holder's lease lapses
  after ``lease_seconds``. (``SELECT ... FOR UPDATE`` would work on PostgreSQL only and would hold
  a transaction open across an HTTP call.)
- :class:`ProcessCachedStore`: wraps the Redis or SQL store so that a process does not read the
  shared store for every call (the hub always wraps its store in one).
- :class:`SealedStore`: wraps the Redis or SQL store so that tokens are kept there encrypted (a
  WeChat access token can post on a government account for two hours; neither a database dump nor
  a Redis ``MONITOR`` should hand it out). The hub seals with ``GOVHUB_CREDENTIALS_KEY``; a value
  that does not unseal (a key rotated away, a row from before sealing) reads as missing, so the
  connector fetches a fresh token instead of failing.

Stores raise :class:`TokenStoreError` (and :class:`TokenLockTimeout`) for their own failures, so a
connector can report them as transient without knowing which backend is configured. Tokens never
appear in ``repr`` or in error messages.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import (
    Column,
    DateTime,
    MetaData,
    String,
    Table,
    Text,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

TABLE_NAME = "platform_tokens"
LOCK_PREFIX = "lock:"

Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


class TokenStoreError(Exception):
    """The token store itself failed (database or Redis unreachable)."""


class TokenLockTimeout(TokenStoreError):
    """Another process held the refresh lock for longer than we were willing to wait."""


@dataclass(frozen=True)
class CachedToken:
    """A cached platform token and when it stops working (aware, UTC)."""

    token: str = field(repr=False)
    expires_at: datetime

    def valid_for(self, margin: timedelta, *, now: datetime) -> bool:
        """True while the token has more than ``margin`` of life left."""
        return self.expires_at - margin > now


class TokenStore(Protocol):
    def get(self, key: str) -> CachedToken | None: ...

    def put(self, key: str, token: str, expires_at: datetime) -> None: ...

    def lock(self, key: str) -> AbstractContextManager[None]: ...


def _aware_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("naive datetime given to a token store; pass an aware datetime")
    return value.astimezone(UTC)


class MemoryTokenStore:
    """Tokens in a dict; the lock is a per-key ``threading.Lock`` (one process only)."""

    def __init__(self, *, wait_seconds: float = 30.0, clock: Clock = _utcnow) -> None:
        self._wait = wait_seconds
        self._clock = clock
        self._tokens: dict[str, CachedToken] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def __repr__(self) -> str:
        return f"MemoryTokenStore(keys={len(self._tokens)})"

    def get(self, key: str) -> CachedToken | None:
        with self._guard:
            cached = self._tokens.get(key)
        if cached is None or cached.expires_at <= self._clock():
            return None
        return cached

    def put(self, key: str, token: str, expires_at: datetime) -> None:
        with self._guard:
            self._tokens[key] = CachedToken(token, _aware_utc(expires_at))

    @contextmanager
    def lock(self, key: str) -> Iterator[None]:
        with self._guard:
            key_lock = self._locks.setdefault(key, threading.Lock())
        if not key_lock.acquire(timeout=self._wait):
            raise TokenLockTimeout(f"refresh lock for {key!r} not acquired in {self._wait}s")
        try:
            yield
        finally:
            key_lock.release()


class RedisTokenStore:
    """Tokens in Redis under ``<prefix><key>``; the key expires with the token (``SET ... PX``).

    The value is JSON ``{"token": ..., "expires_at": <ISO 8601 UTC>}``. The refresh lock is
    redis-py's ``Lock`` on ``<prefix>lock:<key>`` with a lease of ``lease_seconds``.
    """

    def __init__(
        self,
        redis_url: str,
        *,
        prefix: str = "govhub:tokens:",
        lease_seconds: float = 30.0,
        wait_seconds: float = 30.0,
        clock: Clock = _utcnow,
    ) -> None:
        import redis

        self._redis = redis.Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=5)
        self._prefix = prefix
        self._lease = lease_seconds
        self._wait = wait_seconds
        self._clock = clock

    def __repr__(self) -> str:
        return f"RedisTokenStore(prefix={self._prefix!r})"

    def get(self, key: str) -> CachedToken | None:
        import redis

        try:
            raw: Any = self._redis.get(self._prefix + key)
        except redis.RedisError as exc:
            raise TokenStoreError(
                f"token store (Redis) unavailable: {type(exc).__name__}"
            ) from None
        if raw is None:
            return None
        data = json.loads(raw)
        cached = CachedToken(str(data["token"]), datetime.fromisoformat(data["expires_at"]))
        if cached.expires_at <= self._clock():
            return None
        return cached

    def put(self, key: str, token: str, expires_at: datetime) -> None:
        import redis

        expires_at = _aware_utc(expires_at)
        ttl_ms = int((expires_at - self._clock()).total_seconds() * 1000)
        if ttl_ms <= 0:
            return
        value = json.dumps({"token": token, "expires_at": expires_at.isoformat()})
        try:
            self._redis.set(self._prefix + key, value, px=ttl_ms)
        except redis.RedisError as exc:
            raise TokenStoreError(
                f"token store (Redis) unavailable: {type(exc).__name__}"
            ) from None

    @contextmanager
    def lock(self, key: str) -> Iterator[None]:
        import redis
        from redis.exceptions import LockError

        lock = self._redis.lock(
            self._prefix + LOCK_PREFIX + key,
            timeout=self._lease,
            blocking_timeout=self._wait,
        )
        try:
            acquired = lock.acquire()
        except redis.RedisError as exc:
            raise TokenStoreError(
                f"token store (Redis) unavailable: {type(exc).__name__}"
            ) from None
        if not acquired:
            raise TokenLockTimeout(f"refresh lock for {key!r} not acquired in {self._wait}s")
        try:
            yield
        finally:
            try:
                lock.release()
            except LockError:
                pass  # the lease lapsed while we held it; someone else may own it now
            except redis.RedisError:
                pass  # the lease will lapse on its own


def platform_tokens_table(metadata: MetaData) -> Table:
    """The ``platform_tokens`` table, as the hub's Alembic migration creates it.

    ``expires_at`` and ``updated_at`` hold UTC; SQLite drops the offset, so reads re-attach it.
    """
    return Table(
        TABLE_NAME,
        metadata,
        Column("key", String(200), primary_key=True),
        Column("token", Text(), nullable=False),
        Column("expires_at", DateTime(timezone=True), nullable=False),
        Column("updated_at", DateTime(timezone=True), nullable=False),
    )


def _from_db(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class SealedStore:
    """Tokens encrypted in another store: ``seal`` on the way in, ``unseal`` on the way out.

    ``unseal`` raises ``ValueError`` for a value it cannot read; such a token counts as missing.
    The refresh lock is the inner store's, untouched (it holds no secret).
    """

    def __init__(
        self, inner: TokenStore, *, seal: Callable[[str], str], unseal: Callable[[str], str]
    ) -> None:
        self._inner = inner
        self._seal = seal
        self._unseal = unseal

    def __repr__(self) -> str:
        return f"SealedStore({self._inner!r})"

    def get(self, key: str) -> CachedToken | None:
        cached = self._inner.get(key)
        if cached is None:
            return None
        try:
            return CachedToken(self._unseal(cached.token), cached.expires_at)
        except ValueError:
            return None

    def put(self, key: str, token: str, expires_at: datetime) -> None:
        self._inner.put(key, self._seal(token), expires_at)

    def lock(self, key: str) -> AbstractContextManager[None]:
        return self._inner.lock(key)


class ProcessCachedStore:
    """A per-process layer over a shared store (Redis or the database).

    A WeChat publication makes five or six calls, each needing the token: a token read from the
    shared store is reused in this process for up to ``max_age_seconds`` (never past its own
    expiry) instead of being read again for every call. Safe because WeChat keeps an old token
    working for a while after a new one is fetched, and because a refused token is never served
    from here: refreshing takes the lock, which drops this process's copy, and reads the shared
    store afresh.
    """

    def __init__(self, inner: TokenStore, *, max_age_seconds: float = 60.0, clock: Clock = _utcnow):
        self._inner = inner
        self._max_age = timedelta(seconds=max_age_seconds)
        self._clock = clock
        self._local: dict[str, tuple[CachedToken, datetime]] = {}
        self._guard = threading.Lock()

    def __repr__(self) -> str:
        return f"ProcessCachedStore({self._inner!r})"

    def get(self, key: str) -> CachedToken | None:
        now = self._clock()
        with self._guard:
            hit = self._local.get(key)
        if hit is not None and hit[1] > now and hit[0].expires_at > now:
            return hit[0]
        cached = self._inner.get(key)
        if cached is not None:
            with self._guard:
                self._local[key] = (cached, now + self._max_age)
        return cached

    def get_shared(self, key: str) -> CachedToken | None:
        """What every process sees: the shared store, this process's copy refreshed from it (a
        keeper must not take its own copy for proof that the shared store holds the token: a
        restarted Redis has none, while the copy lives on for up to ``max_age_seconds``)."""
        with self._guard:
            self._local.pop(key, None)
        return self.get(key)

    def put(self, key: str, token: str, expires_at: datetime) -> None:
        self._inner.put(key, token, expires_at)
        with self._guard:
            self._local[key] = (
                CachedToken(token, _aware_utc(expires_at)),
                self._clock() + self._max_age,
            )

    def lock(self, key: str) -> AbstractContextManager[None]:
        with self._guard:
            self._local.pop(key, None)  # whoever refreshes reads the shared store
        return self._inner.lock(key)


class SqlTokenStore:
    """Tokens in the ``platform_tokens`` table; refresh lock = a lease row (see module doc).

    Times are bound as naive UTC on SQLite (which stores text and compares it as text, so every
    value must have the same format) and as aware UTC elsewhere.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        table: Table | None = None,
        lease_seconds: float = 30.0,
        wait_seconds: float = 30.0,
        poll_seconds: float = 0.05,
        clock: Clock = _utcnow,
    ) -> None:
        self._engine = engine
        self._table = table if table is not None else platform_tokens_table(MetaData())
        self._lease = timedelta(seconds=lease_seconds)
        self._wait = wait_seconds
        self._poll = poll_seconds
        self._clock = clock
        self._naive = engine.dialect.name == "sqlite"

    def __repr__(self) -> str:
        return f"SqlTokenStore(dialect={self._engine.dialect.name!r})"

    @property
    def table(self) -> Table:
        return self._table

    def _bind(self, value: datetime) -> datetime:
        value = _aware_utc(value)
        return value.replace(tzinfo=None) if self._naive else value

    def get(self, key: str) -> CachedToken | None:
        t = self._table
        try:
            with self._engine.connect() as conn:
                row = conn.execute(select(t.c.token, t.c.expires_at).where(t.c.key == key)).first()
        except SQLAlchemyError as exc:
            raise TokenStoreError(f"token store (SQL) unavailable: {type(exc).__name__}") from None
        if row is None:
            return None
        cached = CachedToken(row.token, _from_db(row.expires_at))
        if cached.expires_at <= self._clock():
            return None
        return cached

    def put(self, key: str, token: str, expires_at: datetime) -> None:
        t = self._table
        values = {
            "token": token,
            "expires_at": self._bind(expires_at),
            "updated_at": self._bind(self._clock()),
        }
        try:
            with self._engine.begin() as conn:
                changed = conn.execute(update(t).where(t.c.key == key).values(**values)).rowcount
                if not changed:
                    conn.execute(insert(t).values(key=key, **values))
        except IntegrityError:
            # Inserted concurrently by another process (outside the lock): overwrite it.
            with self._engine.begin() as conn:
                conn.execute(update(t).where(t.c.key == key).values(**values))
        except SQLAlchemyError as exc:
            raise TokenStoreError(f"token store (SQL) unavailable: {type(exc).__name__}") from None

    def _try_acquire(self, lock_key: str, owner: str) -> bool:
        t = self._table
        now = self._clock()
        values = {
            "token": owner,
            "expires_at": self._bind(now + self._lease),
            "updated_at": self._bind(now),
        }
        try:
            with self._engine.begin() as conn:
                conn.execute(insert(t).values(key=lock_key, **values))
            return True
        except IntegrityError:
            pass
        with self._engine.begin() as conn:
            taken = conn.execute(
                update(t)
                .where(t.c.key == lock_key, t.c.expires_at <= self._bind(now))
                .values(**values)
            ).rowcount
        return bool(taken)

    def _release(self, lock_key: str, owner: str) -> None:
        t = self._table
        with self._engine.begin() as conn:
            conn.execute(delete(t).where(t.c.key == lock_key, t.c.token == owner))

    @contextmanager
    def lock(self, key: str) -> Iterator[None]:
        lock_key = LOCK_PREFIX + key
        owner = uuid.uuid4().hex
        deadline = time.monotonic() + self._wait
        pause = self._poll
        try:
            while not self._try_acquire(lock_key, owner):
                if time.monotonic() > deadline:
                    raise TokenLockTimeout(
                        f"refresh lock for {key!r} not acquired in {self._wait}s"
                    )
                time.sleep(pause)  # waiting on another process; no event to await in SQL
                pause = min(pause * 2, 1.0)
        except SQLAlchemyError as exc:
            raise TokenStoreError(f"token store (SQL) unavailable: {type(exc).__name__}") from None
        try:
            yield
        finally:
            with suppress(SQLAlchemyError):  # else the lease lapses after lease_seconds
                self._release(lock_key, owner)


def shared_get(store: TokenStore, key: str) -> CachedToken | None:
    """``store.get(key)``, past any per-process layer: the token every process would find."""
    return store.get_shared(key) if isinstance(store, ProcessCachedStore) else store.get(key)
