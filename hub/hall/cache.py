"""The hall's page cache: every public page and feed rendered once per change (docs/hall.md).

**The hall version.** Whatever changes what the hall shows — a hall entry saved or taken down
(publication, correction, ingest), a post withdrawn, a copy landing on a platform (its link on
the post page), an org or account renamed or moved — marks the session that made it
(:func:`mark_changed`, or the session hooks below, which notice those rows in any ORM flush or
ORM ``UPDATE``). When that session commits, the same transaction stamps the row
``hall-version`` of ``heartbeats`` with the time, so the change and the new version become
visible together, to every process, on SQLite as on PostgreSQL, with or without Redis. The
delivery engine's copies landing (hundreds within seconds in a fan-out) are the exception: they
are stamped just after their commits, once per process every ``STAMP_COALESCE`` (0.1 s), by
:func:`changed_soon`.

**The check.** Each web process reads that one row at most every ``GOVHUB_HALL_CACHE_CHECK_MS``
(250 ms): one request pays for a primary-key read, the others use the version it last read. A
commit in the process itself is seen at once. With ``GOVHUB_REDIS_URL`` set, the committing
process also publishes on the channel ``govhub:hall-version``, and every web process subscribed
to it (a thread, started with its first hall request) reads the row again at its next request:
other processes see the change within milliseconds, and the poll is the backstop for a message
lost while Redis was away. A cached answer is keyed by (path, normalised
query) and kept with the version it was rendered under; under another version it is rendered
again (one request renders, the others of that process wait for it). The version is read
*before* rendering, so an answer is never older than the version it is filed under: a
withdrawn post is gone from every page within the check interval plus one render.

:class:`HallCache` is ASGI middleware inside the security headers (they apply to cached answers
too) and outside the session middleware: hall requests reach the app without their cookies, so
a page cannot vary by who asks and never sets a cookie. Searches (``q=``) are not cached.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
import time
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from typing import Any

from fastapi.concurrency import run_in_threadpool
from sqlalchemy import event, inspect, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import ORMExecuteState
from sqlalchemy.orm import Session as OrmSession
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hub.config import Settings
from hub.hall.rules import cache_key, cacheable_path, not_modified
from hub.sqltypes import utcnow

log = logging.getLogger(__name__)

VERSION_ROW = "hall-version"  # its row in ``heartbeats``: ``at`` is the time of the last change
_CHANGED = "govhub.hall_changed"  # Session.info flag
WATCHED_TABLES = frozenset({"hall_entries", "posts", "post_versions", "orgs", "accounts"})
MAX_ENTRY_AGE = 60.0  # seconds; a backstop for a change made behind the ORM's back (raw SQL)
MAX_BYTES = 64 * 1024 * 1024  # per process, across entries
CHANNEL = "govhub:hall-version"
REDIS_PAUSE = 5.0  # seconds without publishing after Redis failed (a commit must not wait on it)
# A change announced after its commit (:func:`changed_soon`: copies landing) is stamped within
# this many seconds, once for all such changes of the process in that time.
STAMP_COALESCE = 0.1
STAMP_RETRIES = 3  # a deferred stamp that failed (the database away) is tried again, 1 s apart


# -- the version ---------------------------------------------------------------------------------

_local_lock = threading.Lock()
_local_generation = 0


def local_generation() -> int:
    """Bumped when a session of this process commits a hall change (seen without a read)."""
    return _local_generation


def mark_changed(session: OrmSession) -> None:
    """Say that ``session``'s transaction changes what the hall shows (stamped at commit)."""
    session.info[_CHANGED] = True


def changed_soon(engine: Engine) -> None:
    """A change that the hall shows has just committed without marking its session (the
    delivery engine's copies landing: a fan-out lands hundreds within seconds).

    This process's pages see it at once (the local generation); the hall version is stamped
    in a transaction of its own, and announced on Redis, within :data:`STAMP_COALESCE`, once
    for every such change of the process in that time — not once per copy in each copy's
    transaction, where 32 threads took turns at the one ``hall-version`` row lock, held across
    each commit. A stamp made after the change committed is as safe as one made with it: any
    page filed under the new version was rendered after reading it, so after the change.
    """
    global _local_generation
    with _local_lock:
        _local_generation += 1
        if engine in _stamps_due:
            return  # the stamp already due covers this change: it reads nothing before it runs
        _stamps_due.add(engine)
    _schedule_stamp(engine, STAMP_COALESCE, STAMP_RETRIES)


_stamps_due: set[Engine] = set()


def _schedule_stamp(engine: Engine, delay: float, retries: int) -> None:
    timer = threading.Timer(delay, _deferred_stamp, args=(engine, retries))
    timer.daemon = True  # never holds up an exit: the exit hook below stamps what is due
    timer.start()


