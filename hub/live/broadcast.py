"""One broadcast channel per process, fanned out to thousands of SSE readers.

Each process holds ONE subscription: a Redis pub/sub channel (``govhub:live:<db>``) when
``GOVHUB_REDIS_URL`` is set, an in-process inbox on the embedded default. A single dispatcher
task reads it, frames each message ONCE as SSE bytes and puts the same ``bytes`` object into every
reader's bounded queue; one keep-alive loop per process does the same with a comment frame.

Several processes without Redis (``govhub serve --workers 2`` on the embedded default): an entry
written through another process never reaches this one's inbox. One poll task per process asks
the database, every ``GOVHUB_LIVE_POLL_SECONDS``, for the last event id of every session that has
readers here (ONE query per process, however many readers); a session that moved on is caught up
from ``live_events`` through the dispatcher, like a gap. With Redis the same poll runs 20 times
less often, as the safety net for messages pub/sub lost while the subscription reconnected.

Garbage collector. A full collection walks every tracked object the process holds, and each
reader holds a hundred or so (its connection, request cycle, coroutine, queue); every event
promotes a few short-lived objects per reader (its wake-up future) into the old generation, so at
5,000 readers a full collection (0.3-0.9 s, every pause a lag for every reader) came every few
seconds. When ``freeze_gc`` is on (``govhub serve``, which freezes its start-up objects too), a
check every 2 s moves the readers' objects out of the collector's way (``gc.freeze()``) once
``FREEZE_STEP`` readers joined since the last freeze; full collections then walk only what is
younger. Objects that are frozen are still freed by reference counting when readers leave;
reference cycles among them are not collected until ``gc.unfreeze()``, which runs (with one full
collection, and a new freeze) when the readers fall to half of what was frozen.

Ordering. Event ids are assigned under the live session's row lock, so they commit in id order;
messages may still arrive out of order from two processes, or be lost (pub/sub is fire and
forget). A topic (one session's readers in this process) remembers the last id it dispatched; a
message further ahead is preceded by the missing events read from the database, a message at or
behind it is dropped. A reader whose queue is full is dropped: its client reconnects with
``Last-Event-ID`` and replays from ``live_events``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import signal
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hub.live.rules import KEEPALIVE_FRAME, sse_frame
from hub.metrics import metrics

log = logging.getLogger(__name__)

CHANNEL = "govhub:live"


def channel_for(redis_url: str) -> str:
    """``govhub:live:<db>``: pub/sub channels are shared by every database of a Redis server,
    so hubs (or test runs) on other databases of the same server must not hear each other."""
    from redis.connection import parse_url

    return f"{CHANNEL}:{parse_url(redis_url).get('db', 0)}"


QUEUE_SIZE = 256
KEEPALIVE_SECONDS = 15.0

# A message on the channel: {"session": id, "id": event id | None, "type": str, "data": {...},
# "console": bool (presence and approval notices: consoles only)}.
Message = dict[str, Any]
# One queued frame: (event id or None, event type, the SSE bytes shared by every reader).
Frame = tuple[int | None, str, bytes]
CLOSE: Frame = (None, "close", b"")

EventLoader = Callable[[int, int, int], list[Message]]  # (session, after id, up to id) -> events
LastIdLoader = Callable[[int], int]
HeadsLoader = Callable[[list[int]], dict[int, int]]  # sessions -> their last event id
REDIS_POLL_FACTOR = 20  # with Redis the database poll is only a safety net
FREEZE_STEP = 500  # readers joined since the last gc.freeze() before the next one
FREEZE_CHECK_SECONDS = 2.0
DRAIN_CHECK_SECONDS = 0.2


def server_draining() -> bool:
    """True once this process's uvicorn server was told to stop (SIGTERM, SIGINT).

    uvicorn installs its bound ``Server.handle_exit`` as the SIGTERM handler while it serves and
    sets ``should_exit`` there. It then waits, with no time limit (``govhub serve`` sets none),
    for every open response to finish before the app's shutdown runs, so an event stream that
    ignored this flag kept the process alive until it was killed.
    """
    server = getattr(signal.getsignal(signal.SIGTERM), "__self__", None)
    return bool(getattr(server, "should_exit", False))


class Mailbox:
    """A reader's bounded queue of frames: a deque and at most one waiting future.

    Lighter than ``asyncio.Queue`` (no getter/putter deques, no ``join`` event): thousands of
    readers each hold one, and the garbage collector walks every object they keep alive.
    """

    __slots__ = ("frames", "limit", "waiter")

    def __init__(self, limit: int = QUEUE_SIZE) -> None:
        self.frames: deque[Frame] = deque()
        self.limit = limit
        self.waiter: asyncio.Future[None] | None = None

    def put(self, frame: Frame) -> bool:
        """Queue ``frame`` and wake the reader; False (nothing queued) when the box is full."""
        if len(self.frames) >= self.limit:
            return False
        self.frames.append(frame)
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)
        return True

    def close(self) -> None:
        """Drop what is queued; the reader's next take is CLOSE."""
        self.frames.clear()
        self.put(CLOSE)

    async def take(self) -> list[Frame]:
        """Everything queued (waiting for at least one frame)."""
        while not self.frames:
            waiter = self.waiter = asyncio.get_running_loop().create_future()
            await waiter
        taken = list(self.frames)
        self.frames.clear()
        return taken


