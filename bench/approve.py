"""Approval benchmark: how long `POST /api/v1/posts/{id}/approve` takes for a post to 1,000
accounts (500 orgs x a Weibo and a WeChat account), deliveries created and their tasks enqueued.

    .venv/bin/python bench/approve.py                       # SQLite + the embedded broker
    GOVHUB_BENCH_REDIS=redis://127.0.0.1:6379/12 \
    GOVHUB_BENCH_PG=postgresql+psycopg://postgres@127.0.0.1:5432/test_images \
        .venv/bin/python bench/approve.py                   # also PostgreSQL + Redis

The baseline runs in the same process on the same database: the approval path as it was before
the bulk change (one ORM object per delivery, flushed; one ``send_task`` per delivery) is swapped
in for the engine's ``create_deliveries`` and ``enqueue``, and posts are approved alternately
with it and with the current path. No worker runs: the tasks stay on the broker (the queue is
emptied between runs). Target: 1,000 targets approved within 1 s.
"""

from __future__ import annotations

import gc
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fastapi.testclient import TestClient  # noqa: E402
from sqlalchemy import func, text  # noqa: E402
from sqlmodel import Session, select  # noqa: E402

from hub.accounts.models import AccountCreate, Platform  # noqa: E402
from hub.accounts.service import create as create_account  # noqa: E402
from hub.config import get_settings  # noqa: E402
from hub.db import engine_for  # noqa: E402
from hub.delivery import service as engine  # noqa: E402
from hub.delivery.models import Delivery, DeliveryStatus  # noqa: E402
from hub.migrate import upgrade  # noqa: E402
from hub.orgs.models import Org  # noqa: E402
from hub.users.models import Role  # noqa: E402
from tests.engine.conftest import counties, cover_image  # noqa: E402
from tests.factories import load_guizhou, make_user, token_for  # noqa: E402

TARGETS = int(os.environ.get("GOVHUB_BENCH_TARGETS", "1000"))
ROUNDS = int(os.environ.get("GOVHUB_BENCH_ROUNDS", "3"))
SCRATCH_DB = os.environ.get("GOVHUB_BENCH_SCRATCH_DB", "govhub_bench_approve")


def legacy_create_deliveries(
    *,
    session: Session,
    post_id: int,
    version: int,
    account_ids: Iterable[int],
    not_before: datetime | None,
    modes: Mapping[int, str] | None = None,
    lease_until: datetime | None = None,
) -> list[Delivery]:
    """The engine's create_deliveries before the bulk change: one ORM object per account, no
    lease (the approval then leases every row with a second UPDATE, as it did)."""
    modes = modes or {}
    existing = {
        d.account_id: d
        for d in session.exec(
            select(Delivery).where(Delivery.post_id == post_id, Delivery.version == version)
        ).all()
    }
    rows: list[Delivery] = []
    for account_id in dict.fromkeys(account_ids):
        row = existing.get(account_id)
        if row is None:
            row = Delivery(
                post_id=post_id,
                version=version,
                account_id=account_id,
                status=DeliveryStatus.queued,
                next_attempt_at=not_before,
                mode="push" if modes.get(account_id) == "push" else "",
            )
            session.add(row)
        rows.append(row)
    session.flush()
    return rows


def legacy_enqueue(
    delivery_ids: Iterable[int], *, task: str = "delivery.publish", countdown: float | None = None
) -> int:
    """The engine's enqueue before the bulk change: one ``send_task`` per delivery."""
    from scheduler.app import get_celery

    app = get_celery()
    count = 0
    for delivery_id in delivery_ids:
        app.send_task(task, args=[delivery_id], countdown=countdown)
        count += 1
    return count


@contextmanager
def legacy() -> Iterator[None]:
    saved = engine.create_deliveries, engine.enqueue
    engine.create_deliveries, engine.enqueue = legacy_create_deliveries, legacy_enqueue
    try:
        yield
    finally:
        engine.create_deliveries, engine.enqueue = saved


def scratch_postgres(url: str) -> str:
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {SCRATCH_DB} WITH (FORCE)"))
        conn.execute(text(f"CREATE DATABASE {SCRATCH_DB}"))
    admin.dispose()
    return make_url(url).set(database=SCRATCH_DB).render_as_string(hide_password=False)


