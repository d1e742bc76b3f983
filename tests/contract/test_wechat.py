"""The WeChat connector against the WeChat sandbox, over real HTTP on loopback."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest
from sqlalchemy import MetaData

from connectors.base import Pending, Published
from connectors.errors import (
    AccountBlocked,
    AuthExpired,
    Misconfigured,
    QuotaExhausted,
    Rejected,
    Transient,
    Unconfirmed,
)
from connectors.sandbox.server import RunningServer
from connectors.sandbox.wechat import Fault, WechatSandbox
from connectors.tokens import SqlTokenStore, platform_tokens_table
from connectors.wechat import (
    SubmitUnconfirmed,
    check_signature,
    next_midnight,
    parse_publish_event,
    parse_ref,
)
from hub.db import engine_for
from tests.contract.harness_wechat import (
    Recorder,
    WechatHarness,
    noisy_png,
    recorder_server,
    wait_for,
    wechat,
    wechat_server,
)

__all__ = ["recorder_server", "wechat", "wechat_server"]  # fixtures used by this module

pytestmark = pytest.mark.contract


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def tags(fragment: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = _Tags()
    parser.feed(fragment)
    return parser.tags


# -- the whole life of a publication ---------------------------------------------------------


def test_publish_poll_recent_withdraw(wechat: WechatHarness) -> None:
    connector, account = wechat.wechat, wechat.account()
    ref, published = wechat.publish_and_wait()

    assert published.remote_id
    assert published.remote_url.startswith("http://mp.weixin.qq.com/s/")
    [publication] = wechat.sandbox.state(wechat.appid)["publications"]
    assert publication["article_id"] == published.remote_id
    assert parse_ref(ref)[0] == str(publication["publish_id"])
    [article] = publication["received"]
    assert article["title"] == "关于做好防汛工作的通知"  # raw UTF-8 accepted, stored as sent
    assert article["author"] == "新闻办"
    assert article["digest"] == "防汛通知"
    assert article["content_source_url"] == "http://hall.test/posts/1"

    recent = connector.recent(account)
    assert [p.remote_id for p in recent] == [published.remote_id]
    assert recent[0].url == published.remote_url
    assert recent[0].text == "关于做好防汛工作的通知"

    by_article = connector.poll(account, published.remote_id)  # a delivery's remote_id
    assert by_article == Published(published.remote_id, published.remote_url)

    connector.withdraw(account, published.remote_id)
    assert connector.recent(account) == []
    [publication] = wechat.sandbox.state(wechat.appid)["publications"]
    assert publication["deleted"] == [True]
    with pytest.raises(Rejected, match="删除"):
        connector.poll(account, ref)
    with pytest.raises(Rejected, match="删除"):
        connector.poll(account, published.remote_id)


def test_exactly_one_copy_is_published(wechat: WechatHarness) -> None:
    wechat.publish_and_wait()
    state = wechat.sandbox.state(wechat.appid)
    assert len(state["publications"]) == 1
    assert state["drafts"] == []  # the submitted draft left the draft box
    assert len(state["thumbs"]) == 1


def test_a_cover_deleted_from_the_material_library_is_uploaded_again(
    wechat: WechatHarness,
) -> None:
    wechat.publish_and_wait()
    (thumb,) = wechat.sandbox.state(wechat.appid)["thumbs"]
    token = httpx.get(
        f"{wechat.base_url}/cgi-bin/token",
        params={"grant_type": "client_credential", "appid": wechat.appid, "secret": wechat.secret},
    ).json()["access_token"]
    deleted = httpx.post(
        f"{wechat.base_url}/cgi-bin/material/del_material",
        params={"access_token": token},
        json={"media_id": thumb},
    ).json()
    assert deleted["errcode"] == 0 and wechat.sandbox.state(wechat.appid)["thumbs"] == {}
    wechat.publish_and_wait()  # the connector's cached thumb id is stale: it uploads once more
    state = wechat.sandbox.state(wechat.appid)
    assert len(state["publications"]) == 2 and len(state["thumbs"]) == 1
    assert wechat.calls()["/cgi-bin/material/add_material"] == 2


@pytest.mark.parametrize("as_number", [False, True])
def test_publish_id_as_number_or_string(
    wechat: WechatHarness, wechat_server: tuple[WechatSandbox, RunningServer], as_number: bool
) -> None:
    sandbox, _ = wechat_server
    sandbox.configure(publish_id_as_number=as_number)
    try:
        ref, published = wechat.publish_and_wait()
    finally:
        sandbox.configure(publish_id_as_number=False)
    assert parse_ref(ref)[0].isdigit()
    assert published.remote_id


def test_rejected_publication_is_reported_with_the_failing_article(wechat: WechatHarness) -> None:
    wechat.sandbox.queue_outcome(wechat.appid, 4, [1])
    connector, account = wechat.wechat, wechat.account()
    pending = connector.publish(account, connector.render(wechat.content()), idempotency_key="k")
    assert isinstance(pending, Pending)

    def rejected() -> Rejected | None:
        try:
            connector.poll(account, pending.ref)
        except Rejected as exc:
            return exc
        return None

    error = wait_for(rejected)
    assert error.code == "wechat.audit_rejected"
    assert "第1篇" in error.reason


def test_recent_pages_back_to_since(wechat: WechatHarness) -> None:
    made = [wechat.sandbox.add_publication(wechat.appid, title=f"直接发布{i}") for i in range(25)]
    connector, account = wechat.wechat, wechat.account()
    assert len(connector.recent(account)) == 20  # one page without since
    newer = connector.recent(account, since=made[2]["article_id"])
    assert [p.text for p in newer] == [f"直接发布{i}" for i in range(24, 2, -1)]
    long_ago = str(int((datetime.now(UTC) - timedelta(hours=1)).timestamp()))
    assert len(connector.recent(account, since=long_ago)) == 25


# -- tokens ----------------------------------------------------------------------------------


def test_expired_token_refreshes_once_and_replays_once(wechat: WechatHarness) -> None:
    wechat.sandbox.add_fault(
        Fault("/cgi-bin/draft/add", errcode=42001, count=1, appid=wechat.appid)
    )
    wechat.publish_and_wait()
    calls = wechat.calls()
    assert calls["/cgi-bin/stable_token"] == 3  # the first token; normal, then forced refresh
    assert calls["/cgi-bin/draft/add"] == 2  # the refused call, then one replay
    assert calls["/cgi-bin/freepublish/submit"] == 1


@pytest.mark.parametrize("code", [40001, 40014, 42001])
def test_token_refused_twice_is_auth_expired(wechat: WechatHarness, code: int) -> None:
    wechat.sandbox.add_fault(Fault("/cgi-bin/draft/add", errcode=code, count=2, appid=wechat.appid))
    connector = wechat.wechat
    with pytest.raises(AuthExpired):
        connector.publish(wechat.account(), connector.render(wechat.content()), idempotency_key="k")
    calls = wechat.calls()
    assert calls["/cgi-bin/stable_token"] == 3
    assert calls["/cgi-bin/draft/add"] == 2


def test_token_really_expired_on_the_platform_is_replaced(wechat: WechatHarness) -> None:
    connector, account = wechat.wechat, wechat.account()
    connector.recent(account)
    wechat.sandbox.expire_tokens(wechat.appid)
    connector.recent(account)
    assert wechat.calls()["/cgi-bin/stable_token"] == 2  # expired: normal mode gives a new one
    assert wechat.calls()["/cgi-bin/freepublish/batchget"] == 3


def test_token_is_fetched_once_for_two_connectors_sharing_a_sql_store(
    wechat: WechatHarness, tmp_path: Path
) -> None:
    engine = engine_for(f"sqlite:///{tmp_path / 'tokens.sqlite3'}")
    table = platform_tokens_table(MetaData())
    table.create(engine)
    web, worker = (wechat.connector(SqlTokenStore(engine, table=table)) for _ in range(2))
    account = wechat.account()
    web.recent(account)
    worker.recent(account)
    worker.publish(account, worker.render(wechat.content()), idempotency_key="k")
    assert wechat.calls()["/cgi-bin/stable_token"] == 1
    engine.dispose()


def test_wrong_app_secret_is_a_configuration_error(wechat: WechatHarness) -> None:
    with pytest.raises(Misconfigured, match="AppSecret") as caught:
        wechat.wechat.recent(wechat.account(app_secret="wrong-secret"))
    assert "wrong-secret" not in str(caught.value)
    assert "wrong-secret" not in (caught.value.platform_message or "")


# -- errors that must not be retried ---------------------------------------------------------


def test_ip_whitelist_error_is_not_retried_and_names_the_ip(
    wechat_server: tuple[WechatSandbox, RunningServer], wechat: WechatHarness
) -> None:
    sandbox, _ = wechat_server
    sandbox.add_app(wechat.appid, wechat.secret, ip_whitelist={"203.0.113.1"})
    with pytest.raises(Misconfigured) as caught:
        wechat.wechat.recent(wechat.account())
    assert "127.0.0.1" in caught.value.message
    assert wechat.calls() == {"/cgi-bin/stable_token": 1}


def test_ip_whitelist_error_on_an_api_call_is_not_retried(wechat: WechatHarness) -> None:
    wechat.sandbox.add_fault(
        Fault(
            "/cgi-bin/draft/add",
            errcode=40164,
            errmsg="invalid ip 198.51.100.7 ipv6 ::ffff:198.51.100.7, not in whitelist",
            count=5,
            appid=wechat.appid,
        )
    )
    connector = wechat.wechat
    with pytest.raises(AccountBlocked, match=r"198\.51\.100\.7"):
        connector.publish(wechat.account(), connector.render(wechat.content()), idempotency_key="k")
    assert wechat.calls()["/cgi-bin/draft/add"] == 1


def test_daily_quota_is_not_retried(wechat: WechatHarness) -> None:
    wechat.sandbox.add_fault(
        Fault("/cgi-bin/freepublish/submit", errcode=45009, count=5, appid=wechat.appid)
    )
    connector = wechat.wechat
    with pytest.raises(QuotaExhausted) as caught:
        connector.publish(wechat.account(), connector.render(wechat.content()), idempotency_key="k")
    assert caught.value.until == next_midnight(datetime.now(UTC))
    assert wechat.calls()["/cgi-bin/freepublish/submit"] == 1


def test_system_busy_is_transient(wechat: WechatHarness) -> None:
    wechat.sandbox.add_fault(Fault("/cgi-bin/freepublish/batchget", errcode=-1, appid=wechat.appid))
    with pytest.raises(Transient):
        wechat.wechat.recent(wechat.account())
    assert wechat.wechat.recent(wechat.account()) == []


def test_limits_are_enforced_before_anything_is_sent(wechat: WechatHarness) -> None:
    connector = wechat.wechat
    rendition = connector.render(wechat.content(title="标" * 33))
    with pytest.raises(Rejected, match="微信标题超过32字"):
        connector.publish(wechat.account(), rendition, idempotency_key="k")
    assert wechat.calls() == {}


# -- lost answers ----------------------------------------------------------------------------


def test_lost_submit_answer_is_unconfirmed_and_reconcilable(wechat: WechatHarness) -> None:
    wechat.sandbox.add_fault(
        Fault("/cgi-bin/freepublish/submit", mode="drop", count=1, appid=wechat.appid)
    )
    connector, account = wechat.wechat, wechat.account()
    with pytest.raises(SubmitUnconfirmed) as caught:
        connector.publish(account, connector.render(wechat.content()), idempotency_key="k")
    assert isinstance(caught.value, Unconfirmed)
    # The platform did take it: the draft left the draft box and the article appears.
    assert not connector.draft_exists(account, caught.value.draft_media_id)
    wait_for(lambda: connector.recent(account))
    assert len(wechat.sandbox.state(wechat.appid)["publications"]) == 1


def test_dropped_submit_before_processing_leaves_the_draft_to_resubmit(
    wechat: WechatHarness,
) -> None:
    wechat.sandbox.add_fault(
        Fault("/cgi-bin/freepublish/submit", errcode=-1, count=1, appid=wechat.appid)
    )
    connector, account = wechat.wechat, wechat.account()
    with pytest.raises(Transient):
        connector.publish(account, connector.render(wechat.content()), idempotency_key="k")
    [draft] = wechat.sandbox.state(wechat.appid)["drafts"]
    assert connector.draft_exists(account, draft["media_id"])
    pending = connector.submit_draft(account, draft["media_id"])
    wait_for(lambda: isinstance(connector.poll(account, pending.ref), Published))


def test_lost_withdraw_answer_is_unconfirmed(wechat: WechatHarness) -> None:
    _, published = wechat.publish_and_wait()
    wechat.sandbox.add_fault(
        Fault("/cgi-bin/freepublish/delete", mode="drop", count=1, appid=wechat.appid)
    )
    with pytest.raises(Unconfirmed):
        wechat.wechat.withdraw(wechat.account(), published.remote_id)
    assert wechat.wechat.recent(wechat.account()) == []


def test_lost_read_answer_is_transient(wechat: WechatHarness) -> None:
    wechat.sandbox.add_fault(
        Fault("/cgi-bin/freepublish/batchget", mode="drop", count=1, appid=wechat.appid)
    )
    with pytest.raises(Transient):
        wechat.wechat.recent(wechat.account())


def test_connection_refused_is_transient(wechat: WechatHarness) -> None:
    from connectors.sandbox.server import free_port

    connector = wechat.connector()
    connector._api_base = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(Transient):
        connector.recent(wechat.account())


# -- images and content ----------------------------------------------------------------------


def test_big_png_cover_becomes_an_accepted_jpeg_thumb(wechat: WechatHarness) -> None:
    png = noisy_png(330, 330)
    assert len(png) >= 300 * 1024
    content = wechat.content(images=(wechat.cover(png, "cover.png"),))
    wechat.publish_and_wait(content)
    [size] = wechat.sandbox.state(wechat.appid)["thumbs"].values()
    assert size <= 64 * 1024
    assert wechat.calls()["/cgi-bin/material/add_material"] == 1


def test_png_thumb_is_refused_by_the_sandbox(wechat: WechatHarness) -> None:
    """The sandbox enforces the platform's JPG-only rule (the connector never sends a PNG)."""
    token = wechat.client.get(
        f"{wechat.base_url}/cgi-bin/token",
        params={"grant_type": "client_credential", "appid": wechat.appid, "secret": wechat.secret},
    ).json()["access_token"]
    answer = wechat.client.post(
        f"{wechat.base_url}/cgi-bin/material/add_material",
        params={"access_token": token, "type": "thumb"},
        files={"media": ("c.png", noisy_png(8, 8), "image/png")},
    ).json()
    assert answer["errcode"] == 40005


