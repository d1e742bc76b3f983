"""Compliance clocks (时限): deadline arithmetic, clock status, reminders, recurring obligations.

Pure functions: no I/O, no session, no settings, no clock -- the caller passes ``now`` and the
admin's calendar overrides. The rules, with examples, are in ``docs/clocks.md``:

- ``hours``: wall-clock (elapsed) hours from the start: an emergency at 22:30 with 3 hours is due
  at 01:30 the next day.
- ``same_day``: 23:59:59 local time on the start day.
- ``days``: the end (23:59:59 local) of the N-th calendar day after the start day.
- ``working_days``: the end of the N-th working day *after* the start day; the start day never
  counts, whatever the time or kind of day.
- ``months``: the same day N months later, clamped to the month's end (31 Jan + 1 month =
  28/29 Feb), at the end of that day.

Working days follow the official calendar of the ``chinese_calendar`` package (public holidays
and make-up working days 调休). For a year the package has no data for, weekdays stand in and the
deadline is reported unconfirmed. Admin overrides (date -> is a working day) win over both.
"""

from __future__ import annotations

import calendar as month_calendar
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Literal
from zoneinfo import ZoneInfo

import chinese_calendar

from hub.policies import ClockRule, Period

SHANGHAI = ZoneInfo("Asia/Shanghai")
END_OF_DAY = time(23, 59, 59)

Reminder = Literal["50", "80", "overdue"]


def official_workday(day: date) -> bool | None:
    """The official answer (``chinese_calendar.is_workday``), or ``None`` when the package has no
    data for ``day``'s year (it raises ``NotImplementedError`` outside the years it covers)."""
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:
        return None


@dataclass(frozen=True)
class WorkingDayCalendar:
    """The official working-day calendar plus an administrator's overrides.

    ``overrides``: ``{date: True}`` declares a working day, ``{date: False}`` a day off (a local
    holiday, a newly announced arrangement); they win over the official data.
    ``confirmed_years``: years whose arrangement the administrator has entered in full as
    overrides, so that weekday-based days there count as confirmed.
    """

    overrides: Mapping[date, bool] = field(default_factory=dict)
    confirmed_years: frozenset[int] = frozenset()

    def day(self, day: date) -> tuple[bool, bool]:
        """``(is_workday, confirmed)`` for ``day``."""
        official = official_workday(day)
        confirmed = official is not None or day.year in self.confirmed_years
        if day in self.overrides:
            return self.overrides[day], confirmed
        if official is None:
            return day.weekday() < 5, confirmed
        return official, True

    def is_workday(self, day: date) -> bool:
        return self.day(day)[0]

    def is_confirmed(self, day: date) -> bool:
        return self.day(day)[1]

    def add_working_days(self, start: date, count: int) -> tuple[date, bool]:
        """The ``count``-th working day after ``start`` (``start`` itself never counts), and
        whether every day looked at was confirmed by official data."""
        if count < 0:
            raise ValueError("count must be >= 0")
        current, confirmed, found = start, True, 0
        while found < count:
            current += timedelta(days=1)
            workday, day_confirmed = self.day(current)
            confirmed = confirmed and day_confirmed
            found += workday
        return current, confirmed


@dataclass(frozen=True)
class Deadline:
    due_at: datetime
    calendar_confirmed: bool
    """False when a working day used was guessed (weekday fallback for a year without data)."""


def end_of_day(day: date, tz: ZoneInfo) -> datetime:
    """23:59:59 local time on ``day``."""
    return datetime.combine(day, END_OF_DAY, tzinfo=tz)


