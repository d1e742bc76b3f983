"""WechatSandbox: a protocol-faithful simulator of the WeChat Official Account API (ASGI).

It follows ``/work/shared/docs/platforms.md`` (access token with overlap, error envelope, draft ->
freepublish with an asynchronous job and a signed ``PUBLISHJOBFINISH`` callback, mass send with
``clientmsgid``, users' messages POSTed signed to the callback URL and customer-service replies
within 48 hours), keeps everything it received so tests can assert what reached the "platform",
and injects faults over HTTP under ``/_sandbox/...``. Every control endpoint has a Python method
of the same meaning for in-process tests. The full endpoint list and the error codes chosen
where the platform's own are unknown are in ``docs/connectors-wechat.md``.

State is guarded by one re-entrant lock; handlers never await while holding it. Publication jobs
finish on a timer thread (or lazily on ``freepublish/get``), and callbacks are delivered from a
separate thread, so nothing blocks the server loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import random
import re
import secrets
import threading
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal
from xml.sax.saxutils import escape as xml_escape
from zoneinfo import ZoneInfo

import httpx
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from connectors.wechat_crypto import aes_key, encrypted_envelope

SHANGHAI = ZoneInfo("Asia/Shanghai")
CallbackMode = Literal["plaintext", "compatible", "safe"]
TITLE_MAX, AUTHOR_MAX, DIGEST_MAX = 32, 16, 128
CONTENT_MAX_CHARS, CONTENT_MAX_BYTES = 20_000, 1024 * 1024  # content must be below both
THUMB_MAX_BYTES, UPLOADIMG_MAX_BYTES = 64 * 1024, 1024 * 1024
LINK_MAX_BYTES, ARTICLES_MAX = 1024, 8
STABLE_FORCE_PER_DAY, STABLE_FORCE_INTERVAL = 20, 30.0  # stable_token force_refresh limits
CALL_LOG_MAX = 20_000  # the latest API calls kept for call_log() (the demo runs for days)
CUSTOM_WINDOW_SECONDS = 48 * 3600  # customer-service messages: 48 h after the user's last one
MMBIZ = "mmbiz.qpic.cn"

# errcode -> errmsg, as the platform words them (some codes are our choice: see the docs).
ERRMSG: dict[int, str] = {
    -1: "system error",
    0: "ok",
    40001: "invalid credential, access_token is invalid or not latest",
    40002: "invalid grant_type",
    40005: "invalid file type",
    40006: "invalid meida size",
    40007: "invalid media_id",
    40013: "invalid appid",
    40003: "invalid openid",
    40014: "invalid access_token",
    40125: "invalid appsecret",
    40164: "invalid ip, not in whitelist",
    41001: "access_token missing",
    41002: "appid missing",
    41004: "appsecret missing",
    41005: "media data missing",
    42001: "access_token expired",
    44003: "empty news data",
    44004: "empty content",
    45002: "content size out of limit",
    45003: "title size out of limit",
    45004: "description size out of limit",
    45005: "url size out of limit",
    45008: "article size out of limit",
    45009: "reach max api daily quota limit",
    45011: "api minute-quota reach limit, mustslower retry next minute",
    45015: "response out of time limit or subscription is canceled",
    45028: "has no masssend quota",
    45065: "clientmsgid exist",
    45066: "same clientmsgid retry too fast",
    45110: "author size out of limit",
    47001: "data format error",
    48001: "api unauthorized",
    48004: "api forbidden for irregularities",
    53600: "Article ID 无效",
    61500: "date format error",
    61501: "date range error",
}
# datacube article figures (图文分析): the counts a day adds to an article, by field name
DATACUBE_FIELDS = (
    "int_page_read_user",
    "int_page_read_count",
    "ori_page_read_user",
    "ori_page_read_count",
    "share_user",
    "share_count",
    "add_to_fav_user",
    "add_to_fav_count",
)
DATACUBE_DAYS = 7  # getarticletotal counts an article for 7 days from the day it was sent

_UNICODE_ESCAPE = re.compile(r"(?<!\\)(?:\\\\)*\\u[0-9a-fA-F]{4}")
_SCRIPT = re.compile(r"<script\b.*?(?:</script\s*>|$)", re.IGNORECASE | re.DOTALL)
_ON_ATTRIBUTE = re.compile(r"""\s+on[a-z]+\s*=\s*(?:"[^"]*"|'[^']*'|[^\s>]+)""", re.IGNORECASE)
_TAG = re.compile(r"<[a-zA-Z][^>]*>")
_IMG = re.compile(r"<img\b[^>]*>", re.IGNORECASE)
_SRC = re.compile(r"""\bsrc\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))""", re.IGNORECASE)


def platform_clean(content: str) -> str:
    """What the platform does to article HTML: no scripts, no ``on*`` handlers, and no
    ``<img>`` whose ``src`` is not on mmbiz.qpic.cn."""
    content = _SCRIPT.sub("", content)
    content = _TAG.sub(lambda m: _ON_ATTRIBUTE.sub("", m.group(0)), content)

    def keep_mmbiz(match: re.Match[str]) -> str:
        src = _SRC.search(match.group(0))
        url = next((g for g in src.groups() if g), "") if src else ""
        return match.group(0) if _is_mmbiz(url) else ""

    return _IMG.sub(keep_mmbiz, content)


def _is_mmbiz(url: str) -> bool:
    host = url.split("//", 1)[-1].split("/", 1)[0].split(":", 1)[0].lower()
    return host == MMBIZ or host.endswith("." + MMBIZ)


def _image_kind(data: bytes) -> str:
    if data.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if data.startswith(b"BM"):
        return "bmp"
    return ""


def _sign(token: str, timestamp: str, nonce: str) -> str:
    return hashlib.sha1("".join(sorted([token, timestamp, nonce])).encode()).hexdigest()


class SandboxError(Exception):
    """A platform error answer: ``{"errcode": code, "errmsg": ...}``."""

    def __init__(self, code: int, detail: str = "", **extra: Any) -> None:
        super().__init__(code, detail)
        self.code = code
        self.detail = detail
        self.extra = extra

    def body(self) -> dict[str, Any]:
        message = ERRMSG.get(self.code, "error")
        if self.detail:
            message = f"{message}: {self.detail}"
        rid = secrets.token_hex(4) + "-" + secrets.token_hex(4)
        return {"errcode": self.code, "errmsg": f"{message} rid: {rid}", **self.extra}


@dataclass
class TokenRecord:
    appid: str
    kind: Literal["classic", "stable"]
    expires_at: float
    superseded_at: float = float("inf")

    def state(self, now: float) -> Literal["valid", "superseded", "expired"]:
        if now >= self.superseded_at:
            return "superseded"
        return "expired" if now >= self.expires_at else "valid"


@dataclass
class Draft:
    media_id: str
    articles: list[dict[str, Any]]  # as stored (after the platform's clean-up)
    received: list[dict[str, Any]]  # exactly as received
    update_time: int


@dataclass
class Publication:
    publish_id: int
    msg_data_id: int
    media_id: str
    articles: list[dict[str, Any]]
    received: list[dict[str, Any]]
    create_time: int
    ready_at: float
    seq: int
    status: int = 1
    article_id: str = ""
    fail_idx: list[int] = field(default_factory=list)
    deleted: list[bool] = field(default_factory=list)
    callback_sent: bool = False

    def urls(self) -> list[str]:
        return [
            f"http://mp.weixin.qq.com/s/{self.article_id}-{i}" for i in range(len(self.articles))
        ]


@dataclass
class MassJob:
    """A mass send (群发) to every follower; ``status`` as ``message/mass/get`` words it."""

    msg_id: int
    msg_data_id: int
    media_id: str
    clientmsgid: str
    articles: list[dict[str, Any]]
    ready_at: float
    status: str = "SENDING"  # SENDING | SEND_SUCCESS | SEND_FAIL | DELETE
    event_status: str = ""  # MASSSENDJOBFINISH <Status>: "send success", "err(num)"
    callback_sent: bool = False

    def urls(self) -> list[str]:
        return [
            f"http://mp.weixin.qq.com/s/mass-{self.msg_id}-{i}" for i in range(len(self.articles))
        ]


