"""WeChat Official Account (公众号, "official account") connector: draft -> freepublish.

Publishing an article (图文, "picture-and-text article") takes five calls, all with
``?access_token=`` in the query string (see ``docs/connectors-wechat.md``):

1. the cover becomes a JPEG <= 64 KB and is uploaded as permanent ``thumb`` material;
2. every in-body image not already on ``mmbiz.qpic.cn`` is uploaded with ``media/uploadimg``
   and its ``src`` rewritten to the returned URL (the platform drops any other ``<img>``);
3. ``draft/add`` stores the article in the draft box (草稿箱) -> draft ``media_id``;
4. ``freepublish/submit`` starts the asynchronous publication -> ``publish_id``, returned as
   ``Pending(ref="<publish_id>:<draft media_id>")``;
5. ``freepublish/get`` (``poll``) or the ``PUBLISHJOBFINISH`` callback event tells the result.

"Publish and push" (群发, ``rendition.meta["wechat.mode"] == "push"``) replaces steps 4-5 with
``message/mass/sendall`` of the draft (``clientmsgid`` = the delivery's idempotency key) ->
``Pending(ref="mass:<msg_id>")``, settled by ``message/mass/get`` or ``MASSSENDJOBFINISH``.
A lost ``freepublish/submit`` answer is never answered by submitting again: the hub looks for
the article with :meth:`WechatConnector.find_publication` (title, digest, time window).

The access token comes from ``stable_token`` (isolated from the classic ``/cgi-bin/token``, which
another system sharing the AppSecret may call), is shared by every process through a
:class:`~connectors.tokens.TokenStore` and refreshed ahead of expiry, one process at a time. A
call answered with 40001/40014/42001 (token invalid, not the latest, or expired) refreshes the
token once (``force_refresh`` only if the platform still hands out the refused token) and is
replayed once.

Pure functions for the hub's callback route and for quota tracking live at the bottom:
:func:`check_signature`, :func:`parse_publish_event`, :func:`mass_send_quota`.
"""

from __future__ import annotations

import html
import io
import json
import logging
import math
import re
import threading
import warnings
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import httpx
import nh3
from defusedxml import ElementTree as SafeElementTree
from markupsafe import Markup
from PIL import Image as PILImage
from PIL import ImageOps, UnidentifiedImageError

from connectors import wechat_crypto
from connectors.base import (
    Account,
    CallbackRefused,
    CallbackRequest,
    CallbackResult,
    Checkpoint,
    Completion,
    Content,
    CopyMetrics,
    CopyRef,
    CredentialField,
    Image,
    InboundMessage,
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
    ConnectorError,
    Misconfigured,
    QuotaExhausted,
    RateLimited,
    Rejected,
    Transient,
    Unconfirmed,
)
from connectors.markup import markdown_to_html, markdown_to_text, template_environment
from connectors.tokens import TokenStore, TokenStoreError, shared_get
from connectors.variants import MemoryVariants, VariantStore, digest_of

log = logging.getLogger(__name__)

PLATFORM = "wechat"
WECHAT_TZ = ZoneInfo("Asia/Shanghai")
MMBIZ_HOST = "mmbiz.qpic.cn"
DIGEST_AUTO_CHARS = 54  # the platform's own automatic digest length
LINK_MAX_BYTES = 1024
CONTENT_MAX_BYTES = 1024 * 1024  # content must also be < 1 MB
TOKEN_ERRORS = frozenset({40001, 40014, 42001})
CUSTOM_WINDOW_CLOSED = 45015  # customer-service message outside 48 h of the user's last message
INVALID_MEDIA_ID = 40007  # a media_id (draft, material) the platform does not know
MASS_SENT_ALREADY = 45065  # a mass send with this clientmsgid exists: it is the one we sent
MASS_REF = "mass:"  # Pending.ref / remote_id prefix of a mass send (群发): "mass:<msg_id>"
COMMENTS = {"closed": (0, 0), "open": (1, 0), "fans": (1, 1)}  # need_open_comment, only_fans

# Tags and attributes the rendered article keeps (the platform keeps more, e.g. inline styles;
# we keep a plain, predictable subset and no style attributes at all).
ALLOWED_TAGS = frozenset(
    {"p", "br", "strong", "em", "b", "i", "u", "h1", "h2", "h3", "h4", "ul", "ol", "li"}
    | {"blockquote", "section", "span", "hr", "pre", "code", "img", "a"}
    | {"table", "thead", "tbody", "tr", "th", "td"}
)
ALLOWED_ATTRIBUTES: Mapping[str, set[str]] = {"img": {"src", "alt"}, "a": {"href"}}
URL_SCHEMES = frozenset({"http", "https"})

_IMG_SRC = re.compile(r'<img\b[^>]*?\bsrc="([^"]*)"')
_INVALID_IP = re.compile(r"invalid ip ([0-9A-Fa-f.:]+)")
_SECRET_IN_TEXT = re.compile(r"((?:access_token|secret)=)[^&\s\"']+")


# ---------------------------------------------------------------------------------------------
# Secrets stay out of logs: httpx logs every request URL (with ?access_token=) at INFO.


def redact(text: str) -> str:
    """Replace the value of every ``access_token=`` and ``secret=`` in ``text`` with ``***``."""
    return _SECRET_IN_TEXT.sub(r"\1***", text)


