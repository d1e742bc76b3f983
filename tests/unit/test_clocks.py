"""Deadline arithmetic, clock status, reminders and recurring obligations (hub.clocks.rules)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import chinese_calendar
import pytest

from hub.clocks.rules import (
    ClockStatus,
    ObligationState,
    WorkingDayCalendar,
    add_months,
    clock_status,
    due_at,
    obligation_history,
    obligation_status,
    official_workday,
    period_containing,
    periods_between,
    reminder_thresholds_crossed,
)
from hub.policies import ClockRule, load_policy

SHANGHAI = ZoneInfo("Asia/Shanghai")
OFFICIAL = WorkingDayCalendar()


@pytest.fixture(scope="module")
def clocks() -> dict[str, ClockRule]:
    return load_policy(["guizhou-2013"]).clocks


def at(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=SHANGHAI)


# --- Working days with the real calendar ------------------------------------------------------


def test_the_package_data_this_suite_relies_on() -> None:
    # chinese-calendar 1.11, year 2026: National Day holiday Thu 1 Oct - Wed 7 Oct; Sat 10 Oct
    # is a make-up working day (调休上班); Sun 11 Oct is an ordinary weekend day.
    assert [chinese_calendar.is_workday(date(2026, 10, d)) for d in range(1, 15)] == [
        False, False, False, False, False, False, False,  # 1-7: National Day
        True, True,  # Thu 8, Fri 9
        True,  # Sat 10: make-up working day
        False,  # Sun 11
        True, True, True,  # Mon 12 - Wed 14
    ]  # fmt: skip
    with pytest.raises(NotImplementedError):
        chinese_calendar.is_workday(date(2099, 1, 5))
    assert official_workday(date(2099, 1, 5)) is None


def test_disclosure_formed_on_30_september_skips_national_day(
    clocks: dict[str, ClockRule],
) -> None:
    # Formed Wed 2026-09-30 (the day itself never counts). Working days after it:
    # Thu 10-08 (1), Fri 10-09 (2), Sat 10-10 make-up working day (3), [Sun 10-11 off],
    # Mon 10-12 (4), Tue 10-13 (5). 10-01..10-07 are the National Day holiday.
    deadline = due_at(clocks["disclosure"], at(2026, 9, 30, 16, 20), tz=SHANGHAI, calendar=OFFICIAL)
    assert deadline.due_at == datetime(2026, 10, 13, 23, 59, 59, tzinfo=SHANGHAI)
    assert deadline.calendar_confirmed is True


def test_start_day_is_the_local_day() -> None:
    rule = ClockRule(unit="working_days", amount=5)
    # 2026-09-29 17:00 UTC is already 2026-09-30 01:00 in Shanghai: same deadline as above,
    # not the one a UTC date (09-29) would give (10-12).
    deadline = due_at(
        rule, datetime(2026, 9, 29, 17, 0, tzinfo=UTC), tz=SHANGHAI, calendar=OFFICIAL
    )
    assert deadline.due_at == datetime(2026, 10, 13, 23, 59, 59, tzinfo=SHANGHAI)


def test_start_day_never_counts_even_a_make_up_working_day() -> None:
    rule = ClockRule(unit="working_days", amount=1)
    deadline = due_at(rule, at(2026, 10, 10, 9, 0), tz=SHANGHAI, calendar=OFFICIAL)
    assert deadline.due_at == at(2026, 10, 12, 23, 59, 59)


def test_emergency_at_half_past_ten_is_due_at_half_past_one(clocks: dict[str, ClockRule]) -> None:
    deadline = due_at(clocks["emergency"], at(2026, 7, 14, 22, 30), tz=SHANGHAI, calendar=OFFICIAL)
    assert deadline.due_at == at(2026, 7, 15, 1, 30)
    assert deadline.calendar_confirmed is True


def test_emergency_ignores_holidays(clocks: dict[str, ClockRule]) -> None:
    deadline = due_at(clocks["emergency"], at(2026, 10, 1, 10, 0), tz=SHANGHAI, calendar=OFFICIAL)
    assert deadline.due_at == at(2026, 10, 1, 13, 0)


def test_hot_topic_is_due_at_the_end_of_the_same_day(clocks: dict[str, ClockRule]) -> None:
    deadline = due_at(clocks["hot_topic"], at(2026, 5, 20, 9, 0), tz=SHANGHAI, calendar=OFFICIAL)
    assert deadline.due_at == at(2026, 5, 20, 23, 59, 59)


def test_year_without_calendar_data_uses_weekdays_and_is_unconfirmed(
    clocks: dict[str, ClockRule],
) -> None:
    # 2099-01-01 is a Thursday. Weekdays after it: Fri 2 (1), Mon 5 - Fri 9 (2-6),
    # Mon 12 - Thu 15 (7-10).
    rule = clocks["interpretation"]
    assert (rule.unit, rule.amount) == ("working_days", 10)
    deadline = due_at(rule, at(2099, 1, 1, 10, 0), tz=SHANGHAI, calendar=OFFICIAL)
    assert deadline.due_at == at(2099, 1, 15, 23, 59, 59)
    assert deadline.calendar_confirmed is False


def test_deadline_running_into_an_uncovered_year_is_unconfirmed() -> None:
    rule = ClockRule(unit="working_days", amount=5)
    start = at(2026, 12, 28, 9, 0)  # Mon; 2027 has no data in chinese-calendar 1.11
    guessed = due_at(rule, start, tz=SHANGHAI, calendar=OFFICIAL)
    # Tue 29 (1), Wed 30 (2), Thu 31 (3), Fri 2027-01-01 taken as a weekday (4), Mon 4 (5)
    assert guessed == type(guessed)(at(2027, 1, 4, 23, 59, 59), False)

    # The admin enters New Year's Day; still a guess until the whole year is entered.
    holiday = WorkingDayCalendar(overrides={date(2027, 1, 1): False})
    entered = due_at(rule, start, tz=SHANGHAI, calendar=holiday)
    assert entered.due_at == at(2027, 1, 5, 23, 59, 59)
    assert entered.calendar_confirmed is False

    complete = WorkingDayCalendar(
        overrides={date(2027, 1, 1): False}, confirmed_years=frozenset({2027})
    )
    assert due_at(rule, start, tz=SHANGHAI, calendar=complete).calendar_confirmed is True


def test_admin_day_off_shifts_a_deadline(clocks: dict[str, ClockRule]) -> None:
    closed = WorkingDayCalendar(overrides={date(2026, 10, 12): False})  # a local day off
    deadline = due_at(clocks["disclosure"], at(2026, 9, 30, 9, 0), tz=SHANGHAI, calendar=closed)
    assert deadline.due_at == at(2026, 10, 14, 23, 59, 59)
    assert deadline.calendar_confirmed is True


def test_admin_working_day_brings_a_deadline_forward(clocks: dict[str, ClockRule]) -> None:
    extra = WorkingDayCalendar(overrides={date(2026, 10, 11): True})  # Sunday declared working
    deadline = due_at(clocks["disclosure"], at(2026, 9, 30, 9, 0), tz=SHANGHAI, calendar=extra)
    assert deadline.due_at == at(2026, 10, 12, 23, 59, 59)


def test_spokesperson_change_is_due_a_month_later_clamped(clocks: dict[str, ClockRule]) -> None:
    rule = clocks["spokesperson_change"]
    assert due_at(rule, at(2026, 3, 15, 11, 0), tz=SHANGHAI, calendar=OFFICIAL).due_at == at(
        2026, 4, 15, 23, 59, 59
    )
    assert due_at(rule, at(2026, 1, 31, 11, 0), tz=SHANGHAI, calendar=OFFICIAL).due_at == at(
        2026, 2, 28, 23, 59, 59
    )


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        (date(2024, 1, 31), 1, date(2024, 2, 29)),
        (date(2026, 12, 15), 1, date(2027, 1, 15)),
        (date(2026, 8, 31), 3, date(2026, 11, 30)),
        (date(2026, 5, 10), 12, date(2027, 5, 10)),
    ],
)
def test_add_months(start: date, months: int, expected: date) -> None:
    assert add_months(start, months) == expected


def test_calendar_days_end_of_day() -> None:
    rule = ClockRule(unit="days", amount=2)
    assert due_at(rule, at(2026, 10, 1, 8, 0), tz=SHANGHAI, calendar=OFFICIAL).due_at == at(
        2026, 10, 3, 23, 59, 59
    )


def test_naive_start_is_refused(clocks: dict[str, ClockRule]) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        due_at(clocks["emergency"], datetime(2026, 1, 5, 9, 0), tz=SHANGHAI, calendar=OFFICIAL)


# --- Status and reminders ---------------------------------------------------------------------

DUE = at(2026, 10, 13, 23, 59, 59)


@pytest.mark.parametrize(
    ("stopped_at", "cancelled", "now", "expected"),
    [
        (None, False, at(2026, 10, 13, 12, 0), ClockStatus.running),
        (None, False, DUE, ClockStatus.running),
        (None, False, at(2026, 10, 14, 0, 0), ClockStatus.overdue),
        (at(2026, 10, 9, 10, 0), False, at(2026, 10, 20), ClockStatus.met),
        (DUE, False, at(2026, 10, 20), ClockStatus.met),
        (at(2026, 10, 15, 10, 0), False, at(2026, 10, 20), ClockStatus.met_late),
        (None, True, at(2026, 10, 20), ClockStatus.cancelled),
        (at(2026, 10, 15, 10, 0), True, at(2026, 10, 20), ClockStatus.cancelled),
    ],
)
def test_clock_status(
    stopped_at: datetime | None, cancelled: bool, now: datetime, expected: ClockStatus
) -> None:
    assert clock_status(DUE, stopped_at, cancelled, now) == expected


START = at(2026, 7, 1, 0, 0)
END = at(2026, 7, 11, 0, 0)  # 10 days: 50 % on the 6th, 80 % on the 9th


@pytest.mark.parametrize(
    ("now", "sent", "expected"),
    [
        (at(2026, 7, 5, 23, 0), set(), []),
        (at(2026, 7, 6, 0, 0), set(), ["50"]),
        (at(2026, 7, 7, 0, 0), {"50"}, []),
        (at(2026, 7, 9, 0, 0), {"50"}, ["80"]),
        (at(2026, 7, 9, 0, 0), {"50", "80"}, []),
        (END, {"50", "80"}, []),  # due exactly now: not overdue yet
        (at(2026, 7, 11, 0, 1), {"50", "80"}, ["overdue"]),
        (at(2026, 7, 12), {"50", "80", "overdue"}, []),
        # after an outage: one reminder, the highest; the lower ones are superseded
        (at(2026, 7, 12), set(), ["overdue"]),
        (at(2026, 7, 9, 12, 0), set(), ["80"]),
        (at(2026, 7, 9, 12, 0), {"80"}, []),
    ],
)
def test_reminders_fire_once_each(now: datetime, sent: set[str], expected: list[str]) -> None:
    assert reminder_thresholds_crossed(START, END, now, sent) == expected


# --- Recurring obligations --------------------------------------------------------------------


def test_periods() -> None:
    assert period_containing("month", date(2024, 2, 10)).end == date(2024, 2, 29)
    q4 = period_containing("quarter", date(2026, 11, 5))
    assert (q4.start, q4.end, q4.label) == (date(2026, 10, 1), date(2026, 12, 31), "2026-Q4")
    year = period_containing("year", date(2014, 3, 1))
    assert (year.due_on, year.label) == (date(2014, 12, 31), "2014")
    labels = [w.label for w in periods_between("month", date(2026, 11, 20), date(2027, 2, 1))]
    assert labels == ["2026-11", "2026-12", "2027-01", "2027-02"]


def test_monthly_press_conference() -> None:
    conferences = [date(2026, 1, 28), date(2026, 3, 2), date(2026, 3, 30), date(2026, 4, 29)]
    history = obligation_history(
        "month", conferences, min_count=1, first=date(2026, 1, 1), as_of=date(2026, 4, 20)
    )
    assert [(s.window.label, s.count, s.state) for s in history] == [
        ("2026-01", 1, ObligationState.met),
        ("2026-02", 0, ObligationState.missed),
        ("2026-03", 2, ObligationState.met),
        ("2026-04", 0, ObligationState.open),  # the 29 April one is after as_of
    ]


def test_quarterly_release_per_spokesperson() -> None:
    q3 = period_containing("quarter", date(2026, 8, 1))
    assert obligation_status(q3, [], min_count=1, as_of=date(2026, 9, 30)).state == "open"
    assert obligation_status(q3, [], min_count=1, as_of=date(2026, 10, 1)).state == "missed"
    met = obligation_status(q3, [date(2026, 7, 2)], min_count=1, as_of=date(2026, 10, 1))
    assert met.state == ObligationState.met


def test_annual_self_inspection_report_due_31_december(clocks: dict[str, ClockRule]) -> None:
    rule = load_policy(["guizhou-2013"]).recurring["self_inspection_report"]
    year = period_containing(rule.period, date(2014, 6, 1))
    assert year.due_on == date(2014, 12, 31)
    on_time = obligation_status(year, [date(2014, 12, 31)], min_count=1, as_of=date(2015, 1, 5))
    assert on_time.state == ObligationState.met
    late = obligation_status(year, [date(2015, 1, 3)], min_count=1, as_of=date(2015, 1, 5))
    assert late.state == ObligationState.missed