def test_outside_images_are_uploaded_and_rewritten(
    wechat: WechatHarness, recorder_server: tuple[Recorder, RunningServer]
) -> None:
    recorder, server = recorder_server
    recorder.files["/photos/flood.png"] = noisy_png(60, 40, seed=3)
    outside = f"{server.base_url}/photos/flood.png"
    local = wechat.cover(name="local.jpg")
    body = f"现场图片：\n\n![洪水]({outside})\n\n![本地]({local.url})\n\n再次：![洪水]({outside})"
    wechat.publish_and_wait(wechat.content(body=body, images=(wechat.cover(), local)))

    [publication] = wechat.sandbox.state(wechat.appid)["publications"]
    sources = [
        a.get("src") or "" for t, a in tags(publication["received"][0]["content"]) if t == "img"
    ]
    # outside, local, outside again, then the cover (a post image the body does not show)
    assert len(sources) == 4
    assert all(src.startswith("http://mmbiz.qpic.cn/") for src in sources)
    assert sources[0] == sources[2]
    # the local image and the cover are the same picture: uploaded once, one URL
    assert sources[1] == sources[3]
    assert len(set(sources)) == 2
    assert len(recorder.hits("/photos/flood.png")) == 1  # fetched once, uploaded once
    assert wechat.calls()["/cgi-bin/media/uploadimg"] == 2
    assert len(wechat.sandbox.state(wechat.appid)["images"]) == 2


