"""Prometheus metrics: what the hub's processes count, and what ``GET /metrics`` shows.

Two kinds (docs/operations.md, "Watching"):

- **State** (deliveries by state and platform, queue depth, overdue clocks and cases, heartbeat
  ages) is read from the database and the broker when Prometheus scrapes (:class:`StateCollector`):
  right however many processes run, and nothing to keep in step.
- **Events** (platform calls by error class, approval-to-published latency, how late scheduled
  posts went out, token refreshes, HTTP latency by route, live readers and broadcast lag, beat's
  sends) are counted where they happen, in the web, worker and beat processes. Every process of a
  host records them in one folder (``GOVHUB_METRICS_DIR``, prometheus-client's multiprocess mode:
  one small memory-mapped file per process and metric type), and ``/metrics`` on any web process
  adds them up. The files of a process that ended stay (its counts are part of the totals) except
  its live-reader gauge, which is removed when the process exits or, after a crash, at the next
  scrape on the same host.

Metrics are created on first use, after :func:`setup` chose where they are recorded, so that a
process started with ``GOVHUB_METRICS_TOKEN`` writes into the shared folder from its first count.
"""

from __future__ import annotations

import atexit
import glob
import logging
import os
import re
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from prometheus_client import Metric

    from hub.config import Settings

# Seconds. Approval to published: a copy usually lands within seconds, a paced or retried one in
# minutes; scheduled lateness the same, plus the missed window (120 min by default).
LATENCY_BUCKETS = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0)
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
LAG_BUCKETS = (0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0)
STATE_CACHE_SECONDS = 5.0  # two scrapes within this share one set of database queries

log = logging.getLogger(__name__)
_lock = threading.Lock()
_metrics: Metrics | None = None
_directory = ""  # the multiprocess folder this process records into ("" = in memory)
_host = re.sub(r"[^A-Za-z0-9.-]", "-", socket.gethostname())[:60] or "host"


def process_id() -> str:
    """This process's name in the metrics folder: host and pid (containers sharing the folder
    through a volume may reuse pids; their host names differ)."""
    return f"{_host}-{os.getpid()}"


def setup(settings: Settings) -> None:
    """At a process's start: record this process's metrics in ``GOVHUB_METRICS_DIR`` when
    metrics are on. A no-op once any metric exists (it then stays where it was)."""
    if settings.metrics_token is not None and settings.metrics_dir:
        use_directory(settings.metrics_dir)


