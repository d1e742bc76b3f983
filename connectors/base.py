"""The connector protocol and the frozen dataclasses that cross it.

A connector turns a post into one channel's rendition (``render``), lists what the platform would
refuse (``check``), and talks to the platform over HTTP through an injected ``httpx.Client``
(``publish``, ``poll``, ``withdraw``, ``recent``). Limits are class data (:class:`Limits`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import ClassVar, Protocol, runtime_checkable


@dataclass(frozen=True)
class Limits:
    """What a platform accepts, declared once per connector class."""

    text_max: int | None = None  # counted units (Weibo: 140)
    title_max: int | None = None
    author_max: int | None = None
    digest_max: int | None = None
    content_max: int | None = None
    image_max_bytes: int | None = None
    image_types: tuple[str, ...] = ()
    thumb_max_bytes: int | None = None
    posts_per_hour: int | None = None  # pacing per account
    concurrency: int = 8  # parallel calls per account the hub allows itself
    # Platform round trips one publication takes. A fan-out starts its costliest copies first,
    # so the slow ones (and their asynchronous completion) overlap the quick ones behind them.
    calls_per_publish: int = 1


@dataclass(frozen=True)
class Account:
    """One org's presence on one platform, as a connector needs it.

    ``credentials`` are decrypted secrets; they never appear in ``repr``.
    """

    id: int
    platform: str
    handle: str
    name: str = ""
    credentials: Mapping[str, str] = field(default_factory=dict, repr=False)
    callback_token: str = field(default="", repr=False)
    extra: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Image:
    """An image of a post: a local file path (bytes read on demand) and its public URL."""

    path: str
    url: str = ""
    alt: str = ""
    content_type: str = ""


@dataclass(frozen=True)
class Content:
    """What the editor wrote once (one version of a post), channel-neutral."""

    post_id: int
    version: int
    title: str
    body: str  # Markdown subset
    summary: str = ""
    images: tuple[Image, ...] = ()
    link: str = ""  # public release-hall page of the post (Weibo's safe-domain link)
    urgency: str = "routine"
    author: str = ""
    org_name: str = ""
    overrides: Mapping[str, str] = field(default_factory=dict)  # e.g. {"weibo.text": "..."}
    correction_note: str = ""
    published_at: datetime | None = None


@dataclass(frozen=True)
class Rendition:
    """One channel's rendering of a post."""

    platform: str
    text: str = ""  # Weibo status; hall/webhook plain text
    title: str = ""
    html: str = ""  # WeChat article body / hall page body (sanitised)
    digest: str = ""
    author: str = ""
    link: str = ""
    images: tuple[Image, ...] = ()
    cover: Image | None = None
    meta: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Problem:
    """Something the platform would refuse, with what the editor should do about it."""

    code: str
    message: str
    field: str = ""
    blocking: bool = True


@dataclass(frozen=True)
class Published:
    remote_id: str
    remote_url: str = ""
    published_at: datetime | None = None


@dataclass(frozen=True)
class Pending:
    """Accepted by the platform, result to come: poll ``ref`` (or wait for a callback).

    ``meta`` carries what the platform answered that the hub keeps with the delivery
    (WeChat: ``msg_data_id``, which article comments are addressed by).
    """

    ref: str
    meta: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RemotePost:
    """A post as the platform lists it (reconciliation and activity ingestion)."""

    remote_id: str
    created_at: datetime
    url: str = ""
    text: str = ""


PublishOutcome = Published | Pending

Checkpoint = Callable[[str], None]
"""Called by a connector right before the call that makes a post visible to the public.

Its argument is what the hub must remember to find that post again if the answer is lost
(WeChat: ``":<draft media_id>"``; ``""`` when there is nothing to remember). The hub writes it
ahead and proves it still owns the delivery; if it does not (its lease ran out and another worker
took over), the checkpoint raises and the connector must let the exception through unchanged, so
that nothing is sent twice. Connectors whose publish call is idempotent by key need not call it.
"""


@runtime_checkable
class Connector(Protocol):
    platform: ClassVar[str]
    limits: ClassVar[Limits]

    def render(self, content: Content) -> Rendition: ...

    def check(self, rendition: Rendition) -> list[Problem]: ...

    def publish(
        self,
        account: Account,
        rendition: Rendition,
        *,
        idempotency_key: str,
        checkpoint: Checkpoint | None = None,
    ) -> PublishOutcome: ...

    def poll(self, account: Account, ref: str) -> PublishOutcome: ...

    def withdraw(self, account: Account, remote_id: str) -> None: ...

    def recent(self, account: Account, since: str | None = None) -> list[RemotePost]: ...
