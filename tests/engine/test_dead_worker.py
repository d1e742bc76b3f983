"""A worker killed mid-send: its copies are taken over long before their lease would run out.

Each worker process beats from a thread of its own; a claim names its worker. With the lease at
its production value (300 s), the copies a SIGKILLed worker was sending are still published
exactly once, within a minute of the kill: the sweeper sees that their worker went silent
(``GOVHUB_WORKER_DEAD_SECONDS``, 30 s in production), turns them ``unconfirmed`` and a live
worker reconciles them with the platform before sending anything.

The test runs with the dead threshold at 6 s (heartbeats every 2 s): the takeover must come
within the same 30 s after the threshold that production's 30 s leaves before the minute, so
the claim is the same, and the test no longer waits 24 s more for a worker it knows is dead.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, col, select

from hub.config import Settings, get_settings
from hub.db import engine_for
from hub.delivery.models import Attempt, Delivery, DeliveryStatus
from hub.sqltypes import utcnow
from hub.system import Worker
from tests.engine.conftest import Matrix, Process, counties, wait_for, wechat_accounts
from tests.engine.test_fanout import assert_one_copy_each, publish_post

pytestmark = pytest.mark.integration

# What the issue asks: a dead worker's copies are out within 60 s of its death, i.e. within
# 30 s of production's dead threshold (30 s); the lease alone would have taken 300 s.
PRODUCTION_DEAD_SECONDS = 30
ISSUE_DEADLINE = timedelta(seconds=60)
DEAD_SECONDS = 6  # the test's threshold (heartbeat every 2 s)
SLACK = timedelta(seconds=30)  # a machine shared by many test runs
TAKEOVER_DEADLINE = (
    ISSUE_DEADLINE - timedelta(seconds=PRODUCTION_DEAD_SECONDS - DEAD_SECONDS) + SLACK
)


def in_flight(matrix: Matrix, post_id: int) -> list[Delivery]:
    """Copies claimed by a worker and still under its lease."""
    now = utcnow()
    return [
        d
        for d in matrix.deliveries(post_id)
        if d.status in (DeliveryStatus.sending, DeliveryStatus.pending)
        and d.claimed_by
        and d.lease_until is not None
        and d.lease_until > now
    ]


def test_a_killed_workers_copies_are_taken_over_before_their_lease_expires(
    matrix: Matrix,
    processes: Callable[..., Process],
    hub_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GOVHUB_DELIVERY_LEASE_SECONDS", "300")  # production's lease
    assert Settings.model_fields["worker_dead_seconds"].default == PRODUCTION_DEAD_SECONDS
    monkeypatch.setenv("GOVHUB_WORKER_DEAD_SECONDS", str(DEAD_SECONDS))
    get_settings.cache_clear()
    lease = timedelta(seconds=get_settings().delivery_lease_seconds)
    assert get_settings().worker_dead_seconds == DEAD_SECONDS
    accounts = matrix.add_accounts(counties(matrix.database_url, 30), ("weibo", "wechat"))
    matrix.platforms.weibo.set_latency("share", 2000)  # Weibo copies stay in flight a while
    processes("beat")
    first = processes("worker", "--concurrency", "8")
    wechat = wechat_accounts(matrix, accounts)
    post_id, title = publish_post(matrix, accounts, Path(hub_env["GOVHUB_MEDIA_DIR"]))

    def weibo_copies_on_the_wire() -> bool:
        # The kill lands while Weibo copies are being sent (2 s each) and no WeChat copy is
        # still to submit. A WeChat submit cut off mid-request is not resent for a while on
        # purpose (its publication may be under audit: it is looked for, then left to a
        # person; _reconcile_submit), which this test is not about. WeChat copies go out
        # first, so the moment comes within seconds.
        copies = matrix.deliveries(post_id)
        wechat_to_submit = any(
            d.account_id in wechat and d.status in (DeliveryStatus.queued, DeliveryStatus.sending)
            for d in copies
        )
        return not wechat_to_submit and len(in_flight(matrix, post_id)) >= 3

    wait_for(weibo_copies_on_the_wire, 120, "Weibo copies being sent, WeChat copies submitted")

    first.kill()  # SIGKILL the worker group: its calls, claims and prefetched messages die
    killed_at, killed_clock = utcnow(), time.monotonic()
    stuck = {d.id: d for d in in_flight(matrix, post_id)}
    assert stuck, "the kill should land while copies are being sent"
    assert all(d.lease_until and d.lease_until - killed_at > lease / 2 for d in stuck.values())
    with Session(engine_for(matrix.database_url)) as session:
        holders = {d.claimed_by for d in stuck.values()}
        known = session.exec(select(Worker.id).where(col(Worker.id).in_(holders))).all()
    assert set(known) == holders, "every claim names the worker process that made it"

    processes("worker", "--concurrency", "8")
    left = TAKEOVER_DEADLINE.total_seconds() - (time.monotonic() - killed_clock)
    matrix.wait_published(post_id, 60, left)  # says what is stuck and why if it is late
    elapsed = time.monotonic() - killed_clock
    matrix.platforms.weibo.set_latency("share", 0)
    assert elapsed < lease.total_seconds(), "published before the lease expiry"
    assert_one_copy_each(matrix, accounts, post_id, title)

    with Session(engine_for(matrix.database_url)) as session:
        for delivery_id, before in stuck.items():
            rows = session.exec(
                select(Attempt).where(Attempt.delivery_id == delivery_id).order_by(col(Attempt.id))
            ).all()
            actions = [f"{a.action}:{a.outcome}" for a in rows]
            takeover = next(
                (i for i, a in enumerate(rows) if a.action == "takeover" and a.at >= killed_at),
                None,
            )
            assert takeover is not None, f"{delivery_id} was not taken over: {actions}"
            assert before.lease_until and rows[takeover].at < before.lease_until
            if before.status is DeliveryStatus.sending:
                # the outcome of the killed call is unknown: the platform is asked first
                assert actions[takeover] == "takeover:unconfirmed", actions
                assert rows[takeover + 1].action == "reconcile", actions
