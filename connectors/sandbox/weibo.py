"""A protocol-faithful Sina Weibo simulator (ASGI), with fault injection over HTTP.

Platform endpoints (``platforms.md``): ``/2/statuses/share.json``, ``/2/statuses/destroy.json``,
``/2/statuses/user_timeline.json``, ``/2/account/rate_limit_status.json``,
``/2/comments/to_me.json``, ``/2/comments/show.json``, ``/2/comments/reply.json``,
``/oauth2/authorize`` (auto-approves) and ``/oauth2/access_token``.

Control endpoints under ``/_sandbox/`` (documented in ``docs/connectors.md``): faults, latency,
chaos, config, clock, reset, tokens, users' posts, comments "by the public" and call counters. State sits behind one lock:
handlers run on the server's event loop while tests call the Python helpers from their thread.
"""

from __future__ import annotations

import asyncio
import ipaddress
import random
import secrets
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from connectors.sandbox.asgi import Receive, Scope, Send, drop_after, serve_droppable
from connectors.weibo_rules import (
    TEXT_MAX,
    URL_RE,
    find_hashtags,
    image_type,
    status_fingerprint,
    weibo_length,
)

BEIJING = timezone(timedelta(hours=8))
CREATED_AT_FORMAT = "%a %b %d %H:%M:%S %z %Y"
MB = 1024 * 1024
FIRST_STATUS_ID = 4_900_000_000_000_000
FIRST_UID = 1_000_000_001
FIRST_COMMENT_ID = 4_950_000_000_000_000
ENDPOINTS = (
    "share",
    "destroy",
    "user_timeline",
    "count",
    "rate_limit_status",
    "authorize",
    "access_token",
    "comments_to_me",
    "comments_show",
    "comments_reply",
)

# The platform's messages for the codes the simulator produces by itself.
MESSAGES = {
    10001: "system error",
    10006: "source paramter(appkey) is missing",
    10014: "Insufficient app permissions!",
    10016: "miss required parameter (status) , see doc for more info.",
    10017: "text not find domain!",
    10023: "User requests out of rate limit!",
    20005: "Unsupported image type, only suport JPG, GIF, PNG!",
    20006: "Image size too large.",
    20008: "Content is null!",
    20012: "Text too long, please input text less than 140 characters!",
    20016: "Out of limit!",
    20018: "Contains illegal website!",
    20019: "Repeat content!",
    20021: "Contains illegal content!",
    20031: "Test and verify!",
    20032: "Update success, while server slow now, please wait 1-2 minutes",
    20101: "Target weibo does not exist!",
    20104: "Target comment does not exist!",
    21317: "Token rejected",
    21321: "Applications over the unaudited use restrictions!",
    21324: "invalid_client",
    21325: "invalid_grant",
    21327: "expired_token",
    21328: "unsupported_grant_type",
    21332: "invalid_access_token",
}
HASHTAG_CODE = 20021  # share.json refuses #topic#: reported as illegal content
NO_SAFE_LINK_CODE = 10017  # no URL inside the app's safe domain: "text not find domain!"
UNAUDITED_CODE = 21321  # the app is unaudited and the user is not one of its test accounts
CAPTCHA_CODE = 20031  # the user must pass a captcha on weibo.com before posting again
NO_PERMISSION_CODE = 10014  # the app lacks the permission for this API (comments since 2020)
TEST_USERS_MAX = 15
COUNT_IDS_MAX = 100  # statuses/count.json takes at most 100 ids
COMMENT_ENDPOINTS = frozenset({"comments_to_me", "comments_show", "comments_reply"})
WRITE_ENDPOINTS = frozenset({"share", "comments_reply"})


@dataclass
class WeiboSandboxConfig:
    """Knobs of the simulator; all can be changed over HTTP (``POST /_sandbox/config``)."""

    app_key: str = "govhub-sandbox"
    app_secret: str = "govhub-sandbox-secret"
    safe_domains: tuple[str, ...] = ("127.0.0.1",)  # host names (and their subdomains)
    posts_per_hour: int = 30
    rate_limit_code: int = 10023  # or 20016 ("posting too fast")
    user_hits_per_hour: int = 150
    duplicate_window_seconds: float = 24 * 3600
    token_ttl_seconds: int = 30 * 24 * 3600
    pic_max_bytes: int = 5 * MB
    error_code_as_string: bool = False
    errors_with_http_200: bool = False
    # share.json's ``rip`` (the acting person's real IP) is required by the current documentation
    require_rip: bool = True
    # An unaudited app serves only its developer and up to 15 test accounts (others: 21321).
    app_audited: bool = True
    test_uids: tuple[str, ...] = ()
    # The app's permission for the comment APIs (since 2020 ordinary apps often lack it: 10014).
    comments_permission: bool = True
    # Users who must pass a captcha on weibo.com before they may post again (20031).
    captcha_uids: tuple[str, ...] = ()
    # statuses/count: readers' reposts, comments and likes grow this fast per hour of a post's
    # age (times 1, 2 and 5), on top of what tests set (``set_counts``) and real comments.
    counts_per_hour: float = 0.0


