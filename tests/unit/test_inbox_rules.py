"""The inbox's pure rules: transitions, routing, plain-text replies, masking, window, stats."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from hub.inbox import rules
from hub.inbox.models import CaseStatus, Category

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("current", "target", "allowed"),
    [
        (CaseStatus.new, CaseStatus.assigned, True),
        (CaseStatus.assigned, CaseStatus.in_progress, True),
        (CaseStatus.in_progress, CaseStatus.replied, True),
        (CaseStatus.replied, CaseStatus.closed, True),
        (CaseStatus.closed, CaseStatus.replied, False),
        (CaseStatus.closed, CaseStatus.in_progress, True),
        (CaseStatus.replied, CaseStatus.new, False),
    ],
)
def test_transitions(current: CaseStatus, target: CaseStatus, allowed: bool) -> None:
    assert rules.can_move(current, target) is allowed


@pytest.mark.parametrize(
    ("text", "plain"),
    [
        ("<script>alert(1)</script>您好，<b>已转交</b>相关部门", "您好，已转交相关部门"),
        ("&lt;script&gt;alert(1)&lt;/script&gt;请稍候", "请稍候"),
        ("价格 a < b & c", "价格 a < b & c"),
        ("<p>第一行</p>\n\n<p>第二行</p>", "第一行\n第二行"),
    ],
)
def test_replies_are_plain_text(text: str, plain: str) -> None:
    assert rules.plain_reply(text) == plain
    assert "<script" not in rules.plain_reply(text)


@pytest.mark.parametrize(
    ("handle", "masked"),
    [("张三丰", "张**"), ("张三", "张**"), ("abcdef", "ab***"), ("", "网友")],
)
def test_mask_handle(handle: str, masked: str) -> None:
    assert rules.mask_handle(handle) == masked


def test_routing_by_account_keyword_and_priority() -> None:
    routes = [
        rules.Route(1, None, ("医保",), org_id=10, priority=50),
        rules.Route(2, 7, (), org_id=20, priority=100),
        rules.Route(3, None, ("医保", "社保"), org_id=30, priority=10),
    ]
    assert rules.route(routes, 7, "医保报销怎么办").org_id == 30  # type: ignore[union-attr]
    assert rules.route(routes, 7, "路灯坏了").org_id == 20  # type: ignore[union-attr]
    assert rules.route(routes, 8, "路灯坏了") is None
    assert rules.split_keywords("医保，社保 、 公积金") == ("医保", "社保", "公积金")


def test_wechat_window_is_48_hours() -> None:
    assert rules.window_open(T0, T0 + timedelta(hours=47, minutes=59))
    assert not rules.window_open(T0, T0 + timedelta(hours=48, seconds=1))
    assert not rules.window_open(None, T0)


def test_spam_and_abuse_are_hidden() -> None:
    assert rules.is_hidden(Category.spam) and rules.is_hidden(Category.abusive)
    assert not rules.is_hidden(Category.complaint)


def test_stats() -> None:
    due = T0 + timedelta(days=7)
    cases = [
        rules.CaseTimes(T0, T0 + timedelta(hours=2), due, T0 + timedelta(hours=2)),
        rules.CaseTimes(T0, T0 + timedelta(hours=4), due, due + timedelta(hours=1)),
        rules.CaseTimes(T0, None, due, None),
    ]
    stats = rules.stats_of(cases, due + timedelta(days=1))
    assert (stats.cases, stats.replied, stats.overdue_open) == (3, 2, 1)
    assert stats.median_first_response_hours == 3.0
    assert stats.answered_within_limit_pct == pytest.approx(33.3)