class RedactAccessTokens(logging.Filter):
    """Logging filter that removes access tokens and app secrets from records (the token call
    carries ``secret=`` in its query string); installed on httpx's loggers."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "access_token=" in message or "secret=" in message:
            record.msg = redact(message)
            record.args = ()
        return True


def install_log_redaction() -> None:
    """Idempotently attach :class:`RedactAccessTokens` to the ``httpx`` and ``httpcore`` loggers."""
    for name in ("httpx", "httpcore"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactAccessTokens) for f in logger.filters):
            logger.addFilter(RedactAccessTokens())


# ---------------------------------------------------------------------------------------------
# Errors


class SubmitUnconfirmed(Unconfirmed):
    """``freepublish/submit`` was sent but its answer was lost.

    ``draft_media_id`` names the draft. Whether the draft is still in the draft box proves
    nothing (it may stay there while the job is under audit): never submit it again; look for
    the article with :meth:`WechatConnector.find_publication` over a grace period instead.
    """

    def __init__(self, message: str, *, draft_media_id: str, **kw: Any) -> None:
        super().__init__(message, lookup_ref=draft_media_id, **kw)
        self.draft_media_id = draft_media_id


def next_midnight(now: datetime) -> datetime:
    """The next midnight in Beijing time, as UTC (when WeChat's daily quotas renew)."""
    local = now.astimezone(WECHAT_TZ)
    tomorrow = local.date() + timedelta(days=1)
    return datetime.combine(tomorrow, time(0), WECHAT_TZ).astimezone(UTC)


def errcode_of(data: Mapping[str, Any]) -> int:
    """The envelope's errcode as an int; a response without one is a success (0)."""
    raw = data.get("errcode", 0)
    try:
        return int(raw)
    except (TypeError, ValueError):
        return -1


def error_for(
    code: int, errmsg: str, *, http_status: int | None = None, now: datetime | None = None
) -> ConnectorError:
    """Classify a non-zero WeChat errcode (table in ``docs/connectors-wechat.md``)."""
    now = now or datetime.now(UTC)
    errmsg = redact(errmsg)
    kw: dict[str, Any] = {
        "platform": PLATFORM,
        "code": str(code),
        "platform_message": errmsg,
        "http_status": http_status,
    }
    if code == -1:
        return Transient("微信系统繁忙，稍后自动重试", retry_after=5.0, **kw)
    if code == 45009:
        return QuotaExhausted(
            "微信接口今日调用次数已用完，将于北京时间次日零点后继续", until=next_midnight(now), **kw
        )
    if code == 45028:  # mass send: no quota left (subscription 1/day, service 4/month)
        return Rejected(
            "该公众号本期群发次数已用完（订阅号每天1次，服务号每月4次）：可改为「仅发布」或择期群发",
            **kw,
        )
    if code == 45066:  # mass send: same clientmsgid retried too fast
        return Transient("群发请求重试过快，一分钟后重试", retry_after=60.0, **kw)
    if code == 45011:
        return RateLimited(
            "微信接口调用过于频繁，一分钟后重试", until=now + timedelta(seconds=60), **kw
        )
    if code == 40164:
        match = _INVALID_IP.search(errmsg)
        ip = match.group(1) if match else "（见平台返回信息）"
        return AccountBlocked(
            f"服务器出口IP {ip} 不在该公众号的IP白名单中：请在微信公众平台"
            "「设置与开发 → 基本配置 → IP白名单」中添加该IP",
            **kw,
        )
    if code in (48001, 48004):
        return AccountBlocked(
            "该公众号没有此接口权限或接口已被封禁：请在微信公众平台核对账号认证与接口权限", **kw
        )
    if code in (40013, 40125):  # the account's AppID/AppSecret: every send fails until fixed
        return AccountBlocked(
            "公众号AppID或AppSecret无效：请在账号页核对并更新后点击「测试连接」，暂停的投递会自动继续",
            **kw,
        )
    if code in TOKEN_ERRORS:
        return AuthExpired("微信access_token刷新后仍然无效：请核对账号配置", **kw)
    return Rejected(f"微信拒绝了请求：{errmsg or code}", **kw)


# ---------------------------------------------------------------------------------------------
# Publication status, shared by poll() and the PUBLISHJOBFINISH callback so that both agree.

_FAILED_STATUS = {
    2: ("原创声明校验失败", "wechat.originality_failed"),
    3: ("发布失败", "wechat.publish_failed"),
    4: ("平台审核不通过", "wechat.audit_rejected"),
    5: ("发布成功后已被删除", "wechat.deleted"),
    6: ("发布成功后已被平台封禁", "wechat.banned"),
}


def publish_outcome(
    status: int,
    *,
    ref: str,
    article_id: str = "",
    article_urls: Sequence[str] = (),
    fail_idx: Sequence[int] = (),
) -> PublishOutcome:
    """``publish_status`` -> Published / Pending, or raise Rejected for 2-6."""
    if status == 0:
        return Published(remote_id=article_id, remote_url=article_urls[0] if article_urls else "")
    if status == 1:
        return Pending(ref=ref)
    reason, code = _FAILED_STATUS.get(status, ("发布失败", "wechat.publish_failed"))
    if fail_idx:
        reason += "（第" + "、".join(str(i) for i in fail_idx) + "篇）"
    raise Rejected(reason, platform=PLATFORM, code=code, platform_message=reason)


def make_ref(publish_id: str, draft_media_id: str) -> str:
    """``Pending.ref`` for a publication: ``"<publish_id>:<draft media_id>"``."""
    return f"{publish_id}:{draft_media_id}"


def parse_ref(ref: str) -> tuple[str, str]:
    """``(publish_id, draft media_id)`` from a ref; a bare publish_id gives an empty media_id."""
    publish_id, _, media_id = ref.partition(":")
    return publish_id, media_id


# ---------------------------------------------------------------------------------------------
# Rendering


def sanitize(fragment: str) -> str:
    """Keep only the allow-listed tags and attributes; scripts and ``on*`` never survive."""
    return nh3.clean(
        fragment,
        tags=set(ALLOWED_TAGS),
        clean_content_tags={"script", "style"},
        attributes={tag: set(attrs) for tag, attrs in ALLOWED_ATTRIBUTES.items()},
        url_schemes=set(URL_SCHEMES),
        link_rel=None,
    )


def plain_text(fragment: str) -> str:
    """Visible text of an HTML fragment, whitespace collapsed."""
    text = html.unescape(nh3.clean(fragment, tags=set(), clean_content_tags={"script", "style"}))
    return " ".join(text.split())


def article_html(body: str) -> str:
    """Markdown (raw HTML shown as text, never interpreted) -> HTML within WeChat's allow-list."""
    return sanitize(markdown_to_html(body))


def image_srcs(fragment: str) -> list[str]:
    """The (unescaped) ``src`` of every ``<img>`` in sanitised HTML, in order, without repeats."""
    seen: dict[str, None] = {}
    for match in _IMG_SRC.finditer(fragment):
        seen.setdefault(html.unescape(match.group(1)), None)
    return list(seen)


def is_mmbiz(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    return host == MMBIZ_HOST or host.endswith("." + MMBIZ_HOST)


def _too_long(label: str, limit: int, actual: int, unit: str = "字") -> str:
    return f"微信{label}超过{limit}{unit}（当前{actual}{unit}），请缩短"


# ---------------------------------------------------------------------------------------------
# Images


@dataclass(frozen=True)
class ImageFile:
    data: bytes
    filename: str
    content_type: str


MAX_PIXELS = 40_000_000
"""Pixels (all frames) an image may declare; uploads are refused above GOVHUB_MEDIA_MAX_PIXELS
(default the same), this guards images that reach the connector any other way."""


def _bad_image() -> Rejected:
    return Rejected("图片无法识别，请上传JPG或PNG图片", platform=PLATFORM, code="wechat.bad_image")


def _peek_image(data: bytes) -> PILImage.Image:
    """The image opened lazily (header only), refused when it declares too many pixels."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PILImage.DecompressionBombWarning)
            image = PILImage.open(io.BytesIO(data))
        frames = int(getattr(image, "n_frames", 1) or 1)
    except PILImage.DecompressionBombError as exc:
        raise _too_many_pixels() from exc
    except (UnidentifiedImageError, OSError, EOFError) as exc:
        raise _bad_image() from exc
    if image.width * image.height * frames > MAX_PIXELS:
        raise _too_many_pixels(f"（{image.width}×{image.height}）")
    return image


def _too_many_pixels(size: str = "") -> Rejected:
    return Rejected(
        f"图片像素过多{size}，请缩小后再上传", platform=PLATFORM, code="wechat.bad_image"
    )


def _open_image(data: bytes, *, fit: int | None = None) -> PILImage.Image:
    """The image decoded; with ``fit``, a JPEG is decoded at the smallest DCT scale (1/2 .. 1/8)
    whose longer side stays at least ``fit``, so a thumb never decodes the full picture."""
    image = _peek_image(data)
    try:
        if fit is not None and max(image.size) > fit:
            scale = fit / max(image.size)
            image.draft(
                "RGB", (max(1, math.ceil(image.width * scale)), math.ceil(image.height * scale))
            )
        image.load()
    except (OSError, EOFError, ValueError) as exc:
        raise _bad_image() from exc
    return image


def _rgb(image: PILImage.Image) -> PILImage.Image:
    image = ImageOps.exif_transpose(image) or image
    if image.mode in ("RGBA", "LA", "P"):
        image = image.convert("RGBA")
        background = PILImage.new("RGB", image.size, (255, 255, 255))
        background.paste(image, mask=image.getchannel("A"))
        return background
    return image.convert("RGB")


def jpeg_within(data: bytes, max_bytes: int, *, max_side: int = 1280, min_side: int = 64) -> bytes:
    """Re-encode an image as a JPEG of at most ``max_bytes``: lower quality, then downscale."""
    image = _rgb(_open_image(data, fit=max_side))
    scale = min(1.0, max_side / max(image.size))
    while True:
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        candidate = image if scale == 1.0 else image.resize(size, PILImage.Resampling.LANCZOS)
        for quality in (85, 75, 65, 55, 45, 35):
            buffer = io.BytesIO()
            candidate.save(buffer, "JPEG", quality=quality, optimize=True)
            if buffer.tell() <= max_bytes:
                return buffer.getvalue()
        if min(size) <= min_side:
            raise Rejected(
                f"图片无法压缩到{max_bytes // 1024}KB以内",
                platform=PLATFORM,
                code="wechat.bad_image",
            )
        scale *= 0.75


def thumb_file(data: bytes, max_bytes: int) -> ImageFile:
    """The cover as WeChat's thumb wants it: JPEG, at most ``max_bytes``; kept as is if it fits.

    Converting is CPU work: the connector asks its variant store (connectors/variants.py) for
    it, so the same picture is converted once for every account, thread and process.
    """
    if len(data) <= max_bytes and _peek_image(data).format == "JPEG":
        return ImageFile(data, "cover.jpg", "image/jpeg")
    return ImageFile(jpeg_within(data, max_bytes, max_side=900), "cover.jpg", "image/jpeg")


def thumb_fits(data: bytes, max_bytes: int) -> bool:
    """True when the cover goes to WeChat as it is (a JPEG within the thumb's size)."""
    return len(data) <= max_bytes and _peek_image(data).format == "JPEG"


def body_fits(data: bytes, max_bytes: int) -> bool:
    """True when an in-body image goes to ``uploadimg`` as it is (JPEG/PNG within the size)."""
    return len(data) <= max_bytes and _peek_image(data).format in ("JPEG", "PNG")


def body_image_file(data: bytes, max_bytes: int) -> ImageFile:
    """An in-body image for ``uploadimg``: JPEG/PNG under ``max_bytes`` as is, else a JPEG."""
    kind = _peek_image(data).format
    if kind in ("JPEG", "PNG") and len(data) <= max_bytes:
        ext = "jpg" if kind == "JPEG" else "png"
        return ImageFile(data, f"image.{ext}", f"image/{'jpeg' if kind == 'JPEG' else 'png'}")
    return ImageFile(jpeg_within(data, max_bytes, max_side=1920), "image.jpg", "image/jpeg")


# ---------------------------------------------------------------------------------------------
# The connector


class _UploadCache:
    """Process-wide, bounded: (app id, kind, image hash) -> media id or URL."""

    def __init__(self, size: int = 2048) -> None:
        self._items: OrderedDict[str, str] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, key: str) -> str | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: str, value: str) -> str:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return value


_UPLOADS = _UploadCache()


_POOL_GUARD = threading.Lock()
_POOL: list[ThreadPoolExecutor] = []


def _uploads_pool() -> ThreadPoolExecutor:
    """Threads for uploads that run side by side within one publication (one pool per process)."""
    with _POOL_GUARD:
        if not _POOL:
            _POOL.append(ThreadPoolExecutor(max_workers=16, thread_name_prefix="wechat-upload"))
        return _POOL[0]


def _upload_key(account: Account, kind: str, digest: str) -> str:
    app_id = str(account.credentials.get("app_id", account.id))
    return f"{app_id}:{kind}:{digest}"


# datacube/getarticletotal: an article's running totals per day, for 7 days from the day it was
# sent, final only for yesterday and earlier (Beijing days).
METRICS = MetricsSpec(
    fields=(MetricField("reads", "阅读", "Reads"), MetricField("shares", "分享", "Shares")),
    lag_days=1,
    window_days=7,
    batch=100,
)
_DATACUBE_KEYS = {"reads": "int_page_read_count", "shares": "share_count"}
BEIJING = ZoneInfo("Asia/Shanghai")


class WechatConnector:
    """WeChat Official Account connector (sync, over an injected ``httpx.Client``).

    ``account.credentials`` must hold ``app_id`` and ``app_secret``. ``idempotency_key`` is not
    used by ``publish`` (freepublish has no de-duplication; see ``SubmitUnconfirmed``); it is the
    natural ``clientmsgid`` for :meth:`mass_send`.
    """

    platform: ClassVar[str] = PLATFORM
    limits: ClassVar[Limits] = Limits(
        title_max=32,
        author_max=16,
        digest_max=128,
        content_max=19_999,  # the platform: "fewer than 20,000 characters"
        image_max_bytes=1_000_000,  # uploadimg: "< 1 MB"; kept under both readings of MB
        image_types=("image/jpeg", "image/png"),
        thumb_max_bytes=64 * 1024,
        concurrency=4,
        calls_per_publish=6,  # token, cover, body images, draft/add, freepublish/submit, get
        needs_cover=True,
    )
    info: ClassVar[PlatformInfo] = PlatformInfo(
        key=PLATFORM,
        label_zh="微信公众号",
        label_en="WeChat",
        audit_label_zh="微信公众号",
        audit_label_en="WeChat official account",
        credentials=(
            CredentialField("app_id", secret=False, label="AppID"),
            CredentialField("app_secret", label="AppSecret"),
            CredentialField("callback_token", required=False, kept=True, label="Token"),
            CredentialField(
                "encoding_aes_key",
                required=False,
                kept=True,
                label="EncodingAESKey",
                check=wechat_crypto.encoding_aes_key_problem,
            ),
        ),
        settings_keys=("wechat_api_base", "wechat_reconcile_grace_minutes"),
        templates=("wechat.html.j2",),
        order=20,
        api_base_setting="wechat_api_base",
        official_api_base="https://api.weixin.qq.com",
        push_quota=True,
        kinds=(("subscription", "订阅号"), ("service", "服务号")),
    )

    def __init__(
        self,
        client: httpx.Client,
        *,
        api_base: str,
        public_base_url: str,
        token_store: TokenStore,
        variants: VariantStore | None = None,
        author_default: str = "",
        refresh_margin: timedelta = timedelta(minutes=5),
        templates_dir: str | Path | None = None,
    ) -> None:
        self._client = client
        self._api_base = api_base.rstrip("/")
        self._public_base_url = public_base_url.rstrip("/")
        self._tokens = token_store
        # The cover thumb and re-encoded in-body images, made once per picture (not per
        # account): the hub's shared store under the media folder, else this process's memory.
        self._variants: VariantStore = variants if variants is not None else MemoryVariants()
        self._author_default = author_default
        self._refresh_margin = refresh_margin
        self._templates = template_environment(templates_dir)
        install_log_redaction()

    def delivery_options(self, *, mode: str, comments: str) -> dict[str, str]:
        """``wechat.mode`` (publish, or push: 群发) and ``wechat.comments`` for ``publish``."""
        return {
            "wechat.mode": "push" if mode == "push" else "publish",
            "wechat.comments": comments or "closed",
        }

    def handle_callback(self, request: CallbackRequest) -> CallbackResult:
        """The server handshake (GET: echo ``echostr``), and events in plaintext, compatible or
        safe mode (POST): ``MASSSENDJOBFINISH``, a follower's message or event, or
        ``PUBLISHJOBFINISH``. The answer is ``success`` in every verified case (an unknown job
        too), so the platform does not retry."""
        secrets = request.credentials
        query = request.query
        if request.method == "GET":
            if not check_signature(
                secrets.get("callback_token", ""),
                query.get("timestamp", ""),
                query.get("nonce", ""),
                query.get("signature", ""),
            ):
                raise CallbackRefused(
                    "bad signature: check the account's callback token (消息校验Token)", status=403
                )
            return CallbackResult(answer=query.get("echostr", ""))
        try:
            opened = wechat_crypto.open_callback(
                request.body,
                token=secrets.get("callback_token", ""),
                encoding_aes_key=secrets.get("encoding_aes_key", ""),
                appid=secrets.get("app_id", ""),
                timestamp=query.get("timestamp", ""),
                nonce=query.get("nonce", ""),
                signature=query.get("signature", ""),
                msg_signature=query.get("msg_signature", ""),
                encrypt_type=query.get("encrypt_type", ""),
            )
        except wechat_crypto.BadSignature as exc:
            raise CallbackRefused(
                f"bad signature ({exc}): check the account's callback token (消息校验Token) "
                "and EncodingAESKey (消息加解密密钥)",
                status=403,
            ) from None
        except wechat_crypto.CallbackError as exc:
            raise CallbackRefused(f"unreadable callback: {exc}", status=400) from None
        return _callback_result(opened.xml)

    @classmethod
    def from_wiring(cls, wiring: Wiring) -> WechatConnector:
        return cls(
            wiring.client,
            api_base=wiring.settings.wechat_api_base,
            public_base_url=wiring.settings.public_base_url,
            token_store=wiring.service("token_store", PLATFORM),
            variants=wiring.services.get("image_variants"),
        )

    def __repr__(self) -> str:
        return f"WechatConnector(api_base={self._api_base!r})"

    # -- render / check -----------------------------------------------------------------------

    def render(self, content: Content) -> Rendition:
        overrides = content.overrides
        markdown = overrides.get("wechat.body", content.body)
        body = article_html(markdown)
        in_body = set(image_srcs(body))
        extra_images = [img for img in content.images if img.url and img.url not in in_body]
        article = self._templates.get_template("channels/wechat.html.j2").render(
            body=Markup(body),
            correction_note=content.correction_note,
            images=extra_images,
            title=content.title,
            org_name=content.org_name,
            link=content.link,
        )
        article = sanitize(article).strip()
        digest = overrides.get("wechat.digest") or content.summary.strip()
        if not digest:
            digest = markdown_to_text(markdown)[:DIGEST_AUTO_CHARS]
        link = content.link
        if link.startswith("/"):
            link = self._public_base_url + link
        return Rendition(
            platform=PLATFORM,
            title=overrides.get("wechat.title", content.title),
            html=article,
            digest=digest,
            author=overrides.get("wechat.author") or content.author or self._author_default,
            link=link,
            images=content.images,
            cover=content.images[0] if content.images else content.fallback_cover,
            meta={"content_source_url": link},
        )

    def check(self, rendition: Rendition) -> list[Problem]:
        limits = self.limits
        problems: list[Problem] = []
        title = rendition.title.strip()
        if not title:
            problems.append(Problem("wechat.title_missing", "微信标题不能为空", "title"))
        elif limits.title_max and len(title) > limits.title_max:
            message = _too_long("标题", limits.title_max, len(title))
            problems.append(Problem("wechat.title_too_long", message, "title"))
        if limits.author_max and len(rendition.author) > limits.author_max:
            message = _too_long("作者", limits.author_max, len(rendition.author))
            problems.append(Problem("wechat.author_too_long", message, "author"))
        if limits.digest_max and len(rendition.digest) > limits.digest_max:
            message = _too_long("摘要", limits.digest_max, len(rendition.digest))
            problems.append(Problem("wechat.digest_too_long", message, "digest"))
        if not plain_text(rendition.html) and "<img" not in rendition.html:
            problems.append(Problem("wechat.content_missing", "微信正文不能为空", "body"))
        elif limits.content_max and len(rendition.html) > limits.content_max:
            message = (
                f"微信正文须少于20000字符（当前{len(rendition.html)}字符，含排版代码），"
                "请删减正文或分篇发布"
            )
            problems.append(Problem("wechat.content_too_long", message, "body"))
        elif len(rendition.html.encode()) >= CONTENT_MAX_BYTES:
            message = "微信正文须小于1MB，请删减正文或分篇发布"
            problems.append(Problem("wechat.content_too_long", message, "body"))
        if rendition.cover is None:
            message = "微信图文需要封面图：请至少上传一张图片，或请管理员设置本机构的默认封面"
            problems.append(Problem("wechat.missing_cover", message, "images"))
        if len(rendition.link.encode()) > LINK_MAX_BYTES:
            message = "「阅读原文」链接超过1KB，请使用更短的链接"
            problems.append(Problem("wechat.link_too_long", message, "link"))
        return problems

    def _enforce(self, rendition: Rendition) -> None:
        blocking = [p for p in self.check(rendition) if p.blocking]
        if blocking:
            raise Rejected(
                "；".join(p.message for p in blocking),
                platform=PLATFORM,
                code=blocking[0].code,
            )

    # -- publish / poll / withdraw / recent ---------------------------------------------------

    def publish(
        self,
        account: Account,
        rendition: Rendition,
        *,
        idempotency_key: str,
        checkpoint: Checkpoint | None = None,
    ) -> PublishOutcome:
        self._enforce(rendition)
        assert rendition.cover is not None  # _enforce reports a missing cover
        cover = self._image_bytes(rendition.cover)
        cover_digest = digest_of(cover)
        cached_thumb = _UPLOADS.get(_upload_key(account, "thumb", cover_digest))
        # The cover and the body images are uploaded side by side (one round trip, not two or
        # more); the token is fetched first so that the uploads do not queue on its lock.
        thumb: Future[str] | None = None
        if cached_thumb is None:
            self._access_token(account)
            thumb = _uploads_pool().submit(self.upload_thumb, account, cover, digest=cover_digest)
        try:
            content = self._rehost_images(account, rendition)
        except BaseException:
            if thumb is not None:
                thumb.exception()  # let the cover's upload finish; the first error is reported
            raise
        thumb_media_id = cached_thumb or (thumb.result() if thumb is not None else "")
        article: dict[str, Any] = {
            "title": rendition.title.strip(),
            "author": rendition.author,
            "digest": rendition.digest,
            "content": content,
            "content_source_url": rendition.link,
            "thumb_media_id": thumb_media_id,
        }
        open_comment, fans_only = COMMENTS.get(rendition.meta.get("wechat.comments", ""), (0, 0))
        article["need_open_comment"] = open_comment
        article["only_fans_can_comment"] = fans_only
        # Image URLs changed length: enforce the limits on what is actually sent.
        self._enforce(
            Rendition(
                platform=PLATFORM,
                title=rendition.title,
                html=content,
                digest=rendition.digest,
                author=rendition.author,
                link=rendition.link,
                cover=rendition.cover,
            )
        )
        # Losing draft/add's answer is harmless: an orphan draft is invisible to readers, so a
        # lost answer is Transient (retry) rather than Unconfirmed.
        try:
            data = self._call(account, "/cgi-bin/draft/add", payload={"articles": [article]})
        except Rejected as exc:
            if exc.code != str(INVALID_MEDIA_ID) or cached_thumb is None:
                raise
            # The cover uploaded in an earlier publication was deleted from the account's
            # material library since: upload it again, once, and add the draft with the new id.
            article["thumb_media_id"] = self.upload_thumb(
                account, cover, fresh=True, digest=cover_digest
            )
            data = self._call(account, "/cgi-bin/draft/add", payload={"articles": [article]})
        draft_media_id = str(data["media_id"])
        if rendition.meta.get("wechat.mode") == "push":
            if checkpoint is not None:
                checkpoint("")  # still ours? (a resend is safe: clientmsgid de-duplicates)
            return self.mass_send_job(account, draft_media_id, idempotency_key)
        if checkpoint is not None:
            # Written ahead: if this worker dies after submitting, the hub sees the draft gone
            # from the box and waits for the publication instead of sending a second copy.
            checkpoint(f":{draft_media_id}")
        return self.submit_draft(account, draft_media_id)

    def submit_draft(self, account: Account, draft_media_id: str) -> Pending:
        """``freepublish/submit`` an existing draft -> ``Pending(ref)``; see SubmitUnconfirmed."""
        try:
            data = self._call(
                account,
                "/cgi-bin/freepublish/submit",
                payload={"media_id": draft_media_id},
                state_changing=True,
            )
        except Unconfirmed as exc:
            raise SubmitUnconfirmed(
                "微信发布请求已发出但未收到答复：请先核对草稿箱与已发布列表，勿直接重发",
                draft_media_id=draft_media_id,
                platform=PLATFORM,
                code=exc.code,
                http_status=exc.http_status,
            ) from None
        meta = {"msg_data_id": str(data["msg_data_id"])} if data.get("msg_data_id") else {}
        return Pending(ref=make_ref(str(data["publish_id"]), draft_media_id), meta=meta)

    def poll(self, account: Account, ref: str) -> PublishOutcome:
        """``freepublish/get`` for a publication ref (its publish_id is digits).

        Any other ref is taken as an ``article_id`` (a delivery's ``remote_id``) and looked up with
        ``freepublish/getarticle``: ``Published`` while it is online, ``Rejected`` once deleted
        or unknown (53600).
        """
        if ref.startswith(MASS_REF):
            return self._poll_mass(account, ref)
        publish_id, _ = parse_ref(ref)
        if not publish_id.isdigit():
            return self._poll_article(account, ref)
        data = self._call(account, "/cgi-bin/freepublish/get", payload={"publish_id": publish_id})
        detail = data.get("article_detail") or {}
        urls = [str(item.get("article_url", "")) for item in detail.get("item") or []]
        return publish_outcome(
            int(data.get("publish_status", 3)),
            ref=ref,
            article_id=str(data.get("article_id", "")),
            article_urls=urls,
            fail_idx=[int(i) for i in data.get("fail_idx") or []],
        )

    def _poll_mass(self, account: Account, ref: str) -> PublishOutcome:
        """``message/mass/get`` for ``"mass:<msg_id>"``; the same answer as MASSSENDJOBFINISH."""
        msg_id = ref.removeprefix(MASS_REF)
        data = self._call(
            account,
            "/cgi-bin/message/mass/get",
            payload={"msg_id": int(msg_id) if msg_id.isdigit() else msg_id},
        )
        return mass_outcome(str(data.get("msg_status", "")), msg_id=msg_id)

    def _poll_article(self, account: Account, article_id: str) -> PublishOutcome:
        data = self._call(
            account, "/cgi-bin/freepublish/getarticle", payload={"article_id": article_id}
        )
        news = data.get("news_item") or []
        if news and all(bool(item.get("is_deleted")) for item in news):
            return publish_outcome(5, ref=article_id)  # raises Rejected (wechat.deleted)
        url = str(news[0].get("url", "")) if news else ""
        return Published(remote_id=article_id, remote_url=url)

    def withdraw(self, account: Account, remote_id: str) -> None:
        """Delete every article of the publication ``remote_id`` (irreversible).

        A mass send (``"mass:<msg_id>"``) is deleted with ``message/mass/delete``: its article
        pages go; the messages already in followers' chats stay (the platform's rule).
        """
        if remote_id.startswith(MASS_REF):
            msg_id = remote_id.removeprefix(MASS_REF)
            self._call(
                account,
                "/cgi-bin/message/mass/delete",
                payload={"msg_id": int(msg_id) if msg_id.isdigit() else msg_id, "article_idx": 0},
                state_changing=True,
            )
            return
        self._call(
            account,
            "/cgi-bin/freepublish/delete",
            payload={"article_id": remote_id, "index": 0},
            state_changing=True,
        )

    def recent(self, account: Account, since: str | None = None) -> list[RemotePost]:
        """Published articles, newest first (deleted ones left out).

        ``since`` is a Unix timestamp (digits), an ISO 8601 datetime, or an ``article_id``:
        pages are read until an older item (or that article) is reached. Without ``since``,
        one page of 20.
        """
        since_ts, since_id = _parse_since(since)
        posts: list[RemotePost] = []
        offset = 0
        for _page in range(100):  # at most 2,000 articles
            data = self._call(
                account,
                "/cgi-bin/freepublish/batchget",
                payload={"offset": offset, "count": 20, "no_content": 1},
            )
            items = data.get("item") or []
            for item in items:
                post = _remote_post(item)
                if post is None:
                    continue
                if since_id and post.remote_id == since_id:
                    return posts
                if since_ts is not None and post.created_at.timestamp() < since_ts:
                    return posts
                if not _is_deleted(item):
                    posts.append(post)
            offset += len(items)
            if since is None or not items or offset >= int(data.get("total_count", 0)):
                break
        return posts

    # -- reach (datacube) -----------------------------------------------------------------------

    @classmethod
    def metrics_spec(cls) -> MetricsSpec:
        return METRICS

    def fetch_metrics(
        self, account: Account, copies: Sequence[CopyRef], day: date
    ) -> list[CopyMetrics]:
        """Reads and shares of each copy up to the end of ``day`` (Beijing), from
        ``datacube/getarticletotal``: one call per day on which copies were sent (the datacube
        addresses an article as ``<msg_data_id>_<index>``; a copy without ``msg_data_id`` is
        left out). After 7 days the platform stops counting: the last totals stand. ``day``
        must be yesterday or earlier (the datacube refuses today: 61501)."""
        wanted: dict[date, dict[str, str]] = {}
        for copy in copies:
            msg_data_id = copy.meta.get("msg_data_id", "")
            sent = copy.published_at.astimezone(BEIJING).date()
            if msg_data_id and sent <= day:
                wanted.setdefault(sent, {})[f"{msg_data_id}_1"] = copy.remote_id
        found: list[CopyMetrics] = []
        for sent, by_msgid in sorted(wanted.items()):
            data = self._call(
                account,
                "/datacube/getarticletotal",
                payload={"begin_date": sent.isoformat(), "end_date": sent.isoformat()},
            )
            for item in data.get("list") or []:
                remote_id = by_msgid.get(str(item.get("msgid", "")))
                if remote_id is None:
                    continue
                details = [
                    d
                    for d in item.get("details") or []
                    if isinstance(d, dict) and str(d.get("stat_date", "")) <= day.isoformat()
                ]
                if not details:
                    continue
                latest = max(details, key=lambda d: str(d.get("stat_date", "")))
                counts = {key: _count(latest.get(raw)) for key, raw in _DATACUBE_KEYS.items()}
                found.append(CopyMetrics(remote_id=remote_id, day=day, counts=counts))
        return found

    # -- reconciliation and other calls -------------------------------------------------------

    def find_publication(
        self,
        account: Account,
        *,
        title: str,
        digest: str,
        since: datetime,
        until: datetime,
        exclude: frozenset[str] = frozenset(),
    ) -> RemotePost | None:
        """The published article that a lost ``freepublish/submit`` answer made, if listed.

        Reads ``freepublish/batchget`` (newest first) back to ``since`` and returns the first
        article whose title and digest are ours and whose creation time lies in
        ``[since, until]`` (:func:`matches_submission`); ``exclude`` are article ids the hub
        already holds for other deliveries. ``None`` when nothing matches (yet).
        """
        offset = 0
        for _page in range(50):  # at most 1,000 articles
            data = self._call(
                account,
                "/cgi-bin/freepublish/batchget",
                payload={"offset": offset, "count": 20, "no_content": 1},
            )
            items = data.get("item") or []
            for item in items:
                post = _remote_post(item)
                if post is None:
                    continue
                if post.created_at < since:
                    return None
                news = (item.get("content") or {}).get("news_item") or [{}]
                if (
                    post.remote_id not in exclude
                    and not _is_deleted(item)
                    and matches_submission(
                        listed_title=str(news[0].get("title", "")),
                        listed_digest=str(news[0].get("digest", "")),
                        listed_at=post.created_at,
                        title=title,
                        digest=digest,
                        since=since,
                        until=until,
                    )
                ):
                    return post
            offset += len(items)
            if not items or offset >= int(data.get("total_count", 0)):
                break
        return None

    def draft_exists(self, account: Account, media_id: str) -> bool:
        """Is the draft still in the draft box?

        Not evidence either way after ``freepublish/submit``: the draft may stay in the box
        while the job is under audit. Kept for diagnostics only.
        """
        try:
            self._call(account, "/cgi-bin/draft/get", payload={"media_id": media_id})
        except Rejected as exc:
            if exc.code == str(INVALID_MEDIA_ID):
                return False
            raise
        return True

    def upload_thumb(
        self, account: Account, data: bytes, *, fresh: bool = False, digest: str = ""
    ) -> str:
        """Upload a cover as permanent thumb material (JPEG <= 64 KB after conversion).

        Permanent material never expires, so the same image for the same app is uploaded once
        per process (a retried publication does not upload its cover again). ``fresh`` uploads
        again: the cached material was deleted in the account's back office. The conversion is
        the variant store's: once per picture, whatever the number of accounts.
        """
        digest = digest or digest_of(data)
        key = _upload_key(account, "thumb", digest)
        cached = None if fresh else _UPLOADS.get(key)
        if cached is not None:
            return cached
        thumb = self.thumb(data, digest)
        answer = self._call(
            account,
            "/cgi-bin/material/add_material",
            params={"type": "thumb"},
            files={"media": (thumb.filename, thumb.data, thumb.content_type)},
        )
        return _UPLOADS.put(key, str(answer["media_id"]))

    def upload_image(self, account: Account, data: bytes) -> str:
        """``media/uploadimg`` -> the image's ``mmbiz.qpic.cn`` URL (permanent; cached)."""
        digest = digest_of(data)
        key = _upload_key(account, "image", digest)
        cached = _UPLOADS.get(key)
        if cached is not None:
            return cached
        image = self.body_image(data, digest)
        answer = self._call(
            account,
            "/cgi-bin/media/uploadimg",
            files={"media": (image.filename, image.data, image.content_type)},
        )
        return _UPLOADS.put(key, str(answer["url"]))

    def prepare_images(self, rendition: Rendition) -> int:
        """Make the cover's thumb and the in-body images' variants now (the hub calls this at
        submit), so the fan-out's copies read them instead of all waiting for the first one to
        convert. Returns how many pictures were looked at; a picture that cannot be read or
        converted is left for the publication to report."""
        pictures = [rendition.cover] if rendition.cover is not None else []
        srcs = set(image_srcs(rendition.html))
        pictures += [img for img in rendition.images if img.url in srcs and img.path]
        seen = 0
        for image in dict.fromkeys(pictures):
            try:
                data = Path(image.path).read_bytes()
                digest = digest_of(data)
                if image is rendition.cover:
                    self.thumb(data, digest)
                self.body_image(data, digest)
            except (OSError, ConnectorError):
                continue
            seen += 1
        return seen

    def thumb(self, data: bytes, digest: str = "") -> ImageFile:
        """The cover as ``add_material`` (thumb) takes it: as is when it fits, else the variant
        ``wechat-thumb-<max bytes>.jpg`` (made once per picture by the variant store)."""
        max_bytes = self.limits.thumb_max_bytes or 64 * 1024
        if thumb_fits(data, max_bytes):
            return ImageFile(data, "cover.jpg", "image/jpeg")
        jpeg = self._variants.variant(
            digest or digest_of(data),
            f"wechat-thumb-{max_bytes}.jpg",
            lambda: jpeg_within(data, max_bytes, max_side=900),
        )
        return ImageFile(jpeg, "cover.jpg", "image/jpeg")

    def body_image(self, data: bytes, digest: str = "") -> ImageFile:
        """An in-body image as ``uploadimg`` takes it: as is when it fits, else the variant
        ``wechat-body-<max bytes>.jpg``."""
        max_bytes = self.limits.image_max_bytes or 1_000_000
        if body_fits(data, max_bytes):
            return body_image_file(data, max_bytes)
        jpeg = self._variants.variant(
            digest or digest_of(data),
            f"wechat-body-{max_bytes}.jpg",
            lambda: jpeg_within(data, max_bytes, max_side=1920),
        )
        return ImageFile(jpeg, "image.jpg", "image/jpeg")

    def mass_send(self, account: Account, media_id: str, clientmsgid: str) -> str:
        """Push an article to all followers (群发) -> ``msg_id``.

        ``clientmsgid`` de-duplicates on the platform, so resending after a lost answer is safe:
        45065 (already sent with this clientmsgid) returns the earlier ``msg_id``; 45066 asks to
        retry in a minute. Mass-send quota is tracked by the hub (:func:`mass_send_quota`).
        """
        return self.mass_send_job(account, media_id, clientmsgid).ref.removeprefix(MASS_REF)

    def mass_send_job(self, account: Account, media_id: str, clientmsgid: str) -> Pending:
        """``message/mass/sendall`` of a draft -> ``Pending(ref="mass:<msg_id>")``.

        A lost answer is :class:`Transient` (not Unconfirmed): the same ``clientmsgid`` sent
        again is answered 45065 with the first send's ``msg_id``, never a second push.
        """
        payload = {
            "filter": {"is_to_all": True},
            "mpnews": {"media_id": media_id},
            "msgtype": "mpnews",
            "send_ignore_reprint": 0,
            "clientmsgid": clientmsgid,
        }
        data = self._call(
            account,
            "/cgi-bin/message/mass/sendall",
            payload=payload,
            accept=frozenset({MASS_SENT_ALREADY}),
        )
        msg_id = str(data.get("msg_id", ""))
        if not msg_id:
            raise Rejected(
                "群发请求未返回msg_id", platform=PLATFORM, code=str(errcode_of(data) or "")
            )
        meta = {"msg_data_id": str(data["msg_data_id"])} if data.get("msg_data_id") else {}
        return Pending(ref=MASS_REF + msg_id, meta=meta)

    def send_custom_message(self, account: Account, openid: str, text: str) -> None:
        """Reply to a follower with a customer-service text message (客服消息).

        Allowed only within 48 hours of the user's last message to the account: 45015 becomes
        :class:`Rejected` with code ``"45015"`` and an explanation (answer by other means).
        """
        if not text.strip():
            raise Rejected("回复内容不能为空", platform=PLATFORM, code="wechat.empty")
        payload = {"touser": openid, "msgtype": "text", "text": {"content": text}}
        data = self._call(
            account,
            "/cgi-bin/message/custom/send",
            payload=payload,
            state_changing=True,
            accept=frozenset({CUSTOM_WINDOW_CLOSED}),
        )
        if errcode_of(data) == CUSTOM_WINDOW_CLOSED:
            raise Rejected(
                "该用户最近一条消息已超过48小时，微信不允许再通过客服消息回复："
                "请通过其他方式答复（电话、短信或公开答复）",
                platform=PLATFORM,
                code=str(CUSTOM_WINDOW_CLOSED),
                platform_message=redact(str(data.get("errmsg", ""))),
            )

    # -- HTTP ---------------------------------------------------------------------------------

    def _image_bytes(self, image: Image) -> bytes:
        if image.path:
            try:
                return Path(image.path).read_bytes()
            except OSError:
                if not image.url:
                    raise Rejected(
                        "图片文件丢失，请重新上传", platform=PLATFORM, code="wechat.image_missing"
                    ) from None
        return self._fetch(image.url)

    def _fetch(self, url: str) -> bytes:
        if urlsplit(url).scheme not in URL_SCHEMES:
            raise Rejected(f"无法读取图片：{url}", platform=PLATFORM, code="wechat.image_missing")
        try:
            response = self._client.get(url, follow_redirects=True)
        except httpx.HTTPError as exc:
            raise Transient(
                f"下载图片失败：{url}（{type(exc).__name__}）", platform=PLATFORM
            ) from None
        if response.status_code != 200:
            raise Rejected(
                f"下载图片失败：{url}（HTTP {response.status_code}）",
                platform=PLATFORM,
                code="wechat.image_missing",
                http_status=response.status_code,
            )
        return response.content

    def _rehost_images(self, account: Account, rendition: Rendition) -> str:
        """Upload every in-body image not on mmbiz.qpic.cn (side by side) and rewrite its ``src``."""
        content = rendition.html
        by_url = {img.url: img for img in rendition.images if img.url}
        srcs = list(dict.fromkeys(src for src in image_srcs(content) if not is_mmbiz(src)))

        data_of: dict[str, bytes] = {}
        for src in srcs:
            local = by_url.get(src)
            data_of[src] = self._image_bytes(local) if local else self._fetch(src)
        pictures = list(dict.fromkeys(data_of.values()))  # one upload per distinct picture

        def upload(data: bytes) -> str:
            return self.upload_image(account, data)

        if len(pictures) > 1:
            url_of = dict(zip(pictures, _uploads_pool().map(upload, pictures), strict=True))
        else:
            url_of = {data: upload(data) for data in pictures}
        for src in srcs:
            new_src = url_of[data_of[src]]
            content = content.replace(
                f'src="{html.escape(src, quote=True)}"', f'src="{html.escape(new_src, quote=True)}"'
            )
            content = content.replace(f'src="{src}"', f'src="{html.escape(new_src, quote=True)}"')
        return content

    def _token_key(self, account: Account) -> str:
        return f"{PLATFORM}:{self._credentials(account)[0]}"

    @staticmethod
    def _credentials(account: Account) -> tuple[str, str]:
        app_id = account.credentials.get("app_id", "")
        secret = account.credentials.get("app_secret", "")
        if not app_id or not secret:
            raise Misconfigured(
                "公众号未配置AppID或AppSecret", platform=PLATFORM, code="wechat.no_credentials"
            )
        return app_id, secret

    def _access_token(self, account: Account) -> str:
        key = self._token_key(account)
        try:
            cached = self._tokens.get(key)
            if cached is not None:
                return cached.token
            with self._tokens.lock(key):
                cached = self._tokens.get(key)  # another process may have just refreshed it
                if cached is not None:
                    return cached.token
                return self._fetch_token(account, key)
        except TokenStoreError as exc:
            raise Transient(f"令牌缓存不可用：{exc}", platform=PLATFORM) from None

    def keep_token(self, account: Account) -> bool:
        """Fetch the account's token now unless the store holds one still good to use (the
        store keeps it until its expiry minus the refresh margin): the ``KeepsTokens``
        capability, called by beat so that publications do not fetch it."""
        try:
            if shared_get(self._tokens, self._token_key(account)) is not None:
                return False
        except TokenStoreError as exc:
            raise Transient(f"令牌缓存不可用：{exc}", platform=PLATFORM) from None
        self._access_token(account)
        return True

    def _refresh_token(self, account: Account, stale: str) -> str:
        """Replace a token the platform refused, unless another process already did."""
        key = self._token_key(account)
        try:
            with self._tokens.lock(key):
                cached = self._tokens.get(key)
                if cached is not None and cached.token != stale:
                    return cached.token
                return self._fetch_token(account, key, refused=stale)
        except TokenStoreError as exc:
            raise Transient(f"令牌缓存不可用：{exc}", platform=PLATFORM) from None

    def _fetch_token(self, account: Account, key: str, *, refused: str = "") -> str:
        """``stable_token`` (called under the store's lock): isolated from the classic
        ``/cgi-bin/token``, so another system sharing the AppSecret cannot invalidate it.

        Normal mode returns the platform's current token. Only when that is the very token the
        platform just ``refused`` is ``force_refresh`` spent (20 a day, 30 s apart).
        """
        token, lifetime = self._stable_token(account, force=False)
        if refused and token == refused:
            log.info("wechat: the current stable token was refused; forcing a new one")
            token, lifetime = self._stable_token(account, force=True)
        # The store keeps the time the hub stops using the token: expiry minus the margin (at
        # most half the lifetime, so short-lived tokens are still reused).
        use_until = datetime.now(UTC) + lifetime - min(self._refresh_margin, lifetime / 2)
        self._tokens.put(key, token, use_until)
        log.info("wechat: access token for app %s", self._credentials(account)[0])
        return token

    def _stable_token(self, account: Account, *, force: bool) -> tuple[str, timedelta]:
        app_id, secret = self._credentials(account)
        payload = {
            "grant_type": "client_credential",
            "appid": app_id,
            "secret": secret,
            "force_refresh": force,
        }
        data = self._send("POST", "/cgi-bin/stable_token", payload=payload)
        code = errcode_of(data)
        errmsg = redact(str(data.get("errmsg", ""))).replace(secret, "***")
        if code in (40001, 40125):  # on the token call: wrong AppSecret
            raise AccountBlocked(
                "公众号AppSecret错误：请在账号页更新AppSecret后点击「测试连接」，暂停的投递会自动继续",
                platform=PLATFORM,
                code=str(code),
                platform_message=errmsg,
            )
        if force and code == 45009:
            raise QuotaExhausted(
                "微信access_token今日强制刷新次数（20次）已用完：可能有其他系统在反复强制刷新"
                "该公众号的令牌，请核查AppSecret是否外泄；北京时间次日零点后恢复",
                until=next_midnight(datetime.now(UTC)),
                platform=PLATFORM,
                code=str(code),
                platform_message=errmsg,
            )
        if force and code == 45011:
            raise RateLimited(
                "微信access_token强制刷新过于频繁（每30秒最多一次），稍后自动重试",
                until=datetime.now(UTC) + timedelta(seconds=30),
                platform=PLATFORM,
                code=str(code),
                platform_message=errmsg,
            )
        if code:
            raise error_for(code, errmsg)
        return str(data["access_token"]), timedelta(seconds=int(data.get("expires_in", 7200)))

    def _call(
        self,
        account: Account,
        path: str,
        *,
        payload: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
        files: Mapping[str, tuple[str, bytes, str]] | None = None,
        state_changing: bool = False,
        accept: frozenset[int] = frozenset(),
    ) -> dict[str, Any]:
        """POST an API call with the access token; refresh once and replay once if refused."""
        token = self._access_token(account)
        kw: dict[str, Any] = {
            "params": params,
            "payload": payload,
            "files": files,
            "state_changing": state_changing,
        }
        data = self._send("POST", path, token=token, **kw)
        if errcode_of(data) in TOKEN_ERRORS:
            log.info("wechat: %s refused the access token (%s); refreshing", path, data["errcode"])
            token = self._refresh_token(account, token)
            data = self._send("POST", path, token=token, **kw)
        code = errcode_of(data)
        if code and code not in accept:
            raise error_for(code, str(data.get("errmsg", "")).replace(token, "***"))
        return data

    def _send(
        self,
        method: str,
        path: str,
        *,
        token: str = "",
        params: Mapping[str, str] | None = None,
        payload: Mapping[str, Any] | None = None,
        files: Mapping[str, tuple[str, bytes, str]] | None = None,
        state_changing: bool = False,
    ) -> dict[str, Any]:
        query: dict[str, str] = dict(params or {})
        if token:
            query["access_token"] = token
        body: bytes | None = None
        headers: dict[str, str] = {}
        if payload is not None:
            body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
            headers["Content-Type"] = "application/json; charset=utf-8"
        try:
            response = self._client.request(
                method,
                self._api_base + path,
                params=query,
                content=body,
                files=files,
                headers=headers,
            )
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise Transient(
                f"无法连接微信接口 {path}（{type(exc).__name__}）", platform=PLATFORM
            ) from None
        except httpx.HTTPError as exc:
            # The request may have reached the platform.
            message = f"微信接口 {path} 未答复（{type(exc).__name__}）"
            if state_changing:
                raise Unconfirmed(message, platform=PLATFORM) from None
            raise Transient(message, platform=PLATFORM) from None
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            message = f"微信接口 {path} 返回了无法解析的答复（HTTP {response.status_code}）"
            if response.status_code >= 500:
                error_class = Unconfirmed if state_changing else Transient
                raise error_class(message, platform=PLATFORM, http_status=response.status_code)
            raise Rejected(message, platform=PLATFORM, http_status=response.status_code)
        return data


# ---------------------------------------------------------------------------------------------
# recent() helpers


def _count(value: object) -> int:
    try:
        return max(0, int(str(value)))
    except (TypeError, ValueError):
        return 0


def _parse_since(since: str | None) -> tuple[float | None, str | None]:
    if not since:
        return None, None
    if since.isdigit() and len(since) <= 11:
        return float(since), None
    try:
        moment = datetime.fromisoformat(since)
    except ValueError:
        return None, since
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=WECHAT_TZ)
    return moment.timestamp(), None