def add_months(day: date, months: int) -> date:
    """The same day ``months`` later, clamped to the end of the target month."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    last = month_calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day.day, last))


def _require_aware(name: str, moment: datetime) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got {moment!r}")


def due_at(
    kind_rule: ClockRule, started_at: datetime, *, tz: ZoneInfo, calendar: WorkingDayCalendar
) -> Deadline:
    """When a clock of ``kind_rule`` started at ``started_at`` is due (see the module docstring).

    Days are local days in ``tz`` (the org's time zone, Asia/Shanghai by default in the hub).
    """
    _require_aware("started_at", started_at)
    start_day = started_at.astimezone(tz).date()
    amount = kind_rule.amount
    if kind_rule.unit == "hours":
        elapsed = started_at.astimezone(UTC) + timedelta(hours=amount)
        return Deadline(elapsed.astimezone(tz), True)
    if kind_rule.unit == "same_day":
        return Deadline(end_of_day(start_day, tz), True)
    if kind_rule.unit == "days":
        return Deadline(end_of_day(start_day + timedelta(days=amount), tz), True)
    if kind_rule.unit == "working_days":
        day, confirmed = calendar.add_working_days(start_day, amount)
        return Deadline(end_of_day(day, tz), confirmed)
    if kind_rule.unit == "months":
        return Deadline(end_of_day(add_months(start_day, amount), tz), True)
    raise ValueError(f"unknown clock unit {kind_rule.unit!r}")  # pragma: no cover


class ClockStatus(StrEnum):
    running = "running"
    met = "met"
    overdue = "overdue"
    met_late = "met_late"
    cancelled = "cancelled"


def clock_status(
    due_at: datetime, stopped_at: datetime | None, cancelled: bool, now: datetime
) -> ClockStatus:
    """A cancelled clock is ``cancelled`` whatever else happened; a stopped one (the response
    was made) is ``met`` if stopped by ``due_at`` (inclusive), else ``met_late``; otherwise it
    is ``running`` until ``due_at`` and ``overdue`` after it."""
    if cancelled:
        return ClockStatus.cancelled
    if stopped_at is not None:
        return ClockStatus.met if stopped_at <= due_at else ClockStatus.met_late
    return ClockStatus.running if now <= due_at else ClockStatus.overdue


_REMINDER_ORDER: tuple[Reminder, ...] = ("50", "80", "overdue")


def reminder_thresholds_crossed(
    started_at: datetime, due_at: datetime, now: datetime, already_sent: Collection[str]
) -> list[Reminder]:
    """Reminders to send now for a running clock: at 50 % and 80 % of the allowed time and once
    overdue, each at most once.

    Only the highest threshold crossed is returned, and only if it has not been sent: after an
    outage a clock that is already overdue sends one "overdue" reminder, not three messages at
    once; the lower ones are superseded and never sent later. The list is empty or has one item.
    """
    allowed = due_at - started_at
    crossed: Reminder | None = None
    if now > due_at:
        crossed = "overdue"
    elif now >= started_at + allowed * 0.8:
        crossed = "80"
    elif now >= started_at + allowed * 0.5:
        crossed = "50"
    if crossed is None or crossed in already_sent:
        return []
    higher_sent = any(
        level in already_sent for level in _REMINDER_ORDER[_REMINDER_ORDER.index(crossed) + 1 :]
    )
    return [] if higher_sent else [crossed]


# --- Recurring obligations (§2, §21) ---------------------------------------------------------


@dataclass(frozen=True, order=True)
class PeriodWindow:
    """One period of a recurring obligation; it is due at the end of ``end``."""

    start: date
    end: date
    label: str  # "2026-10", "2026-Q4", "2026"

    @property
    def due_on(self) -> date:
        return self.end


def period_containing(period: Period, day: date) -> PeriodWindow:
    if period == "month":
        last = month_calendar.monthrange(day.year, day.month)[1]
        return PeriodWindow(
            date(day.year, day.month, 1), date(day.year, day.month, last), f"{day:%Y-%m}"
        )
    if period == "quarter":
        quarter = (day.month - 1) // 3 + 1
        first_month = 3 * quarter - 2
        end_month = first_month + 2
        last = month_calendar.monthrange(day.year, end_month)[1]
        return PeriodWindow(
            date(day.year, first_month, 1),
            date(day.year, end_month, last),
            f"{day.year}-Q{quarter}",
        )
    if period == "year":
        return PeriodWindow(date(day.year, 1, 1), date(day.year, 12, 31), str(day.year))
    raise ValueError(f"unknown period {period!r}")  # pragma: no cover


def periods_between(period: Period, first: date, last: date) -> list[PeriodWindow]:
    """Every period that overlaps ``[first, last]``, oldest first."""
    windows: list[PeriodWindow] = []
    day = first
    while day <= last:
        window = period_containing(period, day)
        windows.append(window)
        day = window.end + timedelta(days=1)
    return windows


class ObligationState(StrEnum):
    met = "met"
    open = "open"  # not met yet, still time
    missed = "missed"


@dataclass(frozen=True)
class ObligationStatus:
    window: PeriodWindow
    count: int
    required: int
    state: ObligationState


def obligation_status(
    window: PeriodWindow, record_dates: Iterable[date], *, min_count: int, as_of: date
) -> ObligationStatus:
    """Whether ``window`` has at least ``min_count`` records (press conferences, releases,
    reports) dated inside it, counting only records up to ``as_of``."""
    count = sum(1 for d in record_dates if window.start <= d <= window.end and d <= as_of)
    if count >= min_count:
        state = ObligationState.met
    elif as_of <= window.end:
        state = ObligationState.open
    else:
        state = ObligationState.missed
    return ObligationStatus(window, count, min_count, state)


def obligation_history(
    period: Period,
    record_dates: Iterable[date],
    *,
    min_count: int,
    first: date,
    as_of: date,
) -> list[ObligationStatus]:
    """The status of every period from the one containing ``first`` to the one containing
    ``as_of``: e.g. each month's press conference since the obligation began."""
    dates = sorted(record_dates)
    return [
        obligation_status(window, dates, min_count=min_count, as_of=as_of)
        for window in periods_between(period, first, as_of)
    ]
