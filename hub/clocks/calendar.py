"""The working-day calendar's overrides and confirmed years (时限日历). Changing either re-dates
every *running* working-day clock; stopped and cancelled clocks keep the deadline they were
judged by."""

from __future__ import annotations

from datetime import UTC, date
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from hub.auditlog.service import audit
from hub.clocks import rules
from hub.clocks.models import CalendarOverride, CalendarYear, Clock, ClockState
from hub.clocks.service import load_calendar, policy_in_force
from hub.config import get_settings
from hub.errors import NotFound
from hub.policies import Policy
from hub.users.who import Who

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
    who: Who,
    policy: Policy | None = None,
    tz: ZoneInfo | None = None,
) -> tuple[CalendarOverride, int]:
    """Declare ``day`` a working day or a day off (replacing an earlier answer for it); returns
    the override and how many running clocks were re-dated."""
    override = session.exec(select(CalendarOverride).where(CalendarOverride.day == day)).first()
    if override is None:
        override = CalendarOverride(day=day, is_workday=is_workday)
    override.is_workday, override.note, override.created_by = is_workday, note.strip(), who.user_id
    session.add(override)
    session.flush()
    audit(
        session,
        who,
        "calendar.override",
        "calendar_override",
        day.isoformat(),
        summary=f"{day.isoformat()} {'工作日' if is_workday else '休息日'} {override.note}".strip(),
    )
    redated = redate_running_clocks(
        session=session, policy=policy or policy_in_force(), tz=tz or get_settings().tz
    )
    return override, redated


def delete_override(
    *,
    session: Session,
    day: date,
    who: Who,
    policy: Policy | None = None,
    tz: ZoneInfo | None = None,
) -> tuple[CalendarOverride, int]:
    override = session.exec(select(CalendarOverride).where(CalendarOverride.day == day)).first()
    if override is None:
        raise NotFound("%(day)s 没有节假日调整记录", day=day.isoformat())
    session.delete(override)
    session.flush()
    audit(
        session,
        who,
        "calendar.override_delete",
        "calendar_override",
        day.isoformat(),
        summary=f"{day.isoformat()} 恢复官方日历",
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
    who: Who,
    policy: Policy | None = None,
    tz: ZoneInfo | None = None,
) -> tuple[CalendarYear, int]:
    """Mark ``year``'s arrangement as entered in full: its deadlines become confirmed."""
    entry = session.get(CalendarYear, year)
    if entry is None:
        entry = CalendarYear(year=year)
    entry.note, entry.created_by = note.strip(), who.user_id
    session.add(entry)
    session.flush()
    audit(
        session,
        who,
        "calendar.confirm_year",
        "calendar_year",
        year,
        summary=f"{year} 年节假日安排已录入",
    )
    redated = redate_running_clocks(
        session=session, policy=policy or policy_in_force(), tz=tz or get_settings().tz
    )
    return entry, redated