def _is_deleted(item: Mapping[str, Any]) -> bool:
    news = (item.get("content") or {}).get("news_item") or []
    return bool(news) and all(bool(n.get("is_deleted")) for n in news)


def _remote_post(item: Mapping[str, Any]) -> RemotePost | None:
    article_id = item.get("article_id")
    if not article_id:
        return None
    content = item.get("content") or {}
    news = content.get("news_item") or [{}]
    stamp = content.get("create_time") or item.get("update_time") or 0
    return RemotePost(
        remote_id=str(article_id),
        created_at=datetime.fromtimestamp(int(stamp), UTC),
        url=str(news[0].get("url", "")),
        text=str(news[0].get("title", "")),
    )


# ---------------------------------------------------------------------------------------------
# Callback (the hub's POST /callbacks/wechat/{account_id}); the transport (plaintext,
# compatible and safe mode) is in connectors/wechat_crypto.py


def check_signature(token: str, timestamp: str, nonce: str, signature: str) -> bool:
    """WeChat's callback signature: sha1 of the sorted [token, timestamp, nonce], concatenated,
    compared in constant time; any characters in ``signature`` give False, never an error."""
    if not token or not signature:
        return False
    return wechat_crypto.same_digest(wechat_crypto.sign(token, timestamp, nonce), signature)