def test_scripts_and_handlers_never_reach_the_platform(wechat: WechatHarness) -> None:
    body = (
        "正文<script>alert(1)</script>\n\n<img src=x onerror=alert(1)>\n\n"
        "<a href='http://x' onclick='steal()'>链接</a> [点](javascript:alert(1))"
    )
    wechat.publish_and_wait(wechat.content(body=body))
    [content] = wechat.sandbox.received_contents(wechat.appid)
    assert "<script" not in content.lower()
    found = tags(content)
    assert all(tag != "script" for tag, _ in found)
    assert all(not name.startswith("on") for _, attrs in found for name in attrs)
    assert all("javascript:" not in (v or "") for _, attrs in found for v in attrs.values())


def test_the_sandbox_refuses_unicode_escaped_json(wechat: WechatHarness) -> None:
    token = wechat.client.get(
        f"{wechat.base_url}/cgi-bin/token",
        params={"grant_type": "client_credential", "appid": wechat.appid, "secret": wechat.secret},
    ).json()["access_token"]
    answer = wechat.client.post(
        f"{wechat.base_url}/cgi-bin/draft/add",
        params={"access_token": token},
        content=b'{"articles": [{"title": "\\u6807\\u9898", "content": "x"}]}',
    ).json()
    assert answer["errcode"] == 47001


