"""WeChat's contract harness: the sandbox on a loopback port, connectors wired to it.

Two users:

- the generic contract suite (``test_contract.py``): ``PLATFORM``, ``CAPABILITIES``,
  ``ERROR_CASES`` and ``start()`` -> :class:`WechatContractHarness` (the ``Harness`` protocol of
  ``harness.py``), every errcode of ``platforms.md`` provoked over HTTP by fault injection;
- the WeChat-specific tests (``test_wechat.py``): ``WechatHarness`` gives a test its own sandbox
  app (a fresh appid, so tests never see each other's state), an ``Account`` for it, a connector
  talking to the sandbox over real HTTP, and a ``Content`` with a real cover file. The session
  fixtures run one sandbox and one image server.
"""

from __future__ import annotations

import dataclasses
import io
import random
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import httpx
import pytest
from PIL import Image as PILImage
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from connectors import wechat_crypto
from connectors.base import (
    Account,
    CallbackRequest,
    Content,
    CopyRef,
    Image,
    Published,
    PublishOutcome,
    Rendition,
)
from connectors.errors import (
    AccountBlocked,
    AuthExpired,
    QuotaExhausted,
    RateLimited,
    Rejected,
    Transient,
)
from connectors.sandbox.server import RunningServer, serve
from connectors.sandbox.wechat import WechatSandbox
from connectors.tokens import MemoryTokenStore, TokenStore
from connectors.wechat import WechatConnector
from tests.contract.harness import ErrorCase, sample_content

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


# -- the generic contract suite ---------------------------------------------------------------

CAPABILITIES = frozenset({"recent", "drop"})
PUBLIC_BASE_URL = "http://hall.test"
BEIJING = ZoneInfo("Asia/Shanghai")
TOKEN_CALL = "token"  # ErrorCase.name "<errcode>@token": the access-token call itself fails

# Every errcode of platforms.md, and the class docs/connectors-wechat.md promises for it.
ERROR_CASES = [
    ErrorCase("-1", Transient),
    ErrorCase("40001", AuthExpired),  # token not the latest: refreshed once, replayed once
    ErrorCase(f"40001@{TOKEN_CALL}", AccountBlocked),  # on the token call: wrong AppSecret
    ErrorCase(f"40125@{TOKEN_CALL}", AccountBlocked),  # stable_token's word for it
    ErrorCase("40013", AccountBlocked),  # invalid AppID
    ErrorCase("40014", AuthExpired),
    ErrorCase("42001", AuthExpired),
    ErrorCase("45009", QuotaExhausted),
    ErrorCase("45011", RateLimited),
    ErrorCase("40164", AccountBlocked),
    ErrorCase("48001", AccountBlocked),
    ErrorCase("48004", AccountBlocked),
    ErrorCase("40007", Rejected),  # anything else: refused, with the platform's words
    ErrorCase("-1", Transient, "withdraw"),
    ErrorCase("42001", AuthExpired, "withdraw"),
    ErrorCase("45011", RateLimited, "recent"),
    ErrorCase("48004", AccountBlocked, "recent"),
    ErrorCase("-1", Transient, "poll"),
    ErrorCase("40014", AuthExpired, "poll"),
    ErrorCase("-1", Transient, "metrics"),
    ErrorCase("45011", RateLimited, "metrics"),
    ErrorCase("45009", QuotaExhausted, "metrics"),
]
_ENDPOINTS = {
    "publish": "/cgi-bin/draft/add",
    "withdraw": "/cgi-bin/freepublish/delete",
    "recent": "/cgi-bin/freepublish/batchget",
    "poll": "/cgi-bin/freepublish/getarticle",  # poll by article_id (a delivery's remote_id)
    "metrics": "/datacube/getarticletotal",
}
_TOKEN_ERRORS = {40001, 40014, 42001}
_IP_MESSAGE = "invalid ip 203.0.113.9 ipv6 ::ffff:203.0.113.9, not in whitelist rid: 6512-ab"