def sign(token: str, timestamp: str, nonce: str) -> str:
    """The signature WeChat would send (used by the sandbox and tests)."""
    return wechat_crypto.sign(token, timestamp, nonce)


@dataclass(frozen=True)
class PublishJobFinish:
    """The ``PUBLISHJOBFINISH`` event: a freepublish job ended."""

    publish_id: str
    publish_status: int
    article_id: str = ""
    article_urls: tuple[str, ...] = ()
    fail_idx: tuple[int, ...] = ()
    to_user: str = ""  # the account's original id (gh_...)
    create_time: int = 0

    def outcome(self, ref: str | None = None) -> PublishOutcome:
        """The same answer ``poll`` would give (raises Rejected for failed jobs)."""
        return publish_outcome(
            self.publish_status,
            ref=ref or self.publish_id,
            article_id=self.article_id,
            article_urls=self.article_urls,
            fail_idx=self.fail_idx,
        )


class EventError(ValueError):
    """The callback body is not a well-formed PUBLISHJOBFINISH event."""


def parse_publish_event(xml_bytes: bytes) -> PublishJobFinish:
    """Parse a PUBLISHJOBFINISH event; DOCTYPEs and entities are refused (defusedxml)."""
    try:
        root = SafeElementTree.fromstring(xml_bytes, forbid_dtd=True)
    except Exception as exc:  # ParseError and defusedxml's DTDForbidden/EntitiesForbidden
        raise EventError(f"unreadable callback XML: {type(exc).__name__}") from None
    event = (root.findtext("Event") or "").strip()
    info = root.find("PublishEventInfo")
    if event.upper() != "PUBLISHJOBFINISH" or info is None:
        raise EventError(f"not a PUBLISHJOBFINISH event: {event!r}")
    publish_id = (info.findtext("publish_id") or "").strip()
    status_text = (info.findtext("publish_status") or "").strip()
    if not publish_id or not status_text.lstrip("-").isdigit():
        raise EventError("PUBLISHJOBFINISH without publish_id or publish_status")
    urls = tuple(
        (item.findtext("article_url") or "").strip() for item in info.findall("article_detail/item")
    )
    fail_idx = tuple(
        int(text) for el in info.findall("fail_idx") if (text := (el.text or "").strip()).isdigit()
    )
    create_time = (root.findtext("CreateTime") or "0").strip()
    return PublishJobFinish(
        publish_id=publish_id,
        publish_status=int(status_text),
        article_id=(info.findtext("article_id") or "").strip(),
        article_urls=urls,
        fail_idx=fail_idx,
        to_user=(root.findtext("ToUserName") or "").strip(),
        create_time=int(create_time) if create_time.isdigit() else 0,
    )


