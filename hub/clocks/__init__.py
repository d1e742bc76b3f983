"""Compliance clocks (时限): time limits policy sets for releases and replies.

The rules are in :mod:`hub.clocks.rules` (pure); this package re-exports them.
"""

from hub.clocks.rules import (
    SHANGHAI,
    ClockStatus,
    Deadline,
    ObligationState,
    ObligationStatus,
    PeriodWindow,
    Reminder,
    WorkingDayCalendar,
    add_months,
    clock_status,
    due_at,
    end_of_day,
    obligation_history,
    obligation_status,
    official_workday,
    period_containing,
    periods_between,
    reminder_thresholds_crossed,
)

__all__ = [
    "SHANGHAI",
    "ClockStatus",
    "Deadline",
    "ObligationState",
    "ObligationStatus",
    "PeriodWindow",
    "Reminder",
    "WorkingDayCalendar",
    "add_months",
    "clock_status",
    "due_at",
    "end_of_day",
    "obligation_history",
    "obligation_status",
    "official_workday",
    "period_containing",
    "periods_between",
    "reminder_thresholds_crossed",
]
