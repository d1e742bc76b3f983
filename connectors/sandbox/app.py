"""All simulators in one ASGI app, for ``govhub sandbox`` and demos.

Mounts (each simulator sees paths relative to its mount point)::

    /weibo     WeiboSandbox    -> GOVHUB_WEIBO_API_BASE=http://HOST:PORT/weibo
    /partner   PartnerSandbox  -> partner webhook URLs http://HOST:PORT/partner/hooks/<name>

WeChat's simulator will be mounted at ``/wechat`` by the lead (``connectors/sandbox/wechat.py``).
Run standalone with ``python -m connectors.sandbox.app [--host H] [--port P]``.
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
from connectors.sandbox.weibo import WeiboSandbox, WeiboSandboxConfig


@dataclass
class Sandboxes:
    """The combined app and the simulators inside it (tests reach their Python helpers)."""

    app: Starlette
    weibo: WeiboSandbox
    partner: PartnerSandbox


def build_sandboxes(*, public_base_url: str = "http://127.0.0.1:8000") -> Sandboxes:
    """One app with every simulator; Weibo's safe domain is the host of ``public_base_url``."""
    host = urlsplit(public_base_url).hostname or "127.0.0.1"
    weibo = WeiboSandbox(WeiboSandboxConfig(safe_domains=(host,)))
    partner = PartnerSandbox()

    async def index(request: Request) -> JSONResponse:
        return JSONResponse({"sandboxes": ["weibo", "partner"]})

    app = Starlette(
        routes=[
            Route("/", index),
            Mount("/weibo", app=weibo),
            Mount("/partner", app=partner),
            # Mount("/wechat", app=wechat),  -- added with connectors/sandbox/wechat.py
        ]
    )
    return Sandboxes(app=app, weibo=weibo, partner=partner)


def start_sandboxes(
    *, host: str = "127.0.0.1", port: int = 0, public_base_url: str = "http://127.0.0.1:8000"
) -> tuple[Sandboxes, RunningServer]:
    """Build every simulator and serve them on ``host:port`` in a background thread."""
    sandboxes = build_sandboxes(public_base_url=public_base_url)
    return sandboxes, serve(sandboxes.app, host=host, port=port)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run govhub's platform simulators.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument("--public-base-url", default="http://127.0.0.1:8000")
    args = parser.parse_args(argv)
    _, server = start_sandboxes(
        host=args.host, port=args.port, public_base_url=args.public_base_url
    )
    print(f"sandboxes at {server.base_url}: /weibo /partner  (Ctrl+C stops)")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