def matches_submission(
    *,
    listed_title: str,
    listed_digest: str,
    listed_at: datetime,
    title: str,
    digest: str,
    since: datetime,
    until: datetime,
) -> bool:
    """Is a listed article the one our lost ``freepublish/submit`` made? Same title, same
    digest (an empty one on either side is not compared: the platform fills it in), created in
    the window ``[since, until]`` around the submission."""
    if listed_title.strip() != title.strip():
        return False
    if listed_digest.strip() and digest.strip() and listed_digest.strip() != digest.strip():
        return False
    return since <= listed_at <= until


# -- mass send (群发): message/mass/get and the MASSSENDJOBFINISH event agree -------------------

_MASS_ERRORS = {
    "10001": "涉嫌广告",
    "20001": "涉嫌政治",
    "20004": "涉嫌社会",
    "20002": "涉嫌色情",
    "20006": "涉嫌违法犯罪",
    "20008": "涉嫌欺诈",
    "20013": "涉嫌版权",
    "22000": "涉嫌互推（互相宣传）",
    "21000": "涉嫌其他",
    "30001": "原创校验出现系统错误且用户选择了被判为转载就不群发",
    "30002": "原创校验被判定为不能群发",
    "30003": "原创校验被判定为转载文且用户选择了被判为转载就不群发",
}
_MASS_ERR = re.compile(r"err\((\d+)\)")


