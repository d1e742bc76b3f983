"""Compliance clocks (时限) with a database: open, list, stop and cancel clocks, the hooks the
posts engine calls, the working-day calendar's overrides, reminders, recurring obligations and
the monthly summary. Deadline arithmetic and statuses come from :mod:`hub.clocks.rules`.

Behaviour (``docs/clocks.md``):

- A clock's ``due_at`` is computed once, at start, from the policy in force
  (``GOVHUB_POLICY``) and the calendar (official data + the overrides stored here). Changing an
  override or confirming a year re-dates every *running* working-day clock; stopped and
  cancelled clocks keep the deadline they were judged by.
- The public ``status`` is derived at read time (``overdue`` is a running clock past due).
- Reminders are claimed by inserting ``(clock, threshold)`` (unique) and committing *before*
  sending, so one goes out at most once, whatever restarts or concurrent passes happen; a claim
  whose every channel failed is released, so the next pass tries again.
"""

from __future__ import annotations

import io
import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from email.message import EmailMessage
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import Table, bindparam, delete, update
from sqlalchemy import select as sa_select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from hub.auditlog.service import record
from hub.clocks import rules
from hub.clocks.models import (
    CalendarOverride,
    CalendarYear,
    Clock,
    ClockPost,
    ClockPublic,
    ClockReminder,
    ClockState,
    Obligation,
    ObligationPublic,
    ObligationRecord,
    ObligationRecordPublic,
)
from hub.clocks.notify import Mailer, WebhookPoster, mailer_from_settings, webhook_from_settings
from hub.clocks.rules import ClockStatus, ObligationState
from hub.config import Settings, get_settings
from hub.errors import Conflict, Invalid, NotFound
from hub.orgs.models import Org
from hub.policies import Policy, RecurringRule, load_policy
from hub.sqltypes import utcnow
from hub.users.models import Role, User

log = logging.getLogger(__name__)

POST_CLOCK_KINDS = {"emergency": "emergency", "hot_topic": "hot_topic"}
"""Post urgency -> the clock kind its release stops (routine posts start none)."""

STATUS_ZH: dict[ClockStatus, str] = {
    ClockStatus.running: "进行中",
    ClockStatus.met: "按时完成",
    ClockStatus.met_late: "逾期完成",
    ClockStatus.overdue: "已逾期",
    ClockStatus.cancelled: "已撤销",
}
REMINDER_ZH = {"50": "时限已过半", "80": "时限已用去80%", "overdue": "已逾期"}


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
        raise Invalid(f"{name} needs a UTC offset, e.g. 2026-09-30T10:00:00+08:00", field=name)
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
    actor_id: int | None = None,
    actor_name: str = "system",
    client_ip: str = "",
    post_ids: Sequence[int] = (),
    policy: Policy | None = None,
    tz: ZoneInfo | None = None,
) -> Clock:
    """Start a clock of ``kind`` (a ``[clocks.<kind>]`` rule of the policy) for ``org``."""
    policy = policy or policy_in_force()
    tz = tz or get_settings().tz
    if kind not in policy.clocks:
        raise Invalid(
            f"unknown clock kind {kind!r}; the policy {policy.name} defines: "
            + ", ".join(sorted(policy.clocks)),
            field="kind",
        )
    subject = subject.strip()
    if not subject:
        raise Invalid("the clock needs a subject (what it is about)", field="subject")
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
        created_by=actor_id,
    )
    session.add(clock)
    session.flush()
    for post_id in post_ids:
        session.add(ClockPost(clock_id=clock.id, post_id=post_id))  # type: ignore[arg-type]
    record(
        session=session,
        actor_id=actor_id,
        actor_name=actor_name,
        action="clock.start",
        object_type="clock",
        object_id=clock.id,
        org_id=org.id,
        summary=f"{kind_title(policy, kind)}：{clock.subject}，截止 "
        f"{deadline.due_at.astimezone(tz):%Y-%m-%d %H:%M}"
        + ("" if deadline.calendar_confirmed else "（日历未确认）"),
        client_ip=client_ip,
    )
    session.flush()
    return clock