@dataclass(eq=False)
class Reader:
    session_id: int
    console: bool = False
    queue: Mailbox = field(default_factory=Mailbox)
    dropped: bool = False


@dataclass(eq=False)
class Topic:
    readers: set[Reader] = field(default_factory=set)
    last_id: int | None = None  # None until read from the database
    backlog: list[Message] = field(default_factory=list)


class Broadcaster:
    def __init__(
        self,
        *,
        redis_url: str | None,
        load_events: EventLoader,
        load_last_id: LastIdLoader,
        load_heads: HeadsLoader | None = None,
        poll_seconds: float = 0.25,
        queue_size: int = QUEUE_SIZE,
        keepalive_seconds: float = KEEPALIVE_SECONDS,
        trace: bool = False,
        freeze_gc: bool = False,
        draining: Callable[[], bool] | None = None,
    ) -> None:
        self.redis_url = redis_url
        self.channel = channel_for(redis_url) if redis_url else CHANNEL
        self.load_events = load_events
        self.load_last_id = load_last_id
        self.load_heads = load_heads
        self.poll_seconds = poll_seconds * (REDIS_POLL_FACTOR if redis_url else 1)
        self.polls = 0  # database polls made (one query each, whatever the number of readers)
        self.caught_up = 0  # events this process learned of from the database, not a message
        self.queue_size = queue_size
        self.keepalive_seconds = keepalive_seconds
        self.topics: dict[int, Topic] = {}
        self.loop: asyncio.AbstractEventLoop | None = None
        self._inbox: asyncio.Queue[Message] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._redis_publisher: Any = None
        self._lock = threading.Lock()
        self.freeze_gc = freeze_gc
        self.draining = draining  # the server is stopping: end every stream (see _drain_watch)
        self.drained = False
        self.frozen_readers = 0  # readers held at the last gc.freeze()
        self.frames_built = 0  # how many times a message was framed (once per message)
        self.dropped_readers = 0
        # GOVHUB_LIVE_TRACE=1: per event, publish -> dispatch -> queued -> last reader's send.
        self.trace: Trace | None = Trace() if trace else None

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        if self.loop is not None:
            return
        self.loop = asyncio.get_running_loop()
        self._inbox = asyncio.Queue()
        self._tasks.append(asyncio.create_task(self._dispatch_forever()))
        self._tasks.append(asyncio.create_task(self._keepalive_forever()))
        if self.load_heads is not None:
            self._tasks.append(asyncio.create_task(self._poll_forever()))
        if self.freeze_gc:
            self._tasks.append(asyncio.create_task(self._freeze_forever()))
        if self.draining is not None:
            self._tasks.append(asyncio.create_task(self._drain_watch()))
        if self.redis_url:
            ready = asyncio.Event()
            self._tasks.append(asyncio.create_task(self._listen_redis(ready)))
            await asyncio.wait_for(ready.wait(), timeout=10)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        for topic in self.topics.values():
            for reader in topic.readers:
                self._close(reader)
        self.topics.clear()
        self.loop = None

    # -- publishing (any thread, after the transaction committed) --------------------------------

    def publish(self, message: Message) -> None:
        if "sent" not in message:  # for govhub_live_broadcast_lag_seconds
            message = {**message, "sent": time.time()}
        if self.trace is not None and message.get("id") is not None:
            self.trace.published(int(message["session"]), int(message["id"]))
        if self.redis_url:
            with self._lock:
                if self._redis_publisher is None:
                    import redis

                    self._redis_publisher = redis.Redis.from_url(self.redis_url)
                publisher = self._redis_publisher
            try:
                publisher.publish(self.channel, json.dumps(message, ensure_ascii=False))
            except Exception:  # readers still catch up from the event log on reconnect or gap
                log.exception("live: could not publish to Redis")
            return
        loop, inbox = self.loop, self._inbox
        if loop is None or inbox is None:
            return  # nobody in this process has ever listened
        try:
            loop.call_soon_threadsafe(inbox.put_nowait, message)
        except RuntimeError:  # the loop has closed
            return

    # -- readers ---------------------------------------------------------------------------------

    async def subscribe(self, session_id: int, *, console: bool = False) -> Reader:
        await self.start()
        reader = Reader(session_id, console, Mailbox(self.queue_size))
        topic = self.topics.get(session_id)
        if topic is None:
            topic = self.topics[session_id] = Topic()
            topic.readers.add(reader)
            last_id = await asyncio.to_thread(self.load_last_id, session_id)
            if topic.last_id is None:
                topic.last_id = last_id
                backlog, topic.backlog = topic.backlog, []
                for message in backlog:
                    await self._dispatch(message)
        else:
            topic.readers.add(reader)
        if self.drained:  # a request that came in as the server began to stop
            self._close(reader)
        self._count_readers()
        return reader

    def unsubscribe(self, reader: Reader) -> None:
        topic = self.topics.get(reader.session_id)
        if topic is None:
            return
        topic.readers.discard(reader)
        if not topic.readers:
            del self.topics[reader.session_id]
        self._count_readers()

    def reader_count(self) -> int:
        return sum(len(t.readers) for t in self.topics.values())

    def _count_readers(self) -> None:
        """``govhub_live_readers`` (this process's share; /metrics adds the processes up)."""
        metrics().live_readers.set(self.reader_count())

    # -- dispatching -----------------------------------------------------------------------------

    async def _dispatch_forever(self) -> None:
        assert self._inbox is not None
        while True:
            message = await self._inbox.get()
            try:
                await self._dispatch(message)
            except Exception:
                log.exception("live: dispatch failed")

    async def _dispatch(self, message: Message) -> None:
        sent = message.get("sent")
        if isinstance(sent, int | float):
            metrics().broadcast_lag.observe(max(0.0, time.time() - sent))
        topic = self.topics.get(int(message["session"]))
        if topic is None:
            return
        if "head" in message:  # the poll saw the session move on: read what this process missed
            await self._catch_up(topic, int(message["session"]), int(message["head"]))
            return
        event_id = message.get("id")
        if event_id is None:
            self._fan(topic, (None, message["type"], self._frame(message)), message.get("console"))
            return
        if topic.last_id is None:
            topic.backlog.append(message)
            return
        if event_id <= topic.last_id:
            return  # already dispatched (a duplicate, or filled in from the database)
        if event_id > topic.last_id + 1:
            await self._catch_up(topic, int(message["session"]), event_id - 1)
        self._fan(topic, (event_id, _kind(message), self._frame(message)), False)
        topic.last_id = event_id

    async def _catch_up(self, topic: Topic, session_id: int, upto: int) -> None:
        """Fan out the events ``topic.last_id < id <= upto`` read from the database, in order."""
        if topic.last_id is None or upto <= topic.last_id:
            return
        missing = await asyncio.to_thread(self.load_events, session_id, topic.last_id, upto)
        for earlier in missing:
            if earlier["id"] <= (topic.last_id or 0):
                continue
            self._fan(topic, (earlier["id"], _kind(earlier), self._frame(earlier)), False)
            topic.last_id = earlier["id"]
            self.caught_up += 1

    async def _poll_forever(self) -> None:
        """One query per interval for every session with readers here; news goes to the inbox."""
        assert self.load_heads is not None and self._inbox is not None
        while True:
            await asyncio.sleep(self.poll_seconds)
            known = {sid: t.last_id for sid, t in self.topics.items() if t.last_id is not None}
            if not known:
                continue
            try:
                heads = await asyncio.to_thread(self.load_heads, list(known))
            except Exception:
                log.exception("live: could not poll the database for new events")
                continue
            self.polls += 1
            for session_id, head in heads.items():
                topic = self.topics.get(session_id)
                if topic is not None and topic.last_id is not None and head > topic.last_id:
                    self._inbox.put_nowait({"session": session_id, "head": head})

    def _frame(self, message: Message) -> bytes:
        self.frames_built += 1
        return sse_frame(message.get("id"), message["type"], message["data"])

    def _fan(self, topic: Topic, frame: Frame, console_only: bool | None) -> None:
        started = time.perf_counter()
        queued = 0
        for reader in list(topic.readers):
            if console_only and not reader.console:
                continue
            if reader.queue.put(frame):
                queued += 1
            else:
                self._drop(topic, reader)
        if self.trace is not None and frame[0] is not None and topic.readers:
            session_id = next(iter(topic.readers)).session_id
            self.trace.fanned(session_id, frame[0], started, queued)

    def _drop(self, topic: Topic, reader: Reader) -> None:
        """A reader too slow to keep up: close it; it reconnects and replays what it missed."""
        topic.readers.discard(reader)
        reader.dropped = True
        self.dropped_readers += 1
        self._close(reader)
        self._count_readers()

    @staticmethod
    def _close(reader: Reader) -> None:
        reader.queue.close()

    async def _keepalive_forever(self) -> None:
        frame: Frame = (None, "keepalive", KEEPALIVE_FRAME)
        while True:
            await asyncio.sleep(self.keepalive_seconds)
            for topic in list(self.topics.values()):
                self._fan(topic, frame, None)

    async def _drain_watch(self) -> None:
        """When the server starts to stop, end every reader's stream (and any opened later).

        The server waits for open responses before the app's shutdown (which stops this
        broadcaster), so streams must end first; clients reconnect after ``retry`` with their
        Last-Event-ID, to another process or to this one once it is back, and miss nothing.
        """
        assert self.draining is not None
        while not self.draining():
            await asyncio.sleep(DRAIN_CHECK_SECONDS)
        self.drained = True
        for topic in list(self.topics.values()):
            for reader in list(topic.readers):
                self._close(reader)

    async def _freeze_forever(self) -> None:
        while True:
            await asyncio.sleep(FREEZE_CHECK_SECONDS)
            self.check_freeze()

    def check_freeze(self) -> None:
        """Freeze after ``FREEZE_STEP`` new readers; unfreeze (and collect) when half have left."""
        readers = self.reader_count()
        if readers >= self.frozen_readers + FREEZE_STEP:
            gc.freeze()
            self.frozen_readers = readers
        elif self.frozen_readers and readers <= self.frozen_readers // 2:
            gc.unfreeze()
            gc.collect()
            gc.freeze()  # start-up objects and the readers still here
            self.frozen_readers = readers

    async def _listen_redis(self, ready: asyncio.Event) -> None:
        import redis.asyncio as aioredis

        assert self._inbox is not None
        while True:
            client = aioredis.Redis.from_url(self.redis_url or "")
            try:
                async with client.pubsub() as pubsub:
                    await pubsub.subscribe(self.channel)
                    ready.set()
                    async for item in pubsub.listen():
                        if item.get("type") != "message":
                            continue
                        try:
                            self._inbox.put_nowait(json.loads(item["data"]))
                        except ValueError:
                            log.warning("live: unreadable message on %s", self.channel)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("live: Redis subscription lost; resubscribing")
                ready.set()
                await asyncio.sleep(1)
            finally:
                await client.aclose()  # type: ignore[attr-defined]