@dataclass
class SandboxApp:
    appid: str
    secret: str
    kind: Literal["subscription", "service"] = "subscription"
    ip_whitelist: set[str] | None = None
    callback_url: str = ""
    callback_token: str = ""
    callback_mode: CallbackMode = "plaintext"
    encoding_aes_key: str = field(default="", repr=False)
    thumbs: dict[str, bytes] = field(default_factory=dict)
    images: dict[str, bytes] = field(default_factory=dict)
    drafts: dict[str, Draft] = field(default_factory=dict)
    publications: dict[int, Publication] = field(default_factory=dict)
    submitted_media: set[str] = field(default_factory=set)
    mass_sends: dict[str, int] = field(default_factory=dict)  # clientmsgid -> msg_id
    mass_send_times: list[float] = field(default_factory=list)
    mass_jobs: dict[int, MassJob] = field(default_factory=dict)  # msg_id -> job
    mass_outcomes: deque[str] = field(default_factory=deque)  # next jobs' <Status>
    outcomes: deque[tuple[int, list[int]]] = field(default_factory=deque)
    callbacks: list[dict[str, Any]] = field(default_factory=list)  # delivery log
    stable_token: str = ""  # the stable token stable_token currently hands out
    stable_refreshes: list[float] = field(default_factory=list)  # force_refresh times
    last_user_message: dict[str, float] = field(default_factory=dict)  # openid -> CreateTime
    user_messages: list[dict[str, Any]] = field(default_factory=list)  # delivery log
    custom_messages: list[dict[str, Any]] = field(default_factory=list)  # what reached users
    # datacube: msgid ("<msg_data_id>_<index>") -> ISO day -> what readers added that day
    article_days: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)

    @property
    def original_id(self) -> str:
        return f"gh_{self.appid}"


@dataclass
class Fault:
    """Make the next ``count`` calls to ``endpoint`` (``"*"``: any) misbehave.

    ``mode``: ``"error"`` answers ``errcode`` without doing anything; ``"drop"`` does the work,
    then drops the connection mid-answer; ``"latency"`` waits ``latency_ms`` first.
    ``count=None`` never runs out (until reset).
    """

    endpoint: str
    mode: Literal["error", "drop", "latency"] = "error"
    errcode: int = -1
    errmsg: str = ""
    count: int | None = 1
    latency_ms: int = 0
    appid: str | None = None

    def matches(self, endpoint: str, appid: str | None) -> bool:
        if self.count is not None and self.count <= 0:
            return False
        if self.endpoint not in ("*", endpoint):
            return False
        return self.appid is None or self.appid == appid


@dataclass
class Chaos:
    """Probabilistic faults for load tests: ``transient_rate`` -> errcode -1 (nothing done),
    ``drop_rate`` -> accept then drop."""

    transient_rate: float = 0.0
    drop_rate: float = 0.0
    endpoints: tuple[str, ...] = ()  # empty: every /cgi-bin endpoint except the token calls
    seed: int | None = None


class _DropConnection(Response):
    """Send the head and part of the body, then return: uvicorn closes the connection."""

    def __init__(self) -> None:
        super().__init__()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-type", b"application/json"), (b"content-length", b"4096")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b'{"errc', "more_body": True})


Handler = Callable[["_Call"], dict[str, Any]]


@dataclass
class _Call:
    app: SandboxApp
    query: Mapping[str, str]
    body: dict[str, Any]
    media: tuple[str, bytes] | None = None  # (filename, data)


