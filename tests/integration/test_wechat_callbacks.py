"""WeChat's callback routes: the echo handshake and PUBLISHJOBFINISH completing deliveries.

The sandbox itself POSTs the signed event to the hub served on loopback; hostile and replayed
events are sent by the test through the same route.
"""

from __future__ import annotations

import io
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from PIL import Image as PILImage
from sqlmodel import Session, select

from connectors.base import Account, Content, Image, Pending
from connectors.sandbox.server import RunningServer, serve
from connectors.sandbox.wechat import WechatSandbox, publish_event_xml
from connectors.tokens import MemoryTokenStore
from connectors.wechat import WechatConnector, sign
from hub.accounts.models import AccountCreate, Platform
from hub.accounts.service import create as create_account
from hub.db import engine_for
from hub.delivery.models import Attempt, Delivery, DeliveryStatus
from hub.posts.models import Post, PostStatus, PostVersion
from hub.users.models import User
from hub.web.app import create_app
from tests.factories import credentials_key

CALLBACK_TOKEN = "cb-token-7f3a"


@dataclass
class Wechat:
    sandbox: WechatSandbox
    server: RunningServer
    hub: RunningServer
    database_url: str
    account_id: int
    appid: str
    secret: str
    connector: WechatConnector

    def connector_account(self) -> Account:
        credentials = {"app_id": self.appid, "app_secret": self.secret}
        return Account(id=self.account_id, platform="wechat", handle="", credentials=credentials)

    def callback_url(self, account_id: int | None = None) -> str:
        return f"/callbacks/wechat/{account_id or self.account_id}"


def _account(database_url: str, platform: Platform, credentials: dict[str, str] | None) -> int:
    with Session(engine_for(database_url)) as session:
        account = create_account(
            session=session,
            data=AccountCreate(
                org_code="522601",
                platform=platform,
                name=f"凯里发布（{platform.value}）",
                credentials=credentials,
            ),
            credentials_key=credentials_key(),
        )
        session.commit()
        assert account.id is not None
        return account.id


@pytest.fixture
def wechat(guizhou: dict[str, str], tmp_path: Path) -> Iterator[Wechat]:
    url = guizhou["GOVHUB_DATABASE_URL"]
    sandbox = WechatSandbox(publish_delay=1.0)
    server = serve(sandbox)
    hub = serve(create_app())
    appid, secret = f"wx{secrets.token_hex(8)}", secrets.token_hex(16)
    sandbox.add_app(appid, secret)
    credentials = {"app_id": appid, "app_secret": secret, "callback_token": CALLBACK_TOKEN}
    account_id = _account(url, Platform("wechat"), credentials)
    client = httpx.Client(timeout=10)
    connector = WechatConnector(
        client,
        api_base=server.base_url,
        public_base_url="http://hall.test",
        token_store=MemoryTokenStore(),
    )
    try:
        yield Wechat(sandbox, server, hub, url, account_id, appid, secret, connector)
    finally:
        client.close()
        hub.stop()
        sandbox.close()
        server.stop()


def _pending_delivery(wechat: Wechat, ref: str) -> int:
    """A post being published to the account, its delivery waiting for the platform's answer."""
    with Session(engine_for(wechat.database_url)) as session:
        author = session.exec(select(User).where(User.username == "kaili-editor")).one()
        post = Post(
            org_id=author.org_id,
            author_id=author.id,  # type: ignore[arg-type]
            title="关于做好防汛工作的通知",
            status=PostStatus.publishing,
            approved_version=1,
        )
        session.add(post)
        session.flush()
        session.add(
            PostVersion(
                post_id=post.id,  # type: ignore[arg-type]
                version=1,
                title=post.title,
                body="请做好防汛准备。",
                content_hash="0" * 64,
                author_id=author.id,  # type: ignore[arg-type]
            )
        )
        delivery = Delivery(
            post_id=post.id,  # type: ignore[arg-type]
            version=1,
            account_id=wechat.account_id,
            status=DeliveryStatus.pending,
            pending_ref=ref,
        )
        session.add(delivery)
        session.commit()
        assert delivery.id is not None
        return delivery.id


