"""Explicit table platform -> connector class, and a factory that wires one from settings.

No filename scanning: a new platform is one import and one line here (and one harness module in
``tests/contract``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx

from connectors.base import Connector
from connectors.hall import HallConnector, HallStore
from connectors.webhook import WebhookConnector
from connectors.wechat import WechatConnector
from connectors.weibo import WeiboConnector

if TYPE_CHECKING:
    from connectors.tokens import TokenStore
    from hub.config import Settings

CONNECTORS: dict[str, type[Connector]] = {
    "weibo": WeiboConnector,
    "hall": HallConnector,
    "webhook": WebhookConnector,
    "wechat": WechatConnector,
}


def build_connector(
    platform: str,
    *,
    client: httpx.Client,
    settings: Settings,
    hall_store: HallStore | None = None,
    token_store: TokenStore | None = None,
) -> Connector:
    """A ready connector for ``platform`` with base URLs and app credentials from ``settings``.

    ``hall_store`` is required for ``hall``; ``token_store`` is for WeChat (shared access token).
    """
    if platform == "weibo":
        return WeiboConnector(
            client,
            api_base=settings.weibo_api_base,
            public_base_url=settings.public_base_url,
            app_key=settings.weibo_app_key,
            app_secret=settings.weibo_app_secret,
        )
    if platform == "hall":
        if hall_store is None:
            raise ValueError("the hall connector needs a hall_store")
        return HallConnector(hall_store, public_base_url=settings.public_base_url)
    if platform == "wechat":
        if token_store is None:
            raise ValueError("the WeChat connector needs a token_store (shared access tokens)")
        return WechatConnector(
            client,
            api_base=settings.wechat_api_base,
            public_base_url=settings.public_base_url,
            token_store=token_store,
        )
    if platform == "webhook":
        return WebhookConnector(client, allow_private=settings.webhook_allow_private)
    raise KeyError(f"unknown platform {platform!r}; known: {sorted(CONNECTORS)}")
