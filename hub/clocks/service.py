"""Compliance clocks (时限) with a database: open, list, stop and cancel clocks, and the hooks
the posts engine calls. Deadline arithmetic and statuses come from :mod:`hub.clocks.rules`; the
working-day calendar's overrides are in :mod:`hub.clocks.calendar`, reminders in
:mod:`hub.clocks.reminders`, the monthly summary in :mod:`hub.clocks.export` and recurring
obligations in :mod:`hub.clocks.obligations`.

Behaviour (``docs/clocks.md``):

- A clock's ``due_at`` is computed once, at start, from the policy in force
  (``GOVHUB_POLICY``) and the calendar (official data + the stored overrides). Changing an
  override or confirming a year re-dates every *running* working-day clock; stopped and
  cancelled clocks keep the deadline they were judged by.
- The public ``status`` is derived at read time (``overdue`` is a running clock past due).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Exists, Table, bindparam, update
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from hub.auditlog.service import audit
from hub.clocks import rules
from hub.clocks.models import (
    CalendarOverride,
    CalendarYear,
    Clock,
    ClockPost,
    ClockPublic,
    ClockReminder,
    ClockState,
)
from hub.clocks.rules import ClockStatus
from hub.config import Settings, get_settings
from hub.errors import Conflict, Invalid, NotFound, Reason
from hub.orgs.models import Org
from hub.policies import Policy, load_policy
from hub.users.who import SYSTEM_WHO, Who

log = logging.getLogger(__name__)

POST_CLOCK_KINDS = {"emergency": "emergency", "hot_topic": "hot_topic"}
"""Post urgency -> the clock kind its release stops (routine posts start none)."""

STATUS_ZH: dict[ClockStatus, str] = {  # a Reason each: translated inside an error message
    ClockStatus.running: Reason("进行中"),
    ClockStatus.met: Reason("按时完成"),
    ClockStatus.met_late: Reason("逾期完成"),
    ClockStatus.overdue: Reason("已逾期"),
    ClockStatus.cancelled: Reason("已撤销"),
}


# -- policy, time and calendar ------------------------------------------------------------------


@lru_cache(maxsize=8)
def _policy(names: tuple[str, ...]) -> Policy:
    return load_policy(list(names))


def policy_in_force(settings: Settings | None = None) -> Policy:
    """The policy named by ``GOVHUB_POLICY`` (loaded once per process)."""
    return _policy(tuple((settings or get_settings()).policies))


def kind_title(policy: Policy, kind: str) -> str:
    rule = policy.clocks.get(kind)
    return rule.title_zh or rule.title_en or kind if rule else kind


def require_aware(name: str, moment: datetime) -> datetime:
    """``moment`` in UTC; a time without an offset is refused (it would be a guess)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise Invalid("%(name)s须带时区，例如 2026-09-30T10:00:00+08:00", field=name, name=name)
    return moment.astimezone(UTC)


def load_calendar(*, session: Session) -> rules.WorkingDayCalendar:
    """The official calendar plus the stored overrides and confirmed years."""
    overrides = {o.day: o.is_workday for o in session.exec(select(CalendarOverride)).all()}
    years = frozenset(y.year for y in session.exec(select(CalendarYear)).all())
    return rules.WorkingDayCalendar(overrides=overrides, confirmed_years=years)


# -- clocks -------------------------------------------------------------------------------------