@dataclass
class SandboxPost:
    id: int
    uid: str
    text: str
    created_at: float
    source: str = "api"  # "api" (through an app) or "platform" (typed on weibo.com)
    pic_type: str = ""
    pic_bytes: int = 0
    rip: str = ""  # the client IP the app reported for the person behind the post
    # readers' counts set by tests (``POST /_sandbox/counts``); statuses/count adds growth
    reposts: int = 0
    comments: int = 0
    attitudes: int = 0


@dataclass
class SandboxComment:
    """A comment under a status: by the public, or the owner's reply to one (``reply_to``)."""

    id: int
    status_id: int
    uid: str
    text: str
    created_at: float
    reply_to: int | None = None
    rip: str = ""


@dataclass
class Fault:
    """The next ``times`` calls to ``endpoint`` (or ``*``) fail.

    ``code``: answer with this error_code. ``accept``: perform the call (store the post) first,
    then answer with ``code``. ``drop``: perform the call, then close the connection without
    answering.
    """

    endpoint: str = "*"
    code: int | None = None
    times: int = 1
    http_status: int | None = None
    accept: bool = False
    drop: bool = False
    message: str = ""


@dataclass
class _Token:
    uid: str
    expires_at: float
    revoked: bool = False


@dataclass
class _Code:
    uid: str
    redirect_uri: str
    expires_at: float


