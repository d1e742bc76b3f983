"""All simulators in one ASGI app, for ``govhub sandbox`` and demos.

Mounts (each simulator sees paths relative to its mount point)::

    /weibo     WeiboSandbox    -> GOVHUB_WEIBO_API_BASE=http://HOST:PORT/weibo
    /wechat    WechatSandbox   -> GOVHUB_WECHAT_API_BASE=http://HOST:PORT/wechat
    /partner   PartnerSandbox  -> partner webhook URLs http://HOST:PORT/partner/hooks/<name>

Run standalone with ``govhub sandbox`` or ``python -m connectors.sandbox.app [--host H] [--port P]``.
"""

from __future__ import annotations

import argparse
import threading
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from connectors.sandbox.partner import PartnerSandbox
from connectors.sandbox.server import RunningServer, serve
from connectors.sandbox.wechat import WechatSandbox
from connectors.sandbox.weibo import WeiboSandbox, WeiboSandboxConfig


@dataclass
class Sandboxes:
    """The combined app and the simulators inside it (tests reach their Python helpers)."""

    app: Starlette
    weibo: WeiboSandbox
    partner: PartnerSandbox
    wechat: WechatSandbox

    def close(self) -> None:
        self.wechat.close()  # pending publication timers


def build_sandboxes(
    *, public_base_url: str = "http://127.0.0.1:8000", wechat_publish_delay: float = 1.0
) -> Sandboxes:
    """One app with every simulator; Weibo's safe domain is the host of ``public_base_url``.

    ``wechat_publish_delay``: how long a WeChat publication stays "publishing" before it ends and
    the PUBLISHJOBFINISH callback goes out.
    """
    host = urlsplit(public_base_url).hostname or "127.0.0.1"
    # readers' counts grow on their own, so reach shows figures in a demo
    weibo = WeiboSandbox(WeiboSandboxConfig(safe_domains=(host,), counts_per_hour=6.0))
    partner = PartnerSandbox()
    wechat = WechatSandbox(publish_delay=wechat_publish_delay, reads_per_day=120)

    async def index(request: Request) -> JSONResponse:
        return JSONResponse({"sandboxes": ["weibo", "wechat", "partner"]})

    app = Starlette(
        routes=[
            Route("/", index),
            Mount("/weibo", app=weibo),
            Mount("/wechat", app=wechat),
            Mount("/partner", app=partner),
        ]
    )
    return Sandboxes(app=app, weibo=weibo, partner=partner, wechat=wechat)


def start_sandboxes(
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    public_base_url: str = "http://127.0.0.1:8000",
    wechat_publish_delay: float = 1.0,
) -> tuple[Sandboxes, RunningServer]:
    """Build every simulator and serve them on ``host:port`` in a background thread."""
    sandboxes = build_sandboxes(
        public_base_url=public_base_url, wechat_publish_delay=wechat_publish_delay
    )
    return sandboxes, serve(sandboxes.app, host=host, port=port)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run govhub's platform simulators.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument("--public-base-url", default="http://127.0.0.1:8000")
    args = parser.parse_args(argv)
    sandboxes, server = start_sandboxes(
        host=args.host, port=args.port, public_base_url=args.public_base_url
    )
    print(f"sandboxes at {server.base_url}: /weibo /wechat /partner  (Ctrl+C stops)")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        sandboxes.close()
        server.stop()


if __name__ == "__main__":
    main()