def mass_outcome(status: str, *, msg_id: str, article_urls: Sequence[str] = ()) -> PublishOutcome:
    """A mass send's status (``msg_status`` of mass/get, or the event's ``Status``) ->
    Published / Pending, or raise Rejected. ``remote_id`` is ``"mass:<msg_id>"``."""
    word = status.strip().upper().replace(" ", "_")
    ref = MASS_REF + msg_id
    if word == "SEND_SUCCESS":
        return Published(remote_id=ref, remote_url=article_urls[0] if article_urls else "")
    if word in ("SENDING", ""):
        return Pending(ref=ref)
    if word == "DELETE":
        reason, code = "群发后已被删除", "wechat.mass_deleted"
    else:
        match = _MASS_ERR.search(status)
        detail = _MASS_ERRORS.get(match.group(1), f"错误码{match.group(1)}") if match else ""
        reason = "群发失败" + (f"：{detail}" if detail else "") + f"（{status.strip()}）"
        code = "wechat.mass_failed"
    raise Rejected(reason, platform=PLATFORM, code=code, platform_message=reason)


@dataclass(frozen=True)
class MassSendJobFinish:
    """The ``MASSSENDJOBFINISH`` event: a mass send (群发) ended."""

    msg_id: str
    status: str  # "send success", "send fail", "err(num)"
    total_count: int = 0
    sent_count: int = 0
    error_count: int = 0
    article_urls: tuple[str, ...] = ()

    def outcome(self) -> PublishOutcome:
        """The same answer ``poll`` (``message/mass/get``) would give; raises Rejected."""
        return mass_outcome(self.status, msg_id=self.msg_id, article_urls=self.article_urls)


