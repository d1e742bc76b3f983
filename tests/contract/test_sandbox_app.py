"""The combined simulator app (``govhub sandbox``): every simulator under its mount point."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from connectors.base import Account, Image, Pending, Published
from connectors.sandbox.app import start_sandboxes
from connectors.sandbox.server import serve
from connectors.tokens import MemoryTokenStore
from connectors.webhook import WebhookConnector
from connectors.wechat import WechatConnector, check_signature, parse_publish_event
from connectors.weibo import WeiboConnector
from tests.contract.harness import sample_content
from tests.contract.harness_wechat import jpeg

pytestmark = pytest.mark.contract


def test_weibo_and_partner_work_under_their_mounts() -> None:
    sandboxes, server = start_sandboxes(public_base_url="http://hall.test")
    try:
        with httpx.Client() as client:
            weibo = WeiboConnector(
                client, api_base=f"{server.base_url}/weibo", public_base_url="http://hall.test"
            )
            token, uid = sandboxes.weibo.mint_token()
            account = Account(
                1, "weibo", uid, credentials={"access_token": token}, extra={"rip": "203.0.113.7"}
            )
            outcome = weibo.publish(
                account, weibo.render(sample_content("http://hall.test")), idempotency_key="k"
            )
            assert isinstance(outcome, Published)
            assert [str(p.id) for p in sandboxes.weibo.posts(uid)] == [outcome.remote_id]

            sandboxes.partner.set_secret("news", "s3cret")
            hook = WebhookConnector(client, allow_private=True)
            partner = Account(
                2,
                "webhook",
                f"{server.base_url}/partner/hooks/news",
                credentials={"secret": "s3cret"},
            )
            hook.publish(
                partner, hook.render(sample_content("http://hall.test")), idempotency_key="d1"
            )
            assert list(sandboxes.partner.entries("news")) == ["d1"]
            assert sandboxes.partner.received()[0].verified
    finally:
        server.stop()


def test_wechat_works_under_its_mount_and_calls_back_over_http(tmp_path: Path) -> None:
    """Apps and callbacks registered over the control API, as ``govhub demo`` does."""
    events: list[bytes] = []
    arrived = threading.Event()

    async def receive(request: Request) -> PlainTextResponse:
        query = request.query_params
        assert check_signature("cb-token", query["timestamp"], query["nonce"], query["signature"])
        events.append(await request.body())
        arrived.set()
        return PlainTextResponse("success")

    hub = serve(Starlette(routes=[Route("/callbacks/wechat/7", receive, methods=["POST"])]))
    sandboxes, server = start_sandboxes(wechat_publish_delay=0.0)
    try:
        with httpx.Client(base_url=f"{server.base_url}/wechat/_sandbox") as control:
            control.post("/apps", json={"appid": "wxdemo1", "secret": "s3"}).raise_for_status()
            callback = {"url": f"{hub.base_url}/callbacks/wechat/7", "token": "cb-token"}
            control.post("/apps/wxdemo1/callback", json=callback).raise_for_status()
        (tmp_path / "cover.jpg").write_bytes(jpeg())
        cover = Image(path=str(tmp_path / "cover.jpg"), url="http://hall.test/media/cover.jpg")
        content = dataclasses.replace(sample_content("http://hall.test"), images=(cover,))
        with httpx.Client() as client:
            wechat = WechatConnector(
                client,
                api_base=f"{server.base_url}/wechat",
                public_base_url="http://hall.test",
                token_store=MemoryTokenStore(),
            )
            account = Account(
                7, "wechat", "gh_wxdemo1", credentials={"app_id": "wxdemo1", "app_secret": "s3"}
            )
            outcome = wechat.publish(account, wechat.render(content), idempotency_key="k")
            assert isinstance(outcome, Pending)
            assert arrived.wait(10)
            event = parse_publish_event(events[0])
            assert event.publish_id == outcome.ref.partition(":")[0]
            assert event.publish_status == 0
            assert [p.remote_id for p in wechat.recent(account)] == [event.article_id]
    finally:
        sandboxes.close()
        server.stop()
        hub.stop()