def create_clock(
    *,
    session: Session,
    kind: str,
    org: Org,
    subject: str,
    started_at: datetime,
    who: Who = SYSTEM_WHO,
    post_ids: Sequence[int] = (),
    policy: Policy | None = None,
    tz: ZoneInfo | None = None,
) -> Clock:
    """Start a clock of ``kind`` (a ``[clocks.<kind>]`` rule of the policy) for ``org``."""
    policy = policy or policy_in_force()
    tz = tz or get_settings().tz
    if kind not in policy.clocks:
        raise Invalid(
            "未知的时限类型 %(kind)r；规则 %(policy)s 定义的有：%(kinds)s",
            field="kind",
            kind=kind,
            policy=policy.name,
            kinds=", ".join(sorted(policy.clocks)),
        )
    subject = subject.strip()
    if not subject:
        raise Invalid("请填写时限事由（关于什么事）", field="subject")
    start = require_aware("started_at", started_at)
    deadline = rules.due_at(
        policy.clock(kind), start, tz=tz, calendar=load_calendar(session=session)
    )
    clock = Clock(
        kind=kind,
        org_id=org.id,  # type: ignore[arg-type]
        subject=subject[:500],
        started_at=start,
        due_at=deadline.due_at.astimezone(UTC),
        calendar_confirmed=deadline.calendar_confirmed,
        created_by=who.user_id,
    )
    session.add(clock)
    session.flush()
    for post_id in post_ids:
        session.add(ClockPost(clock_id=clock.id, post_id=post_id))  # type: ignore[arg-type]
    audit(
        session,
        who,
        "clock.start",
        "clock",
        clock.id,
        org_id=org.id,
        summary=f"{kind_title(policy, kind)}：{clock.subject}，截止 "
        f"{deadline.due_at.astimezone(tz):%Y-%m-%d %H:%M}"
        + ("" if deadline.calendar_confirmed else "（日历未确认）"),
    )
    session.flush()
    return clock


def retime_for_post(*, session: Session, post_id: int, urgency: str, started_at: datetime) -> bool:
    """The event time of an urgent post was corrected: its running clock of that kind starts
    there instead (deadline recomputed). False when it has none (nothing changed)."""
    kind = POST_CLOCK_KINDS.get(str(urgency))
    if kind is None:
        return False
    clocks = session.exec(
        select(Clock)
        .join(ClockPost, col(ClockPost.clock_id) == col(Clock.id))
        .where(ClockPost.post_id == post_id, Clock.kind == kind, Clock.state == ClockState.running)
    ).all()
    policy = policy_in_force()
    start = require_aware("started_at", started_at)
    for clock in clocks:
        deadline = rules.due_at(
            policy.clock(kind), start, tz=get_settings().tz, calendar=load_calendar(session=session)
        )
        clock.started_at = start
        clock.due_at = deadline.due_at.astimezone(UTC)
        clock.calendar_confirmed = deadline.calendar_confirmed
        session.add(clock)
    session.flush()
    return bool(clocks)


def has_clock(*, session: Session, post_id: int) -> bool:
    """Is any clock (running or not) linked to the post?"""
    return session.exec(select(ClockPost).where(ClockPost.post_id == post_id)).first() is not None


def link_post(*, session: Session, clock: Clock, post_id: int) -> None:
    """Link a post to a running clock: its first published delivery stops the clock."""
    session.add(ClockPost(clock_id=clock.id, post_id=post_id))  # type: ignore[arg-type]
    session.flush()


def get_clock(*, session: Session, clock_id: int) -> Clock:
    clock = session.get(Clock, clock_id)
    if clock is None:
        raise NotFound("时限 %(clock_id)s 不存在", clock_id=clock_id)
    return clock


def status_of(clock: Clock, now: datetime) -> ClockStatus:
    return rules.clock_status(
        clock.due_at, clock.stopped_at, clock.state is ClockState.cancelled, now
    )


def list_clocks(
    *,
    session: Session,
    now: datetime,
    scope_path: str | None = None,
    org_path: str | None = None,
    status: ClockStatus | None = None,
    kind: str | None = None,
    started_from: datetime | None = None,
    started_before: datetime | None = None,
    post_id: int | None = None,
) -> list[tuple[Clock, Org]]:
    """Clocks with their org, soonest deadline first; paths select org subtrees; ``post_id``:
    the clocks that post stops."""
    query = select(Clock, Org).join(Org, col(Clock.org_id) == col(Org.id))
    if post_id is not None:
        query = query.join(ClockPost, col(ClockPost.clock_id) == col(Clock.id)).where(
            ClockPost.post_id == post_id
        )
    for path in (scope_path, org_path):
        if path:
            query = query.where(col(Org.path).startswith(path))
    if kind:
        query = query.where(Clock.kind == kind)
    if started_from is not None:
        query = query.where(col(Clock.started_at) >= started_from)
    if started_before is not None:
        query = query.where(col(Clock.started_at) < started_before)
    if status is ClockStatus.running:
        query = query.where(Clock.state == ClockState.running, col(Clock.due_at) >= now)
    elif status is ClockStatus.overdue:
        query = query.where(Clock.state == ClockState.running, col(Clock.due_at) < now)
    elif status is not None:
        query = query.where(Clock.state == ClockState(status.value))
    rows = session.exec(query.order_by(col(Clock.due_at), col(Clock.id))).all()
    return [(clock, org) for clock, org in rows]


