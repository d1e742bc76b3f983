"""The delivery engine: claim, pace, publish, classify, reconcile, record.

Every delivery is a row created in the same transaction that approves or schedules its post; the
row is the outbox. Work is enqueued after commit, and the sweeper re-enqueues anything whose lease
ran out, so a crash between commit and enqueue, a lost broker message or a killed worker loses
nothing. A delivery is claimed with a conditional update before any call (two workers never send
the same row), and a call whose outcome is unknown is never repeated blindly: the engine first
looks at the platform (``recent()``; for a WeChat submit, ``freepublish/batchget`` over a grace
period, after which a person decides; a WeChat push is resent with the same ``clientmsgid``).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import String, Table, and_, bindparam, func, insert, literal, null, or_, update
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Connection, CursorResult
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.sql.expression import CTE, ColumnElement, ScalarSelect, Update
from sqlmodel import Session, col, select

from connectors.base import Account as ConnectorAccount
from connectors.base import DeliveryOptions, Pending, Published, Reconciles, RemotePost, Rendition
from connectors.errors import ConnectorError, Unconfirmed
from hub import logs
from hub.accounts import service as accounts
from hub.accounts.models import Account, AccountStatus
from hub.clocks.service import running_clock_exists, stop_for_post
from hub.config import get_settings
from hub.delivery import channels
from hub.delivery.models import Attempt, Delivery, DeliveryStatus
from hub.delivery.pacing import Pacer
from hub.delivery.rules import (
    Decision,
    PushQuota,
    decide,
    lease_reclaimable,
    push_quota,
    recheck_delay,
    reconcile_submit,
    rip_for,
)
from hub.hall.cache import changed_soon
from hub.metrics import error_class, record_attempt
from hub.notify import service as notices
from hub.orgs.models import Org
from hub.posts.models import Approval, ApprovalKind, Post, PostStatus, PostVersion
from hub.posts.rules import IN_FLIGHT, settled_status
from hub.sqltypes import utcnow
from hub.system import Worker, current_worker

log = logging.getLogger(__name__)

POLL_EVERY = timedelta(seconds=3)
FIRST_POLL = timedelta(seconds=1)
FIRST_LOOK = timedelta(seconds=2)
NO_RESEND = "!no-resend"  # the platform called it a duplicate: if ours is absent, do not resend
# Parked while its outcome was still unknown: when it resumes, it looks before it sends.
LOOK_FIRST = "!look-first"
RECONCILE_EVERY = timedelta(seconds=10)
SUBMIT_CLOCK_SKEW = timedelta(minutes=5)  # the platform's create_time vs our clock
PUSH = "push"  # Delivery.mode of a WeChat mass send (群发)


def _decide(exc: ConnectorError, *, attempt: int, now: datetime) -> Decision:
    """The rules' decision with the operator's retry settings."""
    settings = get_settings()
    return decide(
        exc,
        attempt=attempt,
        now=now,
        max_attempts=settings.retry_max_attempts,
        backoff_cap=settings.retry_backoff_max_seconds,
    )


def send_lease() -> timedelta:
    return timedelta(seconds=get_settings().delivery_lease_seconds)


def enqueue_lease() -> timedelta:
    return timedelta(seconds=get_settings().enqueue_lease_seconds)


def idempotency_key(delivery: Delivery) -> str:
    return f"{delivery.post_id}:{delivery.version}:{delivery.account_id}"


# -- the hot path's statements, built once ------------------------------------------------------
# Every delivery runs the same few statements; building them per call (and running them through
# the ORM's unit of work) was a third of a worker's CPU. They are SQLAlchemy Core statements on
# the tables with bound parameters, executed on the session's connection (same transaction),
# compiled once per process and reused from the compiled cache.

_DT: Table = Delivery.__table__  # type: ignore[attr-defined]
_AT: Table = Attempt.__table__  # type: ignore[attr-defined]
_PT: Table = Post.__table__  # type: ignore[attr-defined]
_WT: Table = Worker.__table__  # type: ignore[attr-defined]

_CLAIM_SEND = (
    update(_DT)
    .where(
        _DT.c.id == bindparam("d_id"),
        _DT.c.status == DeliveryStatus.queued,
        or_(_DT.c.next_attempt_at.is_(None), _DT.c.next_attempt_at <= bindparam("t_now")),
    )
    .values(
        status=DeliveryStatus.sending,
        lease_until=bindparam("t_lease"),
        claimed_by=bindparam("s_worker"),
        attempts=_DT.c.attempts + 1,
        updated_at=bindparam("t_now"),
    )
)
# A worker died mid-send (its lease ran out) or the outcome was unknown and it is time to look
# again: take it as 'sending' (this worker is busy with it) and reconcile first.
_CLAIM_STALE = (
    update(_DT)
    .where(
        _DT.c.id == bindparam("d_id"),
        or_(
            and_(
                _DT.c.status == DeliveryStatus.sending,
                or_(_DT.c.lease_until.is_(None), _DT.c.lease_until < bindparam("t_now")),
            ),
            and_(
                _DT.c.status == DeliveryStatus.unconfirmed,
                _DT.c.next_attempt_at.is_not(None),
                _DT.c.next_attempt_at <= bindparam("t_now"),
            ),
        ),
    )
    .values(
        status=DeliveryStatus.sending,
        lease_until=bindparam("t_lease"),
        claimed_by=bindparam("s_worker"),
        updated_at=bindparam("t_now"),
    )
)
_CLAIM_POLL = (
    update(_DT)
    .where(
        _DT.c.id == bindparam("d_id"),
        _DT.c.status == DeliveryStatus.pending,
        or_(_DT.c.lease_until.is_(None), _DT.c.lease_until < bindparam("t_now")),
    )
    .values(lease_until=bindparam("t_lease"), claimed_by=bindparam("s_worker"))
)
_FENCE_WHERE = (
    _DT.c.id == bindparam("d_id"),
    _DT.c.status == DeliveryStatus.sending,
    _DT.c.lease_until == bindparam("t_held"),
    # nothing new goes out for a post that was withdrawn meanwhile
    sa_select(_PT.c.id)
    .where(_PT.c.id == _DT.c.post_id, _PT.c.status != PostStatus.withdrawn)
    .exists(),
)
_FENCE = (
    update(_DT)
    .where(*_FENCE_WHERE)
    .values(lease_until=bindparam("t_lease"), updated_at=bindparam("t_now"))
)
_FENCE_REF = _FENCE.values(pending_ref=bindparam("s_ref"), submitted_at=bindparam("t_now"))
_RECORD_PUBLISHED = (
    update(_DT)
    .where(_DT.c.id == bindparam("d_id"))
    .values(
        status=DeliveryStatus.published,
        remote_id=bindparam("s_remote_id"),
        remote_url=bindparam("s_remote_url"),
        published_at=bindparam("t_published"),
        error="",
        error_code="",
        lease_until=None,
        next_attempt_at=None,
        updated_at=bindparam("t_now"),
    )
)
_RECORD_PENDING = (
    update(_DT)
    .where(_DT.c.id == bindparam("d_id"))
    .values(
        status=DeliveryStatus.pending,
        pending_ref=bindparam("s_ref"),
        # a WeChat push's msg_data_id, when the platform gave one (else the row's is kept)
        msg_data_id=func.coalesce(
            func.nullif(bindparam("s_msg", type_=String), ""), _DT.c.msg_data_id
        ),
        lease_until=None,
        next_attempt_at=bindparam("t_next"),
        updated_at=bindparam("t_now"),
    )
)
_RECORD_DECISION = (
    update(_DT)
    .where(_DT.c.id == bindparam("d_id"))
    .values(
        status=bindparam("s_status", type_=_DT.c.status.type),
        error=bindparam("s_error"),
        error_code=bindparam("s_code"),
        next_attempt_at=bindparam("t_next", type_=_DT.c.next_attempt_at.type),
        lease_until=None,
        attempts=bindparam("n_attempts"),
        pending_ref=bindparam("s_ref"),
        updated_at=bindparam("t_now"),
    )
)
_STILL_POLLING = (
    update(_DT)
    .where(_DT.c.id == bindparam("d_id"))
    .values(next_attempt_at=bindparam("t_next"), lease_until=None)
)
_ADD_ATTEMPT = insert(_AT)
# Read under a share lock when a copy has landed: a withdrawal (which updates the post first,
# then lists its published copies) either waits for this transaction, and then lists this copy,
# or has committed, and then this reads 'withdrawn' and the copy is taken down too. The same
# round trip says whether a running compliance clock is linked to the post (most have none).
_POST_STATUS_SHARED = (
    sa_select(_PT.c.status, running_clock_exists(_PT.c.id))
    .where(_PT.c.id == bindparam("p_id"))
    .with_for_update(read=True, of=_PT)
)
_POST_STATUS = sa_select(_PT.c.status).where(_PT.c.id == bindparam("p_id"))


def _with_attempt(record: Update, outcome: DeliveryStatus) -> tuple[CTE, CTE]:
    """PostgreSQL: ``record`` (an UPDATE of one delivery) and its attempt row as one statement.

    The attempt is inserted only for the row the UPDATE returned, so the two land together or
    not at all, in one round trip instead of four (BEGIN, UPDATE, INSERT, COMMIT). Returns the
    UPDATE as a CTE and the INSERT as a CTE reading it.
    """
    changed = record.returning(_DT.c.id).cte("changed")
    attempt = insert(_AT).from_select(
        ["delivery_id", "at", "action", "outcome", "http_status", "platform_code", "excerpt"],
        sa_select(
            changed.c.id,
            bindparam("t_now"),
            bindparam("s_action"),
            literal(outcome.value),
            null(),
            literal(""),
            bindparam("s_excerpt"),
        ),
    )
    return changed, attempt.cte("attempt")


_changed, _attempt_cte = _with_attempt(_RECORD_PUBLISHED, DeliveryStatus.published)
# One statement on PostgreSQL: the copy's outcome, its attempt, and the post's status read under
# a share lock (the lock is held until the statement's own transaction commits: the same
# guarantee as the three statements in one transaction it replaces; see _POST_STATUS_SHARED).
_PUBLISHED_AT_ONCE = _POST_STATUS_SHARED.add_cte(_changed, _attempt_cte)
_changed_p, _attempt_cte_p = _with_attempt(_RECORD_PENDING, DeliveryStatus.pending)
_PENDING_AT_ONCE = sa_select(func.count()).select_from(_changed_p).add_cte(_attempt_cte_p)
# The distinct statuses of the deliveries of the version the post is publishing.
_POST_STATUSES = (
    sa_select(_DT.c.status)
    .distinct()
    .where(
        _DT.c.post_id == bindparam("p_id"),
        _DT.c.version
        == sa_select(func.coalesce(_PT.c.approved_version, _PT.c.current_version))
        .where(_PT.c.id == bindparam("p_id"))
        .scalar_subquery(),
    )
)


def _conn(session: Session) -> Connection:
    return session.connection()


@contextmanager
def _each_on_its_own(session: Session) -> Iterator[None]:
    """Every statement in the block commits by itself (PostgreSQL autocommit).

    psycopg opens each transaction with a BEGIN round trip before its first statement and ends
    it with a COMMIT round trip, so a claim or a fence (one conditional UPDATE, committed at
    once) took three round trips, and a look at the post's copies (one SELECT) three. On a
    fan-out that is about a third of a copy's round trips, each a wake-up of the worker and of
    PostgreSQL. Only for statements that need no transaction around them: a claim and a fence
    are atomic by themselves (each re-checks its conditions in its WHERE clause); the reads are
    READ COMMITTED either way (each statement sees what was committed before it). Outcomes are
    still recorded in one transaction each, after the block.

    No change on SQLite (its BEGIN and COMMIT are library calls, not round trips), nor in a
    session that has a transaction in progress (the block joins it as before).
    """
    if not _statements_alone(session):
        yield
        return
    connection = session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
    try:
        yield
    except BaseException:
        session.rollback()
        raise
    else:
        session.commit()  # ends the session's transaction: nothing is left to send
    finally:
        # A session bound to a connection (the worker's) keeps it: back to transactions. One
        # bound to the engine has returned it to the pool, which reset it already.
        if not connection.closed and not connection.invalidated:
            connection.execution_options(isolation_level=connection.default_isolation_level)


def _attempt(
    session: Session,
    delivery_id: int,
    now: datetime,
    action: str,
    outcome: str,
    *,
    http_status: int | None = None,
    platform_code: str = "",
    excerpt: str = "",
) -> None:
    _conn(session).execute(
        _ADD_ATTEMPT,
        {
            "delivery_id": delivery_id,
            "at": now,
            "action": action,
            "outcome": outcome,
            "http_status": http_status,
            "platform_code": platform_code,
            "excerpt": excerpt,
        },
    )


# -- creating and enqueuing ----------------------------------------------------------------------


def create_deliveries(
    *,
    session: Session,
    post_id: int,
    version: int,
    account_ids: Iterable[int],
    not_before: datetime | None,
    modes: Mapping[int, str] | None = None,
    lease_until: datetime | None = None,
) -> list[Delivery]:
    """One queued delivery per account for this post version (existing ones are kept).

    ``modes``: account id -> ``"push"`` for a WeChat mass send (群发); others publish.
    ``lease_until``: the new rows' enqueue lease (as ``mark_enqueued`` would set it), when they
    are about to be enqueued.
    The new rows go in with one multi-row ``INSERT ... RETURNING`` (a provincial post names a
    thousand accounts: one ORM object flushed per row took most of the approval).
    """
    modes = modes or {}
    existing = {
        d.account_id: d
        for d in session.exec(
            select(Delivery).where(Delivery.post_id == post_id, Delivery.version == version)
        ).all()
    }
    wanted = list(dict.fromkeys(account_ids))
    missing = [a for a in wanted if a not in existing]
    if missing:
        now = utcnow()
        template = _new_delivery_row(now)
        rows = [
            {
                **template,
                "post_id": post_id,
                "version": version,
                "account_id": account_id,
                "next_attempt_at": not_before,
                "mode": PUSH if modes.get(account_id) == PUSH else "",
                "lease_until": lease_until,
            }
            for account_id in missing
        ]
        created = session.scalars(
            insert(Delivery).returning(Delivery, sort_by_parameter_order=True), rows
        ).all()
        existing.update((d.account_id, d) for d in created)
    return [existing[a] for a in wanted]


def _new_delivery_row(now: datetime) -> dict[str, object]:
    """Every column of a fresh queued delivery (a bulk insert applies no model defaults)."""
    row: dict[str, object] = {
        name: field.get_default(call_default_factory=True)
        for name, field in Delivery.model_fields.items()
        if name != "id"
    }
    row.update(status=DeliveryStatus.queued, created_at=now, updated_at=now)
    return row


def enqueue(
    delivery_ids: Iterable[int], *, task: str = "delivery.publish", countdown: float | None = None
) -> int:
    """Send one task per delivery (ids only). Call after the transaction has committed.

    All of them go through one producer in one publish batch: one Redis pipeline, or one
    transaction on the embedded broker (``scheduler/broker.py``). A fan-out to a thousand
    accounts is one round trip, not a thousand (nor a thousand SQLite commits).
    """
    from scheduler.app import get_celery

    ids = list(delivery_ids)
    if not ids:
        return 0
    app = get_celery()
    with app.producer_or_acquire() as producer, producer.batch():
        for delivery_id in ids:
            app.send_task(task, args=[delivery_id], countdown=countdown, producer=producer)
    return len(ids)


def mark_enqueued(*, session: Session, delivery_ids: list[int], now: datetime) -> None:
    """Give freshly enqueued deliveries a short lease so the sweeper leaves them alone."""
    if delivery_ids:
        session.execute(
            update(Delivery)
            .where(
                col(Delivery.id).in_(delivery_ids),
                # never a row a worker has claimed since: its send lease must stand
                col(Delivery.status).in_([DeliveryStatus.queued, DeliveryStatus.unconfirmed]),
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
    # Claims of workers that stopped showing they are alive, long before their lease runs out.
    take_over_from_dead_workers(session=session, now=now)
    session.commit()
    lease_free = or_(col(Delivery.lease_until).is_(None), col(Delivery.lease_until) < now)
    due = or_(col(Delivery.next_attempt_at).is_(None), col(Delivery.next_attempt_at) <= now)
    # A worker that stopped mid-send (killed, crashed) may or may not have reached the platform.
    session.execute(
        update(Delivery)
        .where(col(Delivery.status) == DeliveryStatus.sending, lease_free)
        .values(
            status=DeliveryStatus.unconfirmed,
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
            and_(col(Delivery.status) == DeliveryStatus.queued, due),
            and_(
                col(Delivery.status) == DeliveryStatus.unconfirmed,
                col(Delivery.next_attempt_at).is_not(None),
                col(Delivery.next_attempt_at) <= now,
            ),
        ),
        lease_free,
    )
    to_poll = and_(col(Delivery.status) == DeliveryStatus.pending, due, lease_free)
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


# Claims still under lease that name a worker: the candidates for a takeover.
_HELD = sa_select(
    _DT.c.id, _DT.c.status, _DT.c.lease_until, _DT.c.claimed_by, _DT.c.updated_at
).where(
    _DT.c.status.in_([DeliveryStatus.sending, DeliveryStatus.pending]),
    _DT.c.lease_until >= bindparam("t_now"),
    _DT.c.claimed_by != "",
)


def take_over_from_dead_workers(*, session: Session, now: datetime) -> list[int]:
    """Release the claims of workers whose own heartbeat went stale (``rules.lease_reclaimable``).

    A ``sending`` delivery becomes ``unconfirmed`` (due now), so the same sweep hands it to a
    live worker, which reconciles with the platform before it sends anything; a ``pending`` one
    loses its poll lease and is polled again. Each update re-checks the status and the lease the
    decision saw: a worker that claimed it or passed its fence in between keeps it. Returns the
    ids taken over (the caller commits).
    """
    held = session.execute(_HELD, {"t_now": now}).all()
    if not held:
        return []
    dead_after = timedelta(seconds=get_settings().worker_dead_seconds)
    holders = {row.claimed_by for row in held}
    seen: dict[str, datetime] = {
        worker_id: last_seen
        for worker_id, last_seen in session.execute(
            sa_select(_WT.c.id, _WT.c.last_seen).where(_WT.c.id.in_(holders))
        ).all()
    }
    taken: list[int] = []
    for row in held:
        last_seen = seen.get(row.claimed_by)
        if not lease_reclaimable(
            lease_until=row.lease_until,
            holder=row.claimed_by,
            holder_seen=last_seen,
            last_touched=row.updated_at,
            now=now,
            dead_after=dead_after,
        ):
            continue
        silent = (
            f"上次心跳 {int((now - last_seen).total_seconds())} 秒前" if last_seen else "已停止"
        )
        values: dict[str, object]
        if row.status == DeliveryStatus.sending:
            values = {
                "status": DeliveryStatus.unconfirmed,
                "next_attempt_at": now,
                "lease_until": None,
                "error": f"发送中断（工作进程 {row.claimed_by} {silent}），先核对平台再决定是否重发",
                "updated_at": now,
            }
        else:  # a poll in progress: looking again is harmless
            values = {"lease_until": None}
        released = session.execute(
            update(_DT)
            .where(
                _DT.c.id == row.id,
                _DT.c.status == row.status,
                _DT.c.lease_until == row.lease_until,
            )
            .values(**values)
        )
        if _rowcount(released) == 1:
            taken.append(row.id)
            outcome = str(values.get("status", row.status))
            excerpt = f"worker {row.claimed_by} silent ({silent}): taken over"
            _attempt(session, row.id, now, "takeover", outcome, excerpt=excerpt[:500])
            log.warning("delivery %s: %s", row.id, excerpt)
    return taken


def _settle_stragglers(session: Session, now: datetime, limit: int = 50) -> None:
    """Backstop: a post still ``publishing`` although none of its deliveries is in flight.

    Recording an outcome settles the post right after it commits, so this finds nothing in normal
    operation; it heals a crash between that commit and the look, and databases of older versions.
    """
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
        settle_post(session, post_id, now)  # type: ignore[arg-type]


# -- the publish task ----------------------------------------------------------------------------


class ClaimLost(RuntimeError):
    """This worker no longer owns the delivery (its lease ran out and it was taken over)."""


class PostWithdrawn(ClaimLost):
    """The post was withdrawn while this worker prepared its copy: nothing is sent."""


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
        params: dict[str, object] = {
            "d_id": delivery.id,
            "t_held": delivery.lease_until,
            "t_lease": lease,
            "t_now": now,
        }
        if ref:
            values["pending_ref"] = params["s_ref"] = ref
            values["submitted_at"] = now
        with _each_on_its_own(self.session):
            held = _conn(self.session).execute(_FENCE_REF if ref else _FENCE, params)
            if _rowcount(held) != 1:
                post_status = (
                    _conn(self.session).execute(_POST_STATUS, {"p_id": delivery.post_id}).scalar()
                )
                self.session.rollback()
                if post_status == PostStatus.withdrawn:
                    raise PostWithdrawn(
                        f"delivery {delivery.id}: the post was withdrawn; nothing sent"
                    )
                raise ClaimLost(f"delivery {delivery.id}: lease lost before sending; nothing sent")
            self.session.commit()
        for name, value in values.items():
            set_committed_value(delivery, name, value)


@dataclass(frozen=True)
class Job:
    delivery: Delivery
    account: Account
    post: Post
    content_hash: str  # of the delivery's version: the rendition cache's key
    default_cover: str = ""  # the post's org's (media path): part of that key too
    approver_ip: str = ""  # who approved the version, from where (Weibo's rip), "" unknown
    clock_running: bool = False  # a compliance clock runs for the post (when it was loaded)
    started: float = dataclasses.field(default_factory=time.perf_counter)  # for the outcome line


def _claim_params(delivery_id: int, now: datetime) -> dict[str, object]:
    """A claim's parameters: the lease, and this worker's name (the sweeper's takeover looks
    at that worker's own heartbeat; "" outside a worker process: only the lease applies)."""
    return {
        "d_id": delivery_id,
        "t_now": now,
        "t_lease": now + send_lease(),
        "s_worker": current_worker(),
    }


def _claim(session: Session, delivery_id: int, now: datetime) -> str | None:
    """Take the delivery for this worker. Returns 'send', 'reconcile' or None (not ours)."""
    params = _claim_params(delivery_id, now)
    if _rowcount(_conn(session).execute(_CLAIM_SEND, params)) == 1:
        session.commit()
        return "send"
    if _rowcount(_conn(session).execute(_CLAIM_STALE, params)) == 1:
        session.commit()
        return "reconcile"
    session.rollback()
    return None


def _id(delivery: Delivery) -> int:
    assert delivery.id is not None
    return delivery.id


def _rowcount(result: object) -> int:
    return int(result.rowcount) if isinstance(result, CursorResult) else 0


def _approver_ip(post_id: ColumnElement[int], version: ColumnElement[int]) -> ScalarSelect[str]:
    """The IP of whoever approved this version last (Weibo's rip: the person it goes out for),
    as a column of the job's load rather than a statement of its own."""
    return (
        sa_select(col(Approval.client_ip))
        .where(
            col(Approval.post_id) == post_id,
            col(Approval.version) == version,
            col(Approval.kind) == ApprovalKind.approve,
        )
        .order_by(col(Approval.id).desc())
        .limit(1)
        .scalar_subquery()
    )


_LOAD = (
    sa_select(
        Delivery,
        Account,
        Post,
        col(PostVersion.content_hash),
        col(Org.default_cover),
        _approver_ip(_DT.c.post_id, _DT.c.version),
        running_clock_exists(_DT.c.post_id),
    )
    .join(Account, col(Account.id) == col(Delivery.account_id))
    .join(Post, col(Post.id) == col(Delivery.post_id))
    .join(Org, col(Org.id) == col(Post.org_id))
    .join(
        PostVersion,
        and_(
            col(PostVersion.post_id) == col(Delivery.post_id),
            col(PostVersion.version) == col(Delivery.version),
        ),
    )
    .where(col(Delivery.id) == bindparam("d_id"))
    .execution_options(populate_existing=True)
)
# Only when this process has not rendered the version for the platform yet.
_VERSION_AND_ORG = (
    sa_select(PostVersion, Org)
    .join(Post, col(Post.id) == col(PostVersion.post_id))
    .join(Org, col(Org.id) == col(Post.org_id))
    .where(
        col(PostVersion.post_id) == bindparam("p_id"), col(PostVersion.version) == bindparam("v")
    )
)


def _load(session: Session, delivery_id: int) -> Job:
    """The delivery, its account and post, in one round trip (content only when not cached)."""
    row = session.execute(_LOAD, {"d_id": delivery_id}).one()
    delivery, account, post, content_hash, default_cover, approver_ip, clock_running = row
    return Job(
        delivery,
        account,
        post,
        content_hash,
        default_cover or "",
        approver_ip or "",
        bool(clock_running),
    )


def _statements_alone(session: Session) -> bool:
    """Whether claims and outcomes may run as single statements in autocommit: PostgreSQL, and
    no transaction of the caller's in progress (see ``_each_on_its_own``)."""
    return not session.in_transaction() and session.get_bind().dialect.name == "postgresql"


def rendition_for(session: Session, job: Job) -> Rendition:
    """The rendition of the job's post version for its platform (rendered once per process)."""
    key = (
        job.post.id or 0,
        job.delivery.version,
        job.content_hash,
        job.account.platform.value,
        get_settings().public_base_url,
        job.default_cover,  # an admin setting it lets a retry of a copy that lacked a cover pass
    )
    cached = _RENDITIONS.get(key)
    if cached is not None:
        return cached
    if len(_RENDITIONS) > 512:
        _RENDITIONS.clear()
    version, org = session.execute(
        _VERSION_AND_ORG, {"p_id": job.post.id, "v": job.delivery.version}
    ).one()
    rendition = _render(session, job, version, org)
    _RENDITIONS[key] = rendition
    return rendition


_RENDITIONS: dict[tuple[int, int, str, str, str, str], Rendition] = {}


def _render(session: Session, job: Job, version: PostVersion, org: Org) -> Rendition:
    from hub.media.service import library_for

    content = channels.content_of(
        post_id=job.post.id,  # type: ignore[arg-type]
        version=version,
        urgency=job.post.urgency.value,
        org_name=org.name,
        library=library_for(session, org, [img["path"] for img in version.images]),
    )
    return channels.connector_for(job.account.platform.value).render(content)


def _rip(session: Session, job: Job) -> str:
    """The rip for this copy (platforms that act for a person: Weibo): the approver's IP (the
    person on whose behalf it goes out, even when beat sends it at the scheduled time), or the
    configured fallback."""
    if not job.account.platform.info.acts_for_person:
        return ""
    return rip_for(job.approver_ip, get_settings().weibo_fallback_rip)


def with_delivery_options(rendition: Rendition, job: Job) -> Rendition:
    """The cached rendition plus this delivery's own choices (WeChat: push or publish, and
    whether readers may comment), which are not part of the post's content."""
    connector = channels.connector_for(job.account.platform.value)
    if not isinstance(connector, DeliveryOptions):
        return rendition
    options = connector.delivery_options(
        mode=PUSH if job.delivery.mode == PUSH else "publish",
        comments=job.post.wechat_comments or "closed",
    )
    return dataclasses.replace(rendition, meta={**rendition.meta, **options})


def publish(
    *, session: Session, delivery_id: int, pacer: Pacer, now: datetime | None = None
) -> str:
    """Run one delivery as far as it can go now; returns what happened (for logs and tests)."""
    now = now or utcnow()
    with _each_on_its_own(session):  # the claim, and what the copy is made of
        claim = _claim(session, delivery_id, now)
        if claim is None:
            return "skipped"
        job = _load(session, delivery_id)
        if job.account.status is AccountStatus.active:
            account = channels.connector_account(job.account, rip=_rip(session, job))
            rendition = with_delivery_options(rendition_for(session, job), job)
    if job.account.status is not AccountStatus.active:
        reason = job.account.attention or f"账号状态为 {job.account.status.value}，需要处理"
        # an unknown outcome stays unknown: when it resumes it looks before it sends
        look = LOOK_FIRST if claim == "reconcile" and not job.delivery.pending_ref else None
        return _finish(
            session,
            job,
            Decision(DeliveryStatus.parked, message=f"账号待处理：{reason}"),
            now,
            pending_ref=look,
        )
    connector = channels.connector_for(job.account.platform.value)

    if claim == "reconcile":
        found = _reconcile(session, job, account, rendition, now)
        if found is not None:
            return found
        # certainly absent: fall through and send
    if job.post.status is PostStatus.withdrawn:
        return _cancel_withdrawn(session, job, now)

    problems = [p for p in connector.check(rendition) if p.blocking]
    if problems:
        message = "；".join(p.message for p in problems)
        return _finish(
            session, job, Decision(DeliveryStatus.failed, message=message), now, action="check"
        )

    per_hour = connector.limits.posts_per_hour
    if per_hour:
        wait_until = pacer.reserve(job.account.id, per_hour, now)  # type: ignore[arg-type]
        if wait_until is not None:
            decision = Decision(
                DeliveryStatus.queued, retry_at=wait_until, message="paced: account limit"
            )
            return _finish(session, job, decision, now, action="pace")

    try:
        outcome = connector.publish(
            account,
            rendition,
            idempotency_key=idempotency_key(job.delivery),
            checkpoint=Fence(session, job.delivery),
        )
    except PostWithdrawn:
        return _cancel_withdrawn(session, job, utcnow())
    except ClaimLost as lost:
        log.warning("%s", lost)
        return "lost"
    except ConnectorError as exc:
        decision = _decide(exc, attempt=job.delivery.attempts, now=utcnow())
        ref: str | None = None
        if isinstance(exc, Unconfirmed) and exc.lookup_ref:
            ref = f":{exc.lookup_ref}"
        elif isinstance(exc, Unconfirmed) and not exc.resend_if_absent:
            ref = NO_RESEND
        return _finish(session, job, decision, utcnow(), error=exc, pending_ref=ref)
    result = _record_outcome(session, job, outcome, utcnow(), action="publish")
    if (
        result == DeliveryStatus.pending.value
    ):  # asynchronous platforms usually finish within a second
        enqueue([delivery_id], task="delivery.poll", countdown=FIRST_POLL.total_seconds())
    elif job.account.platform.info.builtin_channel and isinstance(outcome, Published):
        # a new release-hall entry: partner sites hear of it now (their sweep is the backstop)
        from hub.hall.partners import enqueue_partner_notifications

        if outcome.remote_id.isdigit():
            enqueue_partner_notifications([int(outcome.remote_id)])
    return result


def _lock_post(session: Session, post_id: int | None) -> None:
    """Take the post's row lock (PostgreSQL) and read it afresh before settling it.

    Two deliveries of one post finishing at once could otherwise each count the other as still
    in flight and leave the post ``publishing`` for good; with the lock, the second waits for the
    first to commit. It is taken in a transaction that has written no delivery row (see
    ``_settle_after_commit``), so it cannot deadlock with the posts service, which locks the post
    first and its deliveries second. The post is re-read under the lock (a withdrawal committed
    since the job was loaded must not be overwritten). SQLite serialises writers anyway.
    """
    with session.no_autoflush:
        session.exec(
            select(Post)
            .where(Post.id == post_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).first()


def _record_outcome(
    session: Session, job: Job, outcome: Published | Pending, now: datetime, *, action: str
) -> str:
    delivery = job.delivery
    delivery_id = _id(delivery)
    # PostgreSQL, no transaction open: the outcome, its attempt (and for a landed copy the post's
    # status under a share lock) in one statement, committed by itself (_PUBLISHED_AT_ONCE).
    # A copy landing for a post whose compliance clock ran when it was loaded keeps the one
    # transaction, so the clock is answered with it or not at all; an account's failure count
    # reset (or a clock started since the load) follows in a transaction of its own. On SQLite
    # everything is one transaction as before.
    at_once = _statements_alone(session) and not (
        isinstance(outcome, Published) and job.clock_running
    )
    post_status: object = None
    clock_running = False
    if isinstance(outcome, Published):
        published_at = outcome.published_at or now
        params: dict[str, object] = {
            "d_id": delivery_id,
            "s_remote_id": outcome.remote_id,
            "s_remote_url": outcome.remote_url,
            "t_published": published_at,
            "t_now": now,
        }
        if at_once:
            with _each_on_its_own(session):
                post_status, clock_running = (
                    _conn(session)
                    .execute(
                        _PUBLISHED_AT_ONCE,
                        {
                            **params,
                            "p_id": job.post.id,
                            "s_action": action,
                            "s_excerpt": outcome.remote_url[:500],
                        },
                    )
                    .one()
                )
        else:
            _conn(session).execute(_RECORD_PUBLISHED, params)
        changes: dict[str, object] = {
            "status": DeliveryStatus.published,
            "remote_id": outcome.remote_id,
            "remote_url": outcome.remote_url,
            "published_at": published_at,
            "error": "",
            "error_code": "",
            "lease_until": None,
            "next_attempt_at": None,
        }
        excerpt = outcome.remote_url
    else:
        next_at = now + POLL_EVERY
        msg_data_id = outcome.meta.get("msg_data_id", "")
        params = {
            "d_id": delivery_id,
            "s_ref": outcome.ref,
            "s_msg": msg_data_id,
            "t_next": next_at,
            "t_now": now,
        }
        if at_once:
            with _each_on_its_own(session):
                _conn(session).execute(
                    _PENDING_AT_ONCE,
                    {**params, "s_action": action, "s_excerpt": outcome.ref[:500]},
                ).one()
        else:
            _conn(session).execute(_RECORD_PENDING, params)
        changes = {
            "status": DeliveryStatus.pending,
            "pending_ref": outcome.ref,
            "lease_until": None,
            "next_attempt_at": next_at,
        }
        if msg_data_id:
            changes["msg_data_id"] = msg_data_id
        excerpt = outcome.ref
    changes["updated_at"] = now
    if not at_once:
        _attempt(session, delivery_id, now, action, str(changes["status"]), excerpt=excerpt[:500])
    _set_committed(delivery, changes)
    landed_after_withdrawal = False
    if isinstance(outcome, Published):
        if not at_once:
            post_status, clock_running = (
                _conn(session).execute(_POST_STATUS_SHARED, {"p_id": job.post.id}).one()
            )
        if clock_running:
            _on_published(session, job, now)
        if job.account.check_failures:  # the account works: its next trouble starts afresh
            job.account.check_failures = 0
            session.add(job.account)
        landed_after_withdrawal = post_status == PostStatus.withdrawn
    session.commit()
    if isinstance(outcome, Published):
        # the copy's link shows on the post's hall page: stamped within 0.1 s, once for every
        # copy this process lands meanwhile (a WeChat copy still pending changes nothing public)
        changed_soon(session.get_bind().engine)
    published = delivery.published_at if delivery.status is DeliveryStatus.published else None
    _settled(job, action, published_at=published)
    if landed_after_withdrawal:
        # the post was withdrawn while this copy was under way: take it down as well
        log.warning("delivery %s landed after its post was withdrawn; withdrawing it", delivery_id)
        enqueue([delivery_id], task="delivery.withdraw")
    if delivery.status not in IN_FLIGHT:  # a pending copy keeps its post publishing anyway
        _settle_after_commit(session, job.post.id, now)  # type: ignore[arg-type]
    return delivery.status.value


def _cancel_withdrawn(session: Session, job: Job, now: datetime) -> str:
    """The post was withdrawn before this copy went out: it never will."""
    decision = Decision(DeliveryStatus.cancelled, message="稿件已撤回：此渠道未发送")
    return _finish(session, job, decision, now, action="cancel")


def _finish(
    session: Session,
    job: Job,
    decision: Decision,
    now: datetime,
    *,
    error: ConnectorError | None = None,
    action: str = "publish",
    pending_ref: str | None = None,
) -> str:
    delivery = job.delivery
    delivery_id = _id(delivery)
    next_at = decision.retry_at
    if decision.reconcile and decision.retry_at is None:
        next_at = now + FIRST_LOOK  # the sweeper brings it back to look
    attempts = delivery.attempts
    if decision.status is DeliveryStatus.queued and action == "pace":
        attempts = max(0, attempts - 1)  # waiting for pace is not an attempt
    changes: dict[str, object] = {
        "status": decision.status,
        "error": decision.message[:2000],
        "error_code": (error.code or "") if error else "",
        "next_attempt_at": next_at,
        "lease_until": None,
        "attempts": attempts,
        "pending_ref": delivery.pending_ref if pending_ref is None else pending_ref,
        "updated_at": now,
    }
    _conn(session).execute(
        _RECORD_DECISION,
        {
            "d_id": delivery_id,
            "s_status": changes["status"],
            "s_error": changes["error"],
            "s_code": changes["error_code"],
            "t_next": next_at,
            "n_attempts": attempts,
            "s_ref": changes["pending_ref"],
            "t_now": now,
        },
    )
    _attempt(
        session,
        delivery_id,
        now,
        action,
        decision.status.value,
        http_status=error.http_status if error else None,
        platform_code=(error.code or "") if error else "",
        excerpt=decision.message[:500],
    )
    _set_committed(delivery, changes)
    if decision.flag is not None:
        settings = get_settings()
        delay = recheck_delay(
            job.account.check_failures,
            base_seconds=settings.account_recheck_seconds,
            max_seconds=settings.account_recheck_max_seconds,
        )
        accounts.flag(
            session=session,
            account=job.account,
            status=decision.flag,
            reason=decision.message,
            code=(error.code or "") if error else "",
            now=now,
            next_check_at=now + delay,
        )
    session.commit()
    if action not in ("pace", "cancel"):  # waiting for pace, or a withdrawn post: no call made
        _settled(job, action, error=error)
    if decision.status not in IN_FLIGHT:  # a delivery still in flight keeps its post publishing
        _settle_after_commit(session, job.post.id, now)  # type: ignore[arg-type]
    if decision.status in (DeliveryStatus.failed, DeliveryStatus.parked):
        notices.copy_settled(session, delivery_id)  # its author is told (never raises)
    return decision.status.value


_QUIET_STATES = frozenset(
    {
        DeliveryStatus.published,
        DeliveryStatus.pending,
        DeliveryStatus.queued,
        DeliveryStatus.sending,
        DeliveryStatus.withdrawn,
    }
)


def _settled(
    job: Job,
    action: str,
    *,
    error: ConnectorError | None = None,
    published_at: datetime | None = None,
    failed: bool = False,
) -> None:
    """One structured line (``govhub.outcomes``) and the metrics of a settled attempt
    (``failed``: the call failed although the state did not change, e.g. a withdrawal)."""
    delivery = job.delivery
    platform = job.account.platform.value
    state = delivery.status
    quiet = state in _QUIET_STATES and not failed
    kind = error_class(error)
    if error is None and state not in _QUIET_STATES:  # settled so without a platform error
        if action == "check":
            kind = "blocked"  # the connector's check found blocking problems: nothing was sent
        elif state is DeliveryStatus.parked:
            kind = "account_parked"  # the account was already flagged
        elif state is DeliveryStatus.unconfirmed:
            kind = "unconfirmed"  # still looked for on the platform
        else:
            kind = "rejected"  # the platform said no (a callback), or a duplicate not ours
    try:
        record_attempt(
            platform=platform,
            error_class=kind,
            published_at=published_at,
            approved_at=delivery.created_at,
            scheduled_at=job.post.scheduled_at,
        )
    except Exception:  # counting must never undo a recorded outcome
        log.warning("delivery %s: its metrics could not be recorded", delivery.id, exc_info=True)
    logs.outcome(
        logging.INFO if quiet else logging.WARNING,
        "delivery %s of post %s to %s account %s: %s",
        delivery.id,
        delivery.post_id,
        platform,
        delivery.account_id,
        state.value,
        delivery_id=delivery.id,
        post_id=delivery.post_id,
        platform=platform,
        account_id=delivery.account_id,
        state=state.value,
        attempt=delivery.attempts,
        action=action,
        error_class=kind,
        error_code=(error.code or "") if error else "",
        error="" if quiet else delivery.error[:300],
        duration_ms=round((time.perf_counter() - job.started) * 1000, 1),
    )


def _set_committed(row: object, changes: dict[str, object]) -> None:
    """Keep the loaded object in step with what a Core statement wrote (nothing left to flush)."""
    for name, value in changes.items():
        set_committed_value(row, name, value)


def _settle_after_commit(session: Session, post_id: int, now: datetime) -> None:
    """Settle the post once its last delivery is out, after the outcome has committed.

    Each recording transaction commits first and looks second (READ COMMITTED: each statement
    sees everything committed before it). Of two deliveries finishing together, the later look
    therefore sees both outcomes: if a look still sees a delivery in flight, that delivery's own
    look comes later and settles the post. Only a look that sees nothing in flight takes the
    post's row lock and settles it, so a 200-account fan-out does not queue 200 transactions on
    one row lock. A crash between the commit and the look is healed by the sweeper's backstop.
    """
    with _each_on_its_own(session):
        statuses = {
            str(s) for s in _conn(session).execute(_POST_STATUSES, {"p_id": post_id}).scalars()
        }
        # end the read (a commit: a rollback would expire the loaded job, and reading the
        # delivery's status afterwards cost a query and a transaction more per copy)
        session.commit()
    if statuses & IN_FLIGHT:
        return
    _lock_post(session, post_id)
    settle_post(session, post_id, now)
    session.commit()


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

    Returns None only when the post is certainly absent and may be sent (or sending again is
    harmless). Platforms that publish synchronously (Weibo) answer at once from ``recent()``.
    A WeChat push is sent again: the platform de-duplicates it by ``clientmsgid``. A WeChat
    submit whose answer was lost is never submitted again (:func:`_reconcile_submit`).
    """
    assert isinstance(account, ConnectorAccount)
    connector = channels.connector_for(job.account.platform.value)
    delivery = job.delivery
    if delivery.mode == PUSH:
        excerpt = "push: sent again with the same clientmsgid (the platform de-duplicates)"
        _attempt(session, _id(delivery), now, "reconcile", "resend", excerpt=excerpt)
        session.commit()
        return None
    draft_id = delivery.pending_ref.partition(":")[2]
    if draft_id and isinstance(connector, Reconciles):
        return _reconcile_submit(session, job, connector, account, rendition, now)
    try:
        copy = find_copy(connector.recent(account), rendition)
    except ConnectorError as exc:
        return _look_again_later(session, job, exc, now)
    if copy is not None:
        outcome = Published(copy.remote_id, copy.url, copy.created_at)
        return _record_outcome(session, job, outcome, now, action="reconcile")
    if delivery.pending_ref == NO_RESEND:
        decision = Decision(
            DeliveryStatus.failed,
            message="平台认定内容与近期发布的重复，且账号中没有这条稿件：未重发。请修改内容后重试",
        )
        return _finish(session, job, decision, now, action="reconcile")
    _attempt(
        session, _id(delivery), now, "reconcile", "absent", excerpt="not on the platform: sending"
    )
    session.commit()
    return None


def _look_again_later(session: Session, job: Job, exc: ConnectorError, now: datetime) -> str:
    """The look at the platform failed: look again later, never send blindly. A look refused
    because of the account (parked) keeps its mark, so the resumed delivery looks first too."""
    decision = _decide(exc, attempt=job.delivery.attempts, now=now)
    if decision.status is DeliveryStatus.queued:
        decision = Decision(
            DeliveryStatus.unconfirmed,
            retry_at=decision.retry_at,
            reconcile=True,
            message=decision.message,
        )
    ref = (
        LOOK_FIRST
        if decision.status is DeliveryStatus.parked and not job.delivery.pending_ref
        else None
    )
    return _finish(session, job, decision, now, error=exc, action="reconcile", pending_ref=ref)


def _reconcile_submit(
    session: Session,
    job: Job,
    connector: Reconciles,
    account: ConnectorAccount,
    rendition: Rendition,
    now: datetime,
) -> str:
    """A WeChat ``freepublish/submit`` may have gone out: find it, wait for it, or ask a person.

    The draft may stay in the draft box while the publish job is under audit, so its presence
    proves nothing: the article is looked for in ``freepublish/batchget`` (same title and
    digest, created around the submit) until ``GOVHUB_WECHAT_RECONCILE_GRACE_MINUTES`` after the
    submit; then the delivery stays ``unconfirmed`` with the reason, for a person to mark it
    published or retry it from the delivery board.
    """
    delivery = job.delivery
    submitted_at = delivery.submitted_at or delivery.updated_at
    grace = timedelta(minutes=get_settings().wechat_reconcile_grace_minutes)
    held = frozenset(
        remote_id
        for remote_id in session.exec(
            select(Delivery.remote_id).where(
                Delivery.account_id == delivery.account_id,
                Delivery.id != delivery.id,
                Delivery.remote_id != "",
            )
        ).all()
    )
    try:
        copy = connector.find_publication(
            account,
            title=rendition.title,
            digest=rendition.digest,
            since=submitted_at - SUBMIT_CLOCK_SKEW,
            until=max(now, submitted_at + grace) + SUBMIT_CLOCK_SKEW,
            exclude=held,
        )
    except ConnectorError as exc:
        return _look_again_later(session, job, exc, now)
    verdict = reconcile_submit(
        found=copy is not None, submitted_at=submitted_at, now=now, grace=grace
    )
    if verdict == "published":
        assert copy is not None
        outcome = Published(copy.remote_id, copy.url, copy.created_at)
        return _record_outcome(session, job, outcome, now, action="reconcile")
    minutes = get_settings().wechat_reconcile_grace_minutes
    if verdict == "look_again":
        decision = Decision(
            DeliveryStatus.unconfirmed,
            retry_at=now + RECONCILE_EVERY,
            reconcile=True,
            message=f"已提交发布但未收到平台答复：正在已发布列表中核对（最长{minutes}分钟），不会重复提交",
        )
    else:
        decision = Decision(
            DeliveryStatus.unconfirmed,
            message=(
                f"已提交发布但未收到平台答复，{minutes}分钟内已发布列表中也未找到（可能仍在审核中）："
                "请在公众号后台「发表记录」核实——已发出请「标记为已发布」，确未发出请「重试」"
            ),
        )
    return _finish(session, job, decision, now, action="reconcile")


# -- pending deliveries (WeChat freepublish) ------------------------------------------------------


def poll(*, session: Session, delivery_id: int, now: datetime | None = None) -> str:
    now = now or utcnow()
    params = _claim_params(delivery_id, now)
    with _each_on_its_own(session):
        if _rowcount(_conn(session).execute(_CLAIM_POLL, params)) != 1:
            session.rollback()
            return "skipped"
        session.commit()
        job = _load(session, delivery_id)
    connector = channels.connector_for(job.account.platform.value)
    try:
        outcome = connector.poll(channels.connector_account(job.account), job.delivery.pending_ref)
    except ConnectorError as exc:
        decision = _decide(exc, attempt=job.delivery.attempts, now=now)
        if (
            decision.status is DeliveryStatus.queued
        ):  # a failed poll is retried as a poll, never a send
            decision = Decision(
                DeliveryStatus.pending, retry_at=decision.retry_at, message=decision.message
            )
        return _finish(session, job, decision, now, error=exc, action="poll")
    if isinstance(outcome, Pending):
        next_at = now + POLL_EVERY
        _conn(session).execute(_STILL_POLLING, {"d_id": delivery_id, "t_next": next_at})
        _set_committed(job.delivery, {"next_attempt_at": next_at, "lease_until": None})
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
    if delivery.status is not DeliveryStatus.pending:
        return delivery.id
    job = _load(session, delivery.id)  # type: ignore[arg-type]
    if isinstance(outcome, Published):
        _record_outcome(session, job, outcome, now, action="callback")
    else:
        _finish(
            session, job, Decision(DeliveryStatus.failed, message=outcome), now, action="callback"
        )
    return delivery.id


# -- post status and side effects -----------------------------------------------------------------


def settle_post(session: Session, post_id: int, now: datetime) -> None:
    """Bring a post that is publishing (or done) to the status its current version's deliveries
    add up to (published, partly failed, failed, or still publishing). Joins the caller's
    transaction; the engine calls it after each delivery's outcome, the delivery board after a
    manual action."""
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
    post_id = job.post.id
    assert post_id is not None
    stop_for_post(session=session, post_id=post_id, published_at=job.delivery.published_at or now)


# -- manual actions (the delivery board) ----------------------------------------------------------


def withdraw(*, session: Session, delivery_id: int, now: datetime | None = None) -> str:
    """Delete a published copy from its platform (coordinated retraction)."""
    now = now or utcnow()
    job = _load(session, delivery_id)
    delivery = job.delivery
    if delivery.status is not DeliveryStatus.published:
        if delivery.status in (DeliveryStatus.queued, DeliveryStatus.parked, DeliveryStatus.failed):
            delivery.status = DeliveryStatus.cancelled
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
        _settled(job, "withdraw", error=exc, failed=True)
        raise
    delivery.status = DeliveryStatus.withdrawn
    delivery.updated_at = now
    session.add(delivery)
    session.add(Attempt(delivery_id=_id(delivery), at=now, action="withdraw", outcome="withdrawn"))
    session.commit()
    _settled(job, "withdraw")
    if job.account.platform.info.builtin_channel and delivery.remote_id.isdigit():
        # partner sites that had the entry hear of the withdrawal now (their sweep is the backstop)
        from hub.hall.partners import enqueue_partner_notifications

        enqueue_partner_notifications([int(delivery.remote_id)])
    return "withdrawn"


def resume_parked(*, session: Session, account_id: int, now: datetime) -> list[int]:
    """The account works again (re-bound, or its connection test passed): every parked delivery
    of the account goes back to the queue. Returns the ids to enqueue after commit.

    One conditional update per kind of row: a row that someone else resumed (and a worker may
    already be sending) is never touched twice. Rows whose outcome was unknown when they parked
    (a WeChat draft ref, or :data:`LOOK_FIRST`) come back as ``unconfirmed``, so the engine looks
    at the platform before it sends anything: each copy is published exactly once.
    """
    parked = and_(
        col(Delivery.account_id) == account_id, col(Delivery.status) == DeliveryStatus.parked
    )
    values = {"lease_until": now + enqueue_lease(), "updated_at": now}
    look_first = list(
        session.execute(
            update(Delivery)
            .where(parked, col(Delivery.pending_ref) != "")
            .values(status=DeliveryStatus.unconfirmed, next_attempt_at=now, **values)
            .returning(col(Delivery.id))
            .execution_options(synchronize_session=False)
        ).scalars()
    )
    fresh = list(
        session.execute(
            update(Delivery)
            .where(parked, col(Delivery.pending_ref) == "")
            .values(status=DeliveryStatus.queued, next_attempt_at=None, **values)
            .returning(col(Delivery.id))
            .execution_options(synchronize_session=False)
        ).scalars()
    )
    return sorted(look_first + fresh)


# -- WeChat mass-send quota ------------------------------------------------------------------------


def push_quotas(
    *, session: Session, accounts: Iterable[Account], at: datetime
) -> dict[int, PushQuota]:
    """Each WeChat account's mass sends left in the day or month of ``at`` (GOVHUB_TIMEZONE).

    A push counts from the moment it went out (``published_at``), else when it is due to go
    (``next_attempt_at``: scheduled), else when it was created; failed and cancelled pushes do
    not count. Pushes of posts not yet approved have no delivery yet and do not count either.
    """
    wanted = {a.id: a for a in accounts if a.id is not None and a.platform.info.push_quota}
    if not wanted:
        return {}
    rows = session.exec(
        select(
            Delivery.account_id,
            Delivery.published_at,
            Delivery.next_attempt_at,
            Delivery.created_at,
        ).where(
            col(Delivery.account_id).in_(list(wanted)),
            Delivery.mode == PUSH,
            col(Delivery.status).not_in([DeliveryStatus.failed, DeliveryStatus.cancelled]),
        )
    ).all()
    pushes: dict[int, list[datetime]] = {account_id: [] for account_id in wanted}
    for account_id, published_at, next_attempt_at, created_at in rows:
        pushes[account_id].append(published_at or next_attempt_at or created_at)
    tz = get_settings().tz
    return {
        account_id: push_quota(account.kind, pushes[account_id], now=at, tz=tz)
        for account_id, account in wanted.items()
    }