def _delivery(wechat: Wechat, delivery_id: int) -> tuple[Delivery, list[Attempt]]:
    with Session(engine_for(wechat.database_url)) as session:
        delivery = session.get(Delivery, delivery_id)
        assert delivery is not None
        attempts = session.exec(select(Attempt).where(Attempt.delivery_id == delivery_id)).all()
        return delivery, list(attempts)


def _content(tmp_path: Path) -> Content:
    buffer = io.BytesIO()
    PILImage.new("RGB", (64, 48), (20, 90, 160)).save(buffer, "JPEG")
    (tmp_path / "cover.jpg").write_bytes(buffer.getvalue())
    cover = Image(path=str(tmp_path / "cover.jpg"), url="http://hall.test/media/cover.jpg")
    return Content(
        post_id=1,
        version=1,
        title="关于做好防汛工作的通知",
        body="请做好**防汛**准备。",
        images=(cover,),
        link="/posts/1",
    )


def _publish(wechat: Wechat, tmp_path: Path) -> tuple[int, str]:
    """Submit through the connector; the delivery row holds the ref before the job ends."""
    account = wechat.connector_account()
    outcome = wechat.connector.publish(
        account, wechat.connector.render(_content(tmp_path)), idempotency_key="k"
    )
    assert isinstance(outcome, Pending)
    delivery_id = _pending_delivery(wechat, outcome.ref)
    # Registered only now, while the job is still "publishing" (publish_delay): the event can
    # never overtake the row it completes.
    wechat.sandbox.set_callback(
        wechat.appid, wechat.hub.base_url + wechat.callback_url(), CALLBACK_TOKEN
    )
    return delivery_id, outcome.ref.partition(":")[0]


def _signed(token: str = CALLBACK_TOKEN) -> dict[str, str]:
    timestamp, nonce = str(int(time.time())), secrets.token_hex(4)
    return {"signature": sign(token, timestamp, nonce), "timestamp": timestamp, "nonce": nonce}


def _event(publish_id: str, status: int, article_id: str = "", url: str = "") -> bytes:
    return publish_event_xml(
        to_user="gh_test",
        publish_id=int(publish_id),
        status=status,
        article_id=article_id,
        urls=[url] if url else [],
        fail_idx=[1] if status in (2, 4) else [],
    )


# -- the handshake ----------------------------------------------------------------------------


def test_handshake_echoes_only_a_correctly_signed_request(
    wechat: Wechat, client: TestClient
) -> None:
    ok = client.get(wechat.callback_url(), params={**_signed(), "echostr": "4837291563"})
    assert ok.status_code == 200
    assert ok.text == "4837291563"
    assert ok.headers["content-type"].startswith("text/plain")

    forged = client.get(
        wechat.callback_url(), params={**_signed("wrong-token"), "echostr": "4837291563"}
    )
    assert forged.status_code == 403
    assert "4837291563" not in forged.text
    assert client.get(wechat.callback_url(), params={"echostr": "1"}).status_code == 403
    assert client.get(wechat.callback_url(999_999), params=_signed()).status_code == 404


def test_accounts_of_other_platforms_have_no_callback(wechat: Wechat, client: TestClient) -> None:
    hall_id = _account(wechat.database_url, Platform("hall"), None)
    assert client.get(wechat.callback_url(hall_id), params=_signed()).status_code == 404


# -- PUBLISHJOBFINISH ---------------------------------------------------------------------------


