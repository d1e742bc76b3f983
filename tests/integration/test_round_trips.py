"""What one copy costs the database, as a worker runs it (``session_scope`` and the engine).

On PostgreSQL a claim, a fence and the look at the post's copies are single statements in
autocommit (``service._each_on_its_own``): psycopg would otherwise wrap each in a BEGIN and a
COMMIT round trip of their own. So is the outcome: its status and its attempt row must land
together, and do, as one statement (``service._PUBLISHED_AT_ONCE``). The task's connection is
back in transaction mode after every autocommit block, or a later multi-statement write (the
post's settling) would be committed piecemeal."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url
from sqlmodel import Session, col, select

from connectors.sandbox.wechat import WechatSandbox
from connectors.sandbox.weibo import WeiboSandbox
from hub.accounts.models import Platform
from hub.db import engine_for, session_scope
from hub.delivery import service as engine
from hub.delivery.models import Attempt, Delivery, DeliveryStatus
from hub.delivery.pacing import get_pacer
from hub.sqltypes import utcnow
from tests.integration.test_account_healing import _account, _approved_post, platforms, reviewer_at

__all__ = ["platforms", "reviewer_at"]  # fixtures


@pytest.fixture
def statements() -> Iterator[list[str]]:
    """The statements the hub's engine executes from the test's thread: their first line's
    first words ("WITH claimed", "UPDATE deliveries", …)."""
    from sqlalchemy import event

    from hub.db import get_engine

    seen: list[str] = []
    ours = threading.get_ident()

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if threading.get_ident() == ours:
            seen.append(" ".join(statement.split()[:2]))

    target = get_engine()
    event.listen(target, "before_cursor_execute", record)
    yield seen
    event.remove(target, "before_cursor_execute", record)


@pytest.fixture
def transaction_commands() -> Iterator[list[str]]:
    """BEGIN / COMMIT / ROLLBACK that psycopg sends (each a round trip), in order, from the
    test's thread (the hall stamp and the heartbeat write from threads of their own)."""
    from psycopg._connection_base import BaseConnection

    sent: list[str] = []
    original = BaseConnection._exec_command
    ours = threading.get_ident()

    def counting(self: Any, command: Any, *args: Any, **kwargs: Any) -> Any:
        word = bytes(command).split(b" ", 1)[0].decode()
        if word in ("BEGIN", "COMMIT", "ROLLBACK") and threading.get_ident() == ours:
            sent.append(word)
        return original(self, command, *args, **kwargs)

    BaseConnection._exec_command = counting  # type: ignore[method-assign]
    yield sent
    BaseConnection._exec_command = original  # type: ignore[method-assign]


def _weibo_copy(weibo: WeiboSandbox, reviewer_at: TestClient, url: str) -> tuple[int, str]:
    """An approved post's one copy, queued for a Weibo account; its delivery id and the uid."""
    token, uid = weibo.mint_token()
    account_id = _account(url, Platform("weibo"), {"access_token": token, "uid": uid})
    return _approved_post(reviewer_at, url, account_id), uid


def test_a_copy_is_one_transaction_and_its_task_connection_stays_transactional(
    platforms: tuple[WeiboSandbox, WechatSandbox],
    reviewer_at: TestClient,
    guizhou: dict[str, str],
    transaction_commands: list[str],
    statements: list[str],
) -> None:
    weibo, _ = platforms
    url = guizhou["GOVHUB_DATABASE_URL"]
    postgres = make_url(url).get_backend_name() == "postgresql"
    delivery_id, uid = _weibo_copy(weibo, reviewer_at, url)
    transaction_commands.clear()
    statements.clear()

    with session_scope() as session:  # what a worker thread does with one delivery.publish
        outcome = engine.publish(session=session, delivery_id=delivery_id, pacer=get_pacer())
        sent = list(transaction_commands)
        connection = session.connection()
        # after the claim, the fence and the look ran alone, the connection is transactional
        # again: this statement and the next would share a transaction
        assert connection.get_isolation_level() != "AUTOCOMMIT"
        if postgres:
            assert connection.connection.driver_connection.autocommit is False  # type: ignore[union-attr]
        session.rollback()

    assert outcome == "published"
    with Session(engine_for(url)) as session:
        delivery = session.get(Delivery, delivery_id)
        assert delivery is not None and delivery.remote_id
        assert [str(p.id) for p in weibo.posts(uid)] == [delivery.remote_id]
        actions = session.exec(
            select(Attempt.action, Attempt.outcome).where(Attempt.delivery_id == delivery_id)
        ).all()
    assert [tuple(a) for a in actions] == [("publish", "published")]
    if postgres:
        # claim, load, fence, the outcome and the settle look: no BEGIN of their own (the
        # outcome's status, its attempt row and the post's status under a share lock are one
        # statement). Only the post's settling (its last copy is out) is a transaction: it takes
        # the post's row lock, then writes the post.
        assert sent == ["BEGIN", "COMMIT"]
        # the outcome carries its attempt row and the post's status: one statement
        copy = [s for s in statements if s != "SELECT 1"]  # the pool's ping is not the copy's
        assert copy[0] == "UPDATE deliveries" and copy.count("WITH changed") == 1
        settle = copy.index("SELECT DISTINCT")  # the look; the post settles after it
        assert not any(s.startswith("INSERT INTO") for s in copy[:settle]), copy


def test_a_lost_claim_sends_nothing_and_leaves_no_transaction_open(
    platforms: tuple[WeiboSandbox, WechatSandbox],
    reviewer_at: TestClient,
    guizhou: dict[str, str],
    transaction_commands: list[str],
) -> None:
    weibo, _ = platforms
    url = guizhou["GOVHUB_DATABASE_URL"]
    delivery_id, _ = _weibo_copy(weibo, reviewer_at, url)
    with Session(engine_for(url)) as session:  # another worker holds it, lease running
        delivery = session.get(Delivery, delivery_id)
        assert delivery is not None
        delivery.status = DeliveryStatus.sending
        delivery.lease_until = utcnow() + engine.send_lease()
        session.add(delivery)
        session.commit()
    transaction_commands.clear()

    with session_scope() as session:
        assert engine.publish(session=session, delivery_id=delivery_id, pacer=get_pacer()) == (
            "skipped"
        )
        assert not session.in_transaction()
    assert weibo.calls("share") == 0
    assert "BEGIN" not in transaction_commands
    with Session(engine_for(url)) as session:
        assert not session.exec(
            select(Attempt).where(col(Attempt.delivery_id) == delivery_id)
        ).all()