class WechatSandbox:
    """The simulator. Mount it as an ASGI app (``serve(WechatSandbox())``)."""

    def __init__(
        self,
        *,
        token_ttl: float = 7200.0,
        token_overlap: float = 300.0,
        publish_delay: float = 0.2,
        publish_id_as_number: bool = False,
        callback_timeout: float = 5.0,
        stable_force_interval: float = STABLE_FORCE_INTERVAL,
        draft_leaves: Literal["submit", "finish"] = "submit",
        reads_per_day: int = 0,
    ) -> None:
        self.token_ttl = token_ttl
        self.stable_force_interval = stable_force_interval
        self.token_overlap = token_overlap
        self.publish_delay = publish_delay
        # When a submitted draft leaves the draft box: at once ("submit"), or only when its
        # publish job ends ("finish"; the platform does not say which, see platforms.md).
        self.draft_leaves = draft_leaves
        self.publish_id_as_number = publish_id_as_number
        self.callback_timeout = callback_timeout
        # datacube: an article's readers per day when a test set nothing for that day (shares:
        # a tenth); ``datacube_days_ahead`` moves the datacube's "today" forward (tests).
        self.reads_per_day = reads_per_day
        self.datacube_days_ahead = 0
        self._lock = threading.RLock()
        self._callback_done = threading.Condition(self._lock)
        self._timers: list[threading.Timer] = []
        self._reset_state()
        self._handlers: dict[str, Handler] = {
            "/cgi-bin/material/add_material": self._add_material,
            "/cgi-bin/material/del_material": self._del_material,
            "/cgi-bin/media/uploadimg": self._uploadimg,
            "/cgi-bin/draft/add": self._draft_add,
            "/cgi-bin/draft/get": self._draft_get,
            "/cgi-bin/draft/batchget": self._draft_batchget,
            "/cgi-bin/draft/delete": self._draft_delete,
            "/cgi-bin/freepublish/submit": self._submit,
            "/cgi-bin/freepublish/get": self._publish_get,
            "/cgi-bin/freepublish/delete": self._publish_delete,
            "/cgi-bin/freepublish/batchget": self._publish_batchget,
            "/cgi-bin/freepublish/getarticle": self._getarticle,
            "/cgi-bin/message/mass/sendall": self._sendall,
            "/cgi-bin/message/mass/get": self._mass_get,
            "/cgi-bin/message/mass/delete": self._mass_delete,
            "/cgi-bin/message/custom/send": self._custom_send,
            "/datacube/getarticletotal": self._article_total,
        }
        routes = [
            Route("/cgi-bin/token", self._http_token, methods=["GET"]),
            Route("/cgi-bin/stable_token", self._http_stable_token, methods=["POST"]),
            Route("/cgi-bin/{rest:path}", self._http_api, methods=["GET", "POST"]),
            Route("/datacube/{rest:path}", self._http_api, methods=["POST"]),
            Route("/_sandbox/apps", self._http_add_app, methods=["POST"]),
            Route("/_sandbox/apps/{appid}", self._http_state, methods=["GET"]),
            Route("/_sandbox/apps/{appid}/callback", self._http_callback, methods=["POST"]),
            Route("/_sandbox/apps/{appid}/publications", self._http_publication, methods=["POST"]),
            Route("/_sandbox/apps/{appid}/outcomes", self._http_outcome, methods=["POST"]),
            Route("/_sandbox/apps/{appid}/expire-tokens", self._http_expire, methods=["POST"]),
            Route("/_sandbox/apps/{appid}/finish-jobs", self._http_finish_jobs, methods=["POST"]),
            Route(
                "/_sandbox/apps/{appid}/mass-outcomes", self._http_mass_outcome, methods=["POST"]
            ),
            Route("/_sandbox/apps/{appid}/messages", self._http_user_message, methods=["POST"]),
            Route("/_sandbox/apps/{appid}/call-log", self._http_call_log, methods=["GET"]),
            Route("/_sandbox/apps/{appid}/article-days", self._http_article_day, methods=["POST"]),
            Route("/_sandbox/faults", self._http_fault, methods=["POST", "DELETE"]),
            Route("/_sandbox/chaos", self._http_chaos, methods=["POST"]),
            Route("/_sandbox/config", self._http_config, methods=["POST"]),
            Route("/_sandbox/calls", self._http_calls, methods=["GET"]),
            Route("/_sandbox/reset", self._http_reset, methods=["POST"]),
        ]
        self._asgi = Starlette(routes=routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._asgi(scope, receive, send)

    def __repr__(self) -> str:
        return f"WechatSandbox(apps={len(self._apps)})"

    # -- state and the Python control API -----------------------------------------------------

    def _reset_state(self) -> None:
        self._apps: dict[str, SandboxApp] = {}
        self._tokens: dict[str, TokenRecord] = {}
        self._faults: list[Fault] = []
        self._chaos = Chaos()
        self._rng = random.Random()
        self._calls: Counter[tuple[str, str]] = Counter()
        self._call_log: deque[dict[str, Any]] = deque(maxlen=CALL_LOG_MAX)
        self._ids = itertools.count(2_247_503_051)
        self._seq = itertools.count()

    def reset(self) -> None:
        """Forget every app, token, fault, counter and publication."""
        with self._lock:
            for timer in self._timers:
                timer.cancel()
            self._timers.clear()
            self._reset_state()

    def add_app(
        self,
        appid: str,
        secret: str,
        *,
        kind: Literal["subscription", "service"] = "subscription",
        ip_whitelist: set[str] | None = None,
    ) -> SandboxApp:
        with self._lock:
            app = SandboxApp(appid=appid, secret=secret, kind=kind, ip_whitelist=ip_whitelist)
            self._apps[appid] = app
            return app

    def set_callback(
        self,
        appid: str,
        url: str,
        token: str,
        *,
        mode: CallbackMode = "plaintext",
        encoding_aes_key: str = "",
    ) -> None:
        """Where the app's callbacks go, signed with ``token``, in message ``mode`` (the
        console's 消息加解密方式: ``plaintext``, ``compatible`` or ``safe``; the last two need
        the app's 43-character ``encoding_aes_key``)."""
        if mode not in ("plaintext", "compatible", "safe"):
            raise ValueError(f"unknown callback mode {mode!r}")
        if mode != "plaintext":
            aes_key(encoding_aes_key)  # raises CallbackError for a malformed key
        with self._lock:
            app = self._app(appid)
            app.callback_url, app.callback_token = url, token
            app.callback_mode, app.encoding_aes_key = mode, encoding_aes_key

    def configure(self, **settings: Any) -> None:
        """Change ``publish_delay``, ``publish_id_as_number``, ``token_ttl``, ``token_overlap``,
        ``stable_force_interval``, ``draft_leaves`` (``"submit"`` or ``"finish"``)."""
        allowed = {"publish_delay", "publish_id_as_number", "token_ttl", "token_overlap"}
        allowed |= {"stable_force_interval", "draft_leaves", "reads_per_day"}
        allowed |= {"datacube_days_ahead"}
        with self._lock:
            for name, value in settings.items():
                if name not in allowed:
                    raise ValueError(f"unknown sandbox setting {name!r}")
                if name == "draft_leaves" and value not in ("submit", "finish"):
                    raise ValueError("draft_leaves is 'submit' or 'finish'")
                setattr(self, name, value)

    def finish_jobs(self, appid: str) -> int:
        """Clock control: every running publish and mass-send job of ``appid`` ends now (with
        its queued outcome) and its callback is sent. Returns how many jobs ended."""
        ended: list[Publication | MassJob] = []
        with self._lock:
            app = self._app(appid)
            for pub in app.publications.values():
                if pub.status == 1:
                    pub.ready_at = 0.0
                    if self._finish(app, pub) and not pub.callback_sent:
                        pub.callback_sent = True
                        ended.append(pub)
            for job in app.mass_jobs.values():
                if job.status == "SENDING":
                    job.ready_at = 0.0
                    if self._finish_mass(app, job) and not job.callback_sent:
                        job.callback_sent = True
                        ended.append(job)
        for item in ended:
            if isinstance(item, MassJob):
                self._deliver_mass_callback(app, item)
            else:
                self._deliver_callback(app, item)
        return len(ended)

    def queue_mass_outcome(self, appid: str, status: str) -> None:
        """The next mass send of ``appid`` ends with ``status`` as MASSSENDJOBFINISH words it:
        ``"send success"`` (default), ``"send fail"`` or ``"err(num)"``."""
        with self._lock:
            self._app(appid).mass_outcomes.append(status)

    def mass_jobs(self, appid: str) -> list[dict[str, Any]]:
        """Every mass send the platform accepted for ``appid`` (one per clientmsgid)."""
        with self._lock:
            return [
                {
                    "msg_id": j.msg_id,
                    "msg_data_id": j.msg_data_id,
                    "media_id": j.media_id,
                    "clientmsgid": j.clientmsgid,
                    "status": j.status,
                    "titles": [str(a.get("title", "")) for a in j.articles],
                    "need_open_comment": [a.get("need_open_comment", 0) for a in j.articles],
                }
                for j in self._app(appid).mass_jobs.values()
            ]

    def add_fault(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def clear_faults(self) -> None:
        """Forget every pending fault and switch chaos off (apps and their state stay)."""
        with self._lock:
            self._faults.clear()
            self._chaos = Chaos()

    def set_chaos(self, chaos: Chaos) -> None:
        with self._lock:
            self._chaos = chaos
            self._rng = random.Random(chaos.seed)

    def queue_outcome(self, appid: str, status: int, fail_idx: list[int] | None = None) -> None:
        """The next publication of ``appid`` ends with ``status`` (default: 0, success)."""
        with self._lock:
            self._app(appid).outcomes.append((status, list(fail_idx or [])))

    def expire_tokens(self, appid: str) -> None:
        """Every token of ``appid`` expires now (the next call gets 42001)."""
        with self._lock:
            now = time.time()
            for record in self._tokens.values():
                if record.appid == appid:
                    record.expires_at = min(record.expires_at, now)

    def calls(self, appid: str | None = None) -> dict[str, int]:
        """How many calls each endpoint received (for one app, or in total)."""
        with self._lock:
            totals: Counter[str] = Counter()
            for (app_key, endpoint), n in self._calls.items():
                if appid is None or app_key == appid:
                    totals[endpoint] += n
            return dict(totals)

    def call_log(self, appid: str | None = None) -> list[dict[str, Any]]:
        """The latest API calls (token calls aside; at most ``CALL_LOG_MAX``) in order:
        ``endpoint``, ``appid``, ``token_kind`` (classic/stable), ``token_state`` (valid,
        superseded, expired, unknown, missing: the token's real state on the platform when the
        call arrived) and ``token`` (its first 24 characters)."""
        with self._lock:
            return [dict(c) for c in self._call_log if appid is None or c["appid"] == appid]

    def add_publication(
        self,
        appid: str,
        *,
        title: str,
        content: str = "<p>…</p>",
        author: str = "",
        create_time: int | None = None,
    ) -> dict[str, Any]:
        """A publication made directly on the platform (not by the hub), already published
        (``create_time``: when, as a Unix time; default now)."""
        with self._lock:
            app = self._app(appid)
            article = {"title": title, "author": author, "digest": "", "content": content}
            pub = self._new_publication(app, f"direct-{next(self._ids)}", [article], [article])
            if create_time is not None:
                pub.create_time = int(create_time)
            pub.ready_at = 0.0
            self._finish(app, pub, outcome=(0, []))
            pub.callback_sent = True
            return {
                "publish_id": pub.publish_id,
                "msg_data_id": pub.msg_data_id,
                "article_id": pub.article_id,
                "url": pub.urls()[0],
            }

    def send_user_message(
        self,
        appid: str,
        openid: str,
        content: str = "",
        *,
        msg_type: Literal["text", "image", "event"] = "text",
        pic_url: str = "",
        event: str = "",
        created_at: float | None = None,
    ) -> dict[str, Any]:
        """A follower sends the account a message: POST it, signed, to the callback URL.

        ``created_at`` (Unix time, default now) is the message's ``CreateTime``; the 48-hour
        customer-service window counts from the user's latest one. Returns what the delivery
        did: ``msg_id``, ``status_code``, ``body`` (or ``error``).
        """
        stamp = int(time.time() if created_at is None else created_at)
        with self._lock:
            app = self._app(appid)
            msg_id = next(self._ids)
            app.last_user_message[openid] = max(app.last_user_message.get(openid, 0.0), stamp)
            url = app.callback_url
            xml = user_message_xml(
                to_user=app.original_id,
                openid=openid,
                create_time=stamp,
                msg_type=msg_type,
                content=content,
                pic_url=pic_url,
                event=event,
                msg_id=msg_id,
            )
        record: dict[str, Any] = {"msg_id": msg_id, "openid": openid, "url": url}
        if url:
            params, xml = self._wire(app, xml, openid=openid)
            try:
                response = httpx.post(
                    url,
                    params=params,
                    content=xml,
                    headers={"Content-Type": "text/xml"},
                    timeout=self.callback_timeout,
                )
                record |= {"status_code": response.status_code, "body": response.text[:200]}
            except httpx.HTTPError as exc:
                record["error"] = type(exc).__name__
        with self._lock:
            app.user_messages.append(record)
        return record

    def custom_messages(self, appid: str, openid: str | None = None) -> list[dict[str, Any]]:
        """Customer-service messages the platform accepted (``touser``, ``msgtype``, ``content``)."""
        with self._lock:
            sent = self._app(appid).custom_messages
            return [dict(m) for m in sent if openid is None or m["touser"] == openid]

    def state(self, appid: str) -> dict[str, Any]:
        """Everything the app holds: drafts, publications (with what was received), uploads."""
        with self._lock:
            app = self._app(appid)
            return {
                "appid": app.appid,
                "kind": app.kind,
                "thumbs": {k: len(v) for k, v in app.thumbs.items()},
                "images": {k: len(v) for k, v in app.images.items()},
                "drafts": [asdict(d) for d in app.drafts.values()],
                "publications": [
                    {
                        "publish_id": p.publish_id,
                        "media_id": p.media_id,
                        "status": p.status,
                        "article_id": p.article_id,
                        "urls": p.urls() if p.article_id else [],
                        "deleted": list(p.deleted),
                        "articles": p.articles,
                        "received": p.received,
                    }
                    for p in app.publications.values()
                ],
                "mass_sends": dict(app.mass_sends),
                "mass_jobs": {str(j.msg_id): j.status for j in app.mass_jobs.values()},
                "callbacks": list(app.callbacks),
            }

    def received_contents(self, appid: str) -> list[str]:
        """Every article ``content`` exactly as it reached the platform (drafts + published)."""
        with self._lock:
            app = self._app(appid)
            drafts = [a["content"] for d in app.drafts.values() for a in d.received]
            published = [a["content"] for p in app.publications.values() for a in p.received]
            return [str(c) for c in drafts + published]

    def wait_for_callbacks(self, appid: str, count: int, timeout: float = 10.0) -> bool:
        """Block until ``count`` callback deliveries were attempted for ``appid``."""
        with self._callback_done:
            return self._callback_done.wait_for(
                lambda: len(self._app(appid).callbacks) >= count, timeout
            )

    def close(self) -> None:
        with self._lock:
            for timer in self._timers:
                timer.cancel()
            self._timers.clear()

    def _app(self, appid: str) -> SandboxApp:
        app = self._apps.get(appid)
        if app is None:
            raise KeyError(f"no sandbox app {appid!r}")
        return app

    # -- tokens -------------------------------------------------------------------------------

    def _issue(self, app: SandboxApp, kind: Literal["classic", "stable"]) -> tuple[str, int]:
        """Mint a token. A classic token supersedes the app's earlier *classic* tokens after
        ``token_overlap``; stable tokens are never touched by it (and vice versa)."""
        now = time.time()
        if kind == "classic":
            for record in self._tokens.values():
                if record.appid == app.appid and record.kind == "classic":
                    record.superseded_at = min(record.superseded_at, now + self.token_overlap)
        token = f"{kind[0]}{secrets.token_urlsafe(96)}"[:512]
        self._tokens[token] = TokenRecord(app.appid, kind, now + self.token_ttl)
        if kind == "stable":
            app.stable_token = token
        return token, round(self.token_ttl)

    def _stable(self, app: SandboxApp, *, force: bool) -> tuple[str, int]:
        """``stable_token``: the current stable token while it has more than ``token_overlap``
        left (with its remaining lifetime); a new one in the last ``token_overlap`` seconds (the
        old one keeps working until it expires: the platform's hand-over). ``force`` mints a new
        one and kills the previous ones at once; at most 20 a day (Beijing), 30 s apart."""
        now = time.time()
        if force:
            today = datetime.fromtimestamp(now, SHANGHAI).date()
            used = [
                t
                for t in app.stable_refreshes
                if datetime.fromtimestamp(t, SHANGHAI).date() == today
            ]
            if len(used) >= STABLE_FORCE_PER_DAY:
                raise SandboxError(45009, "force_refresh is limited to 20 calls a day")
            if used and now - used[-1] < self.stable_force_interval:
                raise SandboxError(45011, "force_refresh needs 30 s between calls")
            app.stable_refreshes = [*used, now]
            for record in self._tokens.values():
                if record.appid == app.appid and record.kind == "stable":
                    record.superseded_at = min(record.superseded_at, now)
            return self._issue(app, "stable")
        current = self._tokens.get(app.stable_token)
        if current is not None and current.state(now) == "valid":
            left = current.expires_at - now
            if left > self.token_overlap:
                return app.stable_token, max(1, int(left))
        return self._issue(app, "stable")

    def _log_call(self, endpoint: str, token: str) -> None:
        """One line per API call: which token it carried and whether that token still worked
        on the platform at that moment (faults injected by tests do not change this)."""
        record = self._tokens.get(token)
        state = (
            record.state(time.time()) if record is not None else ("unknown" if token else "missing")
        )
        self._call_log.append(
            {
                "endpoint": endpoint,
                "appid": record.appid if record is not None else "",
                "token_kind": record.kind if record is not None else "",
                "token_state": state,
                "token": token[:24],  # enough to tell tokens apart; the log stays small
            }
        )

    def _check_ip(self, app: SandboxApp, ip: str) -> None:
        if app.ip_whitelist is not None and ip not in app.ip_whitelist:
            raise SandboxError(40164, f"invalid ip {ip} ipv6 ::ffff:{ip}, not in whitelist")

    def _authenticate(self, token: str, ip: str) -> SandboxApp:
        if not token:
            raise SandboxError(41001)
        record = self._tokens.get(token)
        if record is None or record.appid not in self._apps:
            raise SandboxError(40014)
        state = record.state(time.time())
        if state == "superseded":
            raise SandboxError(40001)
        if state == "expired":
            raise SandboxError(42001)
        app = self._apps[record.appid]
        self._check_ip(app, ip)
        return app

    # -- HTTP plumbing ------------------------------------------------------------------------

    async def _faults_for(self, endpoint: str, appid: str | None) -> Fault | None:
        """Apply latency faults, then return the error/drop fault to honour (if any)."""
        delay = 0.0
        chosen: Fault | None = None
        with self._lock:
            for fault in self._faults:
                if not fault.matches(endpoint, appid):
                    continue
                if fault.mode == "latency":
                    delay += fault.latency_ms / 1000
                elif chosen is not None:
                    continue
                else:
                    chosen = fault
                if fault.count is not None:
                    fault.count -= 1
            chaos = self._chaos
            token_call = endpoint in ("/cgi-bin/token", "/cgi-bin/stable_token")
            in_scope = endpoint in chaos.endpoints if chaos.endpoints else not token_call
            if chosen is None and in_scope and (chaos.transient_rate or chaos.drop_rate):
                roll = self._rng.random()
                if roll < chaos.transient_rate:
                    chosen = Fault(endpoint, "error", -1)
                elif roll < chaos.transient_rate + chaos.drop_rate:
                    chosen = Fault(endpoint, "drop")
        if delay:
            await asyncio.sleep(delay)
        return chosen

    async def _serve(
        self,
        endpoint: str,
        appid: str | None,
        work: Callable[[], Awaitable[dict[str, Any]]],
    ) -> Response:
        with self._lock:
            self._calls[(appid or "", endpoint)] += 1
        fault = await self._faults_for(endpoint, appid)
        if fault is not None and fault.mode == "error":
            return JSONResponse(SandboxError(fault.errcode, fault.errmsg).body())
        try:
            answer = await work()
        except SandboxError as exc:
            answer = exc.body()
        if fault is not None and fault.mode == "drop":
            return _DropConnection()
        return _json(answer)

    async def _http_token(self, request: Request) -> Response:
        query = request.query_params
        appid = query.get("appid", "")
        ip = request.client.host if request.client else ""

        async def work() -> dict[str, Any]:
            with self._lock:
                if query.get("grant_type") != "client_credential":
                    raise SandboxError(40002)
                app = self._apps.get(appid)
                if app is None:
                    raise SandboxError(40013)
                self._check_ip(app, ip)
                if not hmac_equal(query.get("secret", ""), app.secret):
                    raise SandboxError(40001, "AppSecret error")
                token, expires_in = self._issue(app, "classic")
                return {"access_token": token, "expires_in": expires_in}

        return await self._serve("/cgi-bin/token", appid or None, work)

    async def _http_stable_token(self, request: Request) -> Response:
        try:
            body, problem = await _json_body(request), None
        except SandboxError as exc:
            body, problem = {}, exc
        appid = str(body.get("appid", ""))
        ip = request.client.host if request.client else ""

        async def work() -> dict[str, Any]:
            if problem is not None:
                raise problem
            with self._lock:
                if body.get("grant_type") != "client_credential":
                    raise SandboxError(40002)
                if not appid:
                    raise SandboxError(41002)
                app = self._apps.get(appid)
                if app is None:
                    raise SandboxError(40013)
                self._check_ip(app, ip)
                if not body.get("secret"):
                    raise SandboxError(41004)
                if not hmac_equal(str(body.get("secret", "")), app.secret):
                    raise SandboxError(40125)
                force = body.get("force_refresh", False)
                if not isinstance(force, bool):
                    raise SandboxError(47001, "force_refresh must be a JSON boolean")
                token, expires_in = self._stable(app, force=force)
                return {"access_token": token, "expires_in": expires_in}

        return await self._serve("/cgi-bin/stable_token", appid or None, work)

    async def _http_api(self, request: Request) -> Response:
        endpoint = _route_path(request)
        token = request.query_params.get("access_token", "")
        ip = request.client.host if request.client else ""
        with self._lock:
            record = self._tokens.get(token)
            appid = record.appid if record else None
            self._log_call(endpoint, token)
        handler = self._handlers.get(endpoint)

        async def work() -> dict[str, Any]:
            if handler is None:
                raise SandboxError(48001, f"no such api {endpoint}")
            with self._lock:
                app = self._authenticate(token, ip)
            body: dict[str, Any] = {}
            media: tuple[str, bytes] | None = None
            if request.headers.get("content-type", "").startswith("multipart/form-data"):
                form = await request.form()
                upload = form.get("media")
                if isinstance(upload, UploadFile):
                    media = (upload.filename or "", await upload.read())
            elif request.method == "POST":
                body = await _json_body(request)
            with self._lock:
                return handler(_Call(app, request.query_params, body, media))

        return await self._serve(endpoint, appid, work)

    # -- API handlers (called with the lock held) ---------------------------------------------

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}{secrets.token_urlsafe(24)}"

    def _add_material(self, call: _Call) -> dict[str, Any]:
        kind = call.query.get("type", "")
        if call.media is None or not call.media[1]:
            raise SandboxError(41005)
        data = call.media[1]
        if kind == "thumb":
            if _image_kind(data) != "jpg":
                raise SandboxError(40005, "thumb must be JPG")
            if len(data) > THUMB_MAX_BYTES:
                raise SandboxError(40006, "thumb must be <= 64KB")
        elif kind == "image":
            if _image_kind(data) not in ("jpg", "png", "gif", "bmp"):
                raise SandboxError(40005)
            if len(data) > 10 * 1024 * 1024:
                raise SandboxError(40006)
        else:
            raise SandboxError(40004 if kind else 41005, f"invalid media type {kind!r}")
        media_id = self._new_id("thumb-" if kind == "thumb" else "image-")
        call.app.thumbs[media_id] = data
        answer: dict[str, Any] = {"media_id": media_id}
        if kind == "image":
            answer["url"] = f"http://{MMBIZ}/sandbox/{call.app.appid}/{media_id}/0"
        return answer

    def _uploadimg(self, call: _Call) -> dict[str, Any]:
        if call.media is None or not call.media[1]:
            raise SandboxError(41005)
        data = call.media[1]
        kind = _image_kind(data)
        if kind not in ("jpg", "png"):
            raise SandboxError(40005, "uploadimg accepts jpg/png only")
        if len(data) >= UPLOADIMG_MAX_BYTES:
            raise SandboxError(40006, "uploadimg must be < 1MB")
        url = f"http://{MMBIZ}/sandbox/{call.app.appid}/{secrets.token_hex(12)}/0?wx_fmt={kind}"
        call.app.images[url] = data
        return {"url": url, "errcode": 0, "errmsg": "ok"}

    def _validate_article(self, app: SandboxApp, article: Mapping[str, Any]) -> dict[str, Any]:
        title = str(article.get("title") or "")
        if not title:
            raise SandboxError(44003, "title missing")
        if len(title) > TITLE_MAX:
            raise SandboxError(45003)
        if len(str(article.get("author") or "")) > AUTHOR_MAX:
            raise SandboxError(45110)
        if len(str(article.get("digest") or "")) > DIGEST_MAX:
            raise SandboxError(45004)
        content = str(article.get("content") or "")
        if not content:
            raise SandboxError(44004)
        if len(content) >= CONTENT_MAX_CHARS or len(content.encode()) >= CONTENT_MAX_BYTES:
            raise SandboxError(45002)
        if len(str(article.get("content_source_url") or "").encode()) > LINK_MAX_BYTES:
            raise SandboxError(45005)
        if str(article.get("thumb_media_id") or "") not in app.thumbs:
            raise SandboxError(40007, "thumb_media_id")
        digest = str(article.get("digest") or "")
        stored = dict(article)
        stored["content"] = platform_clean(content)
        stored["digest"] = digest or _text(stored["content"])[:54]
        return stored

    def _draft_add(self, call: _Call) -> dict[str, Any]:
        articles = call.body.get("articles")
        if not isinstance(articles, list) or not articles:
            raise SandboxError(44003)
        if len(articles) > ARTICLES_MAX:
            raise SandboxError(45008)
        stored = [self._validate_article(call.app, a) for a in articles]
        media_id = self._new_id("draft-")
        call.app.drafts[media_id] = Draft(
            media_id, stored, [dict(a) for a in articles], int(time.time())
        )
        return {"media_id": media_id}

    def _draft_get(self, call: _Call) -> dict[str, Any]:
        draft = call.app.drafts.get(str(call.body.get("media_id", "")))
        if draft is None:
            raise SandboxError(40007)
        return {"news_item": [_news(a) for a in draft.articles]}

    def _draft_batchget(self, call: _Call) -> dict[str, Any]:
        offset, count = _page(call.body)
        drafts = sorted(call.app.drafts.values(), key=lambda d: d.update_time, reverse=True)
        no_content = bool(call.body.get("no_content"))
        items = [
            {
                "media_id": d.media_id,
                "content": {"news_item": [_news(a, no_content=no_content) for a in d.articles]},
                "update_time": d.update_time,
            }
            for d in drafts[offset : offset + count]
        ]
        return {"total_count": len(drafts), "item_count": len(items), "item": items}

    def _del_material(self, call: _Call) -> dict[str, Any]:
        """Permanent material deleted (as an editor may do in the account's back office)."""
        if call.app.thumbs.pop(str(call.body.get("media_id", "")), None) is None:
            raise SandboxError(40007)
        return {"errcode": 0, "errmsg": "ok"}

    def _draft_delete(self, call: _Call) -> dict[str, Any]:
        call.app.drafts.pop(str(call.body.get("media_id", "")), None)
        return {"errcode": 0, "errmsg": "ok"}

    def _new_publication(
        self,
        app: SandboxApp,
        media_id: str,
        articles: list[dict[str, Any]],
        received: list[dict[str, Any]],
    ) -> Publication:
        publish_id = next(self._ids)
        pub = Publication(
            publish_id=publish_id,
            msg_data_id=next(self._ids),
            media_id=media_id,
            articles=articles,
            received=received,
            create_time=int(time.time()),
            ready_at=time.time() + self.publish_delay,
            seq=next(self._seq),
            deleted=[False] * len(articles),
        )
        app.publications[publish_id] = pub
        app.submitted_media.add(media_id)
        return pub

    def _submit(self, call: _Call) -> dict[str, Any]:
        media_id = str(call.body.get("media_id", ""))
        if self.draft_leaves == "submit":
            draft = call.app.drafts.pop(media_id, None)
        else:  # the draft stays in the box until its job ends (and may be submitted again)
            draft = call.app.drafts.get(media_id)
        if draft is None:
            raise SandboxError(40007)
        pub = self._new_publication(call.app, draft.media_id, draft.articles, draft.received)
        timer = threading.Timer(self.publish_delay, self._finish_later, (call.app, pub))
        timer.daemon = True
        self._timers.append(timer)
        timer.start()
        return {
            "errcode": 0,
            "errmsg": "ok",
            "publish_id": self._publish_id(pub.publish_id),
            "msg_data_id": pub.msg_data_id,
        }

    # -- datacube (图文分析) ---------------------------------------------------------------------

    def set_article_day(self, appid: str, msgid: str, day: date, **counts: int) -> None:
        """What readers added to article ``msgid`` on ``day`` (``DATACUBE_FIELDS`` names)."""
        unknown = set(counts) - set(DATACUBE_FIELDS)
        if unknown:
            raise ValueError(f"unknown datacube fields {sorted(unknown)}")
        with self._lock:
            days = self._app(appid).article_days.setdefault(msgid, {})
            days.setdefault(day.isoformat(), {}).update({k: int(v) for k, v in counts.items()})

    def datacube_today(self) -> date:
        return datetime.now(SHANGHAI).date() + timedelta(days=self.datacube_days_ahead)

    def _sent_articles(self, app: SandboxApp) -> list[tuple[str, str, date]]:
        """(msgid, title, day sent) of every article published or mass-sent and not deleted."""
        sent: list[tuple[str, str, date]] = []
        for pub in app.publications.values():
            if pub.status != 0:
                continue
            day = datetime.fromtimestamp(pub.create_time, SHANGHAI).date()
            for index, article in enumerate(pub.articles):
                if not pub.deleted[index]:
                    sent.append((f"{pub.msg_data_id}_{index + 1}", article.get("title", ""), day))
        for job in app.mass_jobs.values():
            if job.status != "SEND_SUCCESS":
                continue
            day = datetime.fromtimestamp(job.ready_at, SHANGHAI).date()
            for index, article in enumerate(job.articles):
                sent.append((f"{job.msg_data_id}_{index + 1}", article.get("title", ""), day))
        return sent

    def _added(self, app: SandboxApp, msgid: str, day: date) -> dict[str, int]:
        given = app.article_days.get(msgid, {}).get(day.isoformat())
        if given is not None:
            return {name: given.get(name, 0) for name in DATACUBE_FIELDS}
        reads = self.reads_per_day
        users = reads * 4 // 5
        return {
            "int_page_read_user": users,
            "int_page_read_count": reads,
            "ori_page_read_user": 0,
            "ori_page_read_count": 0,
            "share_user": reads // 12,
            "share_count": reads // 10,
            "add_to_fav_user": reads // 25,
            "add_to_fav_count": reads // 20,
        }

    def _article_total(self, call: _Call) -> dict[str, Any]:
        """getarticletotal ``{begin_date, end_date}`` (one day, at most yesterday): each article
        sent that day, with running totals per ``stat_date`` for up to 7 days."""
        begin, end = _datacube_range(call.body)
        today = self.datacube_today()
        if begin != end or end >= today:
            raise SandboxError(61501)
        items = []
        for msgid, title, sent in self._sent_articles(call.app):
            if sent != begin:
                continue
            totals = dict.fromkeys(DATACUBE_FIELDS, 0)
            details = []
            for offset in range(DATACUBE_DAYS):
                day = sent + timedelta(days=offset)
                if day >= today:
                    break
                for name, value in self._added(call.app, msgid, day).items():
                    totals[name] += value
                details.append({"stat_date": day.isoformat(), "target_user": 1000, **totals})
            items.append(
                {"ref_date": sent.isoformat(), "msgid": msgid, "title": title, "details": details}
            )
        return {"list": items}

    def _publish_id(self, publish_id: int) -> int | str:
        return publish_id if self.publish_id_as_number else str(publish_id)

    def _finish(
        self, app: SandboxApp, pub: Publication, outcome: tuple[int, list[int]] | None = None
    ) -> bool:
        """End a publishing job if it is due; True if this call ended it."""
        if pub.status != 1 or time.time() < pub.ready_at:
            return False
        status, fail_idx = outcome or (app.outcomes.popleft() if app.outcomes else (0, []))
        pub.status, pub.fail_idx = status, fail_idx
        app.drafts.pop(pub.media_id, None)  # gone from the box once the job has ended
        if status == 0:
            pub.article_id = self._new_id("article-")
        return True

    def _finish_later(self, app: SandboxApp, pub: Publication) -> None:
        with self._lock:
            self._finish(app, pub)
            deliver = not pub.callback_sent and pub.status != 1
            pub.callback_sent = pub.callback_sent or deliver
        if deliver:
            self._deliver_callback(app, pub)

    def _publish_get(self, call: _Call) -> dict[str, Any]:
        raw = call.body.get("publish_id")
        try:
            pub = call.app.publications[int(str(raw))]
        except (KeyError, ValueError):
            raise SandboxError(40007, "invalid publish_id") from None
        if self._finish(call.app, pub) and not pub.callback_sent:
            pub.callback_sent = True
            threading.Thread(
                target=self._deliver_callback, args=(call.app, pub), daemon=True
            ).start()
        answer: dict[str, Any] = {
            "publish_id": self._publish_id(pub.publish_id),
            "publish_status": pub.status,
        }
        if pub.article_id:
            answer["article_id"] = pub.article_id
            urls = pub.urls()
            answer["article_detail"] = {
                "count": len(urls),
                "item": [{"idx": i + 1, "article_url": u} for i, u in enumerate(urls)],
            }
        answer["fail_idx"] = pub.fail_idx if pub.status in (2, 4) else []
        return answer

    def _by_article(self, app: SandboxApp, article_id: str) -> Publication:
        for pub in app.publications.values():
            if pub.article_id and pub.article_id == article_id:
                return pub
        raise SandboxError(53600)

    def _publish_delete(self, call: _Call) -> dict[str, Any]:
        pub = self._by_article(call.app, str(call.body.get("article_id", "")))
        index = int(call.body.get("index") or 0)
        if index < 0 or index > len(pub.articles):
            raise SandboxError(40007, "invalid index")
        if index == 0:
            pub.deleted = [True] * len(pub.articles)
        else:
            pub.deleted[index - 1] = True
        if all(pub.deleted):
            pub.status = 5
        return {"errcode": 0, "errmsg": "ok"}

    def _publish_batchget(self, call: _Call) -> dict[str, Any]:
        offset, count = _page(call.body)
        no_content = bool(call.body.get("no_content"))
        listed = sorted(
            (p for p in call.app.publications.values() if p.article_id and p.status in (0, 5)),
            key=lambda p: (p.create_time, p.seq),
            reverse=True,
        )
        items = []
        for pub in listed[offset : offset + count]:
            news = [
                {**_news(a, no_content=no_content), "url": url, "is_deleted": deleted}
                for a, url, deleted in zip(pub.articles, pub.urls(), pub.deleted, strict=True)
            ]
            items.append(
                {
                    "article_id": pub.article_id,
                    "content": {
                        "news_item": news,
                        "create_time": pub.create_time,
                        "update_time": pub.create_time,
                    },
                    "update_time": pub.create_time,
                }
            )
        return {"total_count": len(listed), "item_count": len(items), "item": items}

    def _getarticle(self, call: _Call) -> dict[str, Any]:
        pub = self._by_article(call.app, str(call.body.get("article_id", "")))
        news = [
            {**_news(a), "url": url, "is_deleted": deleted}
            for a, url, deleted in zip(pub.articles, pub.urls(), pub.deleted, strict=True)
        ]
        return {"news_item": news}

    def _sendall(self, call: _Call) -> dict[str, Any]:
        app, body = call.app, call.body
        if body.get("msgtype") != "mpnews":
            raise SandboxError(40008 if body.get("msgtype") else 47001, "msgtype")
        media_id = str((body.get("mpnews") or {}).get("media_id", ""))
        if media_id not in app.drafts and media_id not in app.submitted_media:
            raise SandboxError(40007)
        clientmsgid = str(body.get("clientmsgid", ""))
        if clientmsgid and clientmsgid in app.mass_sends:
            raise SandboxError(45065, msg_id=app.mass_sends[clientmsgid])
        now = datetime.now(UTC).astimezone(SHANGHAI)
        sent = [datetime.fromtimestamp(t, SHANGHAI) for t in app.mass_send_times]
        if app.kind == "subscription":
            used, allowed = sum(1 for s in sent if s.date() == now.date()), 1
        else:
            used = sum(1 for s in sent if (s.year, s.month) == (now.year, now.month))
            allowed = 4
        if used >= allowed:
            raise SandboxError(45028)
        msg_id = next(self._ids)
        app.mass_send_times.append(time.time())
        if clientmsgid:
            app.mass_sends[clientmsgid] = msg_id
        draft = app.drafts.get(media_id)
        job = MassJob(
            msg_id=msg_id,
            msg_data_id=next(self._ids),
            media_id=media_id,
            clientmsgid=clientmsgid,
            articles=list(draft.articles) if draft else [],
            ready_at=time.time() + self.publish_delay,
        )
        app.mass_jobs[msg_id] = job
        timer = threading.Timer(self.publish_delay, self._finish_mass_later, (app, job))
        timer.daemon = True
        self._timers.append(timer)
        timer.start()
        return {
            "errcode": 0,
            "errmsg": "send job submission success",
            "msg_id": msg_id,
            "msg_data_id": job.msg_data_id,
        }

    def _finish_mass(self, app: SandboxApp, job: MassJob) -> bool:
        """End a mass-send job if it is due; True if this call ended it."""
        if job.status != "SENDING" or time.time() < job.ready_at:
            return False
        job.event_status = app.mass_outcomes.popleft() if app.mass_outcomes else "send success"
        job.status = "SEND_SUCCESS" if job.event_status == "send success" else "SEND_FAIL"
        return True

    def _finish_mass_later(self, app: SandboxApp, job: MassJob) -> None:
        with self._lock:
            self._finish_mass(app, job)
            deliver = not job.callback_sent and job.status != "SENDING"
            job.callback_sent = job.callback_sent or deliver
        if deliver:
            self._deliver_mass_callback(app, job)

    def _mass_job(self, call: _Call) -> MassJob:
        try:
            return call.app.mass_jobs[int(str(call.body.get("msg_id")))]
        except (KeyError, ValueError):
            raise SandboxError(40007, "invalid msg_id") from None

    def _mass_get(self, call: _Call) -> dict[str, Any]:
        job = self._mass_job(call)
        if self._finish_mass(call.app, job) and not job.callback_sent:
            job.callback_sent = True
            threading.Thread(
                target=self._deliver_mass_callback, args=(call.app, job), daemon=True
            ).start()
        return {"msg_id": job.msg_id, "msg_status": job.status}

    def _mass_delete(self, call: _Call) -> dict[str, Any]:
        job = self._mass_job(call)
        job.status = "DELETE"
        return {"errcode": 0, "errmsg": "ok"}

    def _custom_send(self, call: _Call) -> dict[str, Any]:
        app, body = call.app, call.body
        touser = str(body.get("touser", ""))
        msgtype = str(body.get("msgtype", ""))
        if msgtype != "text":
            raise SandboxError(40008 if msgtype else 47001, "msgtype (the sandbox: text only)")
        content = str((body.get("text") or {}).get("content", ""))
        if not content:
            raise SandboxError(44004)
        last = app.last_user_message.get(touser)
        if last is None:
            raise SandboxError(40003)
        if time.time() - last > CUSTOM_WINDOW_SECONDS:
            raise SandboxError(45015)
        app.custom_messages.append(
            {"touser": touser, "msgtype": msgtype, "content": content, "at": time.time()}
        )
        return {"errcode": 0, "errmsg": "ok"}

    # -- callback delivery --------------------------------------------------------------------

    def _deliver_callback(self, app: SandboxApp, pub: Publication) -> None:
        with self._lock:
            url = app.callback_url
            xml = publish_event_xml(
                to_user=app.original_id,
                publish_id=pub.publish_id,
                status=pub.status,
                article_id=pub.article_id,
                urls=pub.urls() if pub.article_id else [],
                fail_idx=pub.fail_idx,
            )
        if not url:
            return
        self._post_event(app, url, xml, {"publish_id": pub.publish_id, "url": url})

    def _post_event(self, app: SandboxApp, url: str, xml: bytes, record: dict[str, Any]) -> None:
        """POST one event to the app's callback URL in its message mode; record the answer."""
        params, body = self._wire(app, xml, openid=app.original_id)
        try:
            response = httpx.post(
                url,
                params=params,
                content=body,
                headers={"Content-Type": "text/xml"},
                timeout=self.callback_timeout,
            )
            record |= {"status_code": response.status_code, "body": response.text[:200]}
        except httpx.HTTPError as exc:
            record["error"] = type(exc).__name__
        with self._callback_done:
            app.callbacks.append(record)
            self._callback_done.notify_all()

    def _wire(self, app: SandboxApp, xml: bytes, *, openid: str) -> tuple[dict[str, str], bytes]:
        """Query string and body of a callback POST in the app's message mode: plaintext
        (``signature``), compatible (plaintext fields + ``<Encrypt>``) or safe (``<Encrypt>``
        only); the last two add ``encrypt_type=aes`` and ``msg_signature``."""
        with self._lock:
            token, mode, aes_key = app.callback_token, app.callback_mode, app.encoding_aes_key
        timestamp, nonce = str(int(time.time())), secrets.token_hex(8)
        params = {"signature": _sign(token, timestamp, nonce), "timestamp": timestamp}
        params |= {"nonce": nonce, "openid": openid}
        if mode == "plaintext":
            return params, xml
        body, msg_signature = encrypted_envelope(
            xml,
            token=token,
            encoding_aes_key=aes_key,
            appid=app.appid,
            to_user=app.original_id,
            timestamp=timestamp,
            nonce=nonce,
            compatible=mode == "compatible",
        )
        return params | {"encrypt_type": "aes", "msg_signature": msg_signature}, body

    def _deliver_mass_callback(self, app: SandboxApp, job: MassJob) -> None:
        with self._lock:
            url = app.callback_url
            ok = job.status == "SEND_SUCCESS"
            xml = mass_event_xml(
                to_user=app.original_id,
                msg_id=job.msg_id,
                status=job.event_status or "send success",
                total=100 if ok else 0,
                sent=100 if ok else 0,
                urls=job.urls() if ok else [],
            )
        if not url:
            return
        self._post_event(app, url, xml, {"msg_id": job.msg_id, "url": url})

    # -- control plane over HTTP --------------------------------------------------------------

    async def _http_finish_jobs(self, request: Request) -> Response:
        try:
            ended = await asyncio.to_thread(self.finish_jobs, request.path_params["appid"])
        except KeyError as exc:
            return _json({"error": str(exc)}, status=404)
        return _json({"ended": ended})

    async def _http_mass_outcome(self, request: Request) -> Response:
        body = await request.json()
        self.queue_mass_outcome(request.path_params["appid"], str(body["status"]))
        return _json({"ok": True})

    async def _http_add_app(self, request: Request) -> Response:
        body = await request.json()
        whitelist = body.get("ip_whitelist")
        self.add_app(
            str(body["appid"]),
            str(body["secret"]),
            kind=body.get("kind", "subscription"),
            ip_whitelist=set(whitelist) if whitelist is not None else None,
        )
        return _json({"ok": True})

    async def _http_state(self, request: Request) -> Response:
        try:
            return _json(self.state(request.path_params["appid"]))
        except KeyError:
            return _json({"error": "no such app"}, status=404)

    async def _http_callback(self, request: Request) -> Response:
        body = await request.json()
        try:
            self.set_callback(
                request.path_params["appid"],
                str(body["url"]),
                str(body["token"]),
                mode=body.get("mode", "plaintext"),
                encoding_aes_key=str(body.get("encoding_aes_key", "")),
            )
        except (ValueError, KeyError) as exc:
            return _json({"error": str(exc)}, status=400)
        return _json({"ok": True})

    async def _http_publication(self, request: Request) -> Response:
        body = await request.json()
        made = self.add_publication(
            request.path_params["appid"],
            title=str(body["title"]),
            content=str(body.get("content", "<p>…</p>")),
            author=str(body.get("author", "")),
        )
        return _json(made)

    async def _http_article_day(self, request: Request) -> Response:
        """POST ``{"msgid", "day": "YYYY-MM-DD", <datacube field>: n, ...}``: what readers
        added to an article that day."""
        body = await request.json()
        try:
            counts = {k: int(v) for k, v in body.items() if k not in ("msgid", "day")}
            self.set_article_day(
                request.path_params["appid"],
                str(body["msgid"]),
                date.fromisoformat(str(body["day"])),
                **counts,
            )
        except (KeyError, TypeError, ValueError) as exc:
            return _json({"error": str(exc)}, 400)
        return _json({"ok": True})

    async def _http_user_message(self, request: Request) -> Response:
        """POST ``{"openid", "content", "msg_type"?, "pic_url"?, "event"?, "created_at"?}``."""
        body = await request.json()
        try:
            record = await asyncio.to_thread(
                self.send_user_message,
                request.path_params["appid"],
                str(body["openid"]),
                str(body.get("content", "")),
                msg_type=body.get("msg_type", "text"),
                pic_url=str(body.get("pic_url", "")),
                event=str(body.get("event", "")),
                created_at=body.get("created_at"),
            )
        except KeyError as exc:
            return _json({"error": str(exc)}, status=404)
        return _json(record)

    async def _http_outcome(self, request: Request) -> Response:
        body = await request.json()
        self.queue_outcome(request.path_params["appid"], int(body["status"]), body.get("fail_idx"))
        return _json({"ok": True})

    async def _http_expire(self, request: Request) -> Response:
        self.expire_tokens(request.path_params["appid"])
        return _json({"ok": True})

    async def _http_fault(self, request: Request) -> Response:
        if request.method == "DELETE":
            self.clear_faults()
            return _json({"ok": True})
        body = await request.json()
        self.add_fault(
            Fault(
                endpoint=str(body["endpoint"]),
                mode=body.get("mode", "error"),
                errcode=int(body.get("errcode", -1)),
                errmsg=str(body.get("errmsg", "")),
                count=body.get("count", 1),
                latency_ms=int(body.get("latency_ms", 0)),
                appid=body.get("appid"),
            )
        )
        return _json({"ok": True})

    async def _http_chaos(self, request: Request) -> Response:
        body = await request.json()
        self.set_chaos(
            Chaos(
                transient_rate=float(body.get("transient_rate", 0)),
                drop_rate=float(body.get("drop_rate", 0)),
                endpoints=tuple(body.get("endpoints", ())),
                seed=body.get("seed"),
            )
        )
        return _json({"ok": True})

    async def _http_config(self, request: Request) -> Response:
        try:
            self.configure(**(await request.json()))
        except ValueError as exc:
            return _json({"error": str(exc)}, status=400)
        return _json({"ok": True})

    async def _http_calls(self, request: Request) -> Response:
        return _json(self.calls(request.query_params.get("appid")))

    async def _http_call_log(self, request: Request) -> Response:
        return _json(self.call_log(request.path_params["appid"]))

    async def _http_reset(self, request: Request) -> Response:
        self.reset()
        return _json({"ok": True})


# ---------------------------------------------------------------------------------------------


def _route_path(request: Request) -> str:
    """The path inside this app (without the prefix it is mounted at, e.g. ``/wechat``)."""
    path: str = request.scope["path"]
    root: str = request.scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


def hmac_equal(a: str, b: str) -> bool:
    return secrets.compare_digest(a.encode(), b.encode())


def _json(data: Any, status: int = 200) -> Response:
    return Response(
        json.dumps(data, ensure_ascii=False),
        status_code=status,
        media_type="application/json; charset=utf-8",
    )


async def _json_body(request: Request) -> dict[str, Any]:
    """Parse a JSON body like the platform: raw UTF-8 only, ``\\uXXXX`` escapes refused."""
    raw = await request.body()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise SandboxError(47001, "body is not UTF-8") from None
    if _UNICODE_ESCAPE.search(text):
        raise SandboxError(47001, "\\uXXXX escapes are not decoded; send raw UTF-8") from None
    try:
        data = json.loads(text) if text.strip() else {}
    except ValueError:
        raise SandboxError(47001) from None
    if not isinstance(data, dict):
        raise SandboxError(47001)
    return data


def _datacube_range(body: Mapping[str, Any]) -> tuple[date, date]:
    try:
        return (
            date.fromisoformat(str(body["begin_date"])),
            date.fromisoformat(str(body["end_date"])),
        )
    except (KeyError, ValueError):
        raise SandboxError(61500) from None


def _page(body: Mapping[str, Any]) -> tuple[int, int]:
    try:
        offset, count = int(body.get("offset", 0)), int(body.get("count", 20))
    except (TypeError, ValueError):
        raise SandboxError(47001) from None
    if offset < 0 or not 1 <= count <= 20:
        raise SandboxError(47001, "count must be 1..20")
    return offset, count


def _text(content: str) -> str:
    return " ".join(re.sub(r"<[^>]*>", " ", content).split())


def _news(article: Mapping[str, Any], *, no_content: bool = False) -> dict[str, Any]:
    news = {
        key: article.get(key, "")
        for key in ("title", "author", "digest", "content", "content_source_url", "thumb_media_id")
    }
    news["need_open_comment"] = article.get("need_open_comment", 0)
    news["only_fans_can_comment"] = article.get("only_fans_can_comment", 0)
    if no_content:
        news.pop("content")
    return news


def publish_event_xml(
    *,
    to_user: str,
    publish_id: int,
    status: int,
    article_id: str,
    urls: list[str],
    fail_idx: list[int],
) -> bytes:
    """The ``PUBLISHJOBFINISH`` event the platform POSTs to the account's callback URL."""
    items = "".join(
        f"<item><idx>{i + 1}</idx><article_url><![CDATA[{u}]]></article_url></item>"
        for i, u in enumerate(urls)
    )
    fails = "".join(f"<fail_idx>{i}</fail_idx>" for i in fail_idx)
    detail = f"<article_detail><count>{len(urls)}</count>{items}</article_detail>" if urls else ""
    article = f"<article_id><![CDATA[{xml_escape(article_id)}]]></article_id>" if article_id else ""
    return (
        "<xml>"
        f"<ToUserName><![CDATA[{xml_escape(to_user)}]]></ToUserName>"
        "<FromUserName><![CDATA[oSandboxSystem]]></FromUserName>"
        f"<CreateTime>{int(time.time())}</CreateTime>"
        "<MsgType><![CDATA[event]]></MsgType>"
        "<Event><![CDATA[PUBLISHJOBFINISH]]></Event>"
        "<PublishEventInfo>"
        f"<publish_id>{publish_id}</publish_id>"
        f"<publish_status>{status}</publish_status>"
        f"{article}{detail}{fails}"
        "</PublishEventInfo>"
        "</xml>"
    ).encode()


def mass_event_xml(
    *, to_user: str, msg_id: int, status: str, total: int, sent: int, urls: list[str]
) -> bytes:
    """The ``MASSSENDJOBFINISH`` event the platform POSTs when a mass send has ended."""
    items = "".join(
        f"<item><ArticleIdx>{i + 1}</ArticleIdx><ArticleUrl><![CDATA[{u}]]></ArticleUrl></item>"
        for i, u in enumerate(urls)
    )
    result = (
        f"<ArticleUrlResult><Count>{len(urls)}</Count><ResultList>{items}</ResultList>"
        "</ArticleUrlResult>"
        if urls
        else ""
    )
    return (
        "<xml>"
        f"<ToUserName><![CDATA[{xml_escape(to_user)}]]></ToUserName>"
        "<FromUserName><![CDATA[oSandboxSystem]]></FromUserName>"
        f"<CreateTime>{int(time.time())}</CreateTime>"
        "<MsgType><![CDATA[event]]></MsgType>"
        "<Event><![CDATA[MASSSENDJOBFINISH]]></Event>"
        f"<MsgID>{msg_id}</MsgID>"
        f"<Status><![CDATA[{xml_escape(status)}]]></Status>"
        f"<TotalCount>{total}</TotalCount><FilterCount>{total}</FilterCount>"
        f"<SentCount>{sent}</SentCount><ErrorCount>{total - sent}</ErrorCount>"
        f"{result}"
        "</xml>"
    ).encode()


def user_message_xml(
    *,
    to_user: str,
    openid: str,
    create_time: int,
    msg_type: str,
    content: str = "",
    pic_url: str = "",
    event: str = "",
    msg_id: int = 0,
) -> bytes:
    """A user's message (``text``, ``image``) or event as the platform POSTs it (plaintext mode)."""
    parts = [
        f"<ToUserName><![CDATA[{xml_escape(to_user)}]]></ToUserName>",
        f"<FromUserName><![CDATA[{xml_escape(openid)}]]></FromUserName>",
        f"<CreateTime>{create_time}</CreateTime>",
        f"<MsgType><![CDATA[{xml_escape(msg_type)}]]></MsgType>",
    ]
    cdata = content.replace("]]>", "]]]]><![CDATA[>")
    if msg_type == "text":
        parts.append(f"<Content><![CDATA[{cdata}]]></Content>")
    elif msg_type == "image":
        parts.append(f"<PicUrl><![CDATA[{xml_escape(pic_url)}]]></PicUrl>")
        parts.append(f"<MediaId><![CDATA[media-{msg_id}]]></MediaId>")
    else:
        parts.append(f"<Event><![CDATA[{xml_escape(event)}]]></Event>")
    if msg_type != "event":
        parts.append(f"<MsgId>{msg_id}</MsgId>")
    return ("<xml>" + "".join(parts) + "</xml>").encode()