def _deferred_stamp(engine: Engine, retries: int) -> None:
    global _local_generation
    with _local_lock:
        if engine not in _stamps_due:
            return  # stamped meanwhile (at exit)
        # from here on a new change schedules another stamp: this one may start too early for it
        _stamps_due.discard(engine)
    try:
        with engine.begin() as connection:
            stamp(connection)
    except Exception:
        log.warning("hall cache: cannot stamp the hall version", exc_info=True)
        if retries > 0:
            with _local_lock:
                again = engine not in _stamps_due
                _stamps_due.add(engine)
            if again:
                _schedule_stamp(engine, 1.0, retries - 1)
        return
    with _local_lock:
        _local_generation += 1
    announce()


def stamp_due_now() -> None:
    """Make every stamp still due in this process now (at exit; tests)."""
    with _local_lock:
        due = list(_stamps_due)
    for engine in due:
        _deferred_stamp(engine, 0)


def _attr_changed(obj: Any, *names: str) -> bool:
    state = inspect(obj)
    return any(state.attrs[name].history.has_changes() for name in names)


_watched_classes: tuple[type, ...] = ()


def _watched() -> tuple[type, ...]:
    global _watched_classes
    if not _watched_classes:
        from hub.accounts.models import Account
        from hub.delivery.models import Delivery, HallEntry
        from hub.orgs.models import Org
        from hub.posts.models import Post, PostVersion

        _watched_classes = (HallEntry, Org, Delivery, Post, PostVersion, Account)
    return _watched_classes


def _shows_on_hall(obj: Any, *, new: bool) -> bool:
    if not isinstance(obj, _watched()):
        return False
    from hub.accounts.models import Account
    from hub.delivery.models import Delivery, DeliveryStatus, HallEntry
    from hub.orgs.models import Org
    from hub.posts.models import Post, PostVersion

    if isinstance(obj, HallEntry | Org):
        return True
    if isinstance(obj, Delivery):
        if new:
            return obj.status is DeliveryStatus.published
        history = inspect(obj).attrs.status.history
        if history.has_changes():
            before = list(history.deleted)
            return not before or DeliveryStatus.published in (*before, *history.added)
        return _attr_changed(obj, "remote_url")
    if new:
        return False  # a new post, version or account is not on the hall before it publishes
    if isinstance(obj, Post):
        return _attr_changed(obj, "status", "reason", "org_id")
    if isinstance(obj, PostVersion):
        return True
    if isinstance(obj, Account):
        return _attr_changed(obj, "name", "org_id")
    return False


def _before_flush(session: OrmSession, _context: Any, _instances: Any) -> None:
    if session.info.get(_CHANGED):
        return
    changed = (
        any(_shows_on_hall(obj, new=True) for obj in session.new)
        or any(_shows_on_hall(obj, new=False) for obj in session.dirty)
        or any(_shows_on_hall(obj, new=False) for obj in session.deleted)
    )
    if changed:
        mark_changed(session)


def _on_execute(state: ORMExecuteState) -> None:
    if not (state.is_update or state.is_delete) or state.session.info.get(_CHANGED):
        return
    table = getattr(state.statement, "table", None)
    if getattr(table, "name", None) in WATCHED_TABLES:
        mark_changed(state.session)


def _before_commit(session: OrmSession) -> None:
    if session.in_nested_transaction():
        return  # a savepoint: the stamp goes with the outer commit (and takes its lock last)
    session.flush()  # the hooks see every pending change before we decide
    if session.info.get(_CHANGED):
        stamp(session.connection())


def _after_commit(session: OrmSession) -> None:
    global _local_generation
    if session.info.pop(_CHANGED, None):
        with _local_lock:
            _local_generation += 1
        announce()


_redis_failed_at = -1e9


def announce() -> None:
    """Tell the other processes through Redis, when there is one (never fails the caller)."""
    global _redis_failed_at
    from hub.config import get_settings

    if time.monotonic() - _redis_failed_at < REDIS_PAUSE:
        return
    try:
        url = get_settings().redis_url
        if url:
            _publisher(url).publish(CHANNEL, b"changed")
    except Exception:  # the poll still finds the change
        _redis_failed_at = time.monotonic()
        log.warning("hall cache: cannot publish the change on Redis", exc_info=True)


_publishers: dict[str, Any] = {}


def _publisher(url: str) -> Any:
    if url not in _publishers:
        import redis

        _publishers[url] = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
    return _publishers[url]