class SandboxError(Exception):
    """A Weibo error answer, raised inside handlers."""

    def __init__(self, code: int, message: str = "", http_status: int | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.message = message or MESSAGES.get(code, "error")
        self.http_status = http_status


def _default_http_status(code: int) -> int:
    if 21300 <= code < 21400:
        return 401
    if code in (10022, 10023, 10024):
        return 403
    if 10001 <= code <= 10011:
        return 500
    return 400


class WeiboSandbox:
    """The simulator: an ASGI app plus Python helpers for tests (same state, same lock)."""

    def __init__(self, config: WeiboSandboxConfig | None = None, *, seed: int = 0) -> None:
        self.config = config or WeiboSandboxConfig()
        self._lock = threading.RLock()
        self._seed = seed
        self._reset_state()
        self._app = Starlette(
            routes=[
                Route("/2/statuses/share.json", self._share, methods=["POST"]),
                Route("/2/statuses/destroy.json", self._destroy, methods=["POST"]),
                Route("/2/statuses/user_timeline.json", self._user_timeline, methods=["GET"]),
                Route(
                    "/2/account/rate_limit_status.json", self._rate_limit_status, methods=["GET"]
                ),
                Route("/2/statuses/count.json", self._count, methods=["GET"]),
                Route("/2/comments/to_me.json", self._comments_to_me, methods=["GET"]),
                Route("/2/comments/show.json", self._comments_show, methods=["GET"]),
                Route("/2/comments/reply.json", self._comments_reply, methods=["POST"]),
                Route("/oauth2/authorize", self._authorize, methods=["GET"]),
                Route("/oauth2/access_token", self._access_token, methods=["POST"]),
                Route("/_sandbox/reset", self._http_reset, methods=["POST"]),
                Route("/_sandbox/config", self._http_config, methods=["GET", "POST"]),
                Route("/_sandbox/faults", self._http_faults, methods=["GET", "POST", "DELETE"]),
                Route("/_sandbox/latency", self._http_latency, methods=["POST"]),
                Route("/_sandbox/chaos", self._http_chaos, methods=["POST"]),
                Route("/_sandbox/clock", self._http_clock, methods=["POST"]),
                Route("/_sandbox/tokens", self._http_tokens, methods=["POST"]),
                Route("/_sandbox/tokens/revoke", self._http_revoke, methods=["POST"]),
                Route("/_sandbox/calls", self._http_calls, methods=["GET"]),
                Route("/_sandbox/posts", self._http_all_posts, methods=["GET"]),
                Route("/_sandbox/users/{uid}/posts", self._http_posts, methods=["GET", "POST"]),
                Route("/_sandbox/comments", self._http_comments, methods=["GET", "POST"]),
                Route("/_sandbox/counts", self._http_counts, methods=["POST"]),
            ]
        )

    def __repr__(self) -> str:
        return f"WeiboSandbox(posts={sum(len(p) for p in self._posts.values())})"

    # -- ASGI -----------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await serve_droppable(self._app, scope, receive, send)

    # -- state and Python helpers ---------------------------------------------------------------

    def _reset_state(self) -> None:
        with self._lock:
            self._posts: dict[str, list[SandboxPost]] = {}
            self._users: dict[str, str] = {}
            self._tokens: dict[str, _Token] = {}
            self._codes: dict[str, _Code] = {}
            self._calls: Counter[str] = Counter()
            self._post_times: dict[str, list[float]] = {}
            self._user_calls: dict[str, list[float]] = {}
            self._faults: list[Fault] = []
            self._latency: dict[str, float] = {}
            self._transient_rate = 0.0
            self._drop_rate = 0.0
            self._random = random.Random(self._seed)
            self._offset = 0.0
            self._next_id = FIRST_STATUS_ID
            self._next_uid = FIRST_UID
            self._comments: list[SandboxComment] = []
            self._next_cid = FIRST_COMMENT_ID

    def reset(self, *, config: bool = False) -> None:
        """Forget every post, token, fault and counter (and the config when asked)."""
        with self._lock:
            self._reset_state()
            if config:
                self.config = WeiboSandboxConfig()

    def now(self) -> float:
        return time.time() + self._offset

    def advance(self, seconds: float) -> None:
        """Move the simulator's clock forward (token expiry, rate-limit windows)."""
        with self._lock:
            self._offset += seconds

    def user(self, uid: str | None = None, screen_name: str = "") -> str:
        """Create (or return) a user; a fresh uid when none is given."""
        with self._lock:
            if uid is None:
                uid = str(self._next_uid)
                self._next_uid += 1
            self._users.setdefault(uid, screen_name or f"用户{uid[-4:]}")
            self._posts.setdefault(uid, [])
            return uid

    def mint_token(
        self, uid: str | None = None, *, expires_in: float | None = None
    ) -> tuple[str, str]:
        """A valid access token for ``uid`` (created if needed): ``(token, uid)``."""
        uid = self.user(uid)
        token = "2.00" + secrets.token_hex(16)
        ttl = self.config.token_ttl_seconds if expires_in is None else expires_in
        with self._lock:
            self._tokens[token] = _Token(uid, self.now() + ttl)
        return token, uid

    def revoke(self, token: str) -> None:
        with self._lock:
            if token in self._tokens:
                self._tokens[token].revoked = True

    def create_post(self, uid: str, text: str) -> SandboxPost:
        """A status made directly on the platform (not through the hub)."""
        self.user(uid)
        return self._store(uid, text, source="platform")

    def posts(self, uid: str) -> list[SandboxPost]:
        """Every stored status of ``uid``, oldest first."""
        with self._lock:
            return list(self._posts.get(uid, []))

    def add_comment(
        self, status_id: int | str, text: str, *, uid: str | None = None, screen_name: str = ""
    ) -> SandboxComment:
        """A comment "by the public" under ``status_id`` (its author created when needed)."""
        author = self.user(uid, screen_name)
        with self._lock:
            if self._status(int(status_id)) is None:
                raise KeyError(f"no status {status_id}")
            return self._store_comment(int(status_id), author, text, None)

    def comments(self, status_id: int | str) -> list[SandboxComment]:
        """Every comment under ``status_id`` (replies included), oldest first."""
        with self._lock:
            return [c for c in self._comments if c.status_id == int(status_id)]

    def replies_to(self, comment_id: int | str) -> list[SandboxComment]:
        """The replies posted under the comment ``comment_id``, oldest first."""
        with self._lock:
            return [c for c in self._comments if c.reply_to == int(comment_id)]

    def set_counts(
        self, status_id: int | str, *, reposts: int = 0, comments: int = 0, attitudes: int = 0
    ) -> None:
        """Readers' counts of a status (what statuses/count reports, plus growth and real
        comments)."""
        with self._lock:
            post = self._status(int(status_id))
            if post is None:
                raise ValueError(f"no status {status_id}")
            post.reposts, post.comments, post.attitudes = reposts, comments, attitudes

    def counts(self, post: SandboxPost) -> dict[str, int]:
        """What statuses/count answers for ``post`` now."""
        hours = max(0.0, self.now() - post.created_at) / 3600
        grow = self.config.counts_per_hour * hours
        with self._lock:
            commented = sum(
                1 for c in self._comments if c.status_id == post.id and c.uid != post.uid
            )
        return {
            "reposts": post.reposts + int(grow),
            "comments": post.comments + commented + int(grow * 2),
            "attitudes": post.attitudes + int(grow * 5),
        }

    def _status(self, status_id: int) -> SandboxPost | None:
        with self._lock:
            for posts in self._posts.values():
                for post in posts:
                    if post.id == status_id:
                        return post
        return None

    def _store_comment(
        self, status_id: int, uid: str, text: str, reply_to: int | None
    ) -> SandboxComment:
        with self._lock:
            comment = SandboxComment(self._next_cid, status_id, uid, text, self.now(), reply_to)
            self._next_cid += 1
            self._comments.append(comment)
            return comment

    def calls(self, endpoint: str) -> int:
        with self._lock:
            return self._calls[endpoint]

    def add_fault(self, fault: Fault) -> None:
        if fault.endpoint != "*" and fault.endpoint not in ENDPOINTS:
            raise ValueError(f"unknown endpoint {fault.endpoint!r}; one of {ENDPOINTS}")
        with self._lock:
            self._faults.append(fault)

    def set_latency(self, endpoint: str, ms: float) -> None:
        if endpoint != "*" and endpoint not in ENDPOINTS:
            raise ValueError(f"unknown endpoint {endpoint!r}; one of {ENDPOINTS}")
        with self._lock:
            self._latency[endpoint] = ms

    def set_chaos(self, transient_rate: float, drop_rate: float, seed: int | None = None) -> None:
        """Fail ``transient_rate`` of calls with 10001; drop ``drop_rate`` after performing them."""
        with self._lock:
            self._transient_rate = transient_rate
            self._drop_rate = drop_rate
            if seed is not None:
                self._random = random.Random(seed)

    def _store(
        self, uid: str, text: str, *, source: str, pic: tuple[str, int] = ("", 0)
    ) -> SandboxPost:
        with self._lock:
            post = SandboxPost(self._next_id, uid, text, self.now(), source, pic[0], pic[1])
            self._next_id += 1
            self._posts.setdefault(uid, []).append(post)
            if source == "api":
                self._post_times.setdefault(uid, []).append(post.created_at)
            return post

    # -- request plumbing -----------------------------------------------------------------------

    async def _begin(self, endpoint: str) -> Fault | None:
        """Count the call, apply latency, and pick the fault (or chaos) for it."""
        with self._lock:
            self._calls[endpoint] += 1
            delay = self._latency.get(endpoint, self._latency.get("*", 0.0))
            fault = None
            for candidate in self._faults:
                if candidate.endpoint in (endpoint, "*") and candidate.times > 0:
                    candidate.times -= 1
                    fault = candidate
                    break
            self._faults = [f for f in self._faults if f.times > 0]
            if fault is None and endpoint not in ("authorize",):
                roll = self._random.random()
                if roll < self._transient_rate:
                    fault = Fault(endpoint, code=10001)
                elif roll < self._transient_rate + self._drop_rate:
                    fault = Fault(endpoint, drop=True)
        if delay:
            await asyncio.sleep(delay / 1000)
        if fault is not None and not (fault.accept or fault.drop) and fault.code is not None:
            raise SandboxError(fault.code, fault.message, fault.http_status)
        return fault

    def _finish(self, request: Request, fault: Fault | None, answer: Response) -> Response:
        """The answer once the call has taken effect: or the fault's error, or nothing."""
        if fault is not None and fault.drop:
            drop_after(request)
            return Response(status_code=500)
        if fault is not None and fault.accept and fault.code is not None:
            return self._error_response(
                request, SandboxError(fault.code, fault.message, fault.http_status)
            )
        return answer

    def _error_response(self, request: Request, error: SandboxError) -> JSONResponse:
        code: int | str = str(error.code) if self.config.error_code_as_string else error.code
        status = error.http_status or _default_http_status(error.code)
        if self.config.errors_with_http_200 and error.http_status is None:
            status = 200
        body = {"request": request.url.path, "error_code": code, "error": error.message}
        return JSONResponse(body, status_code=status)

    async def _params(self, request: Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query_params)
        if request.method == "POST":
            form = await request.form(max_part_size=64 * MB)
            for key, value in form.multi_items():
                params[key] = value
        return params

    def _uid_for(self, request: Request, params: dict[str, Any]) -> str:
        header = request.headers.get("authorization", "")
        token = header[7:].strip() if header.lower().startswith("oauth2 ") else ""
        token = token or str(params.get("access_token", ""))
        if not token:
            raise SandboxError(10006)
        with self._lock:
            info = self._tokens.get(token)
            if info is None:
                raise SandboxError(21332)
            if info.revoked:
                raise SandboxError(21317)
            if info.expires_at <= self.now():
                raise SandboxError(21327)
            if (
                not self.config.app_audited
                and info.uid not in self.config.test_uids[:TEST_USERS_MAX]
            ):
                raise SandboxError(UNAUDITED_CODE)
            self._user_calls.setdefault(info.uid, []).append(self.now())
            return info.uid

    def _require_comments_permission(self) -> None:
        if not self.config.comments_permission:
            raise SandboxError(NO_PERMISSION_CODE)

    def _require_no_captcha(self, uid: str) -> None:
        if uid in self.config.captcha_uids:
            raise SandboxError(CAPTCHA_CODE)

    def _rip(self, params: dict[str, Any], *, required: bool) -> str:
        """The ``rip`` parameter: 10016 when required and missing, 10008 when not an IP."""
        rip = str(params.get("rip", "") or "").strip()
        if not rip:
            if required:
                raise SandboxError(10016, "miss required parameter (rip) , see doc for more info.")
            return ""
        try:
            ipaddress.ip_address(rip)
        except ValueError:
            raise SandboxError(10008, "param error, rip must be an IP address") from None
        return rip

    def _status_json(self, post: SandboxPost) -> dict[str, Any]:
        created = datetime.fromtimestamp(post.created_at, BEIJING).strftime(CREATED_AT_FORMAT)
        with self._lock:
            name = self._users.get(post.uid, "")
        status: dict[str, Any] = {
            "created_at": created,
            "id": post.id,
            "idstr": str(post.id),
            "mid": str(post.id),
            "text": post.text,
            "source": "govhub" if post.source == "api" else "微博 weibo.com",
            "user": {"id": int(post.uid), "idstr": post.uid, "screen_name": name},
        }
        if post.pic_type:
            status["thumbnail_pic"] = f"https://wx1.sinaimg.cn/thumbnail/{post.id}.jpg"
        return status

    def _has_safe_link(self, text: str) -> bool:
        for url in URL_RE.findall(text):
            host = (urlsplit(url).hostname or "").lower()
            if any(host == d or host.endswith("." + d) for d in self.config.safe_domains):
                return True
        return False

    def _window_reset(self, uid: str) -> tuple[int, float]:
        """Posts left in the hourly window of ``uid`` and seconds until a slot frees up."""
        now = self.now()
        with self._lock:
            times = [t for t in self._post_times.get(uid, []) if t > now - 3600]
            self._post_times[uid] = times
        remaining = max(0, self.config.posts_per_hour - len(times))
        reset = (times[0] + 3600 - now) if times else 3600.0
        return remaining, max(1.0, reset)

    async def _handle(
        self,
        request: Request,
        endpoint: str,
        work: Callable[[dict[str, Any]], Awaitable[Response]],
    ) -> Response:
        try:
            params = await self._params(request)  # the whole request arrives, then any latency
            fault = await self._begin(endpoint)
            answer = await work(params)
        except SandboxError as error:
            return self._error_response(request, error)
        return self._finish(request, fault, answer)

    # -- platform endpoints ---------------------------------------------------------------------

    async def _share(self, request: Request) -> Response:
        return await self._handle(request, "share", lambda p: self._do_share(request, p))

    async def _do_share(self, request: Request, params: dict[str, Any]) -> Response:
        uid = self._uid_for(request, params)
        if "status" not in params:
            raise SandboxError(10016)
        rip = self._rip(params, required=self.config.require_rip)
        self._require_no_captcha(uid)
        text = str(params["status"])
        if not text.strip():
            raise SandboxError(20008)
        if weibo_length(text) > TEXT_MAX:
            raise SandboxError(20012)
        if find_hashtags(text):
            raise SandboxError(HASHTAG_CODE)
        if not self._has_safe_link(text):
            raise SandboxError(NO_SAFE_LINK_CODE)
        pic: tuple[str, int] = ("", 0)
        upload = params.get("pic")
        if isinstance(upload, UploadFile):
            data = await upload.read()
            if not data:
                raise SandboxError(20008)
            kind = image_type(data)
            if kind not in ("image/jpeg", "image/png", "image/gif"):
                raise SandboxError(20005)
            if len(data) > self.config.pic_max_bytes:
                raise SandboxError(20006)
            pic = (kind, len(data))
        fingerprint = status_fingerprint(text)
        since = self.now() - self.config.duplicate_window_seconds
        with self._lock:  # check and store atomically: workers post concurrently
            remaining, _ = self._window_reset(uid)
            if remaining <= 0:
                raise SandboxError(self.config.rate_limit_code)
            for post in self._posts.get(uid, []):
                if post.created_at >= since and status_fingerprint(post.text) == fingerprint:
                    raise SandboxError(20019)
            post = self._store(uid, text, source="api", pic=pic)
            post.rip = rip
        return JSONResponse(self._status_json(post))

    async def _destroy(self, request: Request) -> Response:
        async def work(params: dict[str, Any]) -> Response:
            uid = self._uid_for(request, params)
            with self._lock:
                posts = self._posts.get(uid, [])
                match = [p for p in posts if str(p.id) == str(params.get("id", ""))]
                if not match:
                    raise SandboxError(20101)
                posts.remove(match[0])
            return JSONResponse(self._status_json(match[0]))

        return await self._handle(request, "destroy", work)

    async def _user_timeline(self, request: Request) -> Response:
        async def work(params: dict[str, Any]) -> Response:
            uid = self._uid_for(request, params)
            since_id = _int_param(params, "since_id", 0)
            max_id = _int_param(params, "max_id", 0)
            count = min(max(_int_param(params, "count", 20), 1), 100)
            page = max(_int_param(params, "page", 1), 1)
            with self._lock:
                selected = [
                    p
                    for p in reversed(self._posts.get(uid, []))
                    if p.id > since_id and (not max_id or p.id <= max_id)
                ]
            chunk = selected[(page - 1) * count : page * count]
            return JSONResponse(
                {
                    "statuses": [self._status_json(p) for p in chunk],
                    "total_number": len(selected),
                    "previous_cursor": 0,
                    "next_cursor": chunk[-1].id if len(selected) > page * count else 0,
                }
            )

        return await self._handle(request, "user_timeline", work)

    async def _count(self, request: Request) -> Response:
        """statuses/count.json ``ids`` (comma-separated, at most 100): reposts, comments and
        likes (``attitudes``) of each status that still exists, as a JSON array."""

        async def work(params: dict[str, Any]) -> Response:
            self._uid_for(request, params)
            raw = [part.strip() for part in str(params.get("ids", "")).split(",") if part.strip()]
            if not raw:
                raise SandboxError(10016, "miss required parameter (ids)")
            if len(raw) > COUNT_IDS_MAX or not all(part.isdigit() for part in raw):
                raise SandboxError(10017, "parameter (ids)'s value invalid")
            answer = []
            for part in raw:
                post = self._status(int(part))
                if post is not None:
                    answer.append({"id": post.id, "idstr": str(post.id), **self.counts(post)})
            return JSONResponse(answer)

        return await self._handle(request, "count", work)

    async def _rate_limit_status(self, request: Request) -> Response:
        async def work(params: dict[str, Any]) -> Response:
            uid = self._uid_for(request, params)
            remaining, reset = self._window_reset(uid)
            now = self.now()
            with self._lock:
                calls = [t for t in self._user_calls.get(uid, []) if t > now - 3600]
            hour_reset = 3600 - now % 3600
            reset_at = datetime.fromtimestamp(now + reset, BEIJING).strftime("%Y-%m-%d %H:%M:%S")
            return JSONResponse(
                {
                    "ip_limit": 10000,
                    "limit_time_unit": "HOURS",
                    "remaining_ip_hits": 10000,
                    "remaining_user_hits": max(0, self.config.user_hits_per_hour - len(calls)),
                    "reset_time": datetime.fromtimestamp(now + hour_reset, BEIJING).strftime(
                        "%Y-%m-%d %H:%M:%S"
                    ),
                    "reset_time_in_seconds": int(hour_reset),
                    "user_limit": self.config.user_hits_per_hour,
                    "api_rate_limits": [
                        {
                            "api": "/statuses/share",
                            "limit": self.config.posts_per_hour,
                            "limit_time_unit": "HOURS",
                            "remaining_hits": remaining,
                            "reset_time": reset_at,
                            "reset_time_in_seconds": int(reset),
                        }
                    ],
                }
            )

        return await self._handle(request, "rate_limit_status", work)

    def _comment_json(self, comment: SandboxComment) -> dict[str, Any]:
        created = datetime.fromtimestamp(comment.created_at, BEIJING).strftime(CREATED_AT_FORMAT)
        with self._lock:
            name = self._users.get(comment.uid, "")
            status = self._status(comment.status_id)
            parent = next((c for c in self._comments if c.id == comment.reply_to), None)
        body: dict[str, Any] = {
            "created_at": created,
            "id": comment.id,
            "idstr": str(comment.id),
            "mid": str(comment.id),
            "text": comment.text,
            "user": {"id": int(comment.uid), "idstr": comment.uid, "screen_name": name},
            "status": self._status_json(status) if status else {"id": comment.status_id},
        }
        if parent is not None:
            body["reply_comment"] = {"id": parent.id, "idstr": str(parent.id), "text": parent.text}
        return body

    def _comment_page(self, selected: list[SandboxComment], params: dict[str, Any]) -> JSONResponse:
        since_id = _int_param(params, "since_id", 0)
        max_id = _int_param(params, "max_id", 0)
        count = min(max(_int_param(params, "count", 50), 1), 200)
        page = max(_int_param(params, "page", 1), 1)
        newest_first = [
            c for c in reversed(selected) if c.id > since_id and (not max_id or c.id <= max_id)
        ]
        chunk = newest_first[(page - 1) * count : page * count]
        return JSONResponse(
            {
                "comments": [self._comment_json(c) for c in chunk],
                "total_number": len(newest_first),
                "previous_cursor": 0,
                "next_cursor": chunk[-1].id if len(newest_first) > page * count else 0,
            }
        )

    async def _comments_to_me(self, request: Request) -> Response:
        async def work(params: dict[str, Any]) -> Response:
            uid = self._uid_for(request, params)
            self._require_comments_permission()
            with self._lock:
                own = {p.id for p in self._posts.get(uid, [])}
                selected = [c for c in self._comments if c.status_id in own and c.uid != uid]
            return self._comment_page(selected, params)

        return await self._handle(request, "comments_to_me", work)

    async def _comments_show(self, request: Request) -> Response:
        async def work(params: dict[str, Any]) -> Response:
            self._uid_for(request, params)
            self._require_comments_permission()
            status_id = _int_param(params, "id", 0)
            if self._status(status_id) is None:
                raise SandboxError(20101)
            return self._comment_page(self.comments(status_id), params)

        return await self._handle(request, "comments_show", work)

    async def _comments_reply(self, request: Request) -> Response:
        async def work(params: dict[str, Any]) -> Response:
            uid = self._uid_for(request, params)
            self._require_comments_permission()
            for name in ("cid", "id", "comment"):
                if name not in params:
                    raise SandboxError(10016, f"miss required parameter ({name})")
            rip = self._rip(params, required=False)
            self._require_no_captcha(uid)
            text = str(params["comment"])
            if not text.strip():
                raise SandboxError(20008)
            if weibo_length(text) > TEXT_MAX:
                raise SandboxError(20012)
            status_id, cid = _int_param(params, "id", 0), _int_param(params, "cid", 0)
            with self._lock:
                if self._status(status_id) is None:
                    raise SandboxError(20101)
                target = next((c for c in self._comments if c.id == cid), None)
                if target is None or target.status_id != status_id:
                    raise SandboxError(20104)
                reply = self._store_comment(status_id, uid, text, cid)
                reply.rip = rip
            return JSONResponse(self._comment_json(reply))

        return await self._handle(request, "comments_reply", work)

    async def _authorize(self, request: Request) -> Response:
        async def work(params: dict[str, Any]) -> Response:
            if params.get("client_id") != self.config.app_key:
                raise SandboxError(21324)
            redirect_uri = str(params.get("redirect_uri", ""))
            if not redirect_uri or params.get("response_type", "code") != "code":
                raise SandboxError(21323, "invalid_request")
            uid = self.user(params.get("uid") or None)
            code = secrets.token_hex(16)
            with self._lock:
                self._codes[code] = _Code(uid, redirect_uri, self.now() + 600)
            query = {"code": code}
            if "state" in params:
                query["state"] = str(params["state"])
            parts = urlsplit(redirect_uri)
            joined = "&".join(q for q in (parts.query, urlencode(query)) if q)
            return RedirectResponse(urlunsplit(parts._replace(query=joined)), status_code=302)

        return await self._handle(request, "authorize", work)

    async def _access_token(self, request: Request) -> Response:
        async def work(params: dict[str, Any]) -> Response:
            if (
                params.get("client_id") != self.config.app_key
                or params.get("client_secret") != self.config.app_secret
            ):
                raise SandboxError(21324)
            if params.get("grant_type") != "authorization_code":
                raise SandboxError(21328)
            with self._lock:
                grant = self._codes.pop(str(params.get("code", "")), None)
            if (
                grant is None
                or grant.expires_at <= self.now()
                or grant.redirect_uri != params.get("redirect_uri")
            ):
                raise SandboxError(21325)
            token, uid = self.mint_token(grant.uid)
            ttl = self.config.token_ttl_seconds
            return JSONResponse(
                {
                    "access_token": token,
                    "remind_in": str(ttl),
                    "expires_in": ttl,
                    "uid": uid,
                    "isRealName": "true",
                }
            )

        return await self._handle(request, "access_token", work)

    # -- control endpoints (/_sandbox/...) ------------------------------------------------------

    async def _http_reset(self, request: Request) -> Response:
        self.reset(config=request.query_params.get("config") == "1")
        return JSONResponse({"ok": True})

    async def _http_config(self, request: Request) -> Response:
        if request.method == "POST":
            changes = await request.json()
            known = {f.name for f in fields(WeiboSandboxConfig)}
            unknown = set(changes) - known
            if unknown:
                return JSONResponse({"error": f"unknown keys {sorted(unknown)}"}, 400)
            with self._lock:
                for key, value in changes.items():
                    if key in ("safe_domains", "test_uids", "captcha_uids"):
                        value = tuple(str(v) for v in value)
                    setattr(self.config, key, value)
        return JSONResponse(asdict(self.config) | {"app_secret": "***"})

    async def _http_faults(self, request: Request) -> Response:
        if request.method == "DELETE":
            with self._lock:
                self._faults = []
        elif request.method == "POST":
            spec = await request.json()
            try:
                self.add_fault(Fault(**spec))
            except (TypeError, ValueError) as exc:
                return JSONResponse({"error": str(exc)}, 400)
        with self._lock:
            return JSONResponse({"faults": [asdict(f) for f in self._faults]})

    async def _http_latency(self, request: Request) -> Response:
        spec = await request.json()
        try:
            self.set_latency(str(spec.get("endpoint", "*")), float(spec.get("ms", 0)))
        except (TypeError, ValueError) as exc:
            return JSONResponse({"error": str(exc)}, 400)
        return JSONResponse({"ok": True})

    async def _http_chaos(self, request: Request) -> Response:
        spec = await request.json()
        self.set_chaos(
            float(spec.get("transient_rate", 0)), float(spec.get("drop_rate", 0)), spec.get("seed")
        )
        return JSONResponse({"ok": True})

    async def _http_clock(self, request: Request) -> Response:
        spec = await request.json()
        self.advance(float(spec.get("advance", 0)))
        return JSONResponse({"now": self.now()})

    async def _http_tokens(self, request: Request) -> Response:
        spec = await request.json() if await request.body() else {}
        expires_in = spec.get("expires_in")
        token, uid = self.mint_token(
            spec.get("uid"), expires_in=None if expires_in is None else float(expires_in)
        )
        return JSONResponse({"access_token": token, "uid": uid})

    async def _http_revoke(self, request: Request) -> Response:
        self.revoke(str((await request.json()).get("access_token", "")))
        return JSONResponse({"ok": True})

    async def _http_calls(self, request: Request) -> Response:
        with self._lock:
            return JSONResponse(dict(self._calls))

    async def _http_all_posts(self, request: Request) -> Response:
        with self._lock:
            uids = list(self._posts)
        return JSONResponse({uid: [asdict(p) for p in self.posts(uid)] for uid in uids})

    async def _http_posts(self, request: Request) -> Response:
        uid = request.path_params["uid"]
        if request.method == "POST":
            post = self.create_post(uid, str((await request.json())["text"]))
            return JSONResponse(self._status_json(post), status_code=201)
        return JSONResponse({"posts": [asdict(p) for p in self.posts(uid)]})

    async def _http_comments(self, request: Request) -> Response:
        """POST ``{"status_id", "text", "uid"?, "screen_name"?}``: a comment by the public;
        GET ``?status_id=``: every comment under it (replies carry ``reply_to``)."""
        if request.method == "POST":
            spec = await request.json()
            try:
                comment = self.add_comment(
                    spec["status_id"],
                    str(spec["text"]),
                    uid=spec.get("uid"),
                    screen_name=str(spec.get("screen_name", "")),
                )
            except (KeyError, ValueError) as exc:
                return JSONResponse({"error": str(exc)}, 400)
            return JSONResponse(self._comment_json(comment), status_code=201)
        status_id = request.query_params.get("status_id", "0")
        return JSONResponse({"comments": [asdict(c) for c in self.comments(status_id)]})

    async def _http_counts(self, request: Request) -> Response:
        """POST ``{"status_id", "reposts"?, "comments"?, "attitudes"?}``: readers' counts."""
        spec = await request.json()
        try:
            self.set_counts(
                spec["status_id"],
                reposts=int(spec.get("reposts", 0)),
                comments=int(spec.get("comments", 0)),
                attitudes=int(spec.get("attitudes", 0)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            return JSONResponse({"error": str(exc)}, 400)
        return JSONResponse({"ok": True})


def _int_param(params: dict[str, Any], name: str, default: int) -> int:
    try:
        return int(str(params.get(name, default)))
    except ValueError:
        raise SandboxError(10017, f"parameter ({name})'s value invalid") from None