def drop_scratch(url: str) -> None:
    from sqlalchemy import create_engine

    engine_for(url).dispose()
    admin = create_engine(os.environ["GOVHUB_BENCH_PG"], isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {SCRATCH_DB} WITH (FORCE)"))
    admin.dispose()


def add_accounts(database_url: str, n: int) -> list[int]:
    key = get_settings().credentials_key
    ids: list[int] = []
    with Session(engine_for(database_url)) as session:
        for i, code in enumerate(counties(database_url, (n + 1) // 2)):
            org = session.exec(select(Org).where(Org.code == code)).one()
            for platform in ("wechat", "weibo"):
                if len(ids) == n:
                    break
                creds = (
                    {"app_id": f"wxbench{i}", "app_secret": "s"}
                    if platform == "wechat"
                    else {"access_token": f"t{i}", "uid": str(i)}
                )
                account = create_account(
                    session=session,
                    data=AccountCreate(
                        org_code=code,
                        platform=Platform(platform),
                        name=f"{org.name}{platform}",
                        credentials=creds,
                    ),
                    credentials_key=key,
                    org=org,
                )
                assert account.id is not None
                ids.append(account.id)
        session.commit()
    return ids


def approve_once(client: TestClient, url: str, accounts: list[int], media: Path) -> float:
    editor, reviewer = token_for("gov-editor", url), token_for("gov-reviewer", url)
    body = {
        "title": "全省政务公开工作推进会召开",
        "body": "各地各部门要高度重视政务公开工作。" * 20,
        "summary": f"全省政务公开工作推进会今天召开（{time.time_ns()}）。",
        "target_account_ids": accounts,
        "images": [cover_image(media)],
    }
    post_id = client.post("/api/v1/posts", json=body, headers=editor).json()["id"]
    submitted = client.post(f"/api/v1/posts/{post_id}/submit", headers=editor)
    assert submitted.status_code == 200, submitted.text
    started = time.perf_counter()
    response = client.post(f"/api/v1/posts/{post_id}/approve", headers=reviewer)
    elapsed = time.perf_counter() - started
    assert response.status_code == 200, response.text
    with Session(engine_for(url)) as session:
        made = session.exec(
            select(func.count()).select_from(Delivery).where(Delivery.post_id == post_id)
        ).one()
    assert made >= len(accounts), f"{made} deliveries for {len(accounts)} targets"
    return elapsed


def queued_messages(broker_url: str) -> int:
    from scheduler.app import get_celery

    with get_celery().connection_for_write() as conn:
        channel: Any = (
            conn.default_channel
        )  # kombu's virtual channel (StdChannel's stub lacks these)
        _, count, _ = channel.queue_declare("celery", passive=True)
        channel.queue_purge("celery")
    return int(count)


def run(name: str, database_url: str, broker_url: str, redis_url: str | None) -> None:
    work = Path(tempfile.mkdtemp(prefix=f"bench-approve-{name}-"))
    os.environ.update(
        {
            "GOVHUB_DATABASE_URL": database_url,
            "GOVHUB_BROKER_URL": broker_url,
            "GOVHUB_MEDIA_DIR": str(work / "media"),
            "GOVHUB_PUBLIC_BASE_URL": "http://hall.test",
        }
    )
    if redis_url:
        os.environ["GOVHUB_REDIS_URL"] = redis_url
    else:
        os.environ.pop("GOVHUB_REDIS_URL", None)
    from scheduler.app import get_celery

    get_settings.cache_clear()
    get_celery.cache_clear()
    upgrade(database_url)
    load_guizhou(database_url)
    make_user(database_url, "gov-editor", Role.editor, "520000")
    make_user(database_url, "gov-reviewer", Role.reviewer, "520000")
    accounts = add_accounts(database_url, TARGETS)
    app = __import__("hub.web.app", fromlist=["create_app"]).create_app()
    gc.collect()
    gc.freeze()
    timings: dict[str, list[float]] = {"before (per row)": [], "bulk": []}
    with TestClient(app) as client:
        approve_once(client, database_url, accounts[:10], work / "media")  # warm-up
        queued_messages(broker_url)
        for _ in range(ROUNDS):
            for label in timings:
                if label == "bulk":
                    timings[label].append(
                        approve_once(client, database_url, accounts, work / "media")
                    )
                else:
                    with legacy():
                        timings[label].append(
                            approve_once(client, database_url, accounts, work / "media")
                        )
                enqueued = queued_messages(broker_url)
                assert enqueued >= TARGETS, f"{label}: {enqueued} tasks enqueued"
    for label, values in timings.items():
        print(
            f"{name:<9} approve {TARGETS} targets, {label:<17} median {statistics.median(values):.3f} s "
            f"(runs: {', '.join(f'{v:.3f}' for v in values)})",
            flush=True,
        )


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-approve-"))
    only = os.environ.get("GOVHUB_BENCH_ONLY", "")
    if only in ("", "embedded"):
        run(
            "embedded",
            f"sqlite:///{work / 'hub.sqlite3'}",
            f"sqla+sqlite:///{work / 'broker.sqlite3'}",
            None,
        )
    redis_url = os.environ.get("GOVHUB_BENCH_REDIS")
    if redis_url and only in ("", "redis"):
        pg = os.environ.get("GOVHUB_BENCH_PG")
        database = scratch_postgres(pg) if pg else f"sqlite:///{work / 'hub-redis.sqlite3'}"
        import redis

        redis.Redis.from_url(redis_url).flushdb()
        try:
            run("redis", database, redis_url, redis_url)
        finally:
            if pg:
                drop_scratch(database)


if __name__ == "__main__":
    main()