def _listen(ref: weakref.ref[HallCache], url: str) -> None:
    """Until the cache is gone: on each message, make its next request read the version."""
    import redis

    while ref() is not None:
        try:
            client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2)
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                pubsub.subscribe(CHANNEL)
                while _recheck_on(ref, pubsub.get_message(timeout=1.0)):
                    pass
            finally:
                pubsub.close()
                client.close()
        except Exception:
            log.warning("hall cache: Redis subscription lost, polling only", exc_info=True)
            time.sleep(REDIS_PAUSE)


def _recheck_on(ref: weakref.ref[HallCache], message: Any) -> bool:
    """False once the cache is gone (its thread ends); a message makes it read the version."""
    cache = ref()
    if cache is None:
        return False
    if message is not None:
        cache.checked_at = -1e9
    return True


def _after_rollback(session: OrmSession) -> None:
    session.info.pop(_CHANGED, None)


def stamp(connection: Connection) -> None:
    """Set the hall version to now, in ``connection``'s transaction."""
    from hub.system import Heartbeat

    table: Any = Heartbeat.__table__  # type: ignore[attr-defined]
    now = utcnow()
    dialect = connection.dialect.name
    if dialect in ("postgresql", "sqlite"):
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        statement = insert(table).values(name=VERSION_ROW, at=now)
        connection.execute(
            statement.on_conflict_do_update(index_elements=["name"], set_={"at": now})
        )
        return
    result = connection.execute(update(table).where(table.c.name == VERSION_ROW).values(at=now))
    if not result.rowcount:
        connection.execute(table.insert().values(name=VERSION_ROW, at=now))


_installed = False


def install() -> None:
    """Watch every ORM session of the process for hall changes (idempotent)."""
    global _installed
    if _installed:
        return
    _installed = True
    event.listen(OrmSession, "before_flush", _before_flush)
    event.listen(OrmSession, "do_orm_execute", _on_execute)
    event.listen(OrmSession, "before_commit", _before_commit)
    event.listen(OrmSession, "after_commit", _after_commit)
    event.listen(OrmSession, "after_rollback", _after_rollback)
    import atexit

    atexit.register(stamp_due_now)


def read_version(engine: Engine) -> datetime | None:
    """The time of the last hall change any process committed (None: never)."""
    from hub.system import Heartbeat

    table: Any = Heartbeat.__table__  # type: ignore[attr-defined]
    with engine.connect() as connection:
        at: datetime | None = connection.execute(
            select(table.c.at).where(table.c.name == VERSION_ROW)
        ).scalar()
    return at


# -- the cache -----------------------------------------------------------------------------------


def cache_control(settings: Settings) -> str:
    return (
        f"public, max-age={settings.hall_cache_max_age}, "
        f"stale-while-revalidate={settings.hall_cache_stale_seconds}"
    )


Version = tuple[datetime | None, int]


@dataclass(frozen=True)
class Cached:
    version: Version
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    etag: str
    last_modified: datetime
    stored: float
    route: Any = None  # the route that rendered it (``scope["route"]``, for the request log)


@dataclass(frozen=True)
class Raw:
    """An answer the cache does not keep, replayed as the app gave it."""

    start: Message
    body: bytes


_DROPPED = {b"content-length", b"etag", b"cache-control", b"last-modified", b"date"}
_STORED_STATUSES = (200, 410)