class Trace:
    """Server-side timing of each event's fan-out, logged when its last reader's send returned.

    ``publish``: the API committed and published; ``dispatch``: the dispatcher took it; ``queued``:
    every reader's queue holds it; ``sent``: the last reader's ``send`` returned (bytes handed to
    the socket). Times are milliseconds after publish (after dispatch with Redis, where the
    publishing process is another one).
    """

    def __init__(self) -> None:
        self.pending: dict[tuple[int, int], list[float]] = {}
        self.publish_times: dict[tuple[int, int], float] = {}
        self._gc_started = 0.0
        gc.callbacks.append(self._gc)

    def _gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
            return
        took = (time.perf_counter() - self._gc_started) * 1000
        if took >= 5:
            log.warning(
                "live trace: gc generation %s took %.1f ms (%s collected)",
                info.get("generation"),
                took,
                info.get("collected"),
            )

    def published(self, session_id: int, event_id: int) -> None:
        self.publish_times[(session_id, event_id)] = time.perf_counter()

    def fanned(self, session_id: int, event_id: int, started: float, readers: int) -> None:
        now = time.perf_counter()
        key = (session_id, event_id)
        published = self.publish_times.pop(key, started)
        self.pending[key] = [published, started, now, float(readers)]
        if readers == 0:
            self.sent(session_id, event_id)

    def sent(self, session_id: int, event_id: int) -> None:
        key = (session_id, event_id)
        entry = self.pending.get(key)
        if entry is None:
            return
        entry[3] -= 1
        if entry[3] > 0:
            return
        del self.pending[key]
        published, started, queued = entry[:3]
        log.warning(
            "live trace: session %s event %s dispatch %.1f ms queued %.1f ms sent %.1f ms",
            session_id,
            event_id,
            (started - published) * 1000,
            (queued - published) * 1000,
            (time.perf_counter() - published) * 1000,
        )


def _kind(message: Message) -> str:
    """The frame's kind: ``final`` for the status event that ends the session (streams close)."""
    if message["type"] == "status" and message["data"].get("status") in ("ended", "archived"):
        return "final"
    return str(message["type"])
