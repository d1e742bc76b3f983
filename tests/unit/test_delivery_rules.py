"""What the engine does after a failed call: the pure decision, with the operator's settings."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from connectors.errors import (
    AccountBlocked,
    AuthExpired,
    CapabilityUnavailable,
    Misconfigured,
    Rejected,
    Transient,
    Unconfirmed,
)
from hub.accounts.models import AccountStatus
from hub.config import Settings
from hub.delivery.models import DeliveryStatus
from hub.delivery.rules import (
    STATUS_WORDS,
    decide,
    manual_refusal,
    recheck_delay,
    rip_for,
    valid_ip,
)
from hub.errors import Invalid
from hub.records.rules import DELIVERY_STATUS
from hub.web import i18n

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


def test_a_transient_error_is_retried_later_and_never_sooner_than_the_platform_asks() -> None:
    error = Transient("HTTP 503", retry_after=2.0)
    for attempt in range(1, 15):
        decision = decide(error, attempt=attempt, now=NOW, rand=random.Random(attempt))
        assert decision.status is DeliveryStatus.queued
        assert decision.retry_at is not None
        wait = (decision.retry_at - NOW).total_seconds()
        assert 2.0 <= wait <= 60.0


def test_the_operators_cap_and_attempt_limit_apply() -> None:
    error = Transient("HTTP 503", retry_after=0.5)
    late = decide(error, attempt=10, now=NOW, backoff_cap=3.0, max_attempts=12)
    assert late.retry_at is not None and late.retry_at - NOW <= timedelta(seconds=3)
    spent = decide(error, attempt=12, now=NOW, backoff_cap=3.0, max_attempts=12)
    assert spent.status is DeliveryStatus.failed
    assert "gave up after 12 attempts" in spent.message


def test_unknown_outcomes_are_reconciled_and_refusals_are_final() -> None:
    assert decide(Unconfirmed("timeout"), attempt=1, now=NOW).reconcile
    refused = decide(Rejected("内容违规", code="20003"), attempt=1, now=NOW)
    assert refused.status is DeliveryStatus.failed and refused.retry_at is None
    expired = decide(AuthExpired("token expired"), attempt=1, now=NOW)
    assert expired.status is DeliveryStatus.parked and expired.flag is AccountStatus.needs_reauth


def test_retry_settings_are_checked() -> None:
    assert Settings().retry_max_attempts == 15
    assert Settings().retry_backoff_max_seconds == 60.0
    with pytest.raises(ValidationError):
        Settings(retry_max_attempts=0)
    with pytest.raises(ValidationError):
        Settings(retry_backoff_max_seconds=0)


def test_a_blocked_account_parks_its_deliveries_and_is_flagged_with_what_to_do() -> None:
    for code in ("40164", "48001", "48004", "21321", "20031"):
        error = AccountBlocked("请在 open.weibo.com 完成应用审核", code=code, platform="x")
        decision = decide(error, attempt=1, now=NOW)
        assert decision.status is DeliveryStatus.parked, code
        assert decision.flag is AccountStatus.misconfigured
        assert "open.weibo.com" in decision.message and decision.retry_at is None


def test_other_configuration_errors_and_refused_capabilities_still_fail() -> None:
    wrong_key = decide(Misconfigured("App Key 有误", code="10006"), attempt=1, now=NOW)
    assert wrong_key.status is DeliveryStatus.failed and wrong_key.flag is None
    no_comments = CapabilityUnavailable("无评论权限", capability="comments", code="10014")
    assert decide(no_comments, attempt=1, now=NOW).status is DeliveryStatus.failed
    no_domain = decide(
        Rejected("微博正文中没有应用安全域名内的链接", code="10017"), attempt=1, now=NOW
    )
    assert no_domain.status is DeliveryStatus.failed and "安全域名" in no_domain.message


@pytest.mark.parametrize(
    ("person", "fallback", "sent"),
    [
        ("211.156.0.1", "203.0.113.10", "211.156.0.1"),  # the person's public IP
        ("10.2.3.4", "203.0.113.10", "203.0.113.10"),  # intranet: the unit's egress IP
        ("127.0.0.1", "", "127.0.0.1"),  # nothing better known
        ("testclient", "203.0.113.10", "203.0.113.10"),  # not an IP at all
        ("", "", ""),
        ("2400:3200::1", "", "2400:3200::1"),
        (" 211.156.0.1 ", "", "211.156.0.1"),
    ],
)
def test_the_rip_is_the_persons_public_ip_or_the_fallback(
    person: str, fallback: str, sent: str
) -> None:
    assert rip_for(person, fallback) == sent


def test_only_real_ip_strings_are_kept() -> None:
    assert valid_ip("192.0.2.1") == "192.0.2.1"
    assert valid_ip("::FFFF:192.0.2.1") == "::ffff:c000:201"
    for bad in ("", "cli", "1.2.3", "1.2.3.4; drop", "300.1.1.1", None, "1" * 80):
        assert valid_ip(bad) == ""


def test_a_misconfigured_account_is_re_tested_less_and_less_often() -> None:
    delays = [recheck_delay(n, base_seconds=600, max_seconds=6 * 3600) for n in range(8)]
    assert delays[0] == timedelta(minutes=10) and delays[1] == timedelta(minutes=20)
    assert delays == sorted(delays) and delays[-1] == timedelta(hours=6)


def test_the_fallback_rip_must_be_an_ip_address() -> None:
    assert Settings(weibo_fallback_rip=" 203.0.113.10 ").weibo_fallback_rip == "203.0.113.10"
    with pytest.raises(ValidationError, match="GOVHUB_WEIBO_FALLBACK_RIP"):
        Settings(weibo_fallback_rip="egress.example.gov.cn")


def test_a_refused_manual_action_says_the_state_and_what_would_be_allowed() -> None:
    refusal = manual_refusal("mark_published", DeliveryStatus.cancelled)
    assert refusal == (
        "投递状态为「已取消」，不能标记为已发布："
        "只有等待平台结果、结果未确认、失败或已暂停的投递可以标记"
    )
    english = Invalid(refusal).translate(i18n.translations("en").gettext)
    assert english == (
        "Cannot mark a delivery in the state “Cancelled” as published: "
        "only a pending, unconfirmed, failed or parked delivery can be"
    )
    assert manual_refusal("cancel", DeliveryStatus.queued) is None
    assert {s.value: str(w) for s, w in STATUS_WORDS.items()} == DELIVERY_STATUS
