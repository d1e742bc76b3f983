"""A worker that stops or stalls mid-send is taken over without a second copy reaching WeChat.

These run the engine in-process (two "workers" are two sessions) so that the moment of the
takeover is exact: the connector is wrapped to stop or stall at a chosen call, nothing sleeps.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select

from hub.db import engine_for
from hub.delivery import channels, service
from hub.delivery.models import Attempt, Delivery, DeliveryStatus
from hub.delivery.pacing import get_pacer
from hub.sqltypes import utcnow
from tests.engine.conftest import Matrix, counties, wait_for, withdraw_post
from tests.engine.test_fanout import publish_post

pytestmark = pytest.mark.integration


class Killed(BaseException):
    """The worker process dies here (SIGKILL): nothing after this point runs or commits."""


class Wrapped:
    """The real WeChat connector, with ``before_checkpoint`` / ``after_publish`` hooks."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.before_checkpoint: Callable[[], None] | None = None
        self.after_publish: Callable[[], None] | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def publish(
        self, account: Any, rendition: Any, *, idempotency_key: str, checkpoint: Any
    ) -> Any:
        def guarded(ref: str) -> None:
            hook, self.before_checkpoint = self.before_checkpoint, None
            if hook is not None:
                hook()
            checkpoint(ref)

        outcome = self.real.publish(
            account, rendition, idempotency_key=idempotency_key, checkpoint=guarded
        )
        hook, self.after_publish = self.after_publish, None
        if hook is not None:
            hook()
        return outcome


@pytest.fixture
def wechat(matrix: Matrix, monkeypatch: pytest.MonkeyPatch) -> Iterator[Wrapped]:
    wrapped = Wrapped(channels.connector_for("wechat"))
    real_for = channels.connector_for
    monkeypatch.setattr(
        channels,
        "connector_for",
        lambda platform, settings=None: wrapped if platform == "wechat" else real_for(platform),
    )
    yield wrapped


def one_wechat_delivery(matrix: Matrix, tmp_path: Path) -> tuple[int, int, str]:
    """A post approved for one WeChat account; returns (delivery id, account id, title)."""
    (account,) = matrix.add_accounts(counties(matrix.database_url, 1), ("wechat",))
    post_id, title = publish_post(matrix, [account], tmp_path / "media")
    (delivery,) = matrix.deliveries(post_id)
    assert delivery.id is not None
    return delivery.id, account, title


def run_worker(delivery_id: int, *, later: timedelta = timedelta(0)) -> str:
    """One pass of the sweeper and one publish task, as a worker would run them ``later``."""
    now = utcnow() + later
    with Session(engine_for_env(), expire_on_commit=False) as session:
        service.sweep(session=session, now=now)
        session.commit()
        return service.publish(session=session, delivery_id=delivery_id, pacer=get_pacer(), now=now)


def engine_for_env() -> Any:
    from hub.config import get_settings

    return engine_for(get_settings().database_url)


def attempts(delivery_id: int) -> list[str]:
    with Session(engine_for_env()) as session:
        rows = session.exec(
            select(Attempt).where(Attempt.delivery_id == delivery_id).order_by(Attempt.id)  # type: ignore[arg-type]
        ).all()
    return [f"{a.action}:{a.outcome}" for a in rows]


def finished(matrix: Matrix, account: int) -> int:
    """Publications WeChat has finished (status 0) for the account."""
    state = matrix.platforms.wechat.state(matrix.wechat_apps[account])
    return sum(1 for p in state["publications"] if p["status"] == 0 and p["article_id"])


def status(delivery_id: int) -> Delivery:
    with Session(engine_for_env()) as session:
        row = session.get(Delivery, delivery_id)
        assert row is not None
        return row


def test_a_stalled_worker_that_lost_its_lease_sends_nothing(
    matrix: Matrix, wechat: Wrapped, tmp_path: Path
) -> None:
    delivery_id, account, title = one_wechat_delivery(matrix, tmp_path)
    lease = timedelta(seconds=9)  # the test lease is 8 s: the second worker runs after it ran out
    results: list[str] = []
    # Worker A stalls between draft/add and submit (say, waiting on a token lock held by a dead
    # process) for longer than its lease; worker B takes the delivery over and sends it.
    wechat.before_checkpoint = lambda: results.append(run_worker(delivery_id, later=lease))
    first = run_worker(delivery_id)
    assert results == ["pending"], "the second worker sent the post"
    assert first == "lost", "the stalled worker must stop at its checkpoint"
    assert status(delivery_id).status is DeliveryStatus.pending
    wait_for(lambda: finished(matrix, account) == 1, 30, "the one publication")
    assert matrix.copies(account, title) == 1
    state = matrix.platforms.wechat.state(matrix.wechat_apps[account])
    assert len(state["publications"]) == 1, "exactly one freepublish/submit reached WeChat"


def test_a_worker_killed_after_submitting_is_not_followed_by_a_second_copy(
    matrix: Matrix, wechat: Wrapped, tmp_path: Path
) -> None:
    matrix.platforms.wechat.configure(publish_delay=1.0)  # the publication is still under way
    delivery_id, account, title = one_wechat_delivery(matrix, tmp_path)

    def die() -> None:
        raise Killed

    wechat.after_publish = die  # WeChat accepted the submission; the worker dies before recording
    with pytest.raises(Killed):
        run_worker(delivery_id)
    assert status(delivery_id).status is DeliveryStatus.sending
    # The sweeper finds the lease run out; the next worker looks before it sends anything.
    later = timedelta(seconds=9)
    assert run_worker(delivery_id, later=later) == "unconfirmed"
    assert attempts(delivery_id)[-1] == "reconcile:unconfirmed", "it must wait, not resend"
    wait_for(lambda: finished(matrix, account) == 1, 30, "the publication to finish")
    assert run_worker(delivery_id, later=later + timedelta(seconds=11)) == "published"
    assert matrix.copies(account, title) == 1
    state = matrix.platforms.wechat.state(matrix.wechat_apps[account])
    assert len(state["publications"]) == 1
    assert status(delivery_id).remote_url


