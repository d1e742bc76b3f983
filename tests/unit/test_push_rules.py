"""The mass-send (群发) allowance and the lost-submit verdict: pure rules, ``now`` passed in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hub.delivery.rules import push_quota, push_refusal, reconcile_submit

BEIJING = ZoneInfo("Asia/Shanghai")


def beijing(*args: int) -> datetime:
    return datetime(*args, tzinfo=BEIJING)  # type: ignore[misc]


def test_a_subscription_account_has_one_push_per_local_day() -> None:
    now = beijing(2026, 11, 29, 10, 0)
    assert push_quota("subscription", [], now=now, tz=BEIJING).remaining == 1
    used = push_quota("subscription", [beijing(2026, 11, 29, 0, 5)], now=now, tz=BEIJING)
    assert (used.allowed, used.used, used.remaining) == (1, 1, 0)
    assert used.words == "今日剩余 0 次"
    assert used.renews_at == beijing(2026, 11, 30)
    yesterday = push_quota("subscription", [beijing(2026, 11, 28, 23, 59)], now=now, tz=BEIJING)
    assert yesterday.remaining == 1


def test_days_are_those_of_the_configured_time_zone_not_utc() -> None:
    # 2026-11-29 17:00 UTC is already 11-30 01:00 in Beijing: yesterday's push no longer counts
    now = datetime(2026, 11, 29, 17, 0, tzinfo=UTC)
    pushed = [datetime(2026, 11, 29, 15, 0, tzinfo=UTC)]  # 11-29 23:00 in Beijing
    assert push_quota("subscription", pushed, now=now, tz=BEIJING).remaining == 1
    assert push_quota("subscription", pushed, now=now, tz=UTC).remaining == 0


def test_a_service_account_has_four_pushes_per_calendar_month() -> None:
    november = [beijing(2026, 11, d, 9) for d in (1, 8, 15)]
    now = beijing(2026, 11, 29, 10)
    quota = push_quota("service", november, now=now, tz=BEIJING)
    assert (quota.remaining, quota.period, quota.words) == (1, "month", "本月剩余 1 次")
    full = push_quota("service", [*november, beijing(2026, 11, 22)], now=now, tz=BEIJING)
    assert full.remaining == 0
    assert full.renews_at == beijing(2026, 12, 1)
    assert push_quota("service", november, now=beijing(2026, 12, 1, 0, 1), tz=BEIJING).used == 0


def test_december_renews_in_january() -> None:
    quota = push_quota("service", [], now=beijing(2026, 12, 31, 23), tz=BEIJING)
    assert quota.renews_at == beijing(2027, 1, 1)


def test_a_scheduled_push_counts_in_its_own_period() -> None:
    planned = [beijing(2026, 12, 2, 9)]
    assert push_quota("subscription", planned, now=beijing(2026, 12, 1, 9), tz=BEIJING).used == 0
    assert push_quota("subscription", planned, now=beijing(2026, 12, 2, 20), tz=BEIJING).used == 1


def test_refusals_are_in_chinese_and_name_the_account() -> None:
    now = beijing(2026, 11, 29, 10)
    assert push_refusal("凯里发布", push_quota("subscription", [], now=now, tz=BEIJING)) is None
    spent = push_quota("subscription", [now], now=now, tz=BEIJING)
    assert push_refusal("凯里发布", spent) == (
        "公众号「凯里发布」（订阅号）今日群发次数已用完（每天1次）：请改为「仅发布」，或定时到明天再群发"
    )
    month = push_quota("service", [now] * 4, now=now, tz=BEIJING)
    assert "本月群发次数已用完（每月4次）" in (push_refusal("凯里发布", month) or "")
    unknown = push_quota("", [], now=now, tz=BEIJING)
    assert unknown.remaining == 0
    assert "尚未设置类型" in (push_refusal("凯里发布", unknown) or "")


def test_a_lost_submit_is_found_waited_for_or_left_to_a_person_never_resubmitted() -> None:
    at = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
    grace = timedelta(minutes=10)
    verdicts = {
        reconcile_submit(found=found, submitted_at=at, now=at + later, grace=grace)
        for found in (True, False)
        for later in (timedelta(0), timedelta(minutes=9), timedelta(minutes=10), timedelta(days=1))
    }
    assert verdicts == {"published", "look_again", "ask_a_person"}
    assert reconcile_submit(found=True, submitted_at=at, now=at + grace * 9, grace=grace) == (
        "published"
    )
    assert reconcile_submit(
        found=False, submitted_at=at, now=at + timedelta(minutes=9), grace=grace
    ) == ("look_again")
    assert reconcile_submit(found=False, submitted_at=at, now=at + grace, grace=grace) == (
        "ask_a_person"
    )
