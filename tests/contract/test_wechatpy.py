"""A third party checks our WeChat wire format: wechatpy (2.0.0a26), a widely used SDK.

- wechatpy's client drives the sandbox over real HTTP (its ``API_BASE_URL`` pointed at it): the
  sandbox must understand what a real SDK sends and answer what it expects;
- the JSON bodies govhub sends for ``draft/add`` and ``message/mass/sendall`` are compared with
  wechatpy's for the same article: keys, nesting, types and raw UTF-8 (no ``\\uXXXX``);
- wechatpy's ``WeChatCrypto`` opens what the sandbox sends in safe and compatible mode (and
  encrypts a callback the hub's endpoint must open: ``tests/integration/test_wechat_safe_mode.py``).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from wechatpy import WeChatClient
from wechatpy.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidSignatureException, WeChatClientException

from connectors.base import Published
from connectors.sandbox.server import RunningServer
from connectors.wechat_crypto import decrypt
from tests.contract.harness_wechat import (
    Recorder,
    WechatHarness,
    jpeg,
    recorder_server,
    wait_for,
    wechat,
    wechat_server,
)

__all__ = ["recorder_server", "wechat", "wechat_server"]  # fixtures used by this module

pytestmark = pytest.mark.contract

AES_KEY = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"
TOKEN = "wechatpy-token"


class SandboxClient(WeChatClient):  # type: ignore[misc]
    """wechatpy's client with every URL on the sandbox: ``API_BASE_URL`` for the API calls; its
    token call has the platform's URL written in, so that one is overridden too."""

    def __init__(self, base_url: str, appid: str, secret: str) -> None:
        super().__init__(appid, secret, timeout=5)
        self.API_BASE_URL = f"{base_url}/cgi-bin/"
        self._token_url = f"{base_url}/cgi-bin/token"
        self.sent: list[Any] = []  # every request as it went out (requests.PreparedRequest)
        self._http.hooks["response"].append(
            lambda response, *a, **kw: self.sent.append(response.request)
        )

    def fetch_access_token(self) -> Any:
        params = {"grant_type": "client_credential", "appid": self.appid, "secret": self.secret}
        return self._fetch_access_token(url=self._token_url, params=params)

    def body_of(self, endpoint: str) -> bytes:
        [request] = [r for r in self.sent if r.path_url.split("?")[0].endswith(endpoint)]
        body: bytes = request.body
        return body


@pytest.fixture
def sdk(wechat: WechatHarness) -> SandboxClient:
    return SandboxClient(wechat.base_url, wechat.appid, wechat.secret)


@pytest.fixture
def wire(wechat: WechatHarness) -> Iterator[tuple[WechatHarness, list[httpx.Request]]]:
    """The harness with a connector whose every request is recorded as it went out."""
    sent: list[httpx.Request] = []

    def record(request: httpx.Request) -> None:
        if request.headers.get("content-type", "").startswith("application/json"):
            request.read()
            sent.append(request)

    with httpx.Client(timeout=5.0, event_hooks={"request": [record]}) as client:
        wechat.client = client
        wechat._connector = wechat.connector()
        yield wechat, sent


def _body(sent: list[httpx.Request], endpoint: str) -> bytes:
    [request] = [r for r in sent if r.url.path == endpoint]
    return request.content


# -- wechatpy drives the sandbox -----------------------------------------------------------------


def test_wechatpy_publishes_through_the_sandbox(wechat: WechatHarness, sdk: SandboxClient) -> None:
    thumb = sdk.material.add("thumb", ("cover.jpg", io.BytesIO(jpeg()), "image/jpeg"))
    draft = sdk.draft.add(
        [
            {
                "title": "关于做好防汛工作的通知",
                "author": "新闻办",
                "content": "<p>请做好<strong>防汛</strong>准备。</p>",
                "thumb_media_id": thumb["media_id"],
            }
        ]
    )
    submitted = sdk.freepublish.submit(draft["media_id"])
    status = wait_for(
        lambda: (s := sdk.freepublish.get(submitted["publish_id"]))["publish_status"] == 0 and s
    )
    [url] = [item["article_url"] for item in status["article_detail"]["item"]]
    listed = sdk.freepublish.batchget(0, 20, no_content=True)
    assert [item["article_id"] for item in listed["item"]] == [status["article_id"]]
    assert listed["item"][0]["content"]["news_item"][0]["url"] == url
    [received] = wechat.sandbox.state(wechat.appid)["publications"][0]["received"]
    assert received["title"] == "关于做好防汛工作的通知"


def test_wechatpy_refreshes_a_refused_token_like_we_do(
    wechat: WechatHarness, sdk: SandboxClient
) -> None:
    sdk.freepublish.batchget(0, 1)
    wechat.sandbox.expire_tokens(wechat.appid)
    assert sdk.freepublish.batchget(0, 1)["total_count"] == 0  # 42001 -> new token -> replay
    assert wechat.calls()["/cgi-bin/freepublish/batchget"] == 3


# -- our bodies against wechatpy's ---------------------------------------------------------------