class WechatContractHarness:
    """WechatConnector against WechatSandbox over real HTTP; control calls over HTTP too."""

    platform = PLATFORM

    def __init__(self) -> None:
        self.sandbox = WechatSandbox(publish_delay=0.0)  # the suite polls without sleeping
        self.server = serve(self.sandbox)
        self.client = httpx.Client(timeout=5.0)
        self.control = httpx.Client(base_url=f"{self.server.base_url}/_sandbox", timeout=5.0)
        self.tokens = MemoryTokenStore()
        self.connector = WechatConnector(
            self.client,
            api_base=self.server.base_url,
            public_base_url=PUBLIC_BASE_URL,
            token_store=self.tokens,
            author_default="新闻办",
        )
        self._files = Path(tempfile.mkdtemp(prefix="wechat-contract-"))
        self._cover = self._files / "cover.jpg"
        self._cover.write_bytes(jpeg())
        self._ids = iter(range(1, 1_000_000))

    # capability hooks (test_contract.py: DirectMessages)
    def follower_writes(self, account: Account, text: str) -> str:
        openid = f"o{uuid.uuid4().hex[:20]}"
        self.sandbox.send_user_message(account.credentials["app_id"], openid, text)
        return openid

    def messages_to(self, account: Account, user_id: str) -> list[str]:
        sent = self.sandbox.custom_messages(account.credentials["app_id"], user_id)
        return [str(m["content"]) for m in sent]

    # capability hooks (test_contract.py: Callbacks)
    def callback_handshake(self, account: Account) -> tuple[CallbackRequest, str]:
        token, timestamp, nonce = "cb-token-9d1e", "1767225600", "n0nce"
        query = {
            "signature": wechat_crypto.sign(token, timestamp, nonce),
            "timestamp": timestamp,
            "nonce": nonce,
            "echostr": "echo-4711",
        }
        creds = {**account.credentials, "callback_token": token}
        return CallbackRequest("GET", query, b"", creds), "echo-4711"

    def callback_event(self, account: Account, body: bytes) -> CallbackRequest:
        token, timestamp, nonce = "cb-token-9d1e", "1767225600", "n0nce"
        query = {"signature": wechat_crypto.sign(token, timestamp, nonce)}
        query |= {"timestamp": timestamp, "nonce": nonce}
        creds = {**account.credentials, "callback_token": token}
        return CallbackRequest("POST", query, body, creds)

    # capability hooks (test_contract.py: Metrics)
    def reader_counts(self, account: Account, copy: CopyRef) -> tuple[date, dict[str, int]]:
        """Readers read and share the article on the day it was sent and the next; the datacube
        is moved two days ahead so that the next day is final (yesterday or earlier)."""
        appid = account.credentials["app_id"]
        msgid = f"{copy.meta['msg_data_id']}_1"
        sent = copy.published_at.astimezone(BEIJING).date()
        self.sandbox.configure(datacube_days_ahead=2)
        for day, reads, shares in ((sent, 40, 3), (sent + timedelta(days=1), 15, 2)):
            spec = {"msgid": msgid, "day": day.isoformat()}
            spec |= {"int_page_read_count": reads, "share_count": shares}
            self.control.post(f"/apps/{appid}/article-days", json=spec).raise_for_status()
        return sent + timedelta(days=1), {"reads": 55, "shares": 5}

    def new_account(self) -> Account:
        appid, secret = f"wx{uuid.uuid4().hex[:16]}", uuid.uuid4().hex
        self.control.post("/apps", json={"appid": appid, "secret": secret}).raise_for_status()
        return Account(
            id=next(self._ids),
            platform=PLATFORM,
            handle=f"gh_{appid}",
            name="黔东南发布",
            credentials={"app_id": appid, "app_secret": secret},
        )

    def content(self) -> Content:
        cover = Image(path=str(self._cover), url=f"{PUBLIC_BASE_URL}/media/cover.jpg", alt="封面")
        return dataclasses.replace(sample_content(PUBLIC_BASE_URL), images=(cover,))

    def stored_ids(self, account: Account) -> list[str]:
        """Publications online or still publishing (article_id once it has one)."""
        appid = account.credentials["app_id"]
        state = self.control.get(f"/apps/{appid}").raise_for_status().json()
        return [
            str(pub["article_id"] or f"publishing:{pub['publish_id']}")
            for pub in state["publications"]
            if pub["status"] in (0, 1) and not all(pub["deleted"])
        ]

    def inject(self, case: ErrorCase, account: Account) -> None:
        code, _, where = case.name.partition("@")
        endpoint = "/cgi-bin/stable_token" if where == TOKEN_CALL else _ENDPOINTS[case.operation]
        errcode = int(code)
        fault = {
            "endpoint": endpoint,
            "errcode": errcode,
            "errmsg": _IP_MESSAGE if errcode == 40164 else f"sandbox fault {errcode}",
            # A refused token is refreshed and the call replayed once: refuse the replay too.
            "count": 2 if errcode in _TOKEN_ERRORS and where != TOKEN_CALL else 1,
            "appid": account.credentials["app_id"],
        }
        self.control.post("/faults", json=fault).raise_for_status()

    def inject_drop(self) -> None:
        fault = {"endpoint": "/cgi-bin/freepublish/submit", "mode": "drop"}
        self.control.post("/faults", json=fault).raise_for_status()

    def clear_faults(self) -> None:
        self.control.delete("/faults").raise_for_status()
        self.sandbox.configure(datacube_days_ahead=0)

    def secrets(self, account: Account) -> list[str]:
        self.connector.recent(account)  # fetches (and caches) the app's access token
        cached = self.tokens.get(f"{PLATFORM}:{account.credentials['app_id']}")
        assert cached is not None
        return [account.credentials["app_secret"], cached.token]

    def invalid_rendition(self) -> tuple[Rendition, set[str]]:
        rendition = Rendition(platform=PLATFORM, title="关于" + "防汛" * 20 + "的通知", html="")
        return rendition, {
            "wechat.title_too_long",
            "wechat.content_missing",
            "wechat.missing_cover",
        }

    def stop(self) -> None:
        self.client.close()
        self.control.close()
        self.sandbox.close()
        self.server.stop()
        shutil.rmtree(self._files, ignore_errors=True)


def start() -> WechatContractHarness:
    return WechatContractHarness()