def parse_mass_event(xml_bytes: bytes) -> MassSendJobFinish | None:
    """A MASSSENDJOBFINISH event, or ``None`` for any other body (DOCTYPEs refused)."""
    try:
        root = SafeElementTree.fromstring(xml_bytes, forbid_dtd=True)
    except Exception:  # ParseError and defusedxml's DTDForbidden/EntitiesForbidden
        return None
    if (root.findtext("Event") or "").strip().upper() != "MASSSENDJOBFINISH":
        return None
    msg_id = (root.findtext("MsgID") or root.findtext("MsgId") or "").strip()
    if not msg_id:
        return None

    def number(tag: str) -> int:
        text = (root.findtext(tag) or "0").strip()
        return int(text) if text.isdigit() else 0

    urls = tuple(
        (item.findtext("ArticleUrl") or "").strip()
        for item in root.findall("ArticleUrlResult/ResultList/item")
    )
    return MassSendJobFinish(
        msg_id=msg_id,
        status=(root.findtext("Status") or "").strip(),
        total_count=number("TotalCount"),
        sent_count=number("SentCount"),
        error_count=number("ErrorCount"),
        article_urls=urls,
    )


@dataclass(frozen=True)
class UserMessage:
    """A follower's message (``text``, ``image``) or event POSTed to the callback URL."""

    msg_type: str
    openid: str
    create_time: int
    content: str = ""
    pic_url: str = ""
    event: str = ""
    msg_id: str = ""
    to_user: str = ""

    @property
    def remote_id(self) -> str:
        """``MsgId``; events have none, WeChat's advice is ``FromUserName`` + ``CreateTime``."""
        return self.msg_id or f"{self.openid}:{self.create_time}"


