"""The Celery app and the beat schedule, as named data.

The same code path runs on the embedded broker (kombu's SQLAlchemy transport on SQLite) and on
Redis/RabbitMQ; nothing here runs tasks eagerly.
"""

from __future__ import annotations

from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

from celery import Celery
from sqlalchemy.engine import make_url

from hub.config import Settings, get_settings

# name -> (task, interval). ``expires`` is set to the interval so a late beat never piles up.
BEAT_SCHEDULE: dict[str, tuple[str, timedelta]] = {
    "system.heartbeat": ("system.heartbeat", timedelta(seconds=60)),
    "activity.ingest": ("activity.ingest", timedelta(minutes=10)),
    "inbox.ingest": ("inbox.ingest", timedelta(minutes=5)),
    "clocks.remind": ("clocks.remind", timedelta(seconds=60)),
    "clocks.obligations": ("clocks.obligations", timedelta(hours=1)),
    "posts.release-due": ("posts.release_due", timedelta(seconds=1)),
    "delivery.sweep": ("delivery.sweep", timedelta(seconds=1)),
    "hall.sweep-partners": ("hall.sweep_partners", timedelta(seconds=10)),
    "live.fanout": ("live.fanout", timedelta(seconds=3)),
    # misconfigured accounts are re-tested on their own back-off; this only looks who is due
    "accounts.recheck": ("accounts.recheck", timedelta(minutes=1)),
    # access tokens fetched ahead of expiry (WeChat's stable_token): copies find them cached
    "accounts.keep-tokens": ("accounts.keep_tokens", timedelta(minutes=5)),
    # readers' counts: each account on its own pace (GOVHUB_REACH_INTERVAL_MINUTES) and back-off
    "reach.pull": ("reach.pull", timedelta(minutes=10)),
    # authorisations ending within 7 days: told once per expiry date (hub/notify)
    "notify.tokens": ("notify.tokens", timedelta(hours=1)),
}


# Two queues. A fan-out puts hundreds of publish tasks on ``celery``; the short tasks that must
# not wait behind them go to ``govhub.quick``: the first look at an asynchronous publication
# (WeChat), the scheduler's release of due posts, the sweeper and the heartbeat. Workers consume
# both, and the brokers' consumers alternate between non-empty queues (kombu's round robin), so
# a WeChat copy shows as published while the rest of its fan-out is still going out.
DEFAULT_QUEUE = "celery"
QUICK_QUEUE = "govhub.quick"
QUEUES = (QUICK_QUEUE, DEFAULT_QUEUE)
QUICK_TASKS = ("delivery.poll", "posts.release_due", "delivery.sweep", "system.heartbeat")


def _prepare_broker_url(url: str) -> str:
    from scheduler.broker import embedded_url

    if url.startswith("sqla+sqlite:///"):
        path = make_url(url.removeprefix("sqla+")).database
        if path:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
    return embedded_url(url)


def prepare_broker(settings: Settings) -> bool:
    """Create the embedded broker's tables and queues before any process publishes.

    Idempotent; a no-op for Redis and RabbitMQ. Called by ``govhub db upgrade`` and by every
    command that starts a process, so beat and a worker never race to create them.
    """
    from scheduler.broker import prepare

    return prepare(_prepare_broker_url(settings.broker_url), QUEUES)


def create_celery(settings: Settings) -> Celery:
    app = Celery("govhub", broker=_prepare_broker_url(settings.broker_url))
    conf: dict[str, Any] = {
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_serializer": "json",
        "accept_content": ["json"],
        "result_backend": None,
        "task_ignore_result": True,
        "timezone": "UTC",
        "enable_utc": True,
        "broker_connection_retry_on_startup": True,
        "task_default_queue": DEFAULT_QUEUE,
        "task_routes": {name: {"queue": QUICK_QUEUE} for name in QUICK_TASKS},
        "beat_scheduler": "scheduler.beat:Scheduler",
        "beat_schedule": {
            name: {"task": task, "schedule": every, "options": {"expires": every.total_seconds()}}
            for name, (task, every) in BEAT_SCHEDULE.items()
        },
    }
    if settings.broker_url.startswith("redis"):
        conf["broker_transport_options"] = {"visibility_timeout": 600}
    app.conf.update(conf)
    from celery.signals import beat_init, setup_logging, worker_init, worker_ready, worker_shutdown

    setup_logging.connect(_setup_logging, weak=False)
    worker_init.connect(_setup_metrics, weak=False)
    beat_init.connect(_setup_metrics, weak=False)
    worker_init.connect(_start_worker_heartbeat, weak=False)
    worker_shutdown.connect(_stop_worker_heartbeat, weak=False)
    worker_ready.connect(_warm_task_path, weak=False)  # before the freeze: warmed objects stay
    worker_ready.connect(_freeze_startup_heap, weak=False)
    worker_ready.connect(_first_heartbeat, weak=False)
    app.conf.imports = (
        "scheduler.tasks",
        "scheduler.tasks_clocks",
        "scheduler.tasks_audit",
        "scheduler.tasks_hall",
        "scheduler.tasks_inbox",
        "scheduler.tasks_live",
        "scheduler.tasks_notify",
        "scheduler.tasks_reach",
    )
    return app


