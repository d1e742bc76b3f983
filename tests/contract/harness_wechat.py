"""WeChat's contract harness: the sandbox on a loopback port, connectors wired to it.

``WechatHarness`` gives a test its own sandbox app (a fresh appid, so tests never see each
other's state), an ``Account`` for it, a connector talking to the sandbox over real HTTP, and a
``Content`` with a real cover file. The session fixtures run one sandbox and one image server.
"""

from __future__ import annotations

import io
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from PIL import Image as PILImage
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from connectors.base import Account, Content, Image, Published, PublishOutcome
from connectors.sandbox.server import RunningServer, serve
from connectors.sandbox.wechat import WechatSandbox
from connectors.tokens import MemoryTokenStore, TokenStore
from connectors.wechat import WechatConnector

PLATFORM = "wechat"
T = TypeVar("T")


def wait_for(condition: Callable[[], T | None], timeout: float = 10.0) -> T:
    """Poll ``condition`` until it returns something truthy (no fixed sleeps in tests)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(0.01)


def jpeg(width: int = 64, height: int = 48, color: tuple[int, int, int] = (20, 90, 160)) -> bytes:
    buffer = io.BytesIO()
    PILImage.new("RGB", (width, height), color).save(buffer, "JPEG")
    return buffer.getvalue()


def noisy_png(width: int, height: int, seed: int = 1) -> bytes:
    """Random pixels: PNG cannot compress them, so the file stays large."""
    rng = random.Random(seed)
    image = PILImage.frombytes("RGB", (width, height), rng.randbytes(width * height * 3))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


@dataclass
class Recorder:
    """A tiny ASGI app that serves fixed files and records every request (images, callbacks)."""

    files: dict[str, bytes] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def app(self) -> Starlette:
        async def handle(request: Request) -> Response:
            body = await request.body()
            with self.lock:
                self.requests.append(
                    {
                        "method": request.method,
                        "path": request.url.path,
                        "query": dict(request.query_params),
                        "body": body,
                    }
                )
            if request.method == "GET":
                data = self.files.get(request.url.path)
                if data is None:
                    return Response(status_code=404)
                kind = "image/png" if data.startswith(b"\x89PNG") else "image/jpeg"
                return Response(data, media_type=kind)
            return Response("success", media_type="text/plain")

        return Starlette(routes=[Route("/{path:path}", handle, methods=["GET", "POST"])])

    def hits(self, path: str) -> list[dict[str, Any]]:
        with self.lock:
            return [r for r in self.requests if r["path"] == path]


@dataclass
class WechatHarness:
    sandbox: WechatSandbox
    base_url: str
    client: httpx.Client
    tmp_path: Path
    appid: str = field(default_factory=lambda: f"wx{uuid.uuid4().hex[:16]}")
    secret: str = field(default_factory=lambda: uuid.uuid4().hex, repr=False)
    platform: str = PLATFORM

    def __post_init__(self) -> None:
        self.sandbox.add_app(self.appid, self.secret)
        self.token_store: TokenStore = MemoryTokenStore()
        self._connector = self.connector()

    def connector(self, token_store: TokenStore | None = None) -> WechatConnector:
        return WechatConnector(
            self.client,
            api_base=self.base_url,
            public_base_url="http://hall.test",
            token_store=token_store or self.token_store,
            author_default="新闻办",
        )

    @property
    def wechat(self) -> WechatConnector:
        return self._connector

    def account(self, **credentials: str) -> Account:
        creds = {"app_id": self.appid, "app_secret": self.secret, **credentials}
        return Account(
            id=1, platform=PLATFORM, handle=f"gh_{self.appid}", name="黔东南发布", credentials=creds
        )

    def cover(self, data: bytes | None = None, name: str = "cover.jpg") -> Image:
        path = self.tmp_path / name
        path.write_bytes(data if data is not None else jpeg())
        return Image(path=str(path), url=f"http://hall.test/media/{name}", alt="封面")

    def content(self, **overrides: Any) -> Content:
        values: dict[str, Any] = {
            "post_id": 1,
            "version": 1,
            "title": "关于做好防汛工作的通知",
            "body": "各县（市）人民政府：\n\n请做好**防汛**准备。",
            "summary": "防汛通知",
            "images": (self.cover(),),
            "link": "/posts/1",
            "org_name": "黔东南州人民政府新闻办公室",
        }
        values.update(overrides)
        return Content(**values)

    def calls(self) -> dict[str, int]:
        return self.sandbox.calls(self.appid)

    def publish_and_wait(self, content: Content | None = None) -> tuple[str, Published]:
        connector, account = self.wechat, self.account()
        pending = connector.publish(
            account, connector.render(content or self.content()), idempotency_key="k1"
        )
        assert not isinstance(pending, Published)
        return pending.ref, wait_for(lambda: _published(connector.poll(account, pending.ref)))


def _published(outcome: PublishOutcome) -> Published | None:
    return outcome if isinstance(outcome, Published) else None


# -- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def wechat_server() -> Iterator[tuple[WechatSandbox, RunningServer]]:
    sandbox = WechatSandbox(publish_delay=0.05)
    server = serve(sandbox)
    yield sandbox, server
    sandbox.close()
    server.stop()


@pytest.fixture(scope="session")
def recorder_server() -> Iterator[tuple[Recorder, RunningServer]]:
    recorder = Recorder()
    server = serve(recorder.app())
    yield recorder, server
    server.stop()


@pytest.fixture
def wechat(
    wechat_server: tuple[WechatSandbox, RunningServer], tmp_path: Path
) -> Iterator[WechatHarness]:
    sandbox, server = wechat_server
    with httpx.Client(timeout=5.0) as client:
        yield WechatHarness(sandbox, server.base_url, client, tmp_path)
