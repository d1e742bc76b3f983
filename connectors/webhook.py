"""Signed webhooks to partner sites (news and commercial websites, §10).

Each delivery POSTs a JSON entry to the partner's URL (``credentials["url"]``, else
``account.handle``) with two headers::

    X-Govhub-Timestamp: <unix seconds>
    X-Govhub-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>" keyed with the secret>

Partners check them with :func:`verify_signature`. Withdrawing POSTs a ``post.withdrawn`` event
to the same URL. Targets resolving to loopback, link-local, private, multicast or reserved
addresses (also wrapped in 6to4, NAT64, Teredo or IPv4-mapped IPv6) are refused unless
``allow_private`` (SSRF guard, :mod:`connectors.outbound`; every resolved address is checked,
and the POST goes to the address that was checked). Redirects are never followed. Partners have no listing API: ``recent`` returns ``[]``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import urlsplit

import httpx

from connectors.base import (
    Account,
    Checkpoint,
    Content,
    CredentialField,
    Limits,
    PlatformInfo,
    Problem,
    Published,
    PublishOutcome,
    RemotePost,
    Rendition,
    Wiring,
)
from connectors.errors import (
    ConnectorError,
    Misconfigured,
    RateLimited,
    Rejected,
    Transient,
    Unconfirmed,
)
from connectors.markup import markdown_to_html, markdown_to_text
from connectors.outbound import (
    Resolver,
    Target,
    Unresolvable,
    UnsafeTarget,
    check_target,
    is_public_address,
    pinned_request,
    resolve,
)

__all__ = ["WebhookConnector", "is_public_address", "resolve", "sign", "verify_signature"]

PLATFORM = "webhook"
log = logging.getLogger(__name__)

TIMESTAMP_HEADER = "X-Govhub-Timestamp"
SIGNATURE_HEADER = "X-Govhub-Signature"
DELIVERY_HEADER = "X-Govhub-Delivery"
DEFAULT_TIMEOUT = httpx.Timeout(connect=3.0, read=10.0, write=10.0, pool=3.0)


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Govhub-Signature`` value for ``body`` sent at ``timestamp``."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def verify_signature(
    secret: str,
    timestamp: str,
    body: bytes | str,
    header: str,
    *,
    max_age: float = 300.0,
    now: float | None = None,
) -> bool:
    """For receivers: True when ``header`` signs ``body`` and ``timestamp`` is fresh."""
    try:
        sent = int(timestamp)
    except ValueError:
        return False
    current = time.time() if now is None else now
    if abs(current - sent) > max_age:
        return False
    payload = body.encode() if isinstance(body, str) else body
    expected = sign(secret, timestamp, payload).encode()
    return hmac.compare_digest(expected, header.encode("utf-8", "surrogatepass"))


class WebhookConnector:
    """POSTs signed JSON entries to a partner's URL."""

    platform: ClassVar[str] = PLATFORM
    limits: ClassVar[Limits] = Limits(content_max=1_000_000, concurrency=4)
    info: ClassVar[PlatformInfo] = PlatformInfo(
        key=PLATFORM,
        label_zh="合作网站",
        label_en="Partner sites",
        audit_label_zh="推送接口",
        audit_label_en="webhook",
        credentials=(CredentialField("url", secret=False), CredentialField("secret")),
        settings_keys=("webhook_allow_private",),
        outbound_url="url",
        order=40,
        audited=False,
        public_copies=False,
    )

    def __init__(
        self,
        client: httpx.Client,
        *,
        allow_private: bool,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        resolver: Resolver = resolve,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._client = client
        self.allow_private = allow_private
        self._timeout = timeout
        self._resolve = resolver
        self._clock = clock or (lambda: datetime.now(UTC))

    @classmethod
    def from_wiring(cls, wiring: Wiring) -> WebhookConnector:
        return cls(wiring.client, allow_private=wiring.settings.webhook_allow_private)

    def __repr__(self) -> str:
        return f"WebhookConnector(allow_private={self.allow_private})"

    def render(self, content: Content) -> Rendition:
        return Rendition(
            platform=PLATFORM,
            text=content.summary or markdown_to_text(content.body),
            title=content.title,
            html=markdown_to_html(content.body),
            author=content.author,
            link=content.link,
            images=content.images,
            meta={
                "post_id": str(content.post_id),
                "version": str(content.version),
                "org_name": content.org_name,
                "urgency": content.urgency,
            },
        )

    def check(self, rendition: Rendition) -> list[Problem]:
        problems = []
        if not rendition.title.strip():
            problems.append(
                Problem("webhook.title_missing", "推送给合作网站的稿件须有标题", "title")
            )
        if len(rendition.html.encode()) > (self.limits.content_max or 0):
            problems.append(Problem("webhook.too_large", "稿件正文超过1MB，请删减", "body"))
        return problems

    def publish(
        self,
        account: Account,
        rendition: Rendition,
        *,
        idempotency_key: str,
        checkpoint: Checkpoint | None = None,
    ) -> PublishOutcome:
        """POST the entry; partners de-duplicate by its ``id`` (the key): no checkpoint needed."""
        entry = {
            "event": "post.published",
            "id": idempotency_key,
            "post": {
                "title": rendition.title,
                "text": rendition.text,
                "html": rendition.html,
                "author": rendition.author,
                "link": rendition.link,
                "images": [image.url for image in rendition.images if image.url],
                **dict(rendition.meta),
            },
            "sent_at": self._clock().isoformat(),
        }
        answer = self._deliver(account, entry, idempotency_key, ambiguous=True)
        remote_id = str(answer.get("id") or idempotency_key)
        return Published(remote_id, str(answer.get("url") or ""), self._clock())

    def poll(self, account: Account, ref: str) -> PublishOutcome:
        """Deliveries are synchronous: a known ref is published."""
        return Published(ref)

    def withdraw(self, account: Account, remote_id: str) -> None:
        entry = {"event": "post.withdrawn", "id": remote_id, "sent_at": self._clock().isoformat()}
        self._deliver(account, entry, f"withdraw-{remote_id}", ambiguous=False)

    def recent(self, account: Account, since: str | None = None) -> list[RemotePost]:
        """Partners expose no listing: nothing to reconcile against."""
        return []

    # -- delivery -------------------------------------------------------------------------------

    def target(self, account: Account) -> str:
        """The partner URL, refused when it points at a non-public address (unless allowed)."""
        return self.checked_target(account).url

    def checked_target(self, account: Account) -> Target:
        """The partner URL checked once and pinned to the address that passed the check."""
        url = account.credentials.get("url") or account.handle
        try:
            return check_target(url, allow_private=self.allow_private, resolver=self._resolve)
        except Unresolvable:
            raise Transient(
                f"无法解析合作网站域名 {urlsplit(url).hostname or url}",
                platform=PLATFORM,
                retry_after=60.0,
            ) from None
        except UnsafeTarget as exc:
            if exc.kind == "userinfo":
                message = "合作网站的推送地址不能包含用户名或密码"
            elif exc.kind == "private":
                message = (
                    f"合作网站推送地址 {urlsplit(url).hostname} 指向内网或本机地址，已拒绝发送"
                )
            else:
                message = "合作网站的推送地址无效，须为 http(s):// 开头的网址"
            raise Misconfigured(message, platform=PLATFORM) from None

    def _deliver(
        self, account: Account, entry: dict[str, Any], delivery_id: str, *, ambiguous: bool
    ) -> dict[str, Any]:
        target = self.checked_target(account)
        secret = account.credentials.get("secret", "")
        if not secret:
            raise Misconfigured("合作网站账号缺少签名密钥，请在账号设置中填写", platform=PLATFORM)
        body = json.dumps(entry, ensure_ascii=False, separators=(",", ":")).encode()
        timestamp = str(int(self._clock().timestamp()))
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(secret, timestamp, body),
            DELIVERY_HEADER: delivery_id,
        }
        log.info("webhook %s account=%s delivery=%s", entry["event"], account.id, delivery_id)
        host = target.host
        try:
            response = pinned_request(
                self._client, "POST", target, content=body, headers=headers, timeout=self._timeout
            )
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise Transient(
                f"无法连接合作网站 {host}（{type(exc).__name__}）", platform=PLATFORM
            ) from None
        except httpx.TransportError as exc:
            if ambiguous:
                raise Unconfirmed(
                    f"已推送但未收到合作网站 {host} 的应答（{type(exc).__name__}），结果未知",
                    platform=PLATFORM,
                ) from None
            raise Transient(f"合作网站 {host} 连接中断", platform=PLATFORM) from None
        raise_for_status(response, now=self._clock())
        try:
            answer = response.json()
        except ValueError:
            return {}
        return answer if isinstance(answer, dict) else {}


def raise_for_status(response: httpx.Response, *, now: datetime) -> None:
    """Map a partner's HTTP status to the error tree (2xx passes)."""
    status = response.status_code
    if response.is_success:
        return
    kw: dict[str, Any] = {
        "platform": PLATFORM,
        "code": str(status),
        "platform_message": response.text[:200],
        "http_status": status,
    }
    error: ConnectorError
    if status == 429:
        retry_after = _retry_after(response.headers.get("Retry-After"))
        error = RateLimited(
            "合作网站要求放慢推送", until=now + timedelta(seconds=retry_after or 60), **kw
        )
    elif status in (408, 425) or status >= 500:
        error = Transient(f"合作网站暂时不可用（HTTP {status}）", retry_after=30.0, **kw)
    elif status in (401, 403):
        error = Misconfigured("合作网站拒绝了签名：请核对双方的签名密钥", **kw)
    elif 300 <= status < 400:
        error = Misconfigured("合作网站推送地址发生跳转（不跟随跳转），请更新为最终地址", **kw)
    else:
        error = Rejected(f"合作网站拒绝了推送（HTTP {status}）", **kw)
    raise error


def _retry_after(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None
