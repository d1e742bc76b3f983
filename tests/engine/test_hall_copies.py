"""Copies landing on the platforms show on the hall's cached pages of every process within a
second (docs/hall.md, "The hall version"), with one stamp of the hall version for a burst of
copies rather than one per copy."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event
from sqlmodel import Session

from hub.db import engine_for
from hub.delivery import service
from hub.delivery.pacing import get_pacer
from hub.hall import cache
from hub.web.app import create_app
from tests.engine.conftest import Matrix, counties, wait_for
from tests.engine.test_fanout import publish_post

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def land(url: str, *delivery_ids: int) -> None:
    """Publish tasks, as a worker thread runs them."""
    for delivery_id in delivery_ids:
        with Session(engine_for(url), expire_on_commit=False) as session:
            outcome = service.publish(session=session, delivery_id=delivery_id, pacer=get_pacer())
            assert outcome == "published", outcome


def land_elsewhere(url: str, *delivery_ids: int) -> None:
    """Land the copies in a worker-like process of its own: only the database (and Redis) can
    tell this process; it exits as soon as the last copy is recorded."""
    code = (
        "import sys; from tests.engine.test_hall_copies import land; "
        "land(sys.argv[1], *map(int, sys.argv[2:]))"
    )
    ids = [str(i) for i in delivery_ids]
    subprocess.run([sys.executable, "-c", code, url, *ids], cwd=ROOT, check=True)


def test_copies_landed_by_another_process_show_on_a_cached_post_page_within_a_second(
    matrix: Matrix, tmp_path: Path
) -> None:
    url = matrix.database_url
    accounts = matrix.add_accounts(counties(url, 3), ("weibo",))
    post_id, _title = publish_post(matrix, accounts, tmp_path / "media")
    first, *rest = sorted(d.id for d in matrix.deliveries(post_id) if d.id is not None)
    page = f"/hall/posts/{post_id}"

    def links() -> int:
        answer = hall.get(page)
        return answer.text.count("weibo.com") if answer.status_code == 200 else -1

    with TestClient(create_app()) as hall:
        land_elsewhere(url, first)
        wait_for(lambda: links() == 1, 1.0, "the first copy's link")
        assert links() == 1  # the page is cached now, with one link
        land_elsewhere(url, *rest)
        wait_for(lambda: links() == 3, 1.0, "every copy's link on the cached page")


def test_a_burst_of_copies_stamps_the_hall_version_once_and_tells_redis_once(
    matrix: Matrix,
) -> None:
    redis_url = os.environ.get("GOVHUB_REDIS_URL", "")
    engine = engine_for(matrix.database_url)
    subscriber = None
    if redis_url:
        import redis

        subscriber = redis.Redis.from_url(redis_url).pubsub(ignore_subscribe_messages=True)
        subscriber.subscribe(cache.CHANNEL)
        wait_for(lambda: subscriber.get_message(timeout=0.05) is None, 1.0, "subscribed")
    stamps: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        if "heartbeats" in statement and statement.lstrip().upper().startswith(
            ("INSERT", "UPDATE")
        ):
            stamps.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        before = cache.read_version(engine)
        generation = cache.local_generation()
        for _ in range(50):  # fifty copies landing in this process within a few milliseconds
            cache.changed_soon(engine)
        assert cache.local_generation() > generation  # this process's own pages: at once
        wait_for(lambda: cache.read_version(engine) != before, 1.0, "the hall version stamped")
        assert engine not in cache._stamps_due  # and no second stamp is on its way
        assert len(stamps) == 1
        if subscriber is not None:
            told = wait_for(lambda: subscriber.get_message(timeout=0.1), 1.0, "Redis told")
            assert told["data"] == b"changed"
            assert subscriber.get_message(timeout=0) is None  # once
    finally:
        event.remove(engine, "before_cursor_execute", count)
        if subscriber is not None:
            subscriber.close()