def to_public(
    *,
    session: Session,
    rows: Sequence[tuple[Clock, Org]],
    now: datetime,
    tz: ZoneInfo,
    policy: Policy,
) -> list[ClockPublic]:
    """Public views with times in ``tz`` (ISO with the local offset, e.g. +08:00)."""
    ids = [clock.id for clock, _ in rows]
    posts: dict[int, list[int]] = defaultdict(list)
    sent: dict[int, list[str]] = defaultdict(list)
    if ids:
        for link in session.exec(
            select(ClockPost)
            .where(col(ClockPost.clock_id).in_(ids))
            .order_by(col(ClockPost.post_id))
        ).all():
            posts[link.clock_id].append(link.post_id)
        for reminder in session.exec(
            select(ClockReminder)
            .where(col(ClockReminder.clock_id).in_(ids), col(ClockReminder.sent_at).is_not(None))
            .order_by(col(ClockReminder.id))
        ).all():
            sent[reminder.clock_id].append(reminder.threshold)
    return [
        ClockPublic(
            id=clock.id,
            kind=clock.kind,
            kind_title=kind_title(policy, clock.kind),
            org_code=org.code,
            org_name=org.name,
            subject=clock.subject,
            started_at=clock.started_at.astimezone(tz),
            due_at=clock.due_at.astimezone(tz),
            calendar_confirmed=clock.calendar_confirmed,
            status=status_of(clock, now),
            stopped_at=clock.stopped_at.astimezone(tz) if clock.stopped_at else None,
            cancelled_reason=clock.cancelled_reason,
            post_ids=posts[clock.id],  # type: ignore[index]
            reminders_sent=sent[clock.id],  # type: ignore[index]
        )
        for clock, org in rows
    ]


def _finish(*, session: Session, clock: Clock, state: ClockState, values: dict[str, Any]) -> bool:
    """Move a running clock to ``state`` with a conditional update (the first caller wins)."""
    result = session.execute(
        update(Clock)
        .where(col(Clock.id) == clock.id, col(Clock.state) == ClockState.running)
        .values(state=state, **values)
        .execution_options(synchronize_session=False)
    )
    if getattr(result, "rowcount", 0) != 1:
        return False
    session.refresh(clock)
    return True


def stop_clock(
    *,
    session: Session,
    clock: Clock,
    stopped_at: datetime,
    now: datetime,
    who: Who = SYSTEM_WHO,
) -> Clock:
    """The response was published at ``stopped_at``: the clock is met, or met late."""
    stopped = require_aware("stopped_at", stopped_at)
    if stopped < clock.started_at:
        raise Invalid("停止时间（stopped_at）早于时限开始时间", field="stopped_at")
    if stopped > now + timedelta(minutes=5):
        raise Invalid("停止时间（stopped_at）不能晚于现在", field="stopped_at")
    status = rules.clock_status(clock.due_at, stopped, False, now)
    state = ClockState(status.value)
    if not _finish(session=session, clock=clock, state=state, values={"stopped_at": stopped}):
        raise Conflict(
            "时限 %(clock_id)s 已结束（%(value)s）",
            clock_id=clock.id,
            value=STATUS_ZH[status_of(clock, now)],
        )
    audit(
        session,
        who,
        "clock.stop",
        "clock",
        clock.id,
        org_id=clock.org_id,
        summary=f"{clock.subject}：{STATUS_ZH[status]}",
    )
    return clock


