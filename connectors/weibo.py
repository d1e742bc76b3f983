"""Sina Weibo (新浪微博) connector: statuses/share.json, destroy, user_timeline and OAuth2.

Facts and the error table come from ``platforms.md``; ``docs/connectors.md`` describes the
behaviour. Key decisions:

- The access token travels in the ``Authorization: OAuth2 <token>`` header, never in a URL, so
  it cannot reach httpx's request log.
- 20032 ("update success, server slow") is a success without a status object: ``publish``
  returns :class:`Pending` with a ref naming the status' fingerprint, and ``poll`` finds the post
  in ``user_timeline``. It is never re-sent.
- 20017/20019/20111 (similar/duplicate content) and a connection lost after the request was sent
  raise :class:`Unconfirmed`: the engine looks in ``recent`` (or :meth:`find_published`) first.
- Only connect-level failures (nothing sent) are retried here, by tenacity, with an explicit
  stop and wait.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlencode

import httpx
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from connectors.base import (
    Account,
    Checkpoint,
    Content,
    CopyMetrics,
    CopyRef,
    CredentialField,
    Limits,
    MetricField,
    MetricsSpec,
    Pending,
    PlatformInfo,
    Problem,
    Published,
    PublishOutcome,
    RemotePost,
    Rendition,
    Wiring,
)
from connectors.errors import (
    AccountBlocked,
    AuthExpired,
    CapabilityUnavailable,
    ConnectorError,
    Misconfigured,
    RateLimited,
    Rejected,
    Transient,
    Unconfirmed,
)
from connectors.markup import markdown_to_text, template_environment
from connectors.weibo_rules import (
    ELLIPSIS,
    TEXT_MAX,
    contains_url_under,
    find_hashtags,
    fit_status,
    image_type,
    neutralise_hashtags,
    status_fingerprint,
    weibo_length,
)

PLATFORM = "weibo"
log = logging.getLogger(__name__)

MB = 1024 * 1024
TEMPLATE = "channels/weibo.txt.j2"
CREATED_AT_FORMAT = "%a %b %d %H:%M:%S %z %Y"  # Wed Oct 24 23:49:17 +0800 2012
PENDING_PREFIX = "20032:"

TRANSIENT_CODES = frozenset({"10001", "10002", "10003", "10009", "10010", "10011"})
RATE_LIMIT_CODES = frozenset({"10022", "10023", "10024"})
POSTING_TOO_FAST = "20016"
UPDATED_SERVER_SLOW = "20032"
DUPLICATE_CODES = frozenset({"20017", "20019", "20111"})
CONTENT_CODES = frozenset({"20005", "20006", "20008", "20012", "20018", "20020", "20021"})
AUTH_CODES = frozenset({"21315", "21316", "21317", "21319", "21327", "21332"})
CONFIG_CODES = frozenset({"10006", "10014", "21323", "21324"})
ALREADY_DELETED = "20101"
UNAUDITED_APP = "21321"  # the app is not audited and the account is not one of its testers
CAPTCHA = "20031"  # the account must pass a captcha on weibo.com
NO_PERMISSION = "10014"  # on the comment APIs: the app lacks the permission (since 2020)
BAD_PARAMETER = "10017"  # "text not find domain!" when the status lacks a safe-domain link
MISSING_PARAMETER = "10016"
COMMENTS = "comments"  # the capability 10014 switches off (comments/to_me, comments/reply)
COUNT_IDS_MAX = 100  # statuses/count.json takes at most 100 ids per call
# statuses/count answers reposts, comments and attitudes (likes) as running totals, now.
METRICS = MetricsSpec(
    fields=(
        MetricField("reposts", "转发", "Reposts"),
        MetricField("comments", "评论", "Comments"),
        MetricField("likes", "点赞", "Likes"),
    ),
    lag_days=0,
    window_days=0,
    batch=COUNT_IDS_MAX,
)
_COUNT_KEYS = {"reposts": "reposts", "comments": "comments", "likes": "attitudes"}

POSTING_TOO_FAST_BACKOFF = 600.0
SYSTEM_BUSY_BACKOFF = 30.0
RATE_LIMIT_FALLBACK = timedelta(hours=1)
DEFAULT_TIMEOUT = httpx.Timeout(connect=5.0, read=20.0, write=20.0, pool=5.0)

_SECRET_PARAMS = re.compile(r"((?:access_token|client_secret|code)=)[^&\s\"']+")
_CONNECT_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)

Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    """``text`` with token/secret URL parameters and the given secret values replaced by ***."""
    text = _SECRET_PARAMS.sub(r"\1***", text)
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def rip_of(account: Account) -> str:
    """The acting person's IP the hub put on the account (``extra["rip"]``), if it is an IP."""
    rip = str(account.extra.get("rip", "") or "").strip()
    try:
        return str(ipaddress.ip_address(rip)) if rip else ""
    except ValueError:
        log.warning("weibo: ignoring rip %r (not an IP address)", rip)
        return ""


