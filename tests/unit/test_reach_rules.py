"""Pure rules of reach: the day asked for, which copies count, back-off, growth, ranking."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from hub.reach import rules

D = date(2026, 11, 30)
NOW = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)


def test_live_counts_are_asked_for_today_and_final_ones_for_yesterday() -> None:
    assert rules.pull_day(D, 0) == D
    assert rules.pull_day(D, 1) == date(2026, 11, 29)


def test_a_copy_is_pulled_within_the_hub_window_and_the_platform_window() -> None:
    window = {"reach_days": 30, "window_days": 0}
    assert rules.counted(D, D, **window)
    assert rules.counted(D - timedelta(days=29), D, **window)
    assert not rules.counted(D - timedelta(days=30), D, **window)
    assert not rules.counted(D + timedelta(days=1), D, **window)  # published after the day
    seven = {"reach_days": 30, "window_days": 7}
    assert rules.counted(D - timedelta(days=6), D, **seven)
    assert not rules.counted(D - timedelta(days=7), D, **seven)  # the platform stopped counting


def test_back_off_doubles_up_to_the_longest_wait_and_respects_a_rate_limit() -> None:
    hour, day = timedelta(hours=1), timedelta(days=1)
    waits = [rules.backoff(n, NOW, base=hour, longest=day) - NOW for n in range(1, 8)]
    assert waits == [hour, 2 * hour, 4 * hour, 8 * hour, 16 * hour, day, day]
    reset = NOW + timedelta(hours=3)
    assert rules.backoff(1, NOW, base=hour, longest=day, not_before=reset) == reset
    assert rules.backoff(3, NOW, base=hour, longest=day, not_before=reset) == NOW + 4 * hour
    assert rules.backoff(10_000, NOW, base=hour, longest=day) == NOW + day  # no overflow


def test_growth_is_the_last_total_in_the_period_minus_the_last_before_it() -> None:
    snapshots = {
        date(2026, 11, 1): {"reads": 100, "shares": 4},
        date(2026, 11, 5): {"reads": 160, "shares": 5},
        date(2026, 11, 9): {"reads": 175, "shares": 5},
    }
    # new in the period: everything it has counts
    assert rules.growth(snapshots, date(2026, 10, 25), date(2026, 11, 6)) == {
        "reads": 160,
        "shares": 5,
    }
    assert rules.growth(snapshots, date(2026, 11, 2), date(2026, 11, 30)) == {
        "reads": 75,
        "shares": 1,
    }
    # nothing pulled inside the period: it gained nothing there
    assert rules.growth(snapshots, date(2026, 11, 6), date(2026, 11, 8)) == {
        "reads": 0,
        "shares": 0,
    }
    assert rules.growth(snapshots, date(2026, 10, 1), date(2026, 10, 30)) == {}
    # a count that went down (likes taken back) is no negative reach
    assert rules.growth({D - timedelta(days=1): {"likes": 9}, D: {"likes": 7}}, D, D) == {
        "likes": 0
    }


def test_latest_and_sums() -> None:
    assert rules.latest({}) == (None, {})
    assert rules.latest({D: {"reads": 3}, D - timedelta(days=1): {"reads": 1}}) == (
        D,
        {"reads": 3},
    )
    assert rules.add({"reads": 1}, {"reads": 2, "shares": 1}) == {"reads": 3, "shares": 1}
    assert rules.total({"reposts": 2, "likes": 5}) == 7


def test_ranking_is_highest_first_with_shared_ranks_and_by_a_chosen_count() -> None:
    rows = [
        rules.Row("1", "凯里发布", {"reads": 50, "shares": 1}),
        rules.Row("2", "黄平发布", {"reposts": 30, "likes": 40}),
        rules.Row("3", "施秉发布", {"reads": 70}),
        rules.Row("4", "岑巩发布", {}),
    ]
    by_total = rules.rank(rows)
    assert [(r.rank, r.row.name, r.value) for r in by_total] == [
        (1, "施秉发布", 70),
        (1, "黄平发布", 70),
        (3, "凯里发布", 51),
        (4, "岑巩发布", 0),
    ]
    by_reads = rules.rank(rows, "reads")
    assert [(r.rank, r.row.key) for r in by_reads] == [(1, "3"), (2, "1"), (3, "4"), (3, "2")]


def test_the_period_has_defaults_and_refuses_backwards_or_long_ones_in_words() -> None:
    assert rules.period(None, None, today=D, default_days=30) == (date(2026, 11, 1), D)
    assert rules.period(date(2026, 11, 20), None, today=D, default_days=30) == (
        date(2026, 11, 20),
        D,
    )
    with pytest.raises(ValueError, match="开始日期不能晚于结束日期"):
        rules.period(D, date(2026, 11, 1), today=D, default_days=30)
    with pytest.raises(ValueError, match="最长366天"):
        rules.period(date(2024, 1, 1), D, today=D, default_days=30)


def test_bars_share_one_scale() -> None:
    assert rules.bar_widths([50, 100, 0], 200) == [100.0, 200.0, 0.0]
    assert rules.bar_widths([0, 0], 200) == [0.0, 0.0]
    assert rules.bar_widths([], 200) == []