def cancel_clock(
    *,
    session: Session,
    clock: Clock,
    reason: str,
    now: datetime,
    who: Who = SYSTEM_WHO,
) -> Clock:
    """Withdraw a clock opened by mistake (the reason is kept and shown)."""
    reason = reason.strip()
    if not reason:
        raise Invalid("请填写取消时限的原因", field="reason")
    values = {"cancelled_at": now, "cancelled_reason": reason[:2000]}
    if not _finish(session=session, clock=clock, state=ClockState.cancelled, values=values):
        raise Conflict(
            "时限 %(clock_id)s 已结束（%(value)s）",
            clock_id=clock.id,
            value=STATUS_ZH[status_of(clock, now)],
        )
    audit(
        session,
        who,
        "clock.cancel",
        "clock",
        clock.id,
        org_id=clock.org_id,
        summary=f"{clock.subject}：{reason}",
    )
    return clock


# -- hooks for the posts engine -----------------------------------------------------------------


def start_for_post(
    *,
    session: Session,
    post_id: int,
    org_id: int,
    urgency: str,
    title: str,
    started_at: datetime,
) -> Clock | None:
    """Start the ``emergency`` or ``hot_topic`` clock of an urgent post, linked to the post (its
    first published delivery stops it); ``None`` for routine posts. Joins the caller's
    transaction (flushes, never commits)."""
    kind = POST_CLOCK_KINDS.get(str(urgency))
    if kind is None:
        return None
    policy = policy_in_force()
    if kind not in policy.clocks:
        log.warning("policy %s has no %s clock; post %s starts none", policy.name, kind, post_id)
        return None
    org = session.get(Org, org_id)
    if org is None:
        raise NotFound("机构 %(org_id)s 不存在", org_id=org_id)
    return create_clock(
        session=session,
        kind=kind,
        org=org,
        subject=title,
        started_at=started_at,
        post_ids=[post_id],
        policy=policy,
    )


_CLOCKS: Table = Clock.__table__  # type: ignore[attr-defined]
_CLOCK_POSTS: Table = ClockPost.__table__  # type: ignore[attr-defined]
_RUNNING_CLOCK_OF_POST = (
    sa_select(_CLOCK_POSTS.c.clock_id)
    .join(_CLOCKS, _CLOCKS.c.id == _CLOCK_POSTS.c.clock_id)
    .where(_CLOCK_POSTS.c.post_id == bindparam("p_id"), _CLOCKS.c.state == ClockState.running)
    .limit(1)
)


def running_clock_exists(post_id: Any) -> Exists:
    """``EXISTS`` a running clock linked to the post ``post_id`` (a column or bound parameter),
    for a caller that reads it along with its own row (the delivery engine, once per copy)."""
    return (
        sa_select(_CLOCK_POSTS.c.clock_id)
        .join(_CLOCKS, _CLOCKS.c.id == _CLOCK_POSTS.c.clock_id)
        .where(_CLOCK_POSTS.c.post_id == post_id, _CLOCKS.c.state == ClockState.running)
        .exists()
    )


def stop_for_post(*, session: Session, post_id: int, published_at: datetime) -> None:
    """The post's first published delivery stops every running clock linked to it: ``met`` if at
    or before the deadline, ``met_late`` after. Idempotent: later deliveries change nothing."""
    published = require_aware("published_at", published_at)
    # Every published delivery calls this; most posts have no clock: answer that from a cached
    # Core statement before building the ORM query.
    if session.execute(_RUNNING_CLOCK_OF_POST, {"p_id": post_id}).first() is None:
        return
    clocks = session.exec(
        select(Clock)
        .join(ClockPost, col(ClockPost.clock_id) == col(Clock.id))
        .where(ClockPost.post_id == post_id, Clock.state == ClockState.running)
    ).all()
    for clock in clocks:
        status = rules.clock_status(clock.due_at, published, False, published)
        if _finish(
            session=session,
            clock=clock,
            state=ClockState(status.value),
            values={"stopped_at": published},
        ):
            audit(
                session,
                SYSTEM_WHO,
                "clock.stop",
                "clock",
                clock.id,
                org_id=clock.org_id,
                summary=f"稿件 {post_id} 已发布：{STATUS_ZH[status]}",
            )
    session.flush()