def _settled(event: PublishJobFinish | MassSendJobFinish) -> Published | str | None:
    """The event's outcome as the hub records it: the copy, the failure in words, or None
    while the job is still running."""
    try:
        result = event.outcome()
    except Rejected as exc:
        return exc.message
    return result if isinstance(result, Published) else None


def _callback_result(xml: bytes) -> CallbackResult:
    mass = parse_mass_event(xml)
    if mass is not None:  # a push (群发) ended
        outcome = _settled(mass)
        done = () if outcome is None else (Completion(f"{MASS_REF}{mass.msg_id}", outcome),)
        return CallbackResult(completions=done)
    message = parse_user_message(xml)
    if message is not None:  # a follower's message: an inbox case (events re-open the window)
        received = (
            datetime.fromtimestamp(message.create_time, tz=UTC)
            if message.create_time
            else datetime.now(UTC)
        )
        inbound = InboundMessage(
            remote_id=message.remote_id,
            author_id=message.openid,
            text=message.content if message.msg_type == "text" else "［图片］",
            received_at=received,
            msg_type=message.msg_type,
            media_url=message.pic_url,
            opens_case=message.msg_type in ("text", "image"),
        )
        return CallbackResult(messages=(inbound,))
    try:
        event = parse_publish_event(xml)
    except EventError as exc:
        raise CallbackRefused(f"not a PUBLISHJOBFINISH event: {exc}", status=400) from None
    outcome = _settled(event)  # None: 1, still publishing; the final event follows
    done = () if outcome is None else (Completion(event.publish_id, outcome),)
    return CallbackResult(completions=done)


def parse_user_message(xml_bytes: bytes) -> UserMessage | None:
    """A user's message or event; ``None`` for ``PUBLISHJOBFINISH`` or unreadable XML."""
    try:
        root = SafeElementTree.fromstring(xml_bytes, forbid_dtd=True)
    except Exception:  # ParseError and defusedxml's DTDForbidden/EntitiesForbidden
        return None
    msg_type = (root.findtext("MsgType") or "").strip().lower()
    event = (root.findtext("Event") or "").strip()
    openid = (root.findtext("FromUserName") or "").strip()
    if not msg_type or not openid or event.upper() in ("PUBLISHJOBFINISH", "MASSSENDJOBFINISH"):
        return None
    create_time = (root.findtext("CreateTime") or "0").strip()
    return UserMessage(
        msg_type=msg_type,
        openid=openid,
        create_time=int(create_time) if create_time.isdigit() else 0,
        content=root.findtext("Content") or "",
        pic_url=(root.findtext("PicUrl") or "").strip(),
        event=event,
        msg_id=(root.findtext("MsgId") or "").strip(),
        to_user=(root.findtext("ToUserName") or "").strip(),
    )


# ---------------------------------------------------------------------------------------------
# Mass-send quota


AccountKind = Literal["subscription", "service"]


def mass_send_quota(account_kind: AccountKind, sends: Sequence[datetime], now: datetime) -> int:
    """Mass sends still allowed now, in Beijing time.

    A subscription account (订阅号) may mass-send once per day; a service account (服务号) four
    times per calendar month. ``sends`` are the account's successful sends (aware datetimes).
    """
    local_now = now.astimezone(WECHAT_TZ)
    if account_kind == "subscription":
        allowed = 1
        used = sum(1 for s in sends if s.astimezone(WECHAT_TZ).date() == local_now.date())
    elif account_kind == "service":
        allowed = 4
        used = sum(
            1
            for s in sends
            if (local := s.astimezone(WECHAT_TZ)).year == local_now.year
            and local.month == local_now.month
        )
    else:
        raise ValueError(f"unknown account kind {account_kind!r}")
    return max(0, allowed - used)
