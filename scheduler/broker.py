"""The embedded broker: kombu's SQLAlchemy transport, made safe for several processes.

kombu passes every transport option of this transport to ``create_engine``, so its polling
interval cannot be set through ``broker_transport_options``; a subclass registered under its own
alias carries it as class data. ``GOVHUB_BROKER_URL=sqla+sqlite:///...`` is mapped onto it.

kombu's channel creates its tables and queue rows lazily, on the first publish or consume, and
only expects ``OperationalError`` there. Two processes starting together (beat and a worker in
``govhub demo``) could both insert the same queue row: the loser's ``IntegrityError`` escaped
without a rollback, its session stayed in a failed transaction, and every later publish raised
``PendingRollbackError`` — beat ran on, sending nothing. So here:

- :func:`prepare` creates the tables and both queues once, idempotently, before any process
  publishes (``govhub db upgrade``, and every command that starts a process);
- the channel treats a lost insert race as "the row exists now" and reads it;
- any database error in a broker call rolls the session back before it propagates, and is a
  *connection* error to kombu, so the caller's retry reconnects and goes on;
- ``Producer.batch()`` (kombu's batched publishing, which Redis does as one pipeline) stores
  the batch's messages in one transaction here: kombu commits each message, and a fan-out to a
  thousand accounts took a thousand SQLite commits (~30 s on the shared VM).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from kombu.transport import TRANSPORT_ALIASES
from kombu.transport.sqlalchemy import Channel as SQLAlchemyChannel
from kombu.transport.sqlalchemy import Transport as SQLAlchemyTransport
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

ALIAS = "govhub-sqla"
POLLING_INTERVAL = 0.1

T = TypeVar("T")
_kombu: Any = SQLAlchemyChannel  # kombu's own methods (the type stubs do not list them)


class PublishBatch:
    """kombu's publish-batch session for this transport: messages added, committed once."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self._queues: dict[str, Any] = {}

    def publish(self, message: Any, **kwargs: Any) -> Any:
        return self.channel.basic_publish(message, _publish_batch=self, **kwargs)

    def add(self, queue: str, payload: Any) -> None:
        from kombu.utils.json import dumps

        channel = self.channel
        row = self._queues.get(queue)
        if row is None:
            row = self._queues[queue] = channel._get_or_create(queue)
        channel.session.add(channel.message_cls(dumps(payload), row))

    def flush(self) -> None:
        self.channel._rolled_back(self.channel.session.commit)

    def discard(self) -> None:
        self.channel._rolled_back(self.channel.session.rollback)

    def close(self) -> None:
        if self.channel.session.new:  # never flushed: nothing of it may leak into a later commit
            self.discard()


class Channel(SQLAlchemyChannel):
    def create_publish_batch(self, max_size: int) -> PublishBatch:
        return PublishBatch(self)

    def _rolled_back(self, call: Callable[[], T]) -> T:
        """Run one broker operation; on a database error leave the session usable."""
        try:
            return call()
        except SQLAlchemyError:
            try:
                self.session.rollback()
            except SQLAlchemyError:
                self._session = None  # a broken connection: the next call opens a new session
            raise

    def _get_or_create(self, queue: str) -> Any:
        for _ in range(3):
            try:
                return self._rolled_back(lambda: _kombu._get_or_create(self, queue))
            except IntegrityError:
                continue  # another process inserted this queue first: read it next time round
        return self._rolled_back(lambda: _kombu._get_or_create(self, queue))

    def _put(self, queue: str, message: Any, **kwargs: Any) -> None:  # type: ignore[override]
        batch = kwargs.pop("_publish_batch", None)
        if batch is not None:
            self._rolled_back(lambda: batch.add(queue, message))
            return
        self._rolled_back(lambda: _kombu._put(self, queue, message, **kwargs))

    def _get(self, queue: str, timeout: float | None = None) -> Any:
        return self._rolled_back(lambda: _kombu._get(self, queue))

    def _size(self, queue: str) -> int:
        return int(self._rolled_back(lambda: _kombu._size(self, queue)))

    def _purge(self, queue: str) -> int:
        return int(self._rolled_back(lambda: _kombu._purge(self, queue)))


class Transport(SQLAlchemyTransport):
    Channel = Channel
    implements = SQLAlchemyTransport.implements.extend(batch_publish=True)
    polling_interval = POLLING_INTERVAL
    # kombu reconnects and retries on these; a rolled-back integrity or state error is as
    # recoverable as a dropped connection
    connection_errors = (SQLAlchemyError,)  # type: ignore[assignment]


def register() -> None:
    TRANSPORT_ALIASES.setdefault(ALIAS, "scheduler.broker:Transport")


def embedded_url(url: str) -> str:
    """``sqla+sqlite:///x`` -> ``govhub-sqla+sqlite:///x`` (other URLs unchanged)."""
    if url.startswith("sqla+"):
        register()
        return ALIAS + url.removeprefix("sqla")
    return url


def prepare(url: str, queues: Iterable[str], *, attempts: int = 5) -> bool:
    """Create the embedded broker's tables and ``queues`` now, idempotently.

    Returns False for brokers that need nothing (Redis, RabbitMQ declare queues themselves).
    Safe to call from several processes at once: a lost race is retried and then finds the rows.
    """
    if not url.startswith(("sqla+", ALIAS + "+")):
        return False
    from kombu import Connection

    names = list(queues)
    for attempt in range(attempts):
        try:
            with Connection(embedded_url(url)) as connection:
                channel: Any = connection.default_channel
                for name in names:
                    channel._new_queue(name)
            return True
        except SQLAlchemyError:  # e.g. two processes creating the tables at the same moment
            if attempt == attempts - 1:
                raise
            time.sleep(0.1 * (attempt + 1))
    return True
