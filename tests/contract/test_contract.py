"""One contract, every connector: round trip, error classes, secrecy, declared limits."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from types import ModuleType
from zoneinfo import ZoneInfo

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
    if case.operation == "metrics":
        from connectors.base import CopyRef, Metrics

        assert isinstance(connector, Metrics)
        now = datetime.now(UTC)
        copy = CopyRef("4899999999999999", now, meta={"msg_data_id": "2247000001"})
        # the platforms count by Beijing day: from 16:00 UTC on, today's UTC date is yesterday
        # there, and a copy sent "now" would not be asked about at all
        today = now.astimezone(ZoneInfo("Asia/Shanghai")).date()
        harness.inject(case, account)
        return lambda: connector.fetch_metrics(account, [copy], today)
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


# -- platform info and optional capabilities --------------------------------------------------


def test_the_platform_declares_its_info(harness: Harness) -> None:
    """Everything the hub shows or asks for about the platform comes from ``info``."""
    from pathlib import Path

    from connectors.base import PlatformInfo
    from connectors.registry import info
    from hub.config import Settings

    cls = type(harness.connector)
    declared = cls.info
    assert isinstance(declared, PlatformInfo)
    assert declared.key == harness.platform == cls.platform
    assert info(harness.platform) is declared
    assert declared.label_zh and declared.label_en
    names = [f.name for f in declared.credentials]
    assert len(names) == len(set(names)), "credential field names repeat"
    assert set(declared.kept_credentials) <= set(declared.optional_credentials)
    assert not (declared.needs_credentials and not declared.required_credentials)
    settings_fields = set(Settings.model_fields)
    assert set(declared.settings_keys) <= settings_fields
    if declared.api_base_setting:
        assert declared.api_base_setting in declared.settings_keys
        assert declared.official_api_base.startswith("https://")
    templates = Path(__file__).resolve().parents[2] / "templates" / "channels"
    for name in declared.templates:
        assert (templates / name).is_file(), f"{name} is not in templates/channels"


def test_builtin_platforms_are_found_by_entry_point(harness: Harness) -> None:
    from importlib.metadata import entry_points

    from connectors.registry import GROUP

    loaded = {ep.name: ep.load() for ep in entry_points(group=GROUP)}
    assert loaded[harness.platform] is type(harness.connector)


def test_every_declared_capability_works(harness: Harness, capability: str) -> None:
    """Each optional capability the connector implements is exercised against the simulator
    (the pairs come from conftest: only the capabilities each connector's class implements)."""
    from connectors.base import CAPABILITIES

    assert isinstance(harness.connector, CAPABILITIES[capability])
    CAPABILITY_CHECKS[capability](harness)


def test_every_capability_has_a_check() -> None:
    from connectors.base import CAPABILITIES

    assert set(CAPABILITY_CHECKS) == set(CAPABILITIES)


def _check_reconciles(harness: Harness) -> None:
    from connectors.base import Reconciles

    connector = harness.connector
    assert isinstance(connector, Reconciles)
    account = harness.new_account()
    rendition = connector.render(harness.content())
    before = datetime.now(UTC) - timedelta(minutes=1)
    published = settle(
        harness, account, connector.publish(account, rendition, idempotency_key="rc-1")
    )
    after = datetime.now(UTC) + timedelta(minutes=1)
    found = connector.find_publication(
        account, title=rendition.title, digest=rendition.digest, since=before, until=after
    )
    assert found is not None and found.remote_id == published.remote_id
    held = frozenset({published.remote_id})
    assert (
        connector.find_publication(
            account,
            title=rendition.title,
            digest=rendition.digest,
            since=before,
            until=after,
            exclude=held,
        )
        is None
    )


def _check_keeps_tokens(harness: Harness) -> None:
    """A new account's token is fetched once; while it is good, keeping it costs nothing; the
    account then publishes on it."""
    from connectors.base import KeepsTokens

    connector = harness.connector
    assert isinstance(connector, KeepsTokens)
    account = harness.new_account()
    assert connector.keep_token(account) is True
    assert connector.keep_token(account) is False
    rendition = connector.render(harness.content())
    assert settle(harness, account, connector.publish(account, rendition, idempotency_key="kt-1"))


def _check_binds(harness: Harness) -> None:
    from urllib.parse import parse_qs, urlsplit

    import httpx

    from connectors.base import Account as ConnectorAccount
    from connectors.base import Binds

    connector = harness.connector
    assert isinstance(connector, Binds)
    redirect = "http://hub.test/oauth/callback"
    consent = httpx.get(connector.authorize_url(redirect, "st-1"), follow_redirects=False)
    assert consent.is_redirect
    back = urlsplit(consent.headers["location"])
    assert f"{back.scheme}://{back.netloc}{back.path}" == redirect
    query = parse_qs(back.query)
    assert query["state"] == ["st-1"]
    token = connector.exchange_code(query["code"][0], redirect)
    assert token.access_token and token.uid
    bound = ConnectorAccount(
        id=1,
        platform=harness.platform,
        handle=str(token.uid),
        credentials={"access_token": token.access_token},
        extra={"uid": str(token.uid)},
    )
    assert connector.recent(bound) == []  # the token works: a new account has no posts
    with pytest.raises(ConnectorError):
        connector.exchange_code(query["code"][0], redirect)  # a code is traded once


def _check_comments(harness: Harness) -> None:
    from connectors.base import Comments

    connector = harness.connector
    assert isinstance(connector, Comments)
    account = harness.new_account()
    rendition = connector.render(harness.content())
    published = settle(
        harness, account, connector.publish(account, rendition, idempotency_key="cm-1")
    )
    harness.comment_on(account, published.remote_id, "请问什么时候开始办理？")  # type: ignore[attr-defined]
    comments = connector.comments_to_me(account)
    assert [(c.post_id, c.text) for c in comments] == [
        (published.remote_id, "请问什么时候开始办理？")
    ]
    connector.reply_comment(account, comments[0].remote_id, published.remote_id, "下周一开始。")
    assert harness.replies(comments[0].remote_id) == ["下周一开始。"]  # type: ignore[attr-defined]


def _check_direct_messages(harness: Harness) -> None:
    from connectors.base import DirectMessages

    connector = harness.connector
    assert isinstance(connector, DirectMessages)
    account = harness.new_account()
    user_id = harness.follower_writes(account, "你好，想咨询社保")  # type: ignore[attr-defined]
    connector.send_custom_message(account, user_id, "您好，请拨打12345。")
    assert harness.messages_to(account, user_id) == ["您好，请拨打12345。"]  # type: ignore[attr-defined]


def _check_delivery_options(harness: Harness) -> None:
    import dataclasses

    from connectors.base import DeliveryOptions

    connector = harness.connector
    assert isinstance(connector, DeliveryOptions)
    published_mode = connector.delivery_options(mode="publish", comments="closed")
    pushed_mode = connector.delivery_options(mode="push", comments="open")
    assert published_mode and all(isinstance(v, str) for v in published_mode.values())
    assert published_mode != pushed_mode, "the options must reach publish() distinguishably"
    account = harness.new_account()
    rendition = connector.render(harness.content())
    with_options = dataclasses.replace(rendition, meta={**rendition.meta, **published_mode})
    published = settle(
        harness, account, connector.publish(account, with_options, idempotency_key="do-1")
    )
    assert harness.stored_ids(account) == [published.remote_id]


def _check_callbacks(harness: Harness) -> None:
    """A signed handshake is answered; a forged one is refused (403), an unreadable event 400."""
    import dataclasses

    from connectors.base import CallbackRefused, Callbacks

    connector = harness.connector
    assert isinstance(connector, Callbacks)
    account = harness.new_account()
    request, answer = harness.callback_handshake(account)  # type: ignore[attr-defined]
    assert connector.handle_callback(request).answer == answer
    forged = dataclasses.replace(
        request, credentials={**request.credentials, "callback_token": "x"}
    )
    with pytest.raises(CallbackRefused) as refused:
        connector.handle_callback(forged)
    assert refused.value.status == 403
    garbled = harness.callback_event(account, b"<xml><not-closed>")  # type: ignore[attr-defined]
    with pytest.raises(CallbackRefused) as unreadable:
        connector.handle_callback(garbled)
    assert unreadable.value.status == 400


def _check_metrics(harness: Harness) -> None:
    """Readers' counts of a published copy come back under the declared keys; copies the
    platform does not know are left out; more copies than one call takes are split."""
    from connectors.base import CopyRef, Metrics, Pending

    connector = harness.connector
    assert isinstance(connector, Metrics)
    spec = type(connector).metrics_spec()
    keys = [f.key for f in spec.fields]
    assert keys and len(keys) == len(set(keys))
    assert all(f.label_zh and f.label_en for f in spec.fields)
    assert spec.lag_days >= 0 and spec.window_days >= 0 and spec.batch >= 1
    account = harness.new_account()
    rendition = connector.render(harness.content())
    outcome = connector.publish(account, rendition, idempotency_key="mt-1")
    meta = dict(outcome.meta) if isinstance(outcome, Pending) else {}
    published = settle(harness, account, outcome)
    sent = published.published_at or datetime.now(UTC)
    copy = CopyRef(published.remote_id, sent, meta=meta)
    # the platform's day to ask for and the totals the simulator will answer for it
    day, expected = harness.reader_counts(account, copy)  # type: ignore[attr-defined]
    assert set(expected) == set(keys)
    strangers = [
        CopyRef(str(4_899_999_999_000_000 + n), sent, meta={"msg_data_id": str(2_000_000 + n)})
        for n in range(spec.batch)
    ]
    got = connector.fetch_metrics(account, [*strangers, copy], day)
    assert [(m.remote_id, m.day, dict(m.counts)) for m in got] == [
        (published.remote_id, day, expected)
    ]
    assert connector.fetch_metrics(account, strangers[:3], day) == []


CAPABILITY_CHECKS: dict[str, Callable[[Harness], None]] = {
    "callbacks": _check_callbacks,
    "delivery_options": _check_delivery_options,
    "reconciles": _check_reconciles,
    "binds": _check_binds,
    "comments": _check_comments,
    "direct_messages": _check_direct_messages,
    "metrics": _check_metrics,
    "keeps_tokens": _check_keeps_tokens,
}
