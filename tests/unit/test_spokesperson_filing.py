"""The filing status of a spokesperson change (新闻发言人变更备案) against the policy's clock."""

from __future__ import annotations

from datetime import date

from hub.audit.rules import spokesperson_filing
from hub.policies import load_policy

GUIZHOU = load_policy(["guizhou-2013"])
CHANGED = date(2026, 1, 5)  # due one month later: 2026-02-05


def test_published_and_filed_within_a_month_is_filed() -> None:
    state = spokesperson_filing(
        GUIZHOU, CHANGED, date(2026, 1, 20), date(2026, 2, 5), date(2026, 3, 1)
    )
    assert (state.status, state.due_on) == ("filed", date(2026, 2, 5))


def test_done_after_the_deadline_is_filed_late() -> None:
    state = spokesperson_filing(
        GUIZHOU, CHANGED, date(2026, 1, 20), date(2026, 2, 6), date(2026, 3, 1)
    )
    assert state.status == "filed_late"


def test_not_done_is_pending_until_the_deadline_then_overdue() -> None:
    assert spokesperson_filing(GUIZHOU, CHANGED, None, None, date(2026, 2, 5)).status == "pending"
    assert spokesperson_filing(
        GUIZHOU, CHANGED, date(2026, 1, 9), None, date(2026, 2, 6)
    ).status == ("overdue")


def test_dates_after_the_question_do_not_count_yet() -> None:
    state = spokesperson_filing(
        GUIZHOU, CHANGED, date(2026, 1, 9), date(2026, 1, 30), date(2026, 1, 20)
    )
    assert state.status == "pending"


def test_a_policy_without_the_clock_has_no_rule() -> None:
    national = load_policy(["national-2019"])
    assert spokesperson_filing(national, CHANGED, None, None, date(2026, 6, 1)).status == "no_rule"
