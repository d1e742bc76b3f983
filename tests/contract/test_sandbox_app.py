"""The combined simulator app (``govhub sandbox``): every simulator under its mount point."""

from __future__ import annotations

import httpx
import pytest

from connectors.base import Account, Published
from connectors.sandbox.app import start_sandboxes
from connectors.webhook import WebhookConnector
from connectors.weibo import WeiboConnector
from tests.contract.harness import sample_content

pytestmark = pytest.mark.contract


def test_weibo_and_partner_work_under_their_mounts() -> None:
    sandboxes, server = start_sandboxes(public_base_url="http://hall.test")
    try:
        with httpx.Client() as client:
            weibo = WeiboConnector(
                client, api_base=f"{server.base_url}/weibo", public_base_url="http://hall.test"
            )
            token, uid = sandboxes.weibo.mint_token()
            account = Account(1, "weibo", uid, credentials={"access_token": token})
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