def use_directory(path: str) -> bool:
    """Record this process's metrics in ``path`` (multiprocess mode). False when too late."""
    global _directory
    with _lock:
        if _directory:
            return _directory == os.path.abspath(path)
        if _metrics is not None:
            return False
        from prometheus_client import values

        directory = os.path.abspath(path)
        os.makedirs(directory, exist_ok=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory  # where the value files are opened
        values.ValueClass = values.MultiProcessValue(process_id)  # type: ignore[no-untyped-call]
        _directory = directory
        atexit.register(retire)
        return True


def retire() -> None:
    """This process is ending: its live gauges go (its counters stay in the totals).

    Run at exit, and by the web app's shutdown: uvicorn ends a worker by raising SIGTERM again
    after a graceful shutdown, so no exit handler runs there.
    """
    from prometheus_client import multiprocess

    if _directory:
        multiprocess.mark_process_dead(process_id(), _directory)  # type: ignore[no-untyped-call]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_dead(directory: str) -> list[str]:
    """Remove the live gauges of processes of this host that are gone (killed, crashed)."""
    removed = []
    for path in glob.glob(os.path.join(directory, "gauge_live*_*.db")):
        ident = os.path.basename(path)[:-3].split("_", 2)[2]
        host, _, pid = ident.rpartition("-")
        if host == _host and pid.isdigit() and not _alive(int(pid)):
            try:
                os.remove(path)
                removed.append(ident)
            except FileNotFoundError:
                pass
    return removed


@dataclass(frozen=True)
class Metrics:
    """Every event metric. Label values are bounded: platforms from the registry, error classes
    from the connector error tree, route templates (never raw paths)."""

    registry: CollectorRegistry  # this process's own (in-memory mode)
    attempts: Counter
    approval_to_published: Histogram
    scheduled_lateness: Histogram
    token_refreshes: Counter
    http_duration: Histogram
    live_readers: Gauge
    broadcast_lag: Histogram
    beat_sends: Counter


def metrics() -> Metrics:
    """The process's metrics, created on first use."""
    global _metrics
    found = _metrics
    if found is not None:
        return found
    with _lock:
        if _metrics is None:
            _metrics = _create()
        return _metrics


def _create() -> Metrics:
    from prometheus_client import disable_created_metrics

    # no ``_created`` series: the folder's totals (multiprocess mode) have none either
    disable_created_metrics()  # type: ignore[no-untyped-call]
    registry = CollectorRegistry(auto_describe=True)
    return Metrics(
        registry=registry,
        attempts=Counter(
            "govhub_delivery_attempts",
            "Settled delivery attempts (platform calls) by platform and error class "
            "(none = it went out or is under way).",
            ["platform", "error_class"],
            registry=registry,
        ),
        approval_to_published=Histogram(
            "govhub_approval_to_published_seconds",
            "From approval (the delivery's creation) to the copy being published, for posts "
            "that were not scheduled.",
            ["platform"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        ),
        scheduled_lateness=Histogram(
            "govhub_scheduled_lateness_seconds",
            "How long after its scheduled time a scheduled post's copy was published.",
            ["platform"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        ),
        token_refreshes=Counter(
            "govhub_token_refreshes",
            "Platform access tokens fetched anew (a cache miss, expiry or refusal).",
            ["platform"],
            registry=registry,
        ),
        http_duration=Histogram(
            "govhub_http_request_duration_seconds",
            "HTTP requests by method, route template and status code.",
            ["method", "route", "status"],
            buckets=HTTP_BUCKETS,
            registry=registry,
        ),
        live_readers=Gauge(
            "govhub_live_readers",
            "Open live-session event streams (readers and consoles) of the web processes.",
            registry=registry,
            multiprocess_mode="livesum",
        ),
        broadcast_lag=Histogram(
            "govhub_live_broadcast_lag_seconds",
            "From a live event's publication to its dispatch to a web process's readers.",
            buckets=LAG_BUCKETS,
            registry=registry,
        ),
        beat_sends=Counter(
            "govhub_beat_sends",
            "Tasks beat sent to the broker, by schedule entry and outcome (sent, failed).",
            ["entry", "outcome"],
            registry=registry,
        ),
    )


# -- recording (called where things happen) -----------------------------------------------------


def error_class(error: BaseException | None) -> str:
    """``none``, or the connector error's class in snake case (``rate_limited``, ...)."""
    if error is None:
        return "none"
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(error).__name__).lower()


def record_attempt(
    *,
    platform: str,
    error_class: str,
    published_at: datetime | None = None,
    approved_at: datetime | None = None,
    scheduled_at: datetime | None = None,
) -> None:
    """One settled delivery attempt; with ``published_at``, the copy is public."""
    m = metrics()
    m.attempts.labels(platform, error_class).inc()
    if published_at is None:
        return
    if scheduled_at is not None:
        m.scheduled_lateness.labels(platform).observe(_seconds(published_at - scheduled_at))
    elif approved_at is not None:
        m.approval_to_published.labels(platform).observe(_seconds(published_at - approved_at))


def _seconds(delta: timedelta) -> float:
    return max(0.0, delta.total_seconds())


# -- state read at scrape time --------------------------------------------------------------------


class StateCollector(Collector):
    """Gauges read from the database and the broker when Prometheus scrapes."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def collect(self) -> Iterator[Metric]:
        yield from _cached_state(self.settings)


_state_cache: dict[str, tuple[float, list[Metric]]] = {}


def _cached_state(settings: Settings) -> list[Metric]:
    key = f"{settings.database_url}|{settings.broker_url}"
    now = time.monotonic()
    with _lock:
        hit = _state_cache.get(key)
        if hit is not None and now - hit[0] < STATE_CACHE_SECONDS:
            return hit[1]
    families = list(_read_state(settings))
    with _lock:
        _state_cache.clear()
        _state_cache[key] = (now, families)
    return families


def clear_state_cache() -> None:
    with _lock:
        _state_cache.clear()


def _read_state(settings: Settings) -> Iterable[Metric]:
    up = GaugeMetricFamily(
        "govhub_metrics_source_up",
        "Whether /metrics could read a source of state (1) or not (0).",
        labels=["source"],
    )
    try:
        yield from _database_state()
        up.add_metric(["database"], 1)
    except Exception as exc:  # /metrics still answers: the events, and this gauge at 0
        log.warning("metrics: the database could not be read: %s", exc)
        up.add_metric(["database"], 0)
    try:
        yield _queue_depth(settings)
        up.add_metric(["broker"], 1)
    except Exception as exc:
        log.warning("metrics: the broker could not be read: %s", exc)
        up.add_metric(["broker"], 0)
    yield up


def _database_state() -> Iterator[Metric]:
    from sqlalchemy import func
    from sqlmodel import col, select

    from hub.accounts.models import Account
    from hub.clocks.models import Clock, ClockState
    from hub.db import session_scope
    from hub.delivery.models import Delivery, DeliveryStatus
    from hub.inbox.models import Case
    from hub.platforms import platforms
    from hub.sqltypes import utcnow
    from hub.system import Heartbeat, Worker

    now = utcnow()
    families: list[Metric] = []
    with session_scope() as session:
        counts: dict[tuple[str, str], int] = {
            (str(status), p.value): 0 for status in DeliveryStatus for p in platforms()
        }
        rows = session.exec(
            select(Delivery.status, Account.platform, func.count())
            .join(Account, col(Account.id) == col(Delivery.account_id))
            .group_by(col(Delivery.status), col(Account.platform))
        ).all()
        for status, platform, count in rows:
            counts[(str(status), str(platform))] = int(count)
        deliveries = GaugeMetricFamily(
            "govhub_deliveries",
            "Deliveries (one post version to one account) by state and platform.",
            labels=["state", "platform"],
        )
        for (state, platform), count in sorted(counts.items()):
            deliveries.add_metric([state, platform], count)
        families.append(deliveries)

        overdue_clocks = GaugeMetricFamily(
            "govhub_clocks_overdue",
            "Running compliance clocks past their deadline, by kind.",
            labels=["kind"],
        )
        for kind, count in session.exec(
            select(Clock.kind, func.count())
            .where(Clock.state == ClockState.running, col(Clock.due_at) < now)
            .group_by(col(Clock.kind))
        ).all():
            overdue_clocks.add_metric([str(kind)], int(count))
        families.append(overdue_clocks)

        overdue_cases = session.exec(
            select(func.count())
            .select_from(Case)
            .join(Clock, col(Clock.id) == col(Case.answer_clock_id))
            .where(
                col(Case.hidden).is_(False),
                Clock.state == ClockState.running,
                col(Clock.due_at) < now,
            )
        ).one()
        families.append(
            GaugeMetricFamily(
                "govhub_cases_overdue",
                "Inbox cases (public messages) not answered by their deadline.",
                value=int(overdue_cases),
            )
        )

        ages = GaugeMetricFamily(
            "govhub_heartbeat_age_seconds",
            "Seconds since each part (worker, beat) last reported its heartbeat.",
            labels=["process"],
        )
        for beat in session.exec(select(Heartbeat)).all():
            ages.add_metric([beat.name], _seconds(now - beat.at))
        families.append(ages)

        alive_after = now - timedelta(seconds=_dead_seconds())
        workers = session.exec(
            select(func.count()).select_from(Worker).where(col(Worker.last_seen) >= alive_after)
        ).one()
        families.append(
            GaugeMetricFamily(
                "govhub_workers_alive",
                "Worker processes whose own heartbeat is fresh.",
                value=int(workers),
            )
        )
    yield from families


def _dead_seconds() -> int:
    from hub.config import get_settings

    return get_settings().worker_dead_seconds


def _queue_depth(settings: Settings) -> Metric:
    from kombu import Connection

    from scheduler.app import QUEUES, _prepare_broker_url

    depth = GaugeMetricFamily(
        "govhub_queue_depth", "Tasks waiting in each broker queue.", labels=["queue"]
    )
    url = _prepare_broker_url(settings.broker_url)
    with Connection(url, connect_timeout=3) as connection:
        connection.ensure_connection(max_retries=0, timeout=3)  # a scrape must not wait on it
        channel: Any = connection.default_channel
        for name in QUEUES:
            try:
                waiting = channel.queue_declare(queue=name, passive=True).message_count
            except Exception:  # not declared yet: nothing has waited in it
                waiting = 0
            depth.add_metric([name], int(waiting))
    return depth


# -- exposition ------------------------------------------------------------------------------------


def exposition(settings: Settings) -> bytes:
    """The text ``GET /metrics`` answers: state now, and the events of every process of this host
    (the metrics folder) or, without one (``GOVHUB_METRICS_DIR`` empty), of this process only."""
    from prometheus_client import multiprocess

    registry = CollectorRegistry(auto_describe=False)
    directory = os.path.abspath(settings.metrics_dir) if settings.metrics_dir else ""
    if directory:
        os.makedirs(directory, exist_ok=True)
        sweep_dead(directory)
        multiprocess.MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    else:
        registry.register(_OwnCounts())
    registry.register(StateCollector(settings))
    return generate_latest(registry)


class _OwnCounts(Collector):
    """This process's in-memory metrics."""

    def collect(self) -> Iterator[Metric]:
        yield from metrics().registry.collect()