def parse_created_at(value: object) -> datetime | None:
    """``Wed Oct 24 23:49:17 +0800 2012`` as an aware UTC datetime (None when unparseable)."""
    try:
        return datetime.strptime(str(value), CREATED_AT_FORMAT).astimezone(UTC)
    except ValueError:
        return None


@dataclass(frozen=True)
class WeiboToken:
    """A user access token from the authorization-code flow."""

    access_token: str = field(repr=False)
    expires_at: datetime
    uid: str


@dataclass(frozen=True)
class WeiboRateLimit:
    """``account/rate_limit_status``: calls left in the window and when it resets (UTC)."""

    remaining_user_hits: int | None
    reset_at: datetime
    remaining_posts: int | None = None


@dataclass(frozen=True)
class WeiboComment:
    """A comment on one of the account's statuses (``comments/to_me``): the inbox's input."""

    remote_id: str
    post_id: str
    author_id: str
    author_name: str
    text: str
    created_at: datetime
    post_text: str = ""
    post_url: str = ""


class WeiboConnector:
    """Publishes statuses with a link to the release hall; see the module docstring."""

    platform: ClassVar[str] = PLATFORM
    limits: ClassVar[Limits] = Limits(
        text_max=TEXT_MAX,
        image_max_bytes=5 * MB,
        image_types=("image/jpeg", "image/gif", "image/png"),
        posts_per_hour=30,
    )
    info: ClassVar[PlatformInfo] = PlatformInfo(
        key=PLATFORM,
        label_zh="微博",
        label_en="Weibo",
        audit_label_zh="政务微博",
        audit_label_en="Weibo account",
        credentials=(
            CredentialField("access_token", label="access token"),
            CredentialField("expires_at", secret=False, required=False),
            CredentialField("uid", secret=False, required=False),
        ),
        settings_keys=("weibo_api_base", "weibo_app_key", "weibo_app_secret", "weibo_fallback_rip"),
        templates=("weibo.txt.j2",),
        order=10,
        api_base_setting="weibo_api_base",
        official_api_base="https://api.weibo.com",
        acts_for_person=True,
    )

    def __init__(
        self,
        client: httpx.Client,
        *,
        api_base: str,
        public_base_url: str,
        app_key: str = "",
        app_secret: str = "",
        templates_dir: str | Path | None = None,
        web_base: str = "https://weibo.com",
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        connect_attempts: int = 3,
        clock: Clock = _utcnow,
    ) -> None:
        self._client = client
        self.api_base = api_base.rstrip("/")
        self.public_base_url = public_base_url.rstrip("/")
        self.app_key = app_key
        self._app_secret = app_secret
        self._templates = template_environment(templates_dir)
        self.web_base = web_base.rstrip("/")
        self._timeout = timeout
        self._connect_attempts = max(1, connect_attempts)
        self._clock = clock

    @classmethod
    def from_wiring(cls, wiring: Wiring) -> WeiboConnector:
        settings = wiring.settings
        return cls(
            wiring.client,
            api_base=settings.weibo_api_base,
            public_base_url=settings.public_base_url,
            app_key=settings.weibo_app_key,
            app_secret=settings.weibo_app_secret,
        )

    def __repr__(self) -> str:
        return f"WeiboConnector(api_base={self.api_base!r})"

    # -- rendering ------------------------------------------------------------------------------

    def render(self, content: Content) -> Rendition:
        """The status: lead text shortened to fit, ``#`` neutralised, the hall link last."""
        link = content.link
        template = self._templates.get_template(TEMPLATE)

        def fill(title: str) -> Callable[[str], str]:
            def layout(text: str) -> str:
                status = template.render(
                    title=title,
                    text=text,
                    link=link,
                    org_name=content.org_name,
                    urgency=content.urgency,
                ).strip()
                return neutralise_hashtags(status)

            return layout

        override = content.overrides.get("weibo.text", "").strip()
        if override:
            status = fill("")(override) if link and link not in override else override
            text = neutralise_hashtags(status)
            shortened = False
        elif content.summary.strip():
            fitted = fit_status(content.summary, fill(""))
            text, shortened = fitted.text, fitted.shortened
        else:
            title, body = content.title.strip(), markdown_to_text(content.body)
            fitted = fit_status(body, fill(title))
            if not fitted.lead.rstrip(ELLIPSIS) and body:
                # The title alone leaves no room: run title and body together as one lead.
                fitted = fit_status(f"【{title}】{body}" if title else body, fill(""))
            text, shortened = fitted.text, fitted.shortened
        return Rendition(
            platform=PLATFORM,
            text=text,
            title=content.title,
            link=link,
            images=content.images[:1],
            meta={"shortened": "1" if shortened else "0"},
        )

    def check(self, rendition: Rendition) -> list[Problem]:
        """What share.json would refuse, in words an editor can act on."""
        problems: list[Problem] = []
        text = rendition.text
        length = weibo_length(text)
        if not text.strip():
            problems.append(Problem("weibo.empty", "微博正文不能为空", "text"))
        elif length > TEXT_MAX:
            problems.append(
                Problem(
                    "weibo.too_long",
                    f"微博正文超过{TEXT_MAX}字（当前{length}字），请删减或使用摘要",
                    "text",
                )
            )
        if not rendition.link or rendition.link not in text:
            problems.append(
                Problem(
                    "weibo.missing_link",
                    "微博正文必须包含稿件在发布厅的链接（微博只接受安全域名内的链接），请保留链接",
                    "text",
                )
            )
        elif not contains_url_under(text, self.public_base_url):
            problems.append(
                Problem(
                    "weibo.missing_link",
                    f"微博正文中的链接必须位于发布厅域名 {self.public_base_url} 之下",
                    "text",
                )
            )
        if tags := find_hashtags(text):
            problems.append(
                Problem(
                    "weibo.hashtag",
                    f"微博正文不能包含话题标签（{'、'.join(tags[:3])}），请去掉成对的#号",
                    "text",
                )
            )
        for image in rendition.images[:1]:
            problems.extend(self._check_image(image.path))
        return problems

    def _check_image(self, path: str) -> list[Problem]:
        try:
            size = Path(path).stat().st_size
            with Path(path).open("rb") as handle:
                kind = image_type(handle.read(16))
        except OSError:
            return [
                Problem("weibo.image_missing", "配图文件不存在或无法读取，请重新上传", "images")
            ]
        problems = []
        limit = self.limits.image_max_bytes or 0
        if size > limit:
            problems.append(
                Problem(
                    "weibo.image_too_large",
                    f"微博配图不能超过{limit // MB}MB（当前{size / MB:.1f}MB），请压缩后重新上传",
                    "images",
                )
            )
        if kind not in self.limits.image_types:
            problems.append(
                Problem(
                    "weibo.image_type",
                    "微博配图只支持JPEG、PNG、GIF格式，请转换后重新上传",
                    "images",
                )
            )
        return problems

    # -- publishing -----------------------------------------------------------------------------

    def publish(
        self,
        account: Account,
        rendition: Rendition,
        *,
        idempotency_key: str,
        checkpoint: Checkpoint | None = None,
    ) -> PublishOutcome:
        """POST statuses/share.json. Weibo has no idempotency key: see the module docstring."""
        started = self._clock()
        data = {"status": rendition.text}
        if rip := rip_of(account):
            data["rip"] = rip
        files = None
        if rendition.images:
            image = rendition.images[0]
            try:
                payload = Path(image.path).read_bytes()
            except OSError:
                raise Rejected("配图文件不存在或无法读取，请重新上传", platform=PLATFORM) from None
            kind = image_type(payload) or image.content_type or "application/octet-stream"
            files = {"pic": (Path(image.path).name or "pic", payload, kind)}
        log.info("weibo publish account=%s key=%s", account.id, idempotency_key)
        if checkpoint is not None:
            checkpoint("")  # no idempotency key: the hub must still own the delivery
        body = self._call(
            "POST", "/2/statuses/share.json", account, data=data, files=files, ambiguous=True
        )
        code = _error_code(body)
        if code is not None and code != UPDATED_SERVER_SLOW:
            raise self._error(code, body, account)
        return self._published_or_pending(body, rendition.text, started)

    def _published_or_pending(
        self, body: Mapping[str, Any], text: str, started: datetime
    ) -> PublishOutcome:
        if body.get("idstr") or body.get("id"):
            return self._published(body)
        if _error_code(body) == UPDATED_SERVER_SLOW:
            log.info("weibo 20032: accepted, status not yet visible")
            return Pending(f"{PENDING_PREFIX}{int(started.timestamp())}:{status_fingerprint(text)}")
        raise Unconfirmed(
            "微博返回了无法识别的应答，发布结果未知：请先核对账号最近发布的微博",
            platform=PLATFORM,
        )

    def poll(self, account: Account, ref: str) -> PublishOutcome:
        """A status id is already published; a 20032 ref is looked up in the timeline."""
        if not ref.startswith(PENDING_PREFIX):
            return Published(remote_id=ref, remote_url=self._status_url(_uid_of(account), ref))
        _, started, fingerprint = ref.split(":", 2)
        not_before = datetime.fromtimestamp(int(started), UTC)
        found = self._find(account, fingerprint, not_before)
        return found or Pending(ref)

    def find_published(
        self, account: Account, rendition: Rendition, *, not_before: datetime
    ) -> Published | None:
        """Our status in the account's timeline (after :class:`Unconfirmed`), if it is there."""
        return self._find(account, status_fingerprint(rendition.text), not_before)

    def _find(self, account: Account, fingerprint: str, not_before: datetime) -> Published | None:
        earliest = not_before - timedelta(minutes=5)  # clock skew between us and Weibo
        for post in self.recent(account):
            if post.created_at >= earliest and status_fingerprint(post.text) == fingerprint:
                return Published(post.remote_id, post.url, post.created_at)
        return None

    def withdraw(self, account: Account, remote_id: str) -> None:
        """POST statuses/destroy.json; 20101 (already gone) counts as done."""
        body = self._call("POST", "/2/statuses/destroy.json", account, data={"id": remote_id})
        code = _error_code(body)
        if code is not None and code != ALREADY_DELETED:
            raise self._error(code, body, account)

    def recent(self, account: Account, since: str | None = None) -> list[RemotePost]:
        """The account's statuses newer than ``since`` (a status id), newest first.

        Without ``since`` one page of 100; with it, up to five pages.
        """
        count = 100
        posts: list[RemotePost] = []
        for page in range(1, 6 if since else 2):
            params = {"count": str(count), "page": str(page)}
            if since:
                params["since_id"] = since
            body = self._call("GET", "/2/statuses/user_timeline.json", account, params=params)
            code = _error_code(body)
            if code is not None:
                raise self._error(code, body, account)
            statuses = body.get("statuses") or []
            for status in statuses:
                published = self._published(status)
                posts.append(
                    RemotePost(
                        remote_id=published.remote_id,
                        created_at=published.published_at or self._clock(),
                        url=published.remote_url,
                        text=str(status.get("text", "")),
                    )
                )
            if len(statuses) < count:
                break
        return posts

    # -- reach (readers' counts) ----------------------------------------------------------------

    @classmethod
    def metrics_spec(cls) -> MetricsSpec:
        return METRICS

    def fetch_metrics(
        self, account: Account, copies: Sequence[CopyRef], day: date
    ) -> list[CopyMetrics]:
        """GET statuses/count.json, 100 ids a call: reposts, comments and likes now.

        Weibo only knows today's running totals, so they are reported for ``day`` as given (the
        hub asks for today: ``lag_days`` 0). A deleted status is not in the answer."""
        ids = [c.remote_id for c in copies if c.remote_id.isdigit()]
        found: list[CopyMetrics] = []
        for start in range(0, len(ids), COUNT_IDS_MAX):
            chunk = ids[start : start + COUNT_IDS_MAX]
            body = self._call(
                "GET", "/2/statuses/count.json", account, params={"ids": ",".join(chunk)}
            )
            code = _error_code(body)
            if code is not None:
                raise self._error(code, body, account)
            for item in body.get("_list") or []:
                if not isinstance(item, dict):
                    continue
                remote_id = str(item.get("idstr") or item.get("id") or "")
                if remote_id not in chunk:
                    continue
                counts = {key: max(0, _int(item.get(raw)) or 0) for key, raw in _COUNT_KEYS.items()}
                found.append(CopyMetrics(remote_id=remote_id, day=day, counts=counts))
        return found

    # -- comments (the public interaction inbox) ------------------------------------------------

    def comments_to_me(
        self, account: Account, since_id: str | None = None, *, max_pages: int = 5
    ) -> list[WeiboComment]:
        """Comments others made on the account's statuses, newer than ``since_id``, newest first.

        At most ``max_pages`` pages of 50 per call (the pass is paced: the rest comes next time,
        oldest first, because the caller keeps the newest id it stored).
        """
        count = 50
        comments: list[WeiboComment] = []
        for page in range(1, max_pages + 1):
            params = {"count": str(count), "page": str(page)}
            if since_id:
                params["since_id"] = since_id
            body = self._call("GET", "/2/comments/to_me.json", account, params=params)
            code = _error_code(body)
            if code is not None:
                raise self._error(code, body, account, capability=COMMENTS)
            items = body.get("comments") or []
            for item in items:
                user = item.get("user") or {}
                status = item.get("status") or {}
                post_id = str(status.get("idstr") or status.get("id") or "")
                post_uid = str((status.get("user") or {}).get("idstr") or _uid_of(account))
                comments.append(
                    WeiboComment(
                        remote_id=str(item.get("idstr") or item.get("id") or ""),
                        post_id=post_id,
                        author_id=str(user.get("idstr") or user.get("id") or ""),
                        author_name=str(user.get("screen_name") or ""),
                        text=str(item.get("text") or ""),
                        created_at=parse_created_at(item.get("created_at")) or self._clock(),
                        post_text=str(status.get("text") or ""),
                        post_url=self._status_url(post_uid, post_id) if post_id else "",
                    )
                )
            if len(items) < count:
                break
        return [c for c in comments if c.remote_id]

    def reply_comment(self, account: Account, comment_id: str, post_id: str, text: str) -> str:
        """POST comments/reply.json under the comment ``comment_id`` of status ``post_id``.

        ``text`` must already be plain text within 140 counted characters. Returns the reply's
        comment id. Losing the answer raises :class:`Unconfirmed` (look before replying again).
        """
        if not text.strip():
            raise Rejected("回复内容不能为空", platform=PLATFORM, code="weibo.empty")
        if weibo_length(text) > TEXT_MAX:
            raise Rejected(
                f"微博评论回复不能超过{TEXT_MAX}字（当前{weibo_length(text)}字）",
                platform=PLATFORM,
                code="20012",
            )
        data = {"cid": comment_id, "id": post_id, "comment": text}
        if rip := rip_of(account):
            data["rip"] = rip
        body = self._call("POST", "/2/comments/reply.json", account, data=data, ambiguous=True)
        code = _error_code(body)
        if code is not None:
            raise self._error(code, body, account, capability=COMMENTS)
        remote_id = str(body.get("idstr") or body.get("id") or "")
        if not remote_id:
            raise Unconfirmed("微博应答中没有评论ID，回复结果未知", platform=PLATFORM)
        return remote_id

    def rate_limit_status(self, account: Account) -> WeiboRateLimit:
        """GET account/rate_limit_status.json (posting window from ``api_rate_limits`` if given)."""
        body = self._call("GET", "/2/account/rate_limit_status.json", account)
        code = _error_code(body)
        if code is not None:
            raise self._error(code, body, account, rate_limit_lookup=False)
        reset_seconds = _int(body.get("reset_time_in_seconds"))
        remaining_posts = None
        for item in body.get("api_rate_limits") or []:
            if "statuses/share" in str(item.get("api", "")) or "statuses/update" in str(
                item.get("api", "")
            ):
                remaining_posts = _int(item.get("remaining_hits"))
                reset_seconds = _int(item.get("reset_time_in_seconds")) or reset_seconds
        reset_at = self._clock() + (
            timedelta(seconds=reset_seconds) if reset_seconds is not None else RATE_LIMIT_FALLBACK
        )
        return WeiboRateLimit(_int(body.get("remaining_user_hits")), reset_at, remaining_posts)

    # -- OAuth2 (authorization-code flow) -------------------------------------------------------

    def authorize_url(self, redirect_uri: str, state: str) -> str:
        """Where to send the account owner to approve the app."""
        query = urlencode(
            {
                "client_id": self.app_key,
                "redirect_uri": redirect_uri,
                "response_type": "code",
                "state": state,
            }
        )
        return f"{self.api_base}/oauth2/authorize?{query}"

    def exchange_code(self, code: str, redirect_uri: str) -> WeiboToken:
        """POST oauth2/access_token with the code from the redirect."""
        data = {
            "client_id": self.app_key,
            "client_secret": self._app_secret,
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
        }
        body = self._call("POST", "/oauth2/access_token", None, data=data)
        error = _error_code(body)
        if error is not None or not body.get("access_token"):
            raise self._error(error or "", body, None, rate_limit_lookup=False)
        expires_in = _int(body.get("expires_in")) or 0
        return WeiboToken(
            access_token=str(body["access_token"]),
            expires_at=self._clock() + timedelta(seconds=expires_in),
            uid=str(body.get("uid", "")),
        )

    # -- HTTP and errors ------------------------------------------------------------------------

    def _secrets(self, account: Account | None) -> tuple[str, ...]:
        token = account.credentials.get("access_token", "") if account else ""
        return (token, self._app_secret)

    def _call(
        self,
        method: str,
        path: str,
        account: Account | None,
        *,
        data: Mapping[str, str] | None = None,
        files: Mapping[str, tuple[str, bytes, str]] | None = None,
        params: Mapping[str, str] | None = None,
        ambiguous: bool = False,
    ) -> dict[str, Any]:
        """One API call; returns the JSON body (an error envelope included) or raises.

        ``ambiguous``: the call is not idempotent, so losing the answer after sending it raises
        :class:`Unconfirmed` instead of :class:`Transient`.
        """
        headers = {"Accept": "application/json"}
        if account is not None:
            token = account.credentials.get("access_token", "")
            if not token:
                raise AuthExpired("该微博账号尚未授权，请重新授权", platform=PLATFORM)
            headers["Authorization"] = f"OAuth2 {token}"
        url = self.api_base + path
        try:
            for attempt in Retrying(
                retry=retry_if_exception_type(_CONNECT_ERRORS),
                stop=stop_after_attempt(self._connect_attempts),
                wait=wait_exponential(multiplier=0.2, max=2.0),
                reraise=True,
            ):
                with attempt:
                    response = self._client.request(
                        method,
                        url,
                        data=data,
                        files=files,
                        params=params,
                        headers=headers,
                        timeout=self._timeout,
                        follow_redirects=False,
                    )
        except _CONNECT_ERRORS as exc:
            raise Transient(
                f"无法连接微博接口（{type(exc).__name__}），稍后自动重试",
                platform=PLATFORM,
                retry_after=SYSTEM_BUSY_BACKOFF,
            ) from None
        except httpx.TransportError as exc:
            if ambiguous:
                raise Unconfirmed(
                    f"请求已发出但未收到微博应答（{type(exc).__name__}），"
                    "发布结果未知：请先核对账号最近发布的微博",
                    platform=PLATFORM,
                ) from None
            raise Transient(
                f"微博接口连接中断（{type(exc).__name__}），稍后自动重试",
                platform=PLATFORM,
                retry_after=SYSTEM_BUSY_BACKOFF,
            ) from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and (_error_code(body) is not None or response.is_success):
            body.setdefault("_http_status", response.status_code)
            return body
        if isinstance(body, list) and response.is_success:  # statuses/count answers an array
            return {"_list": body, "_http_status": response.status_code}
        return self._unexpected(response, ambiguous)

    def _unexpected(self, response: httpx.Response, ambiguous: bool) -> dict[str, Any]:
        status = response.status_code
        kw: dict[str, Any] = {"platform": PLATFORM, "http_status": status}
        if status >= 500 or status == 429:
            if ambiguous:
                raise Unconfirmed(
                    f"微博接口返回HTTP {status}，发布结果未知：请先核对账号最近发布的微博", **kw
                )
            raise Transient(f"微博接口暂时不可用（HTTP {status}）", retry_after=60.0, **kw)
        if status == 401:
            raise AuthExpired("微博拒绝了该账号的授权，请重新授权", **kw)
        raise Rejected(f"微博接口返回了无法识别的应答（HTTP {status}）", **kw)

    def _error(
        self,
        code: str,
        body: Mapping[str, Any],
        account: Account | None,
        *,
        rate_limit_lookup: bool = True,
        capability: str | None = None,
    ) -> ConnectorError:
        """The error class for a Weibo ``error_code`` (table in platforms.md and
        ``docs/connectors.md``). ``capability``: the call belongs to one (``"comments"``)."""
        message = redact(
            str(body.get("error") or body.get("error_description") or ""), self._secrets(account)
        )
        kw: dict[str, Any] = {
            "platform": PLATFORM,
            "code": code or None,
            "platform_message": message,
            "http_status": body.get("_http_status"),
        }
        if code in TRANSIENT_CODES:
            return Transient("微博系统繁忙，稍后自动重试", retry_after=SYSTEM_BUSY_BACKOFF, **kw)
        if code == POSTING_TOO_FAST:
            return Transient(
                "微博提示发布过于频繁，稍后自动重试", retry_after=POSTING_TOO_FAST_BACKOFF, **kw
            )
        if code in RATE_LIMIT_CODES:
            until = self._clock() + RATE_LIMIT_FALLBACK
            if rate_limit_lookup and account is not None:
                try:
                    until = self.rate_limit_status(account).reset_at
                except ConnectorError:
                    log.warning("weibo rate_limit_status unavailable; assuming one hour")
            return RateLimited("微博调用次数已达上限，窗口重置后自动继续", until=until, **kw)
        if code in DUPLICATE_CODES:
            return Unconfirmed(
                "微博认为这条内容与近期发布的内容重复：请先核对账号最近发布的微博，不要重发",
                resend_if_absent=False,
                **kw,
            )
        if code in AUTH_CODES:
            return AuthExpired("微博账号授权已过期或被撤销，请重新授权", **kw)
        if code == UNAUDITED_APP:
            return AccountBlocked(
                "微博应用尚未通过审核，只有开发者和测试账号可以使用：请在 open.weibo.com "
                "完成应用审核，或在应用的「测试信息」中把该账号添加为测试账号（最多15个），"
                "然后在账号页点击「测试连接」，暂停的投递会自动继续",
                **kw,
            )
        if code == CAPTCHA:
            return AccountBlocked(
                "微博要求该账号先完成验证码验证：请用该账号登录 weibo.com 按提示通过验证码，"
                "然后在账号页点击「测试连接」，暂停的投递会自动继续",
                **kw,
            )
        if code == NO_PERMISSION and capability == COMMENTS:
            return CapabilityUnavailable(
                "本应用没有微博评论接口权限（10014）：该账号的评论收取和回复不可用。"
                "请在 open.weibo.com 申请评论接口权限，再由管理员在账号页点击「测试连接」",
                capability=COMMENTS,
                **kw,
            )
        if code == BAD_PARAMETER:
            if "domain" in message.lower():
                return Rejected(
                    "微博正文中没有应用安全域名内的链接（10017）：微博只接受带有"
                    f"发布厅链接（{self.public_base_url}）的正文，请保留稿件链接后重试",
                    **kw,
                )
            return Rejected(f"微博认为请求参数无效（10017）：{message or code}", **kw)
        if code == MISSING_PARAMETER and "rip" in message.lower():
            return Misconfigured(
                "微博要求上报操作人的真实IP（rip），本次发送没有可用的IP："
                "请管理员设置 GOVHUB_WEIBO_FALLBACK_RIP（本单位的公网出口IP）",
                **kw,
            )
        if code in CONFIG_CODES:  # the hub's Weibo app: every send fails until the operator acts
            return AccountBlocked(
                "微博应用配置有误（App Key或接口权限）：请管理员核对 GOVHUB_WEIBO_APP_KEY 与应用权限，"
                "然后在账号页点击「测试连接」，暂停的投递会自动继续",
                **kw,
            )
        if code in CONTENT_CODES:
            return Rejected(f"微博拒绝了这条内容：{message or code}", **kw)
        return Rejected(f"微博拒绝了请求：{message or code or '未知错误'}", **kw)

    def _published(self, status: Mapping[str, Any]) -> Published:
        remote_id = str(status.get("idstr") or status.get("id") or "")
        if not remote_id:
            raise Unconfirmed(
                "微博应答中没有微博ID，发布结果未知：请先核对账号最近发布的微博", platform=PLATFORM
            )
        user = status.get("user") or {}
        uid = str(user.get("idstr") or user.get("id") or "") if isinstance(user, dict) else ""
        mid = str(status.get("mid") or remote_id)
        return Published(
            remote_id=remote_id,
            remote_url=self._status_url(uid, mid),
            published_at=parse_created_at(status.get("created_at")),
        )

    def _status_url(self, uid: str, mid: str) -> str:
        if uid:
            return f"{self.web_base}/{uid}/{mid}"
        return f"https://m.weibo.cn/detail/{mid}"


def _uid_of(account: Account) -> str:
    uid = account.extra.get("uid", "") or account.credentials.get("uid", "")
    return uid or (account.handle if account.handle.isdigit() else "")


def _error_code(body: Mapping[str, Any]) -> str | None:
    """``error_code`` as a string, whether Weibo sent a string or a number."""
    raw = body.get("error_code")
    if raw is None or raw == "":
        return None
    return str(raw).strip()


def _int(value: object) -> int | None:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None
