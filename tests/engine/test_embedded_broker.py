"""The embedded broker cannot jam: a lost race for its queue rows is survived, every time.

Seen on a loaded machine: beat's first publish lost the race with the worker creating the
``govhub.quick`` queue row (``UNIQUE constraint failed: kombu_queue.name``) and from then on every
send raised ``PendingRollbackError`` — no scheduled post went out, and nothing said so.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from kombu import Connection
from sqlalchemy import event
from sqlalchemy.orm import Session as OrmSession

from hub.config import get_settings
from scheduler.app import QUEUES, prepare_broker
from scheduler.broker import embedded_url, prepare
from tests.engine.conftest import Matrix, Process, counties, post_body
from tests.factories import make_user, token_for

pytestmark = pytest.mark.integration


@pytest.fixture
def another_process_wins_the_first_insert(tmp_path: Path) -> Iterator[str]:
    """A fresh embedded broker where another process inserts each queue row a moment before us.

    The insert is made from a separate connection just before our session flushes its own, which
    is exactly the interleaving of two processes starting together.
    """
    url = f"sqla+sqlite:///{tmp_path / 'broker.sqlite3'}"
    other = sa.create_engine(url.removeprefix("sqla+"))
    raced: set[str] = set()

    def insert_first(session: OrmSession, _context: Any, _instances: Any) -> None:
        for obj in session.new:
            name = getattr(obj, "name", None)
            if type(obj).__name__ == "Queue" and name and name not in raced:
                raced.add(name)
                with other.begin() as conn:
                    conn.execute(sa.text("INSERT INTO kombu_queue (name) VALUES (:n)"), {"n": name})

    event.listen(OrmSession, "before_flush", insert_first)
    try:
        yield url
    finally:
        event.remove(OrmSession, "before_flush", insert_first)
        other.dispose()


def test_a_publisher_that_loses_the_queue_race_still_delivers(
    another_process_wins_the_first_insert: str,
) -> None:
    url = embedded_url(another_process_wins_the_first_insert)
    with Connection(url) as connection:
        queue = connection.SimpleQueue("govhub.quick")
        for n in range(3):  # the race is lost on the first put; every put must still arrive
            queue.put({"n": n})
        received = [queue.get(timeout=5) for _ in range(3)]
        assert [m.payload["n"] for m in received] == [0, 1, 2]
        for message in received:
            message.ack()
        queue.close()


def test_preparing_the_broker_is_idempotent_and_creates_both_queues(tmp_path: Path) -> None:
    url = f"sqla+sqlite:///{tmp_path / 'broker.sqlite3'}"
    for _ in range(3):
        assert prepare(url, QUEUES) is True
    engine = sa.create_engine(url.removeprefix("sqla+"))
    with engine.connect() as conn:
        names = sorted(conn.execute(sa.text("SELECT name FROM kombu_queue")).scalars())
    engine.dispose()
    assert names == sorted(QUEUES)
    assert prepare("redis://127.0.0.1:6379/0", QUEUES) is False  # Redis declares its own


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # Redis declares its own
def test_beat_and_a_worker_started_together_on_a_fresh_broker_always_publish(
    matrix: Matrix,
    processes: Callable[..., Process],
    hub_env: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert hub_env["GOVHUB_BROKER_URL"].startswith("sqla+")
    from fastapi.testclient import TestClient

    from hub.users.models import Role
    from hub.web.app import create_app

    (account,) = matrix.add_accounts(counties(matrix.database_url, 1), ("weibo",))
    url = matrix.database_url
    make_user(url, "gov-editor", Role.editor, "520000")
    make_user(url, "gov-reviewer", Role.reviewer, "520000")

    def schedule_post(when: datetime, round_: int) -> int:
        body = post_body(target_account_ids=[account], scheduled_at=when.isoformat())
        body["title"] += f"（第{round_ + 1}次）"
        body["summary"] = f"第{round_ + 1}次启动：{body['summary']}"  # Weibo refuses repeats
        with TestClient(create_app()) as client:
            editor, reviewer = token_for("gov-editor", url), token_for("gov-reviewer", url)
            post_id = int(client.post("/api/v1/posts", json=body, headers=editor).json()["id"])
            assert client.post(f"/api/v1/posts/{post_id}/submit", headers=editor).is_success
            assert client.post(f"/api/v1/posts/{post_id}/approve", headers=reviewer).is_success
        return post_id

    for round_ in range(4):
        broker = tmp_path / f"broker-{round_}.sqlite3"
        # for the processes started below only: this process keeps the fixture's broker
        monkeypatch.setenv("GOVHUB_BROKER_URL", f"sqla+sqlite:///{broker}")
        when = datetime.now(UTC) + timedelta(seconds=2)
        post_id = schedule_post(when, round_)
        assert not broker.exists(), "the broker is new for this round"
        beat = processes("beat", "--schedule", str(tmp_path / f"schedule-{round_}"))
        worker = processes("worker", "--concurrency", "2")
        try:
            matrix.wait_published(post_id, 1, 90)
        finally:
            beat.stop()
            worker.stop()
    assert prepare_broker(get_settings()) is True
    from hub.system import stalled_processes

    assert stalled_processes() == []  # beat's heartbeat proves it sent; the worker's that it ran