def get_clock(*, session: Session, clock_id: int) -> Clock:
    clock = session.get(Clock, clock_id)
    if clock is None:
        raise NotFound(f"clock {clock_id} does not exist")
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
) -> list[tuple[Clock, Org]]:
    """Clocks with their org, soonest deadline first; paths select org subtrees."""
    query = select(Clock, Org).join(Org, col(Clock.org_id) == col(Org.id))
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
    actor_id: int | None = None,
    actor_name: str = "system",
    client_ip: str = "",
) -> Clock:
    """The response was published at ``stopped_at``: the clock is met, or met late."""
    stopped = require_aware("stopped_at", stopped_at)
    if stopped < clock.started_at:
        raise Invalid("stopped_at is before the clock started", field="stopped_at")
    if stopped > now + timedelta(minutes=5):
        raise Invalid("stopped_at is in the future", field="stopped_at")
    status = rules.clock_status(clock.due_at, stopped, False, now)
    state = ClockState(status.value)
    if not _finish(session=session, clock=clock, state=state, values={"stopped_at": stopped}):
        raise Conflict(f"clock {clock.id} is already {status_of(clock, now).value}")
    record(
        session=session,
        actor_id=actor_id,
        actor_name=actor_name,
        action="clock.stop",
        object_type="clock",
        object_id=clock.id,
        org_id=clock.org_id,
        summary=f"{clock.subject}：{STATUS_ZH[status]}",
        client_ip=client_ip,
    )
    return clock