def _setup_logging(loglevel: Any = None, **_: Any) -> None:
    """Worker and beat log in the hub's format (hub/logs.py: JSON in production), not Celery's;
    Celery leaves the root logger alone when this signal has a receiver."""
    from hub.logs import configure

    configure(loglevel or "info")


def _setup_metrics(**_: Any) -> None:
    """Before the first count, a worker or beat records its metrics in the host's metrics folder
    (``GOVHUB_METRICS_DIR``), which ``/metrics`` adds up, when metrics are on."""
    from hub.metrics import setup

    setup(get_settings())


def _first_heartbeat(**_: Any) -> None:
    """A worker reports as soon as it consumes; beat's ``system.heartbeat`` task keeps it fresh
    (its first run is one interval after beat starts)."""
    import logging

    from hub.system import record_heartbeat

    try:
        record_heartbeat("worker")
    except Exception:  # the database is away: the heartbeat task will report later
        logging.getLogger(__name__).warning("worker could not record its heartbeat", exc_info=True)


_worker_heartbeat: Any = None


def _start_worker_heartbeat(sender: Any = None, **_: Any) -> None:
    """Before it consumes, the worker process records itself and starts its own heartbeat
    thread (every few seconds, independent of the broker): the sweeper takes the claims of a
    worker that went silent over within ``GOVHUB_WORKER_DEAD_SECONDS`` (docs/delivery.md)."""
    import os
    import socket

    from hub.system import start_worker

    global _worker_heartbeat
    node = str(getattr(sender, "hostname", "") or os.environ.get("GOVHUB_WORKER_NAME") or "")
    node = node or f"celery@{socket.gethostname()}"
    _worker_heartbeat = start_worker(node, dead_seconds=get_settings().worker_dead_seconds)


def _stop_worker_heartbeat(**_: Any) -> None:
    """A worker stopping cleanly (after its running tasks finished) removes its row."""
    from hub.system import stop_worker

    global _worker_heartbeat
    stop_worker(_worker_heartbeat)
    _worker_heartbeat = None


def _warm_task_path(sender: Any = None, **_: Any) -> None:
    """Before the first task, build what every publish task needs, once.

    Otherwise the first fan-out after a worker starts pays for it in every thread at once: the
    modules the tasks import lazily (threads queue on the import lock), each platform's
    connector and the shared HTTP client (its TLS context), the pacer and the token store, and
    one pooled database connection per thread (opened, then kept by the pool). Never fails the
    start: anything left unbuilt is built by the first task that needs it, as before.
    """
    import logging

    try:
        import hub.delivery.service
        import hub.live.service
        import hub.posts.service  # noqa: F401
        from hub.db import get_engine
        from hub.delivery import channels
        from hub.delivery.pacing import get_pacer
        from hub.platforms import platforms

        for platform in platforms():
            try:
                channels.connector_for(platform.value)
            except Exception:  # a platform that cannot be built now is built when needed
                logging.getLogger(__name__).warning("no connector for %s yet", platform)
        channels.token_store()
        get_pacer()
        engine = get_engine()
        threads = int(getattr(getattr(sender, "pool", None), "limit", 0) or 0)
        pool_size = getattr(engine.pool, "size", lambda: 0)()
        connections = [engine.connect() for _ in range(min(threads, pool_size))]
        for connection in connections:
            connection.close()
    except Exception:  # the first tasks build it instead
        logging.getLogger(__name__).warning("worker could not warm its task path", exc_info=True)


def _freeze_startup_heap(**_: Any) -> None:
    """Once the worker is up, keep its start-up objects out of Python's full collections.

    Modules, the Celery app, SQLAlchemy's metadata and compiled statements are never garbage;
    a full collection walking them all paused every thread of a publishing worker (the same
    reason ``govhub serve`` freezes its start-up heap).
    """
    import gc

    gc.collect()
    gc.freeze()


@lru_cache
def get_celery() -> Celery:
    return create_celery(get_settings())


def broker_reachable(settings: Settings, timeout: int = 3) -> tuple[bool, str]:
    from kombu import Connection

    try:
        with Connection(_prepare_broker_url(settings.broker_url), connect_timeout=timeout) as conn:
            conn.ensure_connection(max_retries=1, timeout=timeout)
        return True, "ok"
    except Exception as exc:  # the broker library raises many kinds; report any as unreachable
        return False, f"{type(exc).__name__}: {exc}"
