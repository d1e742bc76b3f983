"""What the engine does after a failed call: the pure decision, with the operator's settings."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from connectors.errors import AuthExpired, Rejected, Transient, Unconfirmed
from hub.config import Settings
from hub.delivery.models import DeliveryStatus
from hub.delivery.rules import decide

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
    assert expired.status is DeliveryStatus.parked and expired.flag_account


def test_retry_settings_are_checked() -> None:
    assert Settings().retry_max_attempts == 15
    assert Settings().retry_backoff_max_seconds == 60.0
    with pytest.raises(ValidationError):
        Settings(retry_max_attempts=0)
    with pytest.raises(ValidationError):
        Settings(retry_backoff_max_seconds=0)
