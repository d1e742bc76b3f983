"""One contract, every connector: round trip, error classes, secrecy, declared limits."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from types import ModuleType

import pytest

from connectors.base import Account, Connector, Limits, Published, PublishOutcome
from connectors.errors import ConnectorError, RateLimited, Transient, Unconfirmed
from connectors.registry import CONNECTORS
from tests.contract.conftest import HARNESS_MODULES
from tests.contract.harness import ErrorCase, Harness

pytestmark = pytest.mark.contract


@pytest.fixture(autouse=True)
def _no_leftover_faults(harness: Harness) -> Iterator[None]:
    yield
    harness.clear_faults()


def settle(harness: Harness, account: Account, outcome: PublishOutcome) -> Published:
    """Poll a Pending outcome until Published (bounded: no sleeping, platforms answer at once)."""
    for _ in range(20):
        if isinstance(outcome, Published):
            return outcome
        outcome = harness.connector.poll(account, outcome.ref)
    raise AssertionError(f"still pending: {outcome}")


def test_limits_are_declared_and_the_class_is_registered(harness: Harness) -> None:
    connector = harness.connector
    assert isinstance(connector, Connector)
    assert connector.platform == harness.platform
    assert CONNECTORS[harness.platform] is type(connector)
    assert isinstance(type(connector).limits, Limits)
    assert connector.limits.concurrency >= 1


def test_round_trip(harness: Harness) -> None:
    connector = harness.connector
    account = harness.new_account()
    rendition = connector.render(harness.content())
    assert rendition.platform == harness.platform
    assert [p for p in connector.check(rendition) if p.blocking] == []

    published = settle(
        harness, account, connector.publish(account, rendition, idempotency_key="rt-1")
    )
    assert published.remote_id
    assert harness.stored_ids(account) == [published.remote_id]
    again = connector.poll(account, published.remote_id)
    assert isinstance(again, Published)
    assert again.remote_id == published.remote_id
    if "recent" in _module_of(harness).CAPABILITIES:
        assert published.remote_id in [post.remote_id for post in connector.recent(account)]

    connector.withdraw(account, published.remote_id)
    assert harness.stored_ids(account) == []
    connector.withdraw(account, published.remote_id)  # already gone is not an error


@pytest.mark.capability("recent")
def test_recent_lists_published_posts_newest_first(harness: Harness) -> None:
    connector = harness.connector
    account = harness.new_account()
    ids = []
    for n in range(3):
        rendition = connector.render(harness.content())
        outcome = connector.publish(account, rendition, idempotency_key=f"recent-{n}")
        ids.append(settle(harness, account, outcome).remote_id)
    listed = connector.recent(account)
    assert [post.remote_id for post in listed] == ids[::-1]
    assert all(post.created_at.tzinfo is not None for post in listed)
    assert [post.remote_id for post in connector.recent(account, since=ids[0])] == ids[:0:-1]


def test_check_reports_what_the_platform_would_refuse(harness: Harness) -> None:
    rendition, expected = harness.invalid_rendition()
    problems = harness.connector.check(rendition)
    assert {p.code for p in problems} == expected
    assert all(p.message and p.blocking for p in problems)


def _operation(harness: Harness, case: ErrorCase) -> Callable[[], object]:
    connector = harness.connector
    account = harness.new_account()
    rendition = connector.render(harness.content())
    if case.operation == "publish":
        harness.inject(case, account)
        return lambda: connector.publish(account, rendition, idempotency_key="err-1")
    if case.operation == "withdraw":
        outcome = connector.publish(account, rendition, idempotency_key="err-2")
        remote_id = settle(harness, account, outcome).remote_id
        harness.inject(case, account)
        return lambda: connector.withdraw(account, remote_id)
    if case.operation == "recent":
        harness.inject(case, account)
        return lambda: connector.recent(account)
    harness.inject(case, account)
    return lambda: connector.poll(account, "no-such-entry")


def test_errors_are_classified(
    harness: Harness, error_case: ErrorCase, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    call = _operation(harness, error_case)
    with pytest.raises(ConnectorError) as raised:
        call()
    error = raised.value
    assert type(error) is error_case.expected, f"{error!r}: {error}"
    assert error.platform == harness.platform
    assert str(error)
    if isinstance(error, RateLimited):
        assert error.until > datetime.now(UTC)
    if isinstance(error, Transient):
        assert error.retry_after > 0


@pytest.mark.capability("drop")
def test_a_connection_dropped_after_acceptance_is_unconfirmed(harness: Harness) -> None:
    connector = harness.connector
    account = harness.new_account()
    rendition = connector.render(harness.content())
    harness.inject_drop()
    with pytest.raises(Unconfirmed):
        connector.publish(account, rendition, idempotency_key="drop-1")
    assert len(harness.stored_ids(account)) == 1  # it took effect: never send it again blindly


def test_secrets_stay_out_of_reprs_logs_and_errors(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    connector = harness.connector
    account = harness.new_account()
    secrets = harness.secrets(account)
    assert secrets and all(secrets)
    rendition = connector.render(harness.content())
    outcome = connector.publish(account, rendition, idempotency_key="secret-1")
    published = settle(harness, account, outcome)
    connector.recent(account)
    messages = [repr(connector), repr(account), repr(rendition), repr(published)]
    for case in _module_of(harness).ERROR_CASES:
        call = _operation(harness, case)
        try:
            call()
        except ConnectorError as error:
            messages += [str(error), repr(error), error.platform_message or ""]
        harness.clear_faults()
    text = "\n".join(messages) + "\n" + caplog.text
    for secret in secrets:
        assert secret not in text


def _module_of(harness: Harness) -> ModuleType:
    for name in HARNESS_MODULES:
        module = importlib.import_module(name)
        if harness.platform == module.PLATFORM:
            return module
    raise LookupError(harness.platform)