# -- callback --------------------------------------------------------------------------------


def test_callback_is_signed_and_agrees_with_poll(
    wechat: WechatHarness, recorder_server: tuple[Recorder, RunningServer]
) -> None:
    recorder, server = recorder_server
    path = f"/callbacks/wechat/{wechat.appid}"
    wechat.sandbox.set_callback(wechat.appid, server.base_url + path, "callback-token")
    ref, published = wechat.publish_and_wait()
    assert wechat.sandbox.wait_for_callbacks(wechat.appid, 1)

    [hit] = recorder.hits(path)
    query = hit["query"]
    assert check_signature("callback-token", query["timestamp"], query["nonce"], query["signature"])
    assert not check_signature(
        "other-token", query["timestamp"], query["nonce"], query["signature"]
    )
    event = parse_publish_event(hit["body"])
    assert event.publish_id == parse_ref(ref)[0]
    assert event.outcome(ref) == published
    assert event.to_user == f"gh_{wechat.appid}"


# -- mass send -------------------------------------------------------------------------------


def _draft(wechat: WechatHarness) -> str:
    connector, account = wechat.wechat, wechat.account()
    connector.publish(account, connector.render(wechat.content()), idempotency_key="k")
    return str(wechat.sandbox.state(wechat.appid)["publications"][0]["media_id"])


