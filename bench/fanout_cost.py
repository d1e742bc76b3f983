"""What one copy of a fan-out costs the worker, counted rather than timed: database statements
and round trips, Redis round trips and the CPU of the thread that runs the task, per copy.

    GOVHUB_BENCH_REDIS=redis://127.0.0.1:6379/12 \
    GOVHUB_BENCH_PG=postgresql+psycopg://postgres@127.0.0.1:5432/test \
    .venv/bin/python bench/fanout_cost.py
    .venv/bin/python bench/fanout_cost.py        # SQLite and the embedded broker, no Redis

The same post as ``bench/fanout.py`` (200 accounts: 100 orgs x Weibo and WeChat, the press photo
with shared variants) is approved through the API, then its tasks run one after the other in this
thread, exactly as a worker thread runs them (``scheduler/tasks.py``: a session per task, the
publish, then the WeChat copies' polls), against the sandboxes over loopback HTTP without
injected latency. The counts do not depend on the machine's load, so a change to the per-copy
work shows in them even where the wall-clock benchmark is drowned by neighbours:

- **statements**: every SQL statement the worker's engine executes (pool pings included),
- **commits / rollbacks**: the session's transaction ends (SQLAlchemy's count: on PostgreSQL one
  sent nothing when its statements ran in autocommit, ``service._each_on_its_own``),
- **db round trips** (PostgreSQL): every statement plus every BEGIN, COMMIT and ROLLBACK that
  psycopg sent, each a round trip of its own (a wake-up of the worker and of PostgreSQL),
- **redis**: commands sent to Redis (a pipeline counts once): pacing, enqueueing the first poll,
  the hall cache's announcement,
- **CPU ms**: this thread's CPU time (``time.thread_time``: the sandboxes' threads left out),
  median of ``GOVHUB_COST_ROUNDS`` posts (default 3).

``GOVHUB_COST_COLD=1`` starts every round as ``bench/fanout.py``'s new accounts do: no WeChat access
token anywhere and no picture uploaded to any account yet, so each WeChat copy fetches its token
and uploads its cover and body image (six calls instead of three). ``GOVHUB_COST_PROFILE=file`` also writes a cProfile of the last round (``python -m pstats``)
and prints its top functions. ``GOVHUB_BENCH_SCRATCH_DB`` names the scratch database (default
``govhub_bench_fanout_cost``). The broker's own round trips (fetching and acknowledging each
task message) are the worker's, not the task's, and are not counted here.
"""

from __future__ import annotations

import cProfile
import logging
import os
import pstats
import statistics
import sys
import tempfile
import time
from math import nan
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("GOVHUB_BENCH_SCRATCH_DB", "govhub_bench_fanout_cost")

import fanout  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from sqlalchemy import event  # noqa: E402
from sqlmodel import Session, select  # noqa: E402

from connectors.sandbox.server import serve  # noqa: E402
from connectors.sandbox.wechat import WechatSandbox  # noqa: E402
from connectors.sandbox.weibo import WeiboSandbox, WeiboSandboxConfig  # noqa: E402
from hub.config import get_settings  # noqa: E402
from hub.db import engine_for  # noqa: E402
from hub.delivery.models import Delivery  # noqa: E402
from tests.engine.conftest import Matrix, Platforms, counties  # noqa: E402
from tests.images import press_photo  # noqa: E402

ROUNDS = int(os.environ.get("GOVHUB_COST_ROUNDS", "3"))
PROFILE = os.environ.get("GOVHUB_COST_PROFILE", "")
TRACE = int(os.environ.get("GOVHUB_COST_TRACE", "0"))  # list the statements of the first tasks
COLD = os.environ.get("GOVHUB_COST_COLD", "") == "1"


def forget_tokens_and_uploads(redis_url: str) -> None:
    """As if every account were new: no token cached (here or in the shared store), no upload."""
    from connectors import wechat
    from hub.delivery import channels

    store = channels.token_store()
    with store._guard:
        store._local.clear()
    with wechat._UPLOADS._lock:
        wechat._UPLOADS._items.clear()
    if redis_url:
        import redis

        client = redis.Redis.from_url(redis_url)
        for key in client.scan_iter("*token*"):
            client.delete(key)