def test_the_platforms_event_publishes_the_delivery_and_agrees_with_polling(
    wechat: Wechat, client: TestClient, tmp_path: Path
) -> None:
    delivery_id, publish_id = _publish(wechat, tmp_path)
    assert wechat.sandbox.wait_for_callbacks(wechat.appid, 1)
    [sent] = wechat.sandbox.state(wechat.appid)["callbacks"]
    assert (sent["status_code"], sent["body"]) == (200, "success")

    delivery, attempts = _delivery(wechat, delivery_id)
    [publication] = wechat.sandbox.state(wechat.appid)["publications"]
    assert delivery.status is DeliveryStatus.published
    assert delivery.remote_id == publication["article_id"]
    assert delivery.remote_url == publication["urls"][0]
    assert [a.action for a in attempts] == ["callback"]
    polled = wechat.connector.poll(wechat.connector_account(), publish_id)
    assert (polled.remote_id, polled.remote_url) == (delivery.remote_id, delivery.remote_url)  # type: ignore[union-attr]

    # The platform repeats events; a late or contradictory one changes nothing.
    event = _event(publish_id, 0, publication["article_id"], publication["urls"][0])
    for body in (event, _event(publish_id, 3)):
        again = client.post(wechat.callback_url(), params=_signed(), content=body)
        assert (again.status_code, again.text) == (200, "success")
    delivery, attempts = _delivery(wechat, delivery_id)
    assert delivery.status is DeliveryStatus.published
    assert len(attempts) == 1


def test_a_failed_job_fails_the_delivery_with_the_reason_in_words(
    wechat: Wechat, tmp_path: Path
) -> None:
    wechat.sandbox.queue_outcome(wechat.appid, 4, [1])
    delivery_id, _ = _publish(wechat, tmp_path)
    assert wechat.sandbox.wait_for_callbacks(wechat.appid, 1)
    delivery, _ = _delivery(wechat, delivery_id)
    assert delivery.status is DeliveryStatus.failed
    assert "审核不通过" in delivery.error
    assert "第1篇" in delivery.error


def test_still_publishing_and_unknown_jobs_are_acknowledged_without_change(
    wechat: Wechat, client: TestClient
) -> None:
    delivery_id = _pending_delivery(wechat, "2247999001:media-1")
    for body in (_event("2247999001", 1), _event("2247999002", 0, "article-x", "http://x")):
        answer = client.post(wechat.callback_url(), params=_signed(), content=body)
        assert (answer.status_code, answer.text) == (200, "success")
    delivery, attempts = _delivery(wechat, delivery_id)
    assert delivery.status is DeliveryStatus.pending
    assert attempts == []


HOSTILE = {
    "entity expansion": b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa">'
    b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><xml><Event>&b;</Event></xml>',
    "external entity": b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
    b"<xml><Event>&e;</Event></xml>",
    "not xml": b"\xff\xfe{not xml at all",
    "another event": b"<xml><Event><![CDATA[subscribe]]></Event></xml>",
    "oversized": b"<xml><Event>PUBLISHJOBFINISH</Event>" + b"<pad>x</pad>" * 10_000 + b"</xml>",
}


@pytest.mark.parametrize("body", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_or_oversized_bodies_are_refused_with_400(
    wechat: Wechat, client: TestClient, body: bytes
) -> None:
    delivery_id = _pending_delivery(wechat, "2247999003:media-1")
    answer = client.post(wechat.callback_url(), params=_signed(), content=body)
    assert answer.status_code == 400
    assert "detail" in answer.json()
    assert _delivery(wechat, delivery_id)[0].status is DeliveryStatus.pending


def test_a_bad_signature_or_unknown_account_changes_nothing(
    wechat: Wechat, client: TestClient
) -> None:
    delivery_id = _pending_delivery(wechat, "2247999004:media-1")
    event = _event("2247999004", 0, "article-y", "http://mp.weixin.qq.com/s/y")
    assert client.post(wechat.callback_url(), content=event).status_code == 403
    forged = client.post(wechat.callback_url(), params=_signed("guess"), content=event)
    assert forged.status_code == 403
    assert (
        client.post(wechat.callback_url(999_999), params=_signed(), content=event).status_code
        == 404
    )
    assert _delivery(wechat, delivery_id)[0].status is DeliveryStatus.pending