def cancel_clock(
    *,
    session: Session,
    clock: Clock,
    reason: str,
    now: datetime,
    actor_id: int | None = None,
    actor_name: str = "system",
    client_ip: str = "",
) -> Clock:
    """Withdraw a clock opened by mistake (the reason is kept and shown)."""
    reason = reason.strip()
    if not reason:
        raise Invalid("say why the clock is cancelled", field="reason")
    values = {"cancelled_at": now, "cancelled_reason": reason[:2000]}
    if not _finish(session=session, clock=clock, state=ClockState.cancelled, values=values):
        raise Conflict(f"clock {clock.id} is already {status_of(clock, now).value}")
    record(
        session=session,
        actor_id=actor_id,
        actor_name=actor_name,
        action="clock.cancel",
        object_type="clock",
        object_id=clock.id,
        org_id=clock.org_id,
        summary=f"{clock.subject}：{reason}",
        client_ip=client_ip,
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
        raise NotFound(f"organisation {org_id} does not exist")
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
            record(
                session=session,
                actor_id=None,
                actor_name="system",
                action="clock.stop",
                object_type="clock",
                object_id=clock.id,
                org_id=clock.org_id,
                summary=f"稿件 {post_id} 已发布：{STATUS_ZH[status]}",
            )
    session.flush()


# -- the working-day calendar -------------------------------------------------------------------


def list_overrides(*, session: Session) -> list[CalendarOverride]:
    return list(session.exec(select(CalendarOverride).order_by(col(CalendarOverride.day))).all())


def list_years(*, session: Session) -> list[CalendarYear]:
    return list(session.exec(select(CalendarYear).order_by(col(CalendarYear.year))).all())


def redate_running_clocks(*, session: Session, policy: Policy, tz: ZoneInfo) -> int:
    """Recompute the deadline of every running working-day clock after the calendar changed;
    the number whose deadline or confirmation changed."""
    calendar = load_calendar(session=session)
    kinds = [kind for kind, rule in policy.clocks.items() if rule.unit == "working_days"]
    if not kinds:
        return 0
    changed = 0
    for clock in session.exec(
        select(Clock).where(Clock.state == ClockState.running, col(Clock.kind).in_(kinds))
    ).all():
        deadline = rules.due_at(
            policy.clock(clock.kind), clock.started_at, tz=tz, calendar=calendar
        )
        due = deadline.due_at.astimezone(UTC)
        if due != clock.due_at or deadline.calendar_confirmed != clock.calendar_confirmed:
            clock.due_at, clock.calendar_confirmed = due, deadline.calendar_confirmed
            session.add(clock)
            changed += 1
    session.flush()
    return changed


def set_override(
    *,
    session: Session,
    day: date,
    is_workday: bool,
    note: str,
    actor: User,
    client_ip: str = "",
    policy: Policy | None = None,
    tz: ZoneInfo | None = None,
) -> tuple[CalendarOverride, int]:
    """Declare ``day`` a working day or a day off (replacing an earlier answer for it); returns
    the override and how many running clocks were re-dated."""
    override = session.exec(select(CalendarOverride).where(CalendarOverride.day == day)).first()
    if override is None:
        override = CalendarOverride(day=day, is_workday=is_workday)
    override.is_workday, override.note, override.created_by = is_workday, note.strip(), actor.id
    session.add(override)
    session.flush()
    record(
        session=session,
        actor_id=actor.id,
        actor_name=actor.username,
        action="calendar.override",
        object_type="calendar_override",
        object_id=day.isoformat(),
        summary=f"{day.isoformat()} {'工作日' if is_workday else '休息日'} {override.note}".strip(),
        client_ip=client_ip,
    )
    redated = redate_running_clocks(
        session=session, policy=policy or policy_in_force(), tz=tz or get_settings().tz
    )
    return override, redated


def delete_override(
    *,
    session: Session,
    day: date,
    actor: User,
    client_ip: str = "",
    policy: Policy | None = None,
    tz: ZoneInfo | None = None,
) -> tuple[CalendarOverride, int]:
    override = session.exec(select(CalendarOverride).where(CalendarOverride.day == day)).first()
    if override is None:
        raise NotFound(f"no calendar override for {day.isoformat()}")
    session.delete(override)
    session.flush()
    record(
        session=session,
        actor_id=actor.id,
        actor_name=actor.username,
        action="calendar.override_delete",
        object_type="calendar_override",
        object_id=day.isoformat(),
        summary=f"{day.isoformat()} 恢复官方日历",
        client_ip=client_ip,
    )
    redated = redate_running_clocks(
        session=session, policy=policy or policy_in_force(), tz=tz or get_settings().tz
    )
    return override, redated


def confirm_year(
    *,
    session: Session,
    year: int,
    note: str,
    actor: User,
    client_ip: str = "",
    policy: Policy | None = None,
    tz: ZoneInfo | None = None,
) -> tuple[CalendarYear, int]:
    """Mark ``year``'s arrangement as entered in full: its deadlines become confirmed."""
    entry = session.get(CalendarYear, year)
    if entry is None:
        entry = CalendarYear(year=year)
    entry.note, entry.created_by = note.strip(), actor.id
    session.add(entry)
    session.flush()
    record(
        session=session,
        actor_id=actor.id,
        actor_name=actor.username,
        action="calendar.confirm_year",
        object_type="calendar_year",
        object_id=year,
        summary=f"{year} 年节假日安排已录入",
        client_ip=client_ip,
    )
    redated = redate_running_clocks(
        session=session, policy=policy or policy_in_force(), tz=tz or get_settings().tz
    )
    return entry, redated


# -- reminders ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReminderSent:
    clock_id: int
    threshold: str
    emails: int
    webhook: bool
    error: str = ""


def _recipients(*, session: Session, org_id: int) -> list[User]:
    """The org's editors and every supervisor (active, with an e-mail address)."""
    users = session.exec(
        select(User).where(
            col(User.is_active).is_(True),
            ((User.role == Role.editor) & (User.org_id == org_id)) | (User.role == Role.supervisor),
        )
    ).all()
    return [user for user in users if user.email.strip()]


def _claim(*, session: Session, clock_id: int, threshold: str, now: datetime) -> int | None:
    """Insert the (clock, threshold) row and commit: the id if this pass won the claim."""
    reminder = ClockReminder(clock_id=clock_id, threshold=threshold, claimed_at=now)
    try:
        with session.begin_nested():  # a savepoint: losing the race leaves the session usable
            session.add(reminder)
    except IntegrityError:
        return None
    session.commit()
    return reminder.id


def _message(
    *,
    mailer: Mailer,
    to: str,
    clock: Clock,
    org: Org,
    threshold: str,
    tz: ZoneInfo,
    base: str,
    policy: Policy,
) -> EmailMessage:
    due = clock.due_at.astimezone(tz)
    message = EmailMessage()
    message["From"] = mailer.sender
    message["To"] = to
    message["Subject"] = f"【时限提醒】{org.name}：{clock.subject}（{REMINDER_ZH[threshold]}）"
    unconfirmed = "" if clock.calendar_confirmed else "（日历未确认，按工作日推算）"
    message.set_content(
        "\n".join(
            [
                f"{kind_title(policy, clock.kind)}（{clock.kind}）",
                f"机构：{org.name}（{org.code}）",
                f"事项：{clock.subject}",
                f"开始：{clock.started_at.astimezone(tz):%Y-%m-%d %H:%M}",
                f"截止：{due:%Y-%m-%d %H:%M:%S}{unconfirmed}",
                f"提醒：{REMINDER_ZH[threshold]}",
                f"查看：{base.rstrip('/')}/clocks",
                "",
                "govhub 政务新媒体发布平台（自动发送，请勿回复）",
            ]
        )
    )
    return message


def send_due_reminders(
    *,
    session: Session,
    now: datetime,
    mailer: Mailer | None,
    webhook_poster: WebhookPoster | None,
    policy: Policy | None = None,
    tz: ZoneInfo | None = None,
    base_url: str | None = None,
) -> list[ReminderSent]:
    """One reminder pass: for each running clock, the threshold
    :func:`~hub.clocks.rules.reminder_thresholds_crossed` returns (only the highest one crossed)
    is claimed, then e-mailed to the org's editors and all supervisors and posted to the
    webhook. Commits as it goes (each claim before its sending)."""
    settings = get_settings()
    policy = policy or policy_in_force(settings)
    tz = tz or settings.tz
    base = base_url if base_url is not None else settings.public_base_url
    already_overdue = select(ClockReminder.clock_id).where(ClockReminder.threshold == "overdue")
    candidates = session.exec(
        select(Clock, Org)
        .join(Org, col(Clock.org_id) == col(Org.id))
        .where(
            Clock.state == ClockState.running,
            col(Clock.started_at) <= now,
            col(Clock.id).not_in(already_overdue),
        )
        .order_by(col(Clock.due_at))
    ).all()
    ids = [clock.id for clock, _ in candidates]
    sent_before: dict[int, set[str]] = defaultdict(set)
    if ids:
        for row in session.exec(
            select(ClockReminder).where(col(ClockReminder.clock_id).in_(ids))
        ).all():
            sent_before[row.clock_id].add(row.threshold)
    results: list[ReminderSent] = []
    for clock, org in candidates:
        clock_id: int = clock.id  # type: ignore[assignment]
        for threshold in rules.reminder_thresholds_crossed(
            clock.started_at, clock.due_at, now, sent_before[clock_id]
        ):
            claim_id = _claim(session=session, clock_id=clock_id, threshold=threshold, now=now)
            if claim_id is None:
                continue  # another pass has it
            results.append(
                _deliver(
                    session=session,
                    claim_id=claim_id,
                    clock=clock,
                    org=org,
                    threshold=threshold,
                    now=now,
                    mailer=mailer,
                    webhook_poster=webhook_poster,
                    policy=policy,
                    tz=tz,
                    base=base,
                )
            )
    return results


def _deliver(
    *,
    session: Session,
    claim_id: int,
    clock: Clock,
    org: Org,
    threshold: str,
    now: datetime,
    mailer: Mailer | None,
    webhook_poster: WebhookPoster | None,
    policy: Policy,
    tz: ZoneInfo,
    base: str,
) -> ReminderSent:
    channels: list[str] = []
    errors: list[str] = []
    attempted = 0
    emails = 0
    webhook = False
    if mailer is not None:
        messages = [
            _message(
                mailer=mailer,
                to=user.email.strip(),
                clock=clock,
                org=org,
                threshold=threshold,
                tz=tz,
                base=base,
                policy=policy,
            )
            for user in _recipients(session=session, org_id=org.id)  # type: ignore[arg-type]
        ]
        if messages:
            attempted += 1
            try:
                mailer.send(messages)
                emails = len(messages)
                channels.append(f"email:{emails}")
            except (OSError, ValueError) as exc:  # smtplib.SMTPException is an OSError
                errors.append(f"email: {type(exc).__name__}: {exc}")
    if webhook_poster is not None:
        attempted += 1
        public = to_public(session=session, rows=[(clock, org)], now=now, tz=tz, policy=policy)[0]
        payload = {
            "event": "clock.reminder",
            "threshold": threshold,
            "at": now.astimezone(tz).isoformat(),
            "clock": public.model_dump(mode="json"),
        }
        try:
            webhook_poster.post("clock.reminder", payload)
            webhook = True
            channels.append("webhook")
        except (httpx.HTTPError, OSError) as exc:
            errors.append(f"webhook: {type(exc).__name__}: {exc}")
    if attempted and not channels:
        log.warning(
            "reminder %s for clock %s failed, retrying next pass: %s", threshold, clock.id, errors
        )
        session.execute(delete(ClockReminder).where(col(ClockReminder.id) == claim_id))
        session.commit()
        return ReminderSent(clock.id, threshold, 0, False, "; ".join(errors))  # type: ignore[arg-type]
    session.execute(
        update(ClockReminder)
        .where(col(ClockReminder.id) == claim_id)
        .values(sent_at=now, channels=",".join(channels) or "none", error="; ".join(errors))
    )
    session.commit()
    return ReminderSent(clock.id, threshold, emails, webhook, "; ".join(errors))  # type: ignore[arg-type]


def remind_now(*, session: Session, settings: Settings | None = None) -> list[ReminderSent]:
    """A reminder pass with the configured channels (the beat task and ``govhub clocks remind``)."""
    settings = settings or get_settings()
    return send_due_reminders(
        session=session,
        now=utcnow(),
        mailer=mailer_from_settings(settings),
        webhook_poster=webhook_from_settings(settings),
        policy=policy_in_force(settings),
        tz=settings.tz,
        base_url=settings.public_base_url,
    )


# -- the monthly summary ------------------------------------------------------------------------


def parse_month(month: str) -> tuple[int, int]:
    try:
        year_text, month_text = month.split("-")
        year, number = int(year_text), int(month_text)
        date(year, number, 1)
    except ValueError:
        raise Invalid(f"month must look like 2026-10, got {month!r}", field="month") from None
    return year, number


@dataclass
class OrgSummary:
    code: str
    name: str
    counts: dict[ClockStatus, int] = field(default_factory=dict)

    @property
    def opened(self) -> int:
        return sum(self.counts.values())


def monthly_summary(
    *, session: Session, month: str, scope_path: str | None, now: datetime, tz: ZoneInfo
) -> tuple[list[OrgSummary], list[tuple[Clock, Org]]]:
    """Per org, the clocks started in ``month`` (local time) by their status now."""
    year, number = parse_month(month)
    start = datetime.combine(date(year, number, 1), time(), tzinfo=tz)
    following = rules.add_months(date(year, number, 1), 1)
    end = datetime.combine(following, time(), tzinfo=tz)
    rows = list_clocks(
        session=session,
        now=now,
        scope_path=scope_path,
        started_from=start.astimezone(UTC),
        started_before=end.astimezone(UTC),
    )
    by_org: dict[str, OrgSummary] = {}
    for clock, org in sorted(rows, key=lambda row: (row[1].path, row[0].started_at)):
        summary = by_org.setdefault(org.code, OrgSummary(org.code, org.name))
        status = status_of(clock, now)
        summary.counts[status] = summary.counts.get(status, 0) + 1
    return list(by_org.values()), rows


SUMMARY_HEADERS = [
    "机构代码",
    "机构名称",
    "开启",
    "按时完成",
    "逾期完成",
    "逾期未完成",
    "进行中",
    "已撤销",
    "按时完成率",
]


def summary_xlsx(
    *,
    session: Session,
    month: str,
    scope_path: str | None,
    now: datetime,
    tz: ZoneInfo,
    policy: Policy,
) -> bytes:
    """The monthly compliance summary as an Excel workbook: 汇总 (per org) and 明细 (clocks)."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    summaries, rows = monthly_summary(
        session=session, month=month, scope_path=scope_path, now=now, tz=tz
    )
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "汇总"
    sheet.append(SUMMARY_HEADERS)
    for row in summaries:
        met = row.counts.get(ClockStatus.met, 0)
        judged = (
            met + row.counts.get(ClockStatus.met_late, 0) + row.counts.get(ClockStatus.overdue, 0)
        )
        sheet.append(
            [
                row.code,
                row.name,
                row.opened,
                met,
                row.counts.get(ClockStatus.met_late, 0),
                row.counts.get(ClockStatus.overdue, 0),
                row.counts.get(ClockStatus.running, 0),
                row.counts.get(ClockStatus.cancelled, 0),
                f"{met / judged:.0%}" if judged else "",
            ]
        )
    sheet.append([])
    sheet.append([f"{month} 开启的时限，状态截至 {now.astimezone(tz):%Y-%m-%d %H:%M}"])
    details = workbook.create_sheet("明细")
    details.append(
        ["编号", "类型", "机构", "事项", "开始时间", "截止时间", "日历已确认", "状态", "完成时间"]
    )
    for clock, org in rows:
        details.append(
            [
                clock.id,
                kind_title(policy, clock.kind),
                org.name,
                clock.subject,
                f"{clock.started_at.astimezone(tz):%Y-%m-%d %H:%M}",
                f"{clock.due_at.astimezone(tz):%Y-%m-%d %H:%M:%S}",
                "是" if clock.calendar_confirmed else "否（推算）",
                STATUS_ZH[status_of(clock, now)],
                f"{clock.stopped_at.astimezone(tz):%Y-%m-%d %H:%M}" if clock.stopped_at else "",
            ]
        )
    for ws in (sheet, details):
        for cell in ws[1]:
            cell.font = Font(bold=True)
        ws.freeze_panes = "A2"
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


# -- recurring obligations ----------------------------------------------------------------------


def spokesperson_terms(*, session: Session) -> dict[int, list[tuple[date, date | None]]]:
    """Per org, the (appointed_on, ended_on) of its spokespersons on file (``hub.audit``)."""
    from hub.audit.models import Spokesperson, SpokespersonRole

    terms: dict[int, list[tuple[date, date | None]]] = defaultdict(list)
    for person in session.exec(
        select(Spokesperson).where(Spokesperson.role == SpokespersonRole.spokesperson)
    ).all():
        terms[person.org_id].append((person.appointed_on, person.ended_on))
    return terms


def _in_office(terms: Iterable[tuple[date, date | None]], window: rules.PeriodWindow) -> bool:
    return any(start <= window.end and (end is None or end >= window.start) for start, end in terms)


def obligation_applies(
    rule: RecurringRule, org: Org, parent: Org | None, *, has_spokesperson: bool
) -> bool:
    """Whether ``rule`` binds ``org``: its scope, and its subject (the org flagged as press
    office; an org with a spokesperson on file during the period; any org)."""
    if not rule.applies_to(
        org.level.value,
        parent_level=parent.level.value if parent else None,
        livelihood=org.livelihood,
        press_office=org.press_office,
    ):
        return False
    if rule.subject == "press_office":
        return org.press_office
    if rule.subject == "spokesperson":
        return has_spokesperson
    return True


@dataclass(frozen=True)
class ObligationRefresh:
    created: int
    changed: int


def refresh_obligations(
    *,
    session: Session,
    policy: Policy,
    today: date,
    tz: ZoneInfo,
    since: date | None = None,
    org_ids: Sequence[int] | None = None,
    kinds: Sequence[str] | None = None,
) -> ObligationRefresh:
    """Create each binding obligation's periods from ``since`` (default: the current period) to
    ``today`` and re-evaluate every one not yet met (met / open / missed) from the records."""
    orgs = list(session.exec(select(Org)).all())
    by_id: dict[int | None, Org] = {org.id: org for org in orgs}
    terms = spokesperson_terms(session=session)
    if org_ids is not None:
        orgs = [org for org in orgs if org.id in set(org_ids)]
    created = 0
    selected = {k: r for k, r in policy.recurring.items() if kinds is None or k in kinds}
    for kind, rule in selected.items():
        windows = rules.periods_between(rule.period, since or today, today)
        existing = {
            (row.org_id, row.period_start)
            for row in session.exec(select(Obligation).where(Obligation.kind == kind)).all()
        }
        for org in orgs:
            parent = by_id.get(org.parent_id)
            for window in windows:
                if (org.id, window.start) in existing:
                    continue
                has_spokesperson = _in_office(terms.get(org.id, []), window)  # type: ignore[arg-type]
                if not obligation_applies(rule, org, parent, has_spokesperson=has_spokesperson):
                    continue
                session.add(
                    Obligation(
                        kind=kind,
                        org_id=org.id,  # type: ignore[arg-type]
                        period_label=window.label,
                        period_start=window.start,
                        period_end=window.end,
                        due_at=rules.end_of_day(window.end, tz).astimezone(UTC),
                        required=rule.min_count,
                    )
                )
                created += 1
    session.flush()
    query = select(Obligation).where(
        Obligation.status != ObligationState.met, col(Obligation.period_start) <= today
    )
    if org_ids is not None:
        query = query.where(col(Obligation.org_id).in_(list(org_ids)))
    if kinds is not None:
        query = query.where(col(Obligation.kind).in_(list(kinds)))
    pending = session.exec(query).all()
    dates: dict[tuple[str, int], list[date]] = defaultdict(list)
    if pending:
        for entry in session.exec(
            select(ObligationRecord).where(
                col(ObligationRecord.kind).in_({o.kind for o in pending}),
                col(ObligationRecord.org_id).in_({o.org_id for o in pending}),
            )
        ).all():
            dates[(entry.kind, entry.org_id)].append(entry.held_on)
    changed = 0
    for obligation in pending:
        window = rules.PeriodWindow(
            obligation.period_start, obligation.period_end, obligation.period_label
        )
        held = sorted(dates[(obligation.kind, obligation.org_id)])
        status = rules.obligation_status(window, held, min_count=obligation.required, as_of=today)
        if status.state != obligation.status or status.count != obligation.count:
            inside = [d for d in held if window.start <= d <= min(window.end, today)]
            obligation.status, obligation.count = status.state, status.count
            obligation.met_at = (
                inside[obligation.required - 1] if status.state is ObligationState.met else None
            )
            obligation.updated_at = utcnow()
            session.add(obligation)
            changed += 1
    session.flush()
    return ObligationRefresh(created, changed)


def add_obligation_record(
    *,
    session: Session,
    kind: str,
    org: Org,
    held_on: date,
    title: str,
    url: str = "",
    actor: User | None,
    client_ip: str = "",
    today: date,
    policy: Policy | None = None,
    tz: ZoneInfo | None = None,
) -> ObligationRecord:
    """Record a press conference / release / report and re-evaluate the obligation it meets."""
    policy = policy or policy_in_force()
    rule = policy.recurring.get(kind)
    if rule is None:
        raise Invalid(
            f"unknown obligation {kind!r}; the policy {policy.name} defines: "
            + (", ".join(sorted(policy.recurring)) or "none"),
            field="kind",
        )
    if held_on > today:
        raise Invalid("held_on is in the future", field="held_on")
    parent = session.get(Org, org.parent_id) if org.parent_id else None
    window = rules.period_containing(rule.period, held_on)
    has_spokesperson = _in_office(spokesperson_terms(session=session).get(org.id, []), window)  # type: ignore[arg-type]
    if not obligation_applies(rule, org, parent, has_spokesperson=has_spokesperson):
        raise Invalid(f"{org.name} has no {kind} obligation under the policy", field="kind")
    entry = ObligationRecord(
        kind=kind,
        org_id=org.id,  # type: ignore[arg-type]
        held_on=held_on,
        title=title.strip()[:300],
        url=url.strip(),
        created_by=actor.id if actor else None,
    )
    session.add(entry)
    session.flush()
    record(
        session=session,
        actor_id=actor.id if actor else None,
        actor_name=actor.username if actor else "system",
        action="obligation.record",
        object_type="obligation_record",
        object_id=entry.id,
        org_id=org.id,
        summary=f"{kind} {held_on.isoformat()} {entry.title}",
        client_ip=client_ip,
    )
    refresh_obligations(
        session=session,
        policy=policy,
        today=today,
        tz=tz or get_settings().tz,
        since=held_on,
        org_ids=[org.id],  # type: ignore[list-item]
        kinds=[kind],
    )
    return entry


def list_obligations(
    *,
    session: Session,
    scope_path: str | None = None,
    org_path: str | None = None,
    status: ObligationState | None = None,
    kind: str | None = None,
    period: str | None = None,
) -> list[tuple[Obligation, Org]]:
    query = select(Obligation, Org).join(Org, col(Obligation.org_id) == col(Org.id))
    for path in (scope_path, org_path):
        if path:
            query = query.where(col(Org.path).startswith(path))
    if status is not None:
        query = query.where(Obligation.status == status)
    if kind:
        query = query.where(Obligation.kind == kind)
    if period:
        query = query.where(Obligation.period_label == period)
    rows = session.exec(
        query.order_by(col(Obligation.period_start).desc(), col(Org.path), col(Obligation.kind))
    ).all()
    return [(obligation, org) for obligation, org in rows]


def obligation_public(
    obligation: Obligation, org: Org, policy: Policy, tz: ZoneInfo
) -> ObligationPublic:
    rule = policy.recurring.get(obligation.kind)
    return ObligationPublic(
        id=obligation.id,
        kind=obligation.kind,
        kind_title=(rule.title_zh or rule.title_en) if rule else obligation.kind,
        org_code=org.code,
        org_name=org.name,
        period=obligation.period_label,
        period_start=obligation.period_start,
        period_end=obligation.period_end,
        due_at=obligation.due_at.astimezone(tz),
        required=obligation.required,
        count=obligation.count,
        status=obligation.status,
        met_at=obligation.met_at,
    )


def record_public(entry: ObligationRecord, org: Org) -> ObligationRecordPublic:
    return ObligationRecordPublic(
        id=entry.id,
        kind=entry.kind,
        org_code=org.code,
        held_on=entry.held_on,
        title=entry.title,
        url=entry.url,
    )
