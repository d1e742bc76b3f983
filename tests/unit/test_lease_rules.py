"""Which claims the sweeper may take over: the lease, and the holder's own heartbeat (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hub.delivery.rules import lease_reclaimable
from hub.system import worker_heartbeat_every

NOW = datetime(2026, 11, 30, 1, 0, tzinfo=UTC)
DEAD = timedelta(seconds=30)
LEASE = NOW + timedelta(seconds=250)  # claimed 50 s ago with the default 300 s lease


def reclaimable(
    *,
    lease_until: datetime | None = LEASE,
    holder: str = "worker1@host:4242:a1b2c3",
    seen_ago: float | None = 45,
    touched_ago: float = 50,
) -> bool:
    return lease_reclaimable(
        lease_until=lease_until,
        holder=holder,
        holder_seen=None if seen_ago is None else NOW - timedelta(seconds=seen_ago),
        last_touched=NOW - timedelta(seconds=touched_ago),
        now=NOW,
        dead_after=DEAD,
    )


def test_a_claim_whose_worker_went_silent_is_taken_before_its_lease_ends() -> None:
    assert reclaimable(seen_ago=45)


def test_a_claim_whose_worker_row_is_gone_is_taken_too() -> None:
    # the worker stopped (and removed its row) or never managed to record itself
    assert reclaimable(seen_ago=None)


def test_a_claim_of_a_live_worker_is_left_alone_however_old() -> None:
    assert not reclaimable(seen_ago=5, touched_ago=250)
    assert not reclaimable(seen_ago=30, touched_ago=250), "exactly the threshold is still alive"


def test_a_dead_worker_that_passed_its_fence_just_now_keeps_the_claim_for_a_while() -> None:
    # its last public call may still be under way: nobody looks in its place yet
    assert not reclaimable(seen_ago=None, touched_ago=10)
    assert not reclaimable(seen_ago=60, touched_ago=30)
    assert reclaimable(seen_ago=60, touched_ago=31)


def test_a_claim_by_no_named_worker_waits_for_its_lease() -> None:
    assert not reclaimable(holder="", seen_ago=None, touched_ago=250)
    assert reclaimable(holder="", lease_until=NOW - timedelta(seconds=1))


def test_an_expired_lease_is_always_reclaimable() -> None:
    assert reclaimable(lease_until=NOW - timedelta(microseconds=1), seen_ago=1, touched_ago=1)
    assert reclaimable(lease_until=None, seen_ago=1, touched_ago=1)
    assert not reclaimable(lease_until=NOW, seen_ago=1, touched_ago=1), "ends at, not before"


def test_a_worker_beats_three_times_within_the_dead_threshold() -> None:
    assert worker_heartbeat_every(30) == 10
    assert worker_heartbeat_every(300) == 10, "never rarer than every 10 s"
    assert worker_heartbeat_every(6) == 2
    assert worker_heartbeat_every(1) == 1