def test_draft_add_body_is_byte_for_byte_what_wechatpy_sends(
    wire: tuple[WechatHarness, list[httpx.Request]], sdk: SandboxClient
) -> None:
    h, sent = wire
    connector, account = h.wechat, h.account()
    rendition = connector.render(h.content(title="关于做好防汛工作的通知", summary="防汛“提示”"))
    connector.publish(account, rendition, idempotency_key="k")
    ours_raw = _body(sent, "/cgi-bin/draft/add")
    [ours] = json.loads(ours_raw)["articles"]

    sdk.draft.add([dict(ours)])  # the same article, through wechatpy
    theirs_raw = sdk.body_of("draft/add")

    assert json.loads(ours_raw) == json.loads(theirs_raw)  # keys, nesting, types, values
    assert ours_raw == theirs_raw  # and the very bytes: order, separators, raw UTF-8
    assert "关于做好防汛工作的通知".encode() in ours_raw
    assert b"\\u" not in ours_raw
    assert isinstance(ours["need_open_comment"], int)
    assert not isinstance(ours["need_open_comment"], bool)


def test_mass_send_body_matches_wechatpys_send_mass_article(
    wire: tuple[WechatHarness, list[httpx.Request]], sdk: SandboxClient
) -> None:
    h, sent = wire
    connector, account = h.wechat, h.account()
    connector.publish(account, connector.render(h.content()), idempotency_key="k")
    media_id = str(h.sandbox.state(h.appid)["publications"][0]["media_id"])
    msg_id = connector.mass_send(account, media_id, "post-1-v1")
    ours = json.loads(_body(sent, "/cgi-bin/message/mass/sendall"))

    with pytest.raises(WeChatClientException) as again:
        sdk.message.send_mass_article(media_id, is_to_all=True, client_msg_id="post-1-v1")
    assert again.value.errcode == 45065  # the sandbox took both for the same send
    assert msg_id
    theirs = json.loads(sdk.body_of("message/mass/sendall"))

    # wechatpy also sends "tag_id": null; the documentation says to leave tag_id out when
    # is_to_all is true, which is what we do. Everything else is identical.
    assert theirs["filter"].pop("tag_id") is None
    assert ours == theirs


# -- callbacks: wechatpy's crypto against ours ---------------------------------------------------


def test_wechatpy_opens_what_the_sandbox_sends_in_safe_mode(
    wechat: WechatHarness, recorder_server: tuple[Recorder, RunningServer]
) -> None:
    recorder, server = recorder_server
    path = f"/safe/{wechat.appid}"
    wechat.sandbox.set_callback(
        wechat.appid, server.base_url + path, TOKEN, mode="safe", encoding_aes_key=AES_KEY
    )
    wechat.sandbox.send_user_message(wechat.appid, "oSafe", "安全模式下的留言")
    [hit] = recorder.hits(path)
    query = hit["query"]
    assert query["encrypt_type"] == "aes"
    body = hit["body"].decode()
    assert "安全模式" not in body and "oSafe" not in body  # nothing readable on the wire
    crypto = WeChatCrypto(TOKEN, AES_KEY, wechat.appid)
    opened = crypto.decrypt_message(
        body, query["msg_signature"], query["timestamp"], query["nonce"]
    )
    fields = _xml_fields(opened)
    assert (fields["FromUserName"], fields["Content"]) == ("oSafe", "安全模式下的留言")
    with pytest.raises(InvalidSignatureException):
        WeChatCrypto("other-token", AES_KEY, wechat.appid).decrypt_message(
            body, query["msg_signature"], query["timestamp"], query["nonce"]
        )
    # and our own decrypt agrees with wechatpy's
    assert decrypt(_xml_fields(body)["Encrypt"], encoding_aes_key=AES_KEY) == (
        opened.encode(),
        wechat.appid,
    )


def test_a_published_article_event_in_safe_mode_reads_the_same_through_wechatpy(
    wechat: WechatHarness, recorder_server: tuple[Recorder, RunningServer]
) -> None:
    recorder, server = recorder_server
    path = f"/safe-event/{wechat.appid}"
    wechat.sandbox.set_callback(
        wechat.appid, server.base_url + path, TOKEN, mode="compatible", encoding_aes_key=AES_KEY
    )
    ref, published = wechat.publish_and_wait()
    assert isinstance(published, Published)
    assert wechat.sandbox.wait_for_callbacks(wechat.appid, 1)
    [hit] = recorder.hits(path)
    query = hit["query"]
    crypto = WeChatCrypto(TOKEN, AES_KEY, wechat.appid)
    opened = crypto.decrypt_message(
        hit["body"].decode(), query["msg_signature"], query["timestamp"], query["nonce"]
    )
    assert f"<publish_id>{ref.partition(':')[0]}</publish_id>" in opened
    assert "<publish_id>" in hit["body"].decode()  # compatible mode: the plaintext is there too


def _xml_fields(xml: str) -> dict[str, str]:
    import xmltodict

    fields: dict[str, str] = xmltodict.parse(xml)["xml"]
    return fields