class Counts:
    def __init__(self) -> None:
        self.statements = 0
        self.commits = 0
        self.rollbacks = 0
        self.redis = 0
        self.tx_sent = 0  # BEGIN, COMMIT, ROLLBACK that psycopg sent (PostgreSQL)
        self.kinds: dict[str, int] = {}
        self.trace = False

    def statement(self, sql: str) -> None:
        self.statements += 1
        if self.trace:
            print("      SQL", " ".join(sql.split())[:160])
        words = sql.split()
        head = " ".join(words[:3]) if words else "?"
        if words and words[0].upper() in ("UPDATE", "INSERT", "DELETE"):
            head = " ".join(words[:3])
        elif words and words[0].upper() == "SELECT":
            table = next(
                (words[i + 1] for i, w in enumerate(words[:-1]) if w.upper() == "FROM"), "?"
            )
            head = f"SELECT ... FROM {table}"
        self.kinds[head] = self.kinds.get(head, 0) + 1


COUNTS = Counts()


def instrument(url: str) -> None:
    engine = engine_for(url)

    @event.listens_for(engine, "before_cursor_execute")
    def _statement(_conn: Any, _cursor: Any, sql: str, *_: Any) -> None:
        COUNTS.statement(sql)

    @event.listens_for(engine, "commit")
    def _commit(_conn: Any) -> None:
        COUNTS.commits += 1
        if COUNTS.trace:
            print("      COMMIT")

    @event.listens_for(engine, "rollback")
    def _rollback(_conn: Any) -> None:
        COUNTS.rollbacks += 1
        if COUNTS.trace:
            print("      ROLLBACK")

    from redis.connection import AbstractConnection

    send = AbstractConnection.send_packed_command

    def counted(self: Any, command: Any, check_health: bool = True) -> None:
        COUNTS.redis += 1
        if COUNTS.trace:
            first = command[0] if isinstance(command, list | tuple) and command else command
            print(
                "      REDIS",
                bytes(first)[:80] if isinstance(first, bytes | bytearray) else "pipeline",
            )
        send(self, command, check_health)

    AbstractConnection.send_packed_command = counted  # type: ignore[method-assign]

    # the pool's pre-ping is a round trip too, but runs on the DBAPI connection directly
    dialect = engine.dialect
    ping = dialect.do_ping

    def counted_ping(dbapi_connection: Any) -> bool:
        COUNTS.statement("SELECT 1 (pool pre-ping)")
        return bool(ping(dbapi_connection))

    dialect.do_ping = counted_ping  # type: ignore[method-assign]

    # psycopg sends BEGIN before a transaction's first statement, and COMMIT or ROLLBACK, as
    # round trips of their own (an empty transaction sends neither; autocommit neither)
    if engine.dialect.name == "postgresql":
        from psycopg._connection_base import BaseConnection

        command = BaseConnection._exec_command

        def counted_command(self: Any, sql: Any, *args: Any, **kwargs: Any) -> Any:
            if bytes(sql).split(b" ", 1)[0] in (b"BEGIN", b"COMMIT", b"ROLLBACK"):
                COUNTS.tx_sent += 1
                if COUNTS.trace:
                    print("      SENT", bytes(sql).decode())
            return command(self, sql, *args, **kwargs)

        BaseConnection._exec_command = counted_command  # type: ignore[method-assign,assignment]