class HallCache:
    """Serve the hall's GETs from memory while the hall version stands (see the module doc)."""

    def __init__(self, app: ASGIApp, *, settings: Settings) -> None:
        self.app = app
        self.enabled = settings.hall_cache
        self.redis_url = settings.redis_url
        self.listening = False
        self.interval = settings.hall_cache_check_ms / 1000
        self.max_entries = settings.hall_cache_entries
        self.cache_control = cache_control(settings).encode()
        self.entries: OrderedDict[tuple[str, str], Cached] = OrderedDict()
        self.size = 0
        self.inflight: dict[tuple[str, str], tuple[asyncio.AbstractEventLoop, asyncio.Event]] = {}
        self.version: datetime | None = None
        self.checked_at = -1e9
        self.read_at = -1e9
        self.rendered_at: datetime = utcnow()  # Last-Modified before any change was stamped

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope.get("method") != "GET"
            or not cacheable_path(scope.get("path", ""))
        ):
            await self.app(scope, receive, send)
            return
        # Hall pages do not depend on who asks: no cookie reaches them, none is set.
        scope["headers"] = [(k, v) for k, v in scope.get("headers", []) if k != b"cookie"]
        key = cache_key(scope.get("path", ""), scope.get("query_string", b""))
        version = await self._version() if self.enabled and key is not None else None
        if key is None or version is None:
            await self.app(scope, receive, send)
            return
        found: Cached | Raw | None = self._lookup(key, version)
        if found is None:
            found = await self._render(key, version, scope, receive)
        if isinstance(found, Raw):  # not storable (a 404, an error): sent as the app answered
            await send(found.start)
            await send({"type": "http.response.body", "body": found.body})
            return
        if found.route is not None:
            scope["route"] = found.route  # the request log times it under its route
        await self._answer(found, scope, send)

    async def _version(self) -> Version | None:
        if self.redis_url and not self.listening:
            self.listening = True
            threading.Thread(
                target=_listen, args=(weakref.ref(self), self.redis_url), daemon=True
            ).start()
        now = time.monotonic()
        if now - self.checked_at >= self.interval:
            self.checked_at = now
            try:
                from hub.db import get_engine

                self.version = await run_in_threadpool(read_version, get_engine())
                self.read_at = time.monotonic()
            except Exception:  # the database is away: answer from it (or fail) as uncached pages
                log.warning("hall cache: cannot read the hall version", exc_info=True)
        if time.monotonic() - self.read_at > self.interval * 2 + 1:
            return None  # the version is too old to trust
        return (self.version, local_generation())

    def _lookup(self, key: tuple[str, str], version: Version) -> Cached | None:
        found = self.entries.get(key)
        if found is None:
            return None
        if found.version != version or time.monotonic() - found.stored > MAX_ENTRY_AGE:
            self._drop(key)
            return None
        self.entries.move_to_end(key)
        return found

    def _drop(self, key: tuple[str, str]) -> None:
        gone = self.entries.pop(key, None)
        if gone is not None:
            self.size -= len(gone.body)

    def _store(self, key: tuple[str, str], cached: Cached) -> None:
        self._drop(key)
        if cached.version != (self.version, local_generation()):
            return  # the hall changed while this rendered: serve it once, keep nothing
        self.entries[key] = cached
        self.size += len(cached.body)
        while self.entries and (len(self.entries) > self.max_entries or self.size > MAX_BYTES):
            self._drop(next(iter(self.entries)))

    async def _render(
        self, key: tuple[str, str], version: Version, scope: Scope, receive: Receive
    ) -> Cached | Raw:
        loop = asyncio.get_running_loop()
        waiting = self.inflight.get(key)
        if waiting is not None and waiting[0] is loop:
            await waiting[1].wait()  # another request of this process renders it
            found = self._lookup(key, version)
            if found is not None:
                return found
        done = asyncio.Event()
        self.inflight[key] = (loop, done)
        try:
            return await self._capture(key, version, scope, receive)
        finally:
            if self.inflight.get(key, (None, None))[1] is done:
                del self.inflight[key]
            done.set()

    async def _capture(
        self, key: tuple[str, str], version: Version, scope: Scope, receive: Receive
    ) -> Cached | Raw:
        start: Message = {}
        chunks: list[bytes] = []

        async def keep(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        inner = dict(scope)
        inner["headers"] = [
            (k, v)
            for k, v in scope.get("headers", [])
            if k not in (b"if-none-match", b"if-modified-since")
        ]
        await self.app(inner, receive, keep)
        route = inner.get("route")
        if route is not None:
            scope["route"] = route
        status = int(start.get("status", 500))
        headers = list(start.get("headers", []))
        body = b"".join(chunks)
        if status not in _STORED_STATUSES or any(k == b"set-cookie" for k, _ in headers):
            return Raw(start, body)
        cached = Cached(
            version=version,
            status=status,
            headers=[(k, v) for k, v in headers if k not in _DROPPED],
            body=body,
            etag='"' + hashlib.sha256(body).hexdigest()[:32] + '"',
            last_modified=version[0] or self.rendered_at,
            stored=time.monotonic(),
            route=route,
        )
        self._store(key, cached)
        return cached

    async def _answer(self, cached: Cached, scope: Scope, send: Send) -> None:
        request_headers = dict(scope.get("headers", []))
        validators = [
            (b"etag", cached.etag.encode()),
            (b"last-modified", format_datetime(cached.last_modified, usegmt=True).encode()),
            (b"cache-control", self.cache_control),
        ]
        if cached.status == 200 and not_modified(
            request_headers, cached.etag, cached.last_modified
        ):
            await send({"type": "http.response.start", "status": 304, "headers": validators})
            await send({"type": "http.response.body", "body": b""})
            return
        headers = [*cached.headers, *validators]
        headers.append((b"content-length", str(len(cached.body)).encode()))
        await send({"type": "http.response.start", "status": cached.status, "headers": headers})
        await send({"type": "http.response.body", "body": cached.body})
