"""The delivery engine: claim, pace, publish, classify, reconcile, record.

Every delivery is a row created in the same transaction that approves or schedules its post; the
row is the outbox. Work is enqueued after commit, and the sweeper re-enqueues anything whose lease
ran out, so a crash between commit and enqueue, a lost broker message or a killed worker loses
nothing. A delivery is claimed with a conditional update before any call (two workers never send
the same row), and a call whose outcome is unknown is never repeated blindly: the engine first
looks at the platform (``recent()``; for WeChat, whether the draft is still in the draft box).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_, update
from sqlalchemy import select as sa_select
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, col, select

from connectors.base import Pending, Published, RemotePost, Rendition
from connectors.errors import ConnectorError, Unconfirmed
from hub.accounts.models import Account, AccountStatus
from hub.config import get_settings
from hub.delivery import channels
from hub.delivery.models import Attempt, Delivery, DeliveryStatus
from hub.delivery.pacing import Pacer
from hub.delivery.rules import Decision, decide
from hub.orgs.models import Org
from hub.posts.models import Post, PostVersion
from hub.posts.rules import IN_FLIGHT, settled_status
from hub.sqltypes import utcnow
from hub.users.models import User

log = logging.getLogger(__name__)

D = DeliveryStatus
POLL_EVERY = timedelta(seconds=3)
FIRST_POLL = timedelta(seconds=1)
FIRST_LOOK = timedelta(seconds=2)
NO_RESEND = "!no-resend"  # the platform called it a duplicate: if ours is absent, do not resend
RECONCILE_EVERY = timedelta(seconds=10)
RECONCILE_LOOKS = 30  # an asynchronous publication is looked for this long, then left to a person


def send_lease() -> timedelta:
    return timedelta(seconds=get_settings().delivery_lease_seconds)


def enqueue_lease() -> timedelta:
    return timedelta(seconds=get_settings().enqueue_lease_seconds)


def idempotency_key(delivery: Delivery) -> str:
    return f"{delivery.post_id}:{delivery.version}:{delivery.account_id}"


# -- creating and enqueuing ----------------------------------------------------------------------


def create_deliveries(
    *,
    session: Session,
    post_id: int,
    version: int,
    account_ids: Iterable[int],
    not_before: datetime | None,
) -> list[Delivery]:
    """One queued delivery per account for this post version (existing ones are kept)."""
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
                status=D.queued,
                next_attempt_at=not_before,
            )
            session.add(row)
        rows.append(row)
    session.flush()
    return rows


def enqueue(
    delivery_ids: Iterable[int], *, task: str = "delivery.publish", countdown: float | None = None
) -> int:
    """Send one task per delivery (ids only). Call after the transaction has committed."""
    from scheduler.app import get_celery

    app = get_celery()
    count = 0
    for delivery_id in delivery_ids:
        app.send_task(task, args=[delivery_id], countdown=countdown)
        count += 1
    return count


def mark_enqueued(*, session: Session, delivery_ids: list[int], now: datetime) -> None:
    """Give freshly enqueued deliveries a short lease so the sweeper leaves them alone."""
    if delivery_ids:
        session.execute(
            update(Delivery)
            .where(
                col(Delivery.id).in_(delivery_ids),
                # never a row a worker has claimed since: its send lease must stand
                col(Delivery.status).in_([D.queued, D.unconfirmed]),
            )
            .values(lease_until=now + enqueue_lease())
            .execution_options(synchronize_session=False)
        )


def sweep(*, session: Session, now: datetime, limit: int = 500) -> dict[str, list[int]]:
    """Find work whose time has come or whose lease ran out, lease it again, and return it.

    ``publish``: queued and due; sending or unconfirmed with an expired lease (the task
    reconciles those first). ``poll``: pending and due.
    """
    # First, in a transaction of its own (post locks before any delivery lock, as everywhere):
    _settle_stragglers(session, now)
    session.commit()
    lease_free = or_(col(Delivery.lease_until).is_(None), col(Delivery.lease_until) < now)
    due = or_(col(Delivery.next_attempt_at).is_(None), col(Delivery.next_attempt_at) <= now)
    # A worker that stopped mid-send (killed, crashed) may or may not have reached the platform.
    session.execute(
        update(Delivery)
        .where(col(Delivery.status) == D.sending, lease_free)
        .values(
            status=D.unconfirmed,
            next_attempt_at=now,
            lease_until=None,
            error="发送中断（工作进程停止），先核对平台再决定是否重发",
            updated_at=now,
        )
    )
    # Select, then lease with the same conditions re-checked (RETURNING says which rows were
    # leased): a worker that claimed a row in between keeps its send lease untouched.
    to_publish = and_(
        or_(
            and_(col(Delivery.status) == D.queued, due),
            and_(
                col(Delivery.status) == D.unconfirmed,
                col(Delivery.next_attempt_at).is_not(None),
                col(Delivery.next_attempt_at) <= now,
            ),
        ),
        lease_free,
    )
    to_poll = and_(col(Delivery.status) == D.pending, due, lease_free)
    publish = [i for i in session.exec(select(Delivery.id).where(to_publish).limit(limit)) if i]
    poll = [i for i in session.exec(select(Delivery.id).where(to_poll).limit(limit)) if i]
    publish_ids: list[int] = []
    poll_ids: list[int] = []
    if publish:
        publish_ids = list(
            session.execute(
                update(Delivery)
                .where(col(Delivery.id).in_(publish), to_publish)
                .values(lease_until=now + enqueue_lease())
                .returning(col(Delivery.id))
                .execution_options(synchronize_session=False)
            ).scalars()
        )
    if poll:  # the next look comes POLL_EVERY later, whether or not this one happens
        poll_ids = list(
            session.execute(
                update(Delivery)
                .where(col(Delivery.id).in_(poll), to_poll)
                .values(next_attempt_at=now + POLL_EVERY)
                .returning(col(Delivery.id))
                .execution_options(synchronize_session=False)
            ).scalars()
        )
    return {"publish": publish_ids, "poll": poll_ids}


def _settle_stragglers(session: Session, now: datetime, limit: int = 50) -> None:
    """Backstop: a post still ``publishing`` although none of its deliveries is in flight.

    Recording an outcome settles the post under its row lock, so this finds nothing in normal
    operation; it heals posts left behind by a crash between commits or by older versions.
    """
    from hub.posts.models import PostStatus

    in_flight = (
        sa_select(col(Delivery.id))
        .where(
            col(Delivery.post_id) == col(Post.id),
            col(Delivery.status).in_(sorted(IN_FLIGHT)),
        )
        .exists()
    )
    stuck = session.exec(
        select(Post.id).where(Post.status == PostStatus.publishing, ~in_flight).limit(limit)
    ).all()
    for post_id in stuck:
        _lock_post(session, post_id)
        _settle_post(session, post_id, now)  # type: ignore[arg-type]


# -- the publish task ----------------------------------------------------------------------------


class ClaimLost(RuntimeError):
    """This worker no longer owns the delivery (its lease ran out and it was taken over)."""


@dataclass(frozen=True)
class Fence:
    """The connector's checkpoint: called right before the call that makes a post public.

    One conditional update proves the claim is still this worker's (same status, same lease),
    renews the lease and writes ahead what is needed to find the post again (WeChat's draft id).
    A worker that was slow enough to lose its lease (a token lock held by a dead process, a
    stalled database) stops here instead of sending a copy that another worker may also send.
    """

    session: Session
    delivery: Delivery

    def __call__(self, ref: str) -> None:
        delivery, now = self.delivery, utcnow()
        lease = now + send_lease()
        values: dict[str, object] = {"lease_until": lease, "updated_at": now}
        if ref:
            values["pending_ref"] = ref
        held = self.session.execute(
            update(Delivery)
            .where(
                col(Delivery.id) == delivery.id,
                col(Delivery.status) == D.sending,
                col(Delivery.lease_until) == delivery.lease_until,
            )
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        if _rowcount(held) != 1:
            self.session.rollback()
            raise ClaimLost(f"delivery {delivery.id}: lease lost before sending; nothing sent")
        self.session.commit()
        for name, value in values.items():
            set_committed_value(delivery, name, value)


@dataclass(frozen=True)
class Job:
    delivery: Delivery
    account: Account
    post: Post
    version: PostVersion
    org: Org
    author: User


def _claim(session: Session, delivery_id: int, now: datetime) -> str | None:
    """Take the delivery for this worker. Returns 'send', 'reconcile' or None (not ours)."""
    sent = session.execute(
        update(Delivery)
        .where(
            col(Delivery.id) == delivery_id,
            col(Delivery.status) == D.queued,
            or_(col(Delivery.next_attempt_at).is_(None), col(Delivery.next_attempt_at) <= now),
        )
        .values(
            status=D.sending,
            lease_until=now + send_lease(),
            attempts=Delivery.attempts + 1,
            updated_at=now,
        )
    )
    if _rowcount(sent) == 1:
        session.commit()
        return "send"
    # A worker died mid-send (its lease ran out) or the outcome was unknown and it is time to
    # look again: take it as 'sending' (this worker is busy with it) and reconcile first.
    lease_free = or_(col(Delivery.lease_until).is_(None), col(Delivery.lease_until) < now)
    stale = session.execute(
        update(Delivery)
        .where(
            col(Delivery.id) == delivery_id,
            or_(
                and_(col(Delivery.status) == D.sending, lease_free),
                and_(
                    col(Delivery.status) == D.unconfirmed,
                    col(Delivery.next_attempt_at).is_not(None),
                    col(Delivery.next_attempt_at) <= now,
                ),
            ),
        )
        .values(status=D.sending, lease_until=now + send_lease(), updated_at=now)
    )
    if _rowcount(stale) == 1:
        session.commit()
        return "reconcile"
    session.rollback()
    return None


def _id(delivery: Delivery) -> int:
    assert delivery.id is not None
    return delivery.id


def _rowcount(result: object) -> int:
    return int(result.rowcount) if isinstance(result, CursorResult) else 0


def _load(session: Session, delivery_id: int) -> Job:
    """The delivery and everything needed to send it, in one round trip."""
    row = session.execute(
        sa_select(Delivery, Account, Post, PostVersion, Org, User)
        .join(Account, col(Account.id) == col(Delivery.account_id))
        .join(Post, col(Post.id) == col(Delivery.post_id))
        .join(
            PostVersion,
            and_(
                col(PostVersion.post_id) == col(Delivery.post_id),
                col(PostVersion.version) == col(Delivery.version),
            ),
        )
        .join(Org, col(Org.id) == col(Post.org_id))
        .join(User, col(User.id) == col(Post.author_id))
        .where(col(Delivery.id) == delivery_id)
        .execution_options(populate_existing=True)
    ).one()
    delivery, account, post, version, org, author = row
    return Job(delivery, account, post, version, org, author)


def rendition_for(job: Job) -> Rendition:
    """The rendition of the job's post version for its platform (rendered once per process)."""
    key = (
        job.post.id or 0,
        job.version.version,
        job.version.content_hash,
        job.account.platform.value,
        get_settings().public_base_url,
    )
    return _rendition(key, job)


_RENDITIONS: dict[tuple[int, int, str, str, str], Rendition] = {}


def _rendition(key: tuple[int, int, str, str, str], job: Job) -> Rendition:
    cached = _RENDITIONS.get(key)
    if cached is not None:
        return cached
    if len(_RENDITIONS) > 512:
        _RENDITIONS.clear()
    rendition = _render(job)
    _RENDITIONS[key] = rendition
    return rendition


def _render(job: Job) -> Rendition:
    content = channels.content_of(
        post_id=job.post.id,  # type: ignore[arg-type]
        version=job.version.version,
        title=job.version.title,
        body=job.version.body,
        summary=job.version.summary,
        images=job.version.images,
        overrides=job.version.overrides,
        urgency=job.post.urgency.value,
        author=job.org.name,
        org_name=job.org.name,
        correction_note=job.version.correction_note,
    )
    return channels.connector_for(job.account.platform.value).render(content)


def publish(
    *, session: Session, delivery_id: int, pacer: Pacer, now: datetime | None = None
) -> str:
    """Run one delivery as far as it can go now; returns what happened (for logs and tests)."""
    now = now or utcnow()
    claim = _claim(session, delivery_id, now)
    if claim is None:
        return "skipped"
    job = _load(session, delivery_id)
    if job.account.status is not AccountStatus.active:
        return _finish(session, job, Decision(D.parked, message="account needs attention"), now)
    connector = channels.connector_for(job.account.platform.value)
    account = channels.connector_account(job.account)
    rendition = rendition_for(job)

    if claim == "reconcile":
        found = _reconcile(session, job, account, rendition, now)
        if found is not None:
            return found
        # certainly absent: fall through and send

    problems = [p for p in connector.check(rendition) if p.blocking]
    if problems:
        message = "；".join(p.message for p in problems)
        return _finish(session, job, Decision(D.failed, message=message), now, action="check")

    per_hour = connector.limits.posts_per_hour
    if per_hour:
        wait_until = pacer.reserve(job.account.id, per_hour, now)  # type: ignore[arg-type]
        if wait_until is not None:
            decision = Decision(D.queued, retry_at=wait_until, message="paced: account limit")
            return _finish(session, job, decision, now, action="pace")

    try:
        outcome = connector.publish(
            account,
            rendition,
            idempotency_key=idempotency_key(job.delivery),
            checkpoint=Fence(session, job.delivery),
        )
    except ClaimLost as lost:
        log.warning("%s", lost)
        return "lost"
    except ConnectorError as exc:
        decision = decide(exc, attempt=job.delivery.attempts, now=utcnow())
        draft_media_id: str = getattr(exc, "draft_media_id", "") or ""
        if isinstance(exc, Unconfirmed) and draft_media_id:
            job.delivery.pending_ref = f":{draft_media_id}"
        elif isinstance(exc, Unconfirmed) and not exc.resend_if_absent:
            job.delivery.pending_ref = NO_RESEND
        return _finish(session, job, decision, utcnow(), error=exc)
    result = _record_outcome(session, job, outcome, utcnow(), action="publish")
    if result == D.pending.value:  # asynchronous platforms usually finish within a second
        enqueue([delivery_id], task="delivery.poll", countdown=FIRST_POLL.total_seconds())
    elif job.account.platform.value == "hall" and isinstance(outcome, Published):
        # a new release-hall entry: partner sites hear of it now (their sweep is the backstop)
        from hub.hall.partners import enqueue_partner_notifications

        if outcome.remote_id.isdigit():
            enqueue_partner_notifications([int(outcome.remote_id)])
    return result


def _lock_post(session: Session, post_id: int | None) -> None:
    """Take the post's row lock first in every transaction that settles it (PostgreSQL).

    Two deliveries of one post finishing at once would otherwise each count the other as still
    in flight (neither has committed) and leave the post ``publishing`` for good. With the lock,
    the second waits for the first to commit, and its count sees it. Taken before any delivery
    row is written, the same order as the posts service (post, then deliveries): no deadlock.
    SQLite serialises writers anyway (and ignores ``FOR UPDATE``).
    """
    with session.no_autoflush:
        session.execute(sa_select(col(Post.id)).where(col(Post.id) == post_id).with_for_update())


def _record_outcome(
    session: Session, job: Job, outcome: Published | Pending, now: datetime, *, action: str
) -> str:
    _lock_post(session, job.post.id)
    delivery = job.delivery
    if isinstance(outcome, Published):
        delivery.status = D.published
        delivery.remote_id = outcome.remote_id
        delivery.remote_url = outcome.remote_url
        delivery.published_at = outcome.published_at or now
        delivery.error = ""
        delivery.error_code = ""
        delivery.lease_until = None
        delivery.next_attempt_at = None
    else:
        delivery.status = D.pending
        delivery.pending_ref = outcome.ref
        delivery.lease_until = None
        delivery.next_attempt_at = now + POLL_EVERY
    delivery.updated_at = now
    session.add(delivery)
    session.add(
        Attempt(
            delivery_id=_id(delivery),
            at=now,
            action=action,
            outcome=delivery.status.value,
            excerpt=(outcome.remote_url if isinstance(outcome, Published) else outcome.ref)[:500],
        )
    )
    _settle_post(session, job.post.id, now)  # type: ignore[arg-type]
    if isinstance(outcome, Published):
        _on_published(session, job, now)
    session.commit()
    return delivery.status.value


def _finish(
    session: Session,
    job: Job,
    decision: Decision,
    now: datetime,
    *,
    error: ConnectorError | None = None,
    action: str = "publish",
) -> str:
    _lock_post(session, job.post.id)
    delivery = job.delivery
    delivery.status = decision.status
    delivery.error = decision.message[:2000]
    delivery.error_code = (error.code or "") if error else ""
    delivery.next_attempt_at = decision.retry_at
    if decision.reconcile and decision.retry_at is None:
        delivery.next_attempt_at = now + FIRST_LOOK  # the sweeper brings it back to look
    delivery.lease_until = None
    delivery.updated_at = now
    if decision.status is D.queued and action == "pace":
        delivery.attempts = max(0, delivery.attempts - 1)  # waiting for pace is not an attempt
    session.add(delivery)
    session.add(
        Attempt(
            delivery_id=_id(delivery),
            at=now,
            action=action,
            outcome=decision.status.value,
            http_status=error.http_status if error else None,
            platform_code=(error.code or "") if error else "",
            excerpt=decision.message[:500],
        )
    )
    if decision.flag_account:
        job.account.status = AccountStatus.needs_reauth
        job.account.updated_at = now
        session.add(job.account)
    _settle_post(session, job.post.id, now)  # type: ignore[arg-type]
    session.commit()
    return decision.status.value


def find_copy(posts: list[RemotePost], rendition: Rendition) -> RemotePost | None:
    """Our post among the platform's latest: it carries the post's link, or its exact title."""
    for post in posts:
        if rendition.link and (rendition.link in post.text or post.url == rendition.link):
            return post
    for post in posts:
        if rendition.title and post.text.strip() == rendition.title.strip():
            return post
    return None


def _reconcile(
    session: Session, job: Job, account: object, rendition: Rendition, now: datetime
) -> str | None:
    """Look for the post on the platform and record it if it is there.

    Returns None only when the post is certainly absent and may be sent. Platforms that publish
    synchronously (Weibo) answer at once from ``recent()``. For WeChat, a draft still in the draft
    box means the submission did not take (submit it again); a draft gone from the box means the
    publication is under way: it is looked for until it appears, never sent again.
    """
    from connectors.base import Account as ConnectorAccount

    assert isinstance(account, ConnectorAccount)
    connector = channels.connector_for(job.account.platform.value)
    delivery = job.delivery
    draft_id = delivery.pending_ref.partition(":")[2]
    try:
        # the draft still in the box: the submission did not take, so submit it again
        draft_exists = getattr(connector, "draft_exists", None)
        if draft_id and draft_exists is not None and draft_exists(account, draft_id):
            return _resubmit(session, job, connector, account, draft_id, now)
        copy = find_copy(connector.recent(account), rendition)
    except ConnectorError as exc:
        decision = decide(exc, attempt=delivery.attempts, now=now)
        if decision.status is D.queued:  # transient: look again later, never send blindly
            decision = Decision(
                D.unconfirmed, retry_at=decision.retry_at, reconcile=True, message=decision.message
            )
        return _finish(session, job, decision, now, error=exc, action="reconcile")
    if copy is not None:
        outcome = Published(copy.remote_id, copy.url, copy.created_at)
        return _record_outcome(session, job, outcome, now, action="reconcile")
    if draft_id:
        looks = len(
            session.exec(
                select(Attempt.id).where(
                    Attempt.delivery_id == delivery.id, Attempt.action == "reconcile"
                )
            ).all()
        )
        if looks + 1 < RECONCILE_LOOKS:
            decision = Decision(
                D.unconfirmed,
                retry_at=now + RECONCILE_EVERY,
                reconcile=True,
                message="已提交发布，平台尚未列出；稍后再查",
            )
        else:
            decision = Decision(
                D.unconfirmed,
                message="已提交发布但平台始终未列出：请在公众号后台核实，再标记为已发布或重试",
            )
        return _finish(session, job, decision, now, action="reconcile")
    if delivery.pending_ref == NO_RESEND:
        decision = Decision(
            D.failed,
            message="平台认定内容与近期发布的重复，且账号中没有这条稿件：未重发。请修改内容后重试",
        )
        return _finish(session, job, decision, now, action="reconcile")
    session.add(
        Attempt(
            delivery_id=_id(delivery),
            at=now,
            action="reconcile",
            outcome="absent",
            excerpt="not on the platform: sending",
        )
    )
    session.commit()
    return None


def _resubmit(
    session: Session, job: Job, connector: object, account: object, draft_id: str, now: datetime
) -> str:
    try:
        Fence(session, job.delivery)(f":{draft_id}")
        outcome = connector.submit_draft(account, draft_id)  # type: ignore[attr-defined]
    except ClaimLost as lost:
        log.warning("%s", lost)
        return "lost"
    except ConnectorError as exc:
        return _finish(
            session,
            job,
            decide(exc, attempt=job.delivery.attempts, now=now),
            now,
            error=exc,
            action="reconcile",
        )
    return _record_outcome(session, job, outcome, now, action="reconcile")


# -- pending deliveries (WeChat freepublish) ------------------------------------------------------


def poll(*, session: Session, delivery_id: int, now: datetime | None = None) -> str:
    now = now or utcnow()
    claimed = session.execute(
        update(Delivery)
        .where(
            col(Delivery.id) == delivery_id,
            col(Delivery.status) == D.pending,
            or_(col(Delivery.lease_until).is_(None), col(Delivery.lease_until) < now),
        )
        .values(lease_until=now + send_lease())
    )
    if _rowcount(claimed) != 1:
        session.rollback()
        return "skipped"
    session.commit()
    job = _load(session, delivery_id)
    connector = channels.connector_for(job.account.platform.value)
    try:
        outcome = connector.poll(channels.connector_account(job.account), job.delivery.pending_ref)
    except ConnectorError as exc:
        decision = decide(exc, attempt=job.delivery.attempts, now=now)
        if decision.status is D.queued:  # a failed poll is retried as a poll, never a send
            decision = Decision(D.pending, retry_at=decision.retry_at, message=decision.message)
        return _finish(session, job, decision, now, error=exc, action="poll")
    if isinstance(outcome, Pending):
        job.delivery.next_attempt_at = now + POLL_EVERY
        job.delivery.lease_until = None
        session.add(job.delivery)
        session.commit()
        return "pending"
    return _record_outcome(session, job, outcome, now, action="poll")


def complete_pending(
    *, session: Session, account_id: int, ref_prefix: str, outcome: Published | str, now: datetime
) -> int | None:
    """A platform callback (WeChat PUBLISHJOBFINISH) finished a pending delivery.

    Idempotent with polling: a delivery already published is left as it is. ``outcome`` is the
    publication or the platform's failure reason. Returns the delivery id, if one matched.
    """
    delivery = session.exec(
        select(Delivery).where(
            Delivery.account_id == account_id,
            col(Delivery.pending_ref).startswith(ref_prefix + ":")
            | (Delivery.pending_ref == ref_prefix),
        )
    ).first()
    if delivery is None:
        return None
    if delivery.status is not D.pending:
        return delivery.id
    job = _load(session, delivery.id)  # type: ignore[arg-type]
    if isinstance(outcome, Published):
        _record_outcome(session, job, outcome, now, action="callback")
    else:
        _finish(session, job, Decision(D.failed, message=outcome), now, action="callback")
    return delivery.id


# -- post status and side effects -----------------------------------------------------------------


def _settle_post(session: Session, post_id: int, now: datetime) -> None:
    from hub.posts.models import PostStatus

    post = session.get(Post, post_id)
    if post is None or post.status not in (
        PostStatus.publishing,
        PostStatus.published,
        PostStatus.partly_failed,
        PostStatus.failed,
    ):
        return
    version = post.approved_version or post.current_version
    statuses = [
        str(status)
        for status, _count in session.exec(
            select(Delivery.status, func.count())
            .where(Delivery.post_id == post_id, Delivery.version == version)
            .group_by(col(Delivery.status))
        ).all()
    ]
    settled = settled_status(statuses)
    new = settled or PostStatus.publishing
    if post.status is not new:
        post.status = new
        post.updated_at = now
        session.add(post)


def _on_published(session: Session, job: Job, now: datetime) -> None:
    """The first published copy answers the post's compliance clocks (emergency, hot topic)."""
    import importlib

    try:
        clocks = importlib.import_module("hub.clocks.service")
    except ImportError:  # the clocks domain is optional in a trimmed deployment
        return
    stop = getattr(clocks, "stop_for_post", None)
    if stop is not None:
        stop(session=session, post_id=job.post.id, published_at=job.delivery.published_at or now)


# -- manual actions (the delivery board) ----------------------------------------------------------


def withdraw(*, session: Session, delivery_id: int, now: datetime | None = None) -> str:
    """Delete a published copy from its platform (coordinated retraction)."""
    now = now or utcnow()
    job = _load(session, delivery_id)
    delivery = job.delivery
    if delivery.status is not D.published:
        if delivery.status in (D.queued, D.parked, D.failed):
            delivery.status = D.cancelled
            delivery.updated_at = now
            session.add(delivery)
            session.commit()
        return delivery.status.value
    connector = channels.connector_for(job.account.platform.value)
    try:
        connector.withdraw(channels.connector_account(job.account), delivery.remote_id)
    except ConnectorError as exc:
        session.add(
            Attempt(
                delivery_id=_id(delivery),
                at=now,
                action="withdraw",
                outcome="error",
                platform_code=exc.code or "",
                excerpt=str(exc)[:500],
            )
        )
        delivery.error = f"撤回失败：{exc}"
        delivery.updated_at = now
        session.add(delivery)
        session.commit()
        raise
    delivery.status = D.withdrawn
    delivery.updated_at = now
    session.add(delivery)
    session.add(Attempt(delivery_id=_id(delivery), at=now, action="withdraw", outcome="withdrawn"))
    session.commit()
    return "withdrawn"


def resume_parked(*, session: Session, account_id: int, now: datetime) -> list[int]:
    """After re-authorisation: every parked delivery of the account goes back to the queue."""
    rows = session.exec(
        select(Delivery).where(Delivery.account_id == account_id, Delivery.status == D.parked)
    ).all()
    for row in rows:
        row.status = D.queued
        row.next_attempt_at = None
        row.lease_until = None
        row.updated_at = now
        session.add(row)
    return [r.id for r in rows if r.id is not None]