def run_tasks(url: str, post_id: int, trace: int = 0) -> tuple[float, int]:
    """The post's publish tasks, then its polls, as a worker thread runs them; CPU seconds."""
    from hub.db import session_scope
    from hub.delivery import service
    from hub.delivery.pacing import get_pacer

    with Session(engine_for(url)) as session:
        ids = sorted(
            i
            for i in session.exec(select(Delivery.id).where(Delivery.post_id == post_id))
            if i is not None
        )
    cpu = 0.0
    pending: list[int] = []
    for i, delivery_id in enumerate(ids):
        assert delivery_id is not None
        COUNTS.trace = i < trace
        if COUNTS.trace:
            print(f"    publish task, delivery {delivery_id}:")
        started = time.thread_time()
        with session_scope() as session:
            result = service.publish(session=session, delivery_id=delivery_id, pacer=get_pacer())
        cpu += time.thread_time() - started
        COUNTS.trace = False
        if result == "pending":
            pending.append(delivery_id)
    time.sleep(0.3)  # the sandbox finishes a WeChat publication after 0.2 s
    for i, delivery_id in enumerate(pending):
        COUNTS.trace = i < trace
        if COUNTS.trace:
            print(f"    poll task, delivery {delivery_id}:")
        started = time.thread_time()
        with session_scope() as session:
            result = service.poll(session=session, delivery_id=delivery_id)
        cpu += time.thread_time() - started
        COUNTS.trace = False
        assert result == "published", result
    return cpu, len(ids)


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-fanout-cost-"))
    redis_url = os.environ.get("GOVHUB_BENCH_REDIS", "")
    pg = os.environ.get("GOVHUB_BENCH_PG", "")
    database = fanout.scratch_postgres(pg) if pg else f"sqlite:///{work / 'hub.sqlite3'}"
    broker = redis_url or f"sqla+sqlite:///{work / 'broker.sqlite3'}"
    if redis_url:
        import redis

        redis.Redis.from_url(redis_url).flushdb()
    print(f"database {database.split('@')[-1]}, broker {broker.split('@')[-1]}", flush=True)
    try:
        fanout.setup("cost", database, broker, redis_url or None, work, "shared")
        (work / "media").mkdir(parents=True, exist_ok=True)
        (work / "media" / fanout.PHOTO).write_bytes(press_photo())
        weibo = WeiboSandbox(WeiboSandboxConfig(safe_domains=("hall.test",), posts_per_hour=10**6))
        wechat = WechatSandbox()
        wechat.configure(publish_delay=0.2)
        servers = [serve(weibo), serve(wechat)]
        os.environ["GOVHUB_WEIBO_API_BASE"] = servers[0].base_url
        os.environ["GOVHUB_WECHAT_API_BASE"] = servers[1].base_url
        get_settings.cache_clear()
        # what the worker writes: one outcome line per copy (to a file, as the bench's worker)
        from hub.logs import configure

        configure("info", stream=(work / "worker.log").open("w"))
        logging.getLogger("httpx").setLevel(logging.WARNING)
        matrix = Matrix(database, Platforms(weibo, wechat, servers))
        accounts = matrix.add_accounts(
            counties(database, fanout.ACCOUNTS_ORGS), ("weibo", "wechat")
        )
        app = __import__("hub.web.app", fromlist=["create_app"]).create_app()
        with TestClient(app) as client:
            # warm-up: compiled statements, renditions, tokens, connections
            warm, _ = fanout.approve(matrix, accounts, work / "media", client, image=fanout.PHOTO)
            run_tasks(database, warm)
            instrument(database)
            rounds: list[dict[str, float]] = []
            for i in range(ROUNDS):
                post_id, _ = fanout.approve(
                    matrix, accounts, work / "media", client, image=fanout.PHOTO, title=f"第{i}条"
                )
                before = (
                    COUNTS.statements,
                    COUNTS.commits,
                    COUNTS.rollbacks,
                    COUNTS.redis,
                    COUNTS.tx_sent,
                )
                kinds_before = dict(COUNTS.kinds)
                if COLD:
                    forget_tokens_and_uploads(redis_url)
                last = i == ROUNDS - 1
                profiler = cProfile.Profile(time.thread_time) if PROFILE and last else None
                if profiler:
                    profiler.enable()
                if last and TRACE:
                    print("  the first tasks of the last post, statement by statement:")
                cpu, copies = run_tasks(database, post_id, TRACE if last else 0)
                if profiler:
                    profiler.disable()
                    profiler.dump_stats(PROFILE)
                statuses = matrix.statuses(post_id)
                assert statuses == {"published": copies}, statuses
                after = (
                    COUNTS.statements,
                    COUNTS.commits,
                    COUNTS.rollbacks,
                    COUNTS.redis,
                    COUNTS.tx_sent,
                )
                n = float(copies)
                rounds.append(
                    {
                        "statements": (after[0] - before[0]) / n,
                        "commits": (after[1] - before[1]) / n,
                        "rollbacks": (after[2] - before[2]) / n,
                        "redis": (after[3] - before[3]) / n,
                        # every statement and every BEGIN/COMMIT/ROLLBACK sent: a wait each
                        "db round trips": (
                            (after[0] - before[0] + after[4] - before[4]) / n if pg else nan
                        ),
                        "cpu_ms": cpu * 1000 / n,
                    }
                )
                kinds = {
                    k: (v - kinds_before.get(k, 0)) / n
                    for k, v in COUNTS.kinds.items()
                    if v - kinds_before.get(k, 0)
                }
        print(f"per copy ({copies} copies of one post, {ROUNDS} posts, publish + poll tasks):")
        for key in ("statements", "commits", "rollbacks", "db round trips", "redis", "cpu_ms"):
            values = [r[key] for r in rounds]
            print(
                f"  {key:<14} {statistics.median(values):7.2f}  "
                f"(rounds: {', '.join(f'{v:.2f}' for v in values)})"
            )
        print("  statements of the last post, per copy:")
        for kind, count in sorted(kinds.items(), key=lambda kv: -kv[1]):
            print(f"    {count:5.2f}  {kind}")
        for server in servers:
            server.stop()
        wechat.close()
        if PROFILE:
            stats = pstats.Stats(PROFILE)
            stats.sort_stats("cumulative").print_stats(60)
            stats.sort_stats("tottime").print_stats(30)
    finally:
        if pg:
            fanout.drop_scratch(database)


if __name__ == "__main__":
    main()