def test_mass_send_is_deduplicated_by_clientmsgid(wechat: WechatHarness) -> None:
    media_id = _draft(wechat)
    connector, account = wechat.wechat, wechat.account()
    first = connector.mass_send(account, media_id, "post-1-v1")
    assert first
    assert connector.mass_send(account, media_id, "post-1-v1") == first  # 45065: already sent
    with pytest.raises(Rejected) as caught:  # a subscription account: once a day
        connector.mass_send(account, media_id, "post-2-v1")
    assert caught.value.code == "45028"


def test_mass_send_retry_too_fast_is_transient(wechat: WechatHarness) -> None:
    media_id = _draft(wechat)
    wechat.sandbox.add_fault(
        Fault("/cgi-bin/message/mass/sendall", errcode=45066, appid=wechat.appid)
    )
    with pytest.raises(Transient):
        wechat.wechat.mass_send(wechat.account(), media_id, "post-1-v1")


# -- secrets ---------------------------------------------------------------------------------


def test_secrets_stay_out_of_repr_and_logs(
    wechat: WechatHarness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    account = wechat.account()
    wechat.publish_and_wait()
    cached = wechat.token_store.get(f"wechat:{wechat.appid}")
    assert cached is not None
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "access_token=***" in logged  # httpx logged the calls, redacted
    for secret in (wechat.secret, cached.token):
        assert secret not in logged
        assert secret not in repr(account)
        assert secret not in repr(wechat.wechat)
        assert secret not in repr(cached)
        assert secret not in repr(wechat.token_store)


# -- the sandbox's HTTP control plane --------------------------------------------------------


@pytest.fixture
def control(wechat: WechatHarness) -> Iterator[httpx.Client]:
    yield wechat.client


def test_faults_and_state_over_http(wechat: WechatHarness, control: httpx.Client) -> None:
    base = wechat.base_url
    fault = {"endpoint": "/cgi-bin/freepublish/batchget", "errcode": 45011, "appid": wechat.appid}
    assert control.post(f"{base}/_sandbox/faults", json=fault).json() == {"ok": True}
    made = control.post(
        f"{base}/_sandbox/apps/{wechat.appid}/publications", json={"title": "平台上直接发布"}
    ).json()
    from connectors.errors import RateLimited

    with pytest.raises(RateLimited):
        wechat.wechat.recent(wechat.account())
    [post] = wechat.wechat.recent(wechat.account())
    assert post.remote_id == made["article_id"]
    state = control.get(f"{base}/_sandbox/apps/{wechat.appid}").json()
    assert [p["article_id"] for p in state["publications"]] == [made["article_id"]]
    calls = control.get(f"{base}/_sandbox/calls", params={"appid": wechat.appid}).json()
    assert calls["/cgi-bin/freepublish/batchget"] == 2