def test_a_sweep_racing_a_claim_leaves_the_sending_worker_its_lease(
    matrix: Matrix, wechat: Wrapped, tmp_path: Path
) -> None:
    delivery_id, account, title = one_wechat_delivery(matrix, tmp_path)

    def sweeper_leases_it_too() -> None:
        # The sweeper selected the row while it was still queued; its lease update lands after
        # the worker's claim. It must not shorten the worker's send lease (or take it over).
        with Session(engine_for_env()) as session:
            service.mark_enqueued(session=session, delivery_ids=[delivery_id], now=utcnow())
            session.commit()

    wechat.before_checkpoint = sweeper_leases_it_too
    assert run_worker(delivery_id) == "pending", attempts(delivery_id)
    wait_for(lambda: finished(matrix, account) == 1, 30, "the publication")
    assert matrix.copies(account, title) == 1


def test_a_post_left_publishing_with_every_copy_out_is_settled_by_the_sweeper(
    matrix: Matrix, wechat: Wrapped, tmp_path: Path
) -> None:
    from sqlalchemy import update

    from hub.posts.models import Post, PostStatus

    delivery_id, account, _title = one_wechat_delivery(matrix, tmp_path)
    assert run_worker(delivery_id) == "pending"
    wait_for(lambda: finished(matrix, account) == 1, 30, "the publication")
    with Session(engine_for_env(), expire_on_commit=False) as session:
        assert service.poll(session=session, delivery_id=delivery_id) == "published"
    post_id = status(delivery_id).post_id
    # What the race fixed this session left behind in existing databases: every copy out, the
    # post still 'publishing' (so editors could not correct or withdraw it).
    with Session(engine_for_env()) as session:
        session.execute(
            update(Post).where(Post.id == post_id).values(status=PostStatus.publishing)  # type: ignore[arg-type]
        )
        session.commit()
    with Session(engine_for_env(), expire_on_commit=False) as session:
        service.sweep(session=session, now=utcnow())
        session.commit()
    with Session(engine_for_env()) as session:
        post = session.get(Post, post_id)
        assert post is not None and post.status is PostStatus.published


def test_a_copy_not_yet_sent_when_its_post_is_withdrawn_never_goes_out(
    matrix: Matrix, wechat: Wrapped, tmp_path: Path
) -> None:
    delivery_id, account, title = one_wechat_delivery(matrix, tmp_path)
    post_id = status(delivery_id).post_id

    def editor_withdraws_the_post() -> None:
        # The worker has its draft ready and is about to submit it; the editor withdraws now.
        withdraw_post(matrix.database_url, post_id)

    wechat.before_checkpoint = editor_withdraws_the_post
    assert run_worker(delivery_id) == "cancelled"
    assert status(delivery_id).status is DeliveryStatus.cancelled
    assert attempts(delivery_id)[-1] == "cancel:cancelled"
    state = matrix.platforms.wechat.state(matrix.wechat_apps[account])
    assert state["publications"] == [], "nothing may be submitted for a withdrawn post"
    assert matrix.copies(account, title) == 0


def test_a_silent_workers_claim_is_taken_over_and_reconciled_long_before_its_lease_ends(
    matrix: Matrix, wechat: Wrapped, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hub import system
    from hub.config import get_settings

    monkeypatch.setenv("GOVHUB_DELIVERY_LEASE_SECONDS", "300")  # production's lease
    get_settings.cache_clear()
    delivery_id, account, title = one_wechat_delivery(matrix, tmp_path)
    worker = "worker9@hub-b:4242:abcdef"
    monkeypatch.setattr(system, "_current_worker", worker)  # this "process" is a named worker
    system.beat_worker(worker, node="worker9@hub-b")

    def die() -> None:
        raise Killed

    wechat.after_publish = die  # WeChat accepted the submission; the worker dies before recording
    with pytest.raises(Killed):
        run_worker(delivery_id)
    assert status(delivery_id).claimed_by == worker
    monkeypatch.setattr(system, "_current_worker", "")  # whoever comes next is another process
    wait_for(lambda: finished(matrix, account) == 1, 30, "the publication to finish")

    # 40 s later the worker still beats (say, a long call of another thread): its claim stands.
    system.beat_worker(worker, now=utcnow() + timedelta(seconds=40))
    with Session(engine_for_env(), expire_on_commit=False) as session:
        assert service.sweep(session=session, now=utcnow() + timedelta(seconds=40))["publish"] == []
    assert status(delivery_id).status is DeliveryStatus.sending

    # Then it falls silent: 31 s after its last beat the sweeper takes the copy over, four
    # minutes before the lease would end, and the platform is asked before anything is sent.
    assert run_worker(delivery_id, later=timedelta(seconds=72)) == "published"
    assert attempts(delivery_id)[-2:] == ["takeover:unconfirmed", "reconcile:published"]
    assert status(delivery_id).remote_url
    state = matrix.platforms.wechat.state(matrix.wechat_apps[account])
    assert len(state["publications"]) == 1, "exactly one freepublish/submit reached WeChat"
    assert matrix.copies(account, title) == 1
