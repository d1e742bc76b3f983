"""WeChat access tokens: the sandbox's classic/stable token semantics, and the connector on
``stable_token`` surviving another system that shares the AppSecret, over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors.base import Published
from connectors.errors import Misconfigured, QuotaExhausted, RateLimited
from connectors.sandbox.server import serve
from connectors.sandbox.wechat import Fault, WechatSandbox
from tests.contract.harness_wechat import WechatHarness, wait_for, wechat, wechat_server

__all__ = ["wechat", "wechat_server"]  # fixtures used by this module

pytestmark = pytest.mark.contract


@pytest.fixture
def strict(tmp_path: Path) -> Iterator[WechatHarness]:
    """A sandbox of its own whose classic tokens die the moment a newer one is fetched (the
    5-minute overlap already over), so that a call on a superseded token shows at once."""
    sandbox = WechatSandbox(publish_delay=0.05, token_overlap=0.0)
    server = serve(sandbox)
    try:
        with httpx.Client(timeout=5.0) as client:
            yield WechatHarness(sandbox, server.base_url, client, tmp_path)
    finally:
        sandbox.close()
        server.stop()


def classic(h: WechatHarness) -> dict[str, Any]:
    """Another system (a CMS sharing the AppSecret) takes a classic token."""
    params = {"grant_type": "client_credential", "appid": h.appid, "secret": h.secret}
    answer: dict[str, Any] = h.client.get(f"{h.base_url}/cgi-bin/token", params=params).json()
    return answer


def stable(h: WechatHarness, *, force: bool = False, secret: str | None = None) -> dict[str, Any]:
    body = {
        "grant_type": "client_credential",
        "appid": h.appid,
        "secret": h.secret if secret is None else secret,
        "force_refresh": force,
    }
    answer: dict[str, Any] = h.client.post(f"{h.base_url}/cgi-bin/stable_token", json=body).json()
    return answer


def errcode_with(h: WechatHarness, token: str) -> int:
    """The errcode an API call with ``token`` gets (0: the token works)."""
    answer = h.client.post(
        f"{h.base_url}/cgi-bin/freepublish/batchget",
        params={"access_token": token},
        json={"offset": 0, "count": 1, "no_content": 1},
    ).json()
    return int(answer.get("errcode", 0))


# -- the sandbox follows the platform ------------------------------------------------------------


def test_a_classic_token_call_kills_classic_tokens_but_not_stable_ones(
    strict: WechatHarness,
) -> None:
    first_classic = classic(strict)["access_token"]
    stable_token = stable(strict)["access_token"]
    second_classic = classic(strict)["access_token"]

    assert errcode_with(strict, first_classic) == 40001  # not the latest
    assert errcode_with(strict, second_classic) == 0
    assert errcode_with(strict, stable_token) == 0  # "完全隔离，互不影响"
    assert stable(strict)["access_token"] == stable_token


def test_stable_token_is_the_same_while_valid_with_its_remaining_lifetime(
    wechat: WechatHarness,
) -> None:
    first = stable(wechat)
    again = stable(wechat, force=False)
    assert again["access_token"] == first["access_token"]
    assert 0 < again["expires_in"] <= first["expires_in"] <= 7200


def test_stable_token_hands_over_in_its_last_minutes(tmp_path: Path) -> None:
    """In the last ``token_overlap`` seconds a normal call mints the next token; both work."""
    sandbox = WechatSandbox(token_ttl=300.5, token_overlap=300.0)
    server = serve(sandbox)
    try:
        with httpx.Client(timeout=5.0) as client:
            h = WechatHarness(sandbox, server.base_url, client, tmp_path)
            old = stable(h)["access_token"]
            new = wait_for(lambda: (t := stable(h)["access_token"]) != old and t, timeout=5)
            assert errcode_with(h, old) == 0
            assert errcode_with(h, new) == 0
    finally:
        sandbox.close()
        server.stop()


def test_force_refresh_mints_a_new_token_and_kills_the_old_one(wechat: WechatHarness) -> None:
    old = stable(wechat)["access_token"]
    forced = stable(wechat, force=True)
    assert forced["access_token"] != old
    assert forced["expires_in"] == 7200
    assert errcode_with(wechat, old) == 40001
    assert errcode_with(wechat, forced["access_token"]) == 0
    assert stable(wechat)["access_token"] == forced["access_token"]


def test_force_refresh_is_limited_to_one_per_30_seconds_and_20_a_day(
    wechat: WechatHarness,
) -> None:
    assert "access_token" in stable(wechat, force=True)
    assert stable(wechat, force=True)["errcode"] == 45011  # within 30 s
    wechat.sandbox.configure(stable_force_interval=0.0)
    try:
        for _ in range(19):
            assert "access_token" in stable(wechat, force=True)
        assert stable(wechat, force=True)["errcode"] == 45009  # the 21st today
        assert "access_token" in stable(wechat)  # normal mode still works
    finally:
        wechat.sandbox.configure(stable_force_interval=30.0)


def test_stable_token_with_a_wrong_secret_is_40125(wechat: WechatHarness) -> None:
    assert stable(wechat, secret="wrong")["errcode"] == 40125
    assert stable(wechat, secret="")["errcode"] == 41004


# -- the connector on stable_token ---------------------------------------------------------------


def test_another_system_taking_classic_tokens_mid_fan_out_costs_nothing(
    strict: WechatHarness,
) -> None:
    """Six copies go out four at a time; in the middle of every one of them (between draft/add
    and freepublish/submit) the other system takes a classic token. Not one call of the hub
    may carry a token the platform no longer accepts, and every copy is published."""
    connector, account = strict.wechat, strict.account()
    classic(strict)  # the other system was there first

    renditions = [
        connector.render(strict.content(title=f"关于做好防汛工作的通知（{n}）")) for n in range(6)
    ]

    def one_copy(n: int) -> str:
        rendition = renditions[n]
        pending = connector.publish(
            account, rendition, idempotency_key=f"k{n}", checkpoint=lambda _: classic(strict)
        )
        assert not isinstance(pending, Published)
        return pending.ref

    with ThreadPoolExecutor(max_workers=4) as pool:
        refs = list(pool.map(one_copy, range(6)))

    published = [
        wait_for(lambda ref=ref: isinstance(p := connector.poll(account, ref), Published) and p)
        for ref in refs
    ]
    assert len({p.remote_id for p in published}) == 6
    log = strict.sandbox.call_log(strict.appid)
    assert log, "the sandbox logged the hub's calls"
    dead = [c for c in log if c["token_state"] != "valid"]
    assert dead == []
    assert {c["token_kind"] for c in log} == {"stable"}
    calls = strict.calls()
    assert calls["/cgi-bin/token"] == 7  # the other system's, untouched by the hub
    assert calls["/cgi-bin/stable_token"] == 1  # one token for the whole fan-out


def test_a_refused_token_is_replaced_without_burning_a_force_refresh(
    wechat: WechatHarness,
) -> None:
    """The platform says "expired" (42001) while the stable token was in fact replaced: a
    normal call already returns a different token, so no force_refresh is spent."""
    connector, account = wechat.wechat, wechat.account()
    connector.recent(account)
    stable(wechat, force=True)  # someone else force-refreshed: the hub's token is dead
    connector.recent(account)
    log = wechat.sandbox.call_log(wechat.appid)
    assert [c["token_state"] for c in log] == ["valid", "superseded", "valid"]
    assert wechat.calls()["/cgi-bin/stable_token"] == 3  # hub, other system, hub (normal)


def test_a_token_refused_although_still_current_is_force_refreshed(wechat: WechatHarness) -> None:
    wechat.sandbox.add_fault(
        Fault("/cgi-bin/freepublish/batchget", errcode=40014, count=1, appid=wechat.appid)
    )
    connector, account = wechat.wechat, wechat.account()
    connector.recent(account)
    assert wechat.calls()["/cgi-bin/stable_token"] == 3  # first, normal (same token), force
    log = wechat.sandbox.call_log(wechat.appid)
    assert len({c["token"] for c in log}) == 2
    assert all(c["token_state"] == "valid" for c in log)


def test_force_refresh_limits_are_reported_clearly(wechat: WechatHarness) -> None:
    connector, account = wechat.wechat, wechat.account()
    refuse_once = Fault("/cgi-bin/freepublish/batchget", errcode=40014, appid=wechat.appid)
    connector.recent(account)
    stable(wechat, force=True)  # another system force-refreshed a moment ago
    wechat.sandbox.add_fault(refuse_once)
    connector.recent(account)  # normal mode gives the other system's new token: fine
    wechat.sandbox.add_fault(Fault(**{**refuse_once.__dict__, "count": 1}))
    with pytest.raises(RateLimited, match="30秒"):
        connector.recent(account)  # the same token again, and force_refresh within 30 s

    wechat.sandbox.configure(stable_force_interval=0.0)
    try:
        for _ in range(19):  # the other system spends the rest of today's 20
            assert "access_token" in stable(wechat, force=True)
        wechat.sandbox.add_fault(Fault(**{**refuse_once.__dict__, "count": 1}))
        connector.recent(account)  # dead token: normal mode gives the latest one
        wechat.sandbox.add_fault(Fault(**{**refuse_once.__dict__, "count": 1}))
        with pytest.raises(QuotaExhausted, match="20"):
            connector.recent(account)
    finally:
        wechat.sandbox.configure(stable_force_interval=30.0)


def test_a_wrong_secret_on_stable_token_is_a_configuration_error(wechat: WechatHarness) -> None:
    with pytest.raises(Misconfigured, match="AppSecret") as caught:
        wechat.wechat.recent(wechat.account(app_secret="wrong-secret"))
    assert "wrong-secret" not in str(caught.value)
    assert wechat.calls() == {"/cgi-bin/stable_token": 1}


def test_a_kept_token_spares_the_publication_its_token_call(wechat: WechatHarness) -> None:
    """Beat keeps the token (``keep_token``); the copy that follows goes straight to its uploads
    and draft, and keeping it again while it is good calls nothing."""
    connector, account = wechat.wechat, wechat.account()
    assert connector.keep_token(account) is True
    assert wechat.calls().get("/cgi-bin/stable_token") == 1
    assert connector.keep_token(account) is False
    wechat.publish_and_wait()
    calls = wechat.calls()
    assert calls.get("/cgi-bin/stable_token") == 1
    assert calls.get("/cgi-bin/freepublish/submit") == 1


def test_a_token_near_its_end_is_kept_ahead_of_it(tmp_path: Path) -> None:
    """The store drops a token at its expiry minus the refresh margin; the next keep fetches
    again then, before any publication would have to."""
    sandbox = WechatSandbox(token_ttl=4.0, token_overlap=0.0)  # kept for half its life: 2 s
    server = serve(sandbox)
    try:
        with httpx.Client(timeout=5.0) as client:
            h = WechatHarness(sandbox, server.base_url, client, tmp_path)
            connector, account = h.wechat, h.account()
            assert connector.keep_token(account) is True
            assert connector.keep_token(account) is False
            wait_for(lambda: connector.keep_token(account) or None, timeout=10)
            assert h.calls()["/cgi-bin/stable_token"] == 2
    finally:
        sandbox.close()
        server.stop()
