"""The connector protocol and the frozen dataclasses that cross it.

A connector turns a post into one channel's rendition (``render``), lists what the platform would
refuse (``check``), and talks to the platform over HTTP through an injected ``httpx.Client``
(``publish``, ``poll``, ``withdraw``, ``recent``). Limits are class data (:class:`Limits`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

if TYPE_CHECKING:
    import httpx


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
    # Every copy needs a cover image (WeChat articles): when the post has none, the connector
    # takes ``Content.fallback_cover`` (the org's default cover) and reports a problem without it.
    needs_cover: bool = False


@dataclass(frozen=True)
class CredentialField:
    """One credential an account of the platform holds (stored encrypted with the account).

    ``secret`` fields never leave through the API or a page; ``required`` ones must be given when
    the account is created; ``kept`` ones survive an update that does not name them (WeChat's
    callback token: the platform keeps using it).
    """

    name: str
    secret: bool = True
    required: bool = True
    kept: bool = False
    label: str = ""
    # What is wrong with a given value, in Chinese for the operator (None: fine).
    check: Callable[[str], str | None] | None = field(default=None, compare=False)


@dataclass(frozen=True)
class PlatformInfo:
    """Everything the hub knows about a platform, declared once on its connector class.

    ``key`` is the value stored in ``accounts.platform`` and used in the REST API (a public
    contract: never rename it). ``label_zh`` / ``label_en`` are what editors read;
    ``settings_keys`` the ``GOVHUB_*`` settings (lower-case field names of ``hub.config.Settings``)
    the connector reads in :meth:`ConnectorFactory.from_wiring`; ``templates`` the channel
    templates under ``templates/channels/`` it renders with. ``order`` sorts platforms on pages
    (smaller first). ``needs_credentials`` is False for a platform whose accounts hold none (the
    release hall). ``builtin_channel``: the platform every post also goes to without a target
    (the release hall). ``audited``: counted by the matrix coverage audit.
    """

    key: str
    label_zh: str
    label_en: str
    credentials: tuple[CredentialField, ...] = ()
    settings_keys: tuple[str, ...] = ()
    templates: tuple[str, ...] = ()
    order: int = 100
    needs_credentials: bool = True
    builtin_channel: bool = False
    audited: bool = True
    # Account kinds the platform knows, (key, Chinese label) (WeChat: subscription, service).
    kinds: tuple[tuple[str, str], ...] = ()
    # The setting holding the platform's API base URL (a ``Settings`` field name) and the
    # platform's official one: ``govhub doctor`` warns when a deployment points elsewhere and
    # probes accounts of platforms that have an API.
    api_base_setting: str = ""
    official_api_base: str = ""
    # Its copies are public pages the release hall lists and links to (partner webhooks: no).
    public_copies: bool = True
    # Calls carry the IP of the person on whose behalf they are made (Weibo's ``rip``): the hub
    # puts the approver's IP (or GOVHUB_WEIBO_FALLBACK_RIP) on the account as ``extra["rip"]``.
    acts_for_person: bool = False
    # Pushes to followers (``DeliveryOptions`` mode "push") count against an allowance set by the
    # account's kind (WeChat mass sends: 1 a day for 订阅号, 4 a month for 服务号).
    push_quota: bool = False
    # The credential naming a URL the connector POSTs to (webhooks: "url", else the account's
    # handle): the hub runs its SSRF guard on it when the account is saved.
    outbound_url: str = ""
    # How the matrix coverage audit names one account of the platform (「政务微博」, "Weibo
    # account"); the labels by default.
    audit_label_zh: str = ""
    audit_label_en: str = ""

    @property
    def required_credentials(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.credentials if f.required)

    @property
    def optional_credentials(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.credentials if not f.required)

    @property
    def kept_credentials(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.credentials if f.kept)


@dataclass(frozen=True)
class Wiring:
    """What the hub hands a connector class to build one (:meth:`ConnectorFactory.from_wiring`).

    ``settings`` is the hub's settings object: the connector reads the attributes named in its
    ``PlatformInfo.settings_keys`` (and ``public_base_url``). ``services`` holds shared objects
    some connectors need, by name: ``"hall_store"`` (a ``HallStore``), ``"token_store"`` (a
    ``TokenStore`` for shared access tokens), ``"image_variants"`` (a ``VariantStore``,
    connectors/variants.py: what a connector makes of a picture, made once for every account).
    """

    client: httpx.Client
    settings: Any
    services: Mapping[str, Any] = field(default_factory=dict)

    def service(self, name: str, platform: str) -> Any:
        found = self.services.get(name)
        if found is None:
            raise ValueError(f"the {platform} connector needs a {name}")
        return found


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
    # The org's default cover, for a platform that needs one (``Limits.needs_cover``) when the
    # post has no image of its own.
    fallback_cover: Image | None = None


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
    info: ClassVar[PlatformInfo]

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


class ConnectorFactory(Protocol):
    """A connector class as the registry sees it: its platform, and how to build one."""

    platform: ClassVar[str]
    limits: ClassVar[Limits]
    info: ClassVar[PlatformInfo]

    @classmethod
    def from_wiring(cls, wiring: Wiring) -> Connector: ...


# -- optional capabilities ---------------------------------------------------------------------
# A connector declares what it can do beyond the protocol by implementing these; the hub asks
# with ``isinstance(connector, Capability)``, never by the platform's name, and the contract
# suite runs every capability a harness's connector implements.


@runtime_checkable
class Reconciles(Protocol):
    """After ``Unconfirmed`` whose ``lookup_ref`` is set (the call that makes a post public was
    sent but its answer lost), the platform can find the copy it made: ``None`` when it is not
    listed (yet). ``exclude`` are remote ids the hub already holds for other deliveries."""

    def find_publication(
        self,
        account: Account,
        *,
        title: str,
        digest: str,
        since: datetime,
        until: datetime,
        exclude: frozenset[str] = frozenset(),
    ) -> RemotePost | None: ...


@runtime_checkable
class PreparesImages(Protocol):
    """The connector makes variants of a post's pictures (a converted thumb, a re-encoded image)
    and can make them ahead of the fan-out: the hub calls this when a version is submitted, so
    the copies find them made (``Wiring`` service ``"image_variants"``, connectors/variants.py).
    Best effort: a picture it cannot convert is reported by ``check`` or the publication."""

    def prepare_images(self, rendition: Rendition) -> int: ...


@runtime_checkable
class KeepsTokens(Protocol):
    """The platform's calls need an access token the connector fetches with the account's
    credentials and caches (WeChat's ``stable_token``, two hours). The hub keeps it fetched ahead
    of use (beat's ``accounts.keep_tokens``), so a fan-out's copies find it cached instead of
    each fetching it on the way to the platform. Returns True when a token was fetched now,
    False when the cached one is still good; raises the connector's errors (a wrong secret)."""

    def keep_token(self, account: Account) -> bool: ...


@runtime_checkable
class Binds(Protocol):
    """Accounts are bound by OAuth: the owner consents on the platform, the hub trades the code.

    ``exchange_code`` returns an object with ``access_token``, ``expires_at`` and ``uid``.
    """

    def authorize_url(self, redirect_uri: str, state: str) -> str: ...

    def exchange_code(self, code: str, redirect_uri: str) -> Any: ...


@runtime_checkable
class Comments(Protocol):
    """Readers comment on the account's posts; the hub ingests them and replies in the thread.

    ``comments_to_me`` returns objects with ``remote_id``, ``post_id``, ``author_id``,
    ``author_name``, ``text``, ``created_at``, ``post_text`` and ``post_url``, newest first.
    """

    def comments_to_me(
        self, account: Account, since_id: str | None = None, *, max_pages: int = 5
    ) -> list[Any]: ...

    def reply_comment(self, account: Account, comment_id: str, post_id: str, text: str) -> str: ...


@runtime_checkable
class DirectMessages(Protocol):
    """Followers write to the account (by callback); the hub answers one of them by id."""

    def send_custom_message(self, account: Account, openid: str, text: str) -> None: ...


@runtime_checkable
class DeliveryOptions(Protocol):
    """Each delivery of a post to the platform carries choices of its own, which are not part of
    the post's content: ``mode`` ("publish" or "push" to followers) and whether readers may
    comment (``comments``: "closed", "open" or "fans"). Returns the rendition ``meta`` entries
    that carry them to ``publish``."""

    def delivery_options(self, *, mode: str, comments: str) -> Mapping[str, str]: ...


@dataclass(frozen=True)
class CallbackRequest:
    """What the platform sent to ``/callbacks/{platform}/{account id}`` and the account's
    decrypted credentials (to verify it)."""

    method: str  # "GET" (a handshake) or "POST" (an event)
    query: Mapping[str, str]
    body: bytes
    credentials: Mapping[str, str] = field(repr=False)


@dataclass(frozen=True)
class Completion:
    """A pending delivery the platform settled: ``ref_prefix`` is how the delivery's
    ``pending_ref`` starts; ``outcome`` the copy, or the reason it failed in words."""

    ref_prefix: str
    outcome: Published | str


@dataclass(frozen=True)
class InboundMessage:
    """A follower's message to the account, for the inbox. ``opens_case`` False: an event
    (subscribe, a menu click) that only re-opens the reply window."""

    remote_id: str
    author_id: str
    text: str
    received_at: datetime
    msg_type: str = "text"
    media_url: str = ""
    opens_case: bool = True


@dataclass(frozen=True)
class CallbackResult:
    """What the hub answers (``answer`` as text/plain) and what it must record."""

    answer: str = "success"
    completions: tuple[Completion, ...] = ()
    messages: tuple[InboundMessage, ...] = ()


class CallbackRefused(Exception):
    """The callback is not verified (``status`` 403) or not readable (400); never a 500."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@runtime_checkable
class Callbacks(Protocol):
    """The platform calls the hub back (handshakes, job results, followers' messages). The hub
    routes ``GET``/``POST /callbacks/{platform}/{account id}`` of an existing account of the
    platform here, bounds the body, then applies the result (completes pending deliveries,
    hands messages to the inbox) and answers ``answer``."""

    def handle_callback(self, request: CallbackRequest) -> CallbackResult: ...


@dataclass(frozen=True)
class MetricField:
    """One count a platform reports for a published copy: ``key`` as the hub stores it
    (``reads``, ``shares``, ``reposts``, ``comments``, ``likes``) and its labels."""

    key: str
    label_zh: str
    label_en: str


@dataclass(frozen=True)
class CopyRef:
    """A published copy whose counts the hub asks for: the platform's id of it, when it was
    published, and what the platform answered at publication that the hub kept (``meta``,
    e.g. ``msg_data_id``)."""

    remote_id: str
    published_at: datetime
    meta: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CopyMetrics:
    """A copy's counts as the platform reported them for ``day`` (the platform's calendar day):
    running totals since publication up to the end of that day (or up to the call, for today).
    Only keys of the fields the connector declares (``metrics_spec().fields``)."""

    remote_id: str
    day: date
    counts: Mapping[str, int]


@dataclass(frozen=True)
class MetricsSpec:
    """What a platform counts and how its figures come.

    ``fields``: the counts, in display order. ``lag_days``: how many days behind today the
    figures are final (0: live counts, asked for today; 1: yesterday and earlier only).
    ``window_days``: how many days after publication the platform keeps counting (0: always).
    ``batch``: how many copies one call covers at most (``fetch_metrics`` splits larger lists).
    """

    fields: tuple[MetricField, ...]
    lag_days: int = 0
    window_days: int = 0
    batch: int = 100


@runtime_checkable
class Metrics(Protocol):
    """Readers' reach of published copies (reads, shares, reposts, comments, likes), read back
    from the platform. ``metrics_spec()`` (a classmethod: the hub reads it without a connector)
    declares the counts; ``fetch_metrics`` returns the totals for ``day`` of the copies the
    platform still knows (a deleted copy is left out) and raises the usual
    :class:`~connectors.errors.ConnectorError` classes."""

    @classmethod
    def metrics_spec(cls) -> MetricsSpec: ...

    def fetch_metrics(
        self, account: Account, copies: Sequence[CopyRef], day: date
    ) -> list[CopyMetrics]: ...


CAPABILITIES: dict[str, type[Any]] = {
    "reconciles": Reconciles,
    "binds": Binds,
    "comments": Comments,
    "direct_messages": DirectMessages,
    "delivery_options": DeliveryOptions,
    "callbacks": Callbacks,
    "metrics": Metrics,
    "keeps_tokens": KeepsTokens,
}
"""Every optional capability by name (docs and the contract suite)."""


def capabilities_of(connector: object) -> tuple[str, ...]:
    """The names of the optional capabilities ``connector`` implements."""
    return tuple(name for name, proto in CAPABILITIES.items() if isinstance(connector, proto))
