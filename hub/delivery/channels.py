"""Building connectors and their inputs from the hub's rows (one place for every caller)."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from datetime import datetime
from functools import lru_cache
from http.cookiejar import CookieJar
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from connectors.base import Account as ConnectorAccount
from connectors.base import Connector, Content, Image
from connectors.tokens import ProcessCachedStore
from hub.accounts.models import Account
from hub.accounts.service import credentials_of
from hub.config import Settings, get_settings
from hub.db import engine_for

if TYPE_CHECKING:
    from hub.media.service import Library
    from hub.posts.models import PostVersion


class NoCookies(CookieJar):
    """The shared client keeps no cookies. It carries every account's calls, of every org: a
    cookie a platform set in its answer to one account's call (a load balancer's, a session's)
    would otherwise ride along on the next account's. Platform APIs authenticate by token, never
    by cookie. (httpx's maintainers' recipe: encode/httpx#1359.)"""

    def extract_cookies(self, response: Any, request: Any) -> None:
        return None

    def set_cookie(self, cookie: Any) -> None:
        return None


# Built once per process under a lock: a fan-out's first wave asks from every worker thread at
# once, and an unlocked cache let each thread build its own (a TLS context each: the CA bundle
# parsed sixteen times over, a third of the tasks' time in a freshly started worker).
_build_lock = threading.Lock()
_client: httpx.Client | None = None


def http_client() -> httpx.Client:
    """One pooled client per process, shared by every connector and thread."""
    global _client
    client = _client
    if client is None:
        with _build_lock:
            if _client is None:
                _client = httpx.Client(
                    timeout=httpx.Timeout(30.0, connect=5.0),
                    limits=httpx.Limits(max_connections=100, max_keepalive_connections=50),
                    follow_redirects=False,
                    cookies=NoCookies(),
                )
            client = _client
    return client


@lru_cache(maxsize=4)
def _token_store(
    redis_url: str | None, database_url: str, credentials_key: str, lock_seconds: float
) -> Any:
    from connectors.tokens import RedisTokenStore, SealedStore, SqlTokenStore
    from hub.security import seal_text, unseal_text

    shared: Any = (
        RedisTokenStore(redis_url, lease_seconds=lock_seconds)
        if redis_url
        else SqlTokenStore(engine_for(database_url), lease_seconds=lock_seconds)
    )
    sealed = SealedStore(
        shared,
        seal=lambda token: seal_text(credentials_key, token),
        unseal=lambda value: unseal_text(credentials_key, value),
    )
    return CountedRefreshes(sealed)


class CountedRefreshes(ProcessCachedStore):
    """This process's cache over the shared store, counting each token fetched anew (``put``)
    in ``govhub_token_refreshes_total`` by the platform its key names (``<platform>:<app>``)."""

    def put(self, key: str, token: str, expires_at: datetime) -> None:
        super().put(key, token, expires_at)
        from hub.metrics import metrics
        from hub.platforms import platforms

        prefix = key.partition(":")[0]
        known = {p.value for p in platforms()}
        metrics().token_refreshes.labels(prefix if prefix in known else "other").inc()


def token_store(settings: Settings | None = None) -> Any:
    """The platform token store every process shares: Redis when configured, else the database;
    tokens encrypted there with ``GOVHUB_CREDENTIALS_KEY`` and cached briefly in this process."""
    settings = settings or get_settings()
    # The refresh lock's lease is the time after which a silent worker counts as dead: a worker
    # killed while fetching a token (its lock never released) holds up that account's copies no
    # longer than it holds up the copies it was sending (the sweeper's takeover). A fetch slower
    # than that lets a second process fetch too, which is harmless: stable_token hands both the
    # same token.
    return _token_store(
        settings.redis_url,
        settings.database_url,
        settings.credentials_key,
        float(settings.worker_dead_seconds),
    )


@lru_cache(maxsize=4)
def _variant_store(media_dir: str, mode: str) -> Any:
    from connectors.variants import FileVariants, NoVariants

    return NoVariants() if mode == "off" else FileVariants(Path(media_dir) / "variants")


def variant_store(settings: Settings | None = None) -> Any:
    """Where connectors keep the variants they make of a picture (a cover thumb, a re-encoded
    in-body image): files under ``<media_dir>/variants`` named by the picture's SHA-256, made
    once for every account, thread and worker process (connectors/variants.py)."""
    settings = settings or get_settings()
    return _variant_store(settings.media_dir, settings.image_variants)


def publish_cost(platform: str) -> int:
    """The platform round trips one publication takes (the connector's declared limit)."""
    from connectors.registry import UnknownPlatform, connector_class

    try:
        return connector_class(platform).limits.calls_per_publish
    except UnknownPlatform:
        return 1


def costliest_first(platform_of: Iterable[tuple[int, str]]) -> list[int]:
    """Delivery (or account) ids in the order a fan-out should start them: costliest first.

    Longest-first is the classic way to shorten a batch's makespan: a WeChat copy (six round
    trips and an asynchronous publication) started last would keep the whole fan-out waiting.
    The order is otherwise kept (stable sort).
    """
    pairs = list(platform_of)
    return [i for i, _ in sorted(pairs, key=lambda pair: -publish_cost(pair[1]))]


def connector_for(platform: str, settings: Settings | None = None) -> Connector:
    """The connector for ``platform`` wired to this deployment's settings (one per process:
    connectors keep no per-call state, and building one compiles its templates)."""
    settings = settings or get_settings()
    return _connector(platform, settings.model_dump_json())


_connectors: dict[tuple[str, str], Connector] = {}
_connectors_lock = threading.Lock()


def _connector(platform: str, settings_json: str) -> Connector:
    """Built once per platform and settings, by the first thread that asks (the others wait)."""
    key = (platform, settings_json)
    found = _connectors.get(key)
    if found is None:
        with _connectors_lock:
            found = _connectors.get(key)
            if found is None:
                if len(_connectors) >= 32:
                    _connectors.clear()
                found = _connectors[key] = _build_connector(platform, settings_json)
    return found


def _build_connector(platform: str, settings_json: str) -> Connector:
    from connectors.registry import build_connector
    from hub.delivery.hall_store import DatabaseHallStore

    settings = Settings.model_validate_json(settings_json)
    return build_connector(
        platform,
        client=http_client(),
        settings=settings,
        hall_store=DatabaseHallStore(engine_for(settings.database_url), settings.public_base_url),
        token_store=token_store(settings),
        services={"image_variants": variant_store(settings)},
    )


def connector_account(
    account: Account, settings: Settings | None = None, *, rip: str = ""
) -> ConnectorAccount:
    """The account as a connector needs it. ``rip``: the IP of the person on whose behalf the
    call is made (Weibo's ``rip`` on share and comment replies)."""
    settings = settings or get_settings()
    credentials = credentials_of(account, settings.credentials_key)
    return ConnectorAccount(
        id=account.id,  # type: ignore[arg-type]
        platform=account.platform.value,
        handle=account.handle,
        name=account.name,
        credentials=credentials,
        callback_token=credentials.get("callback_token", ""),
        extra={"rip": rip} if rip else {},
    )


def post_link(post_id: int, settings: Settings | None = None) -> str:
    """The post's public page on the release hall: Weibo's safe-domain link target."""
    settings = settings or get_settings()
    return f"{settings.public_base_url.rstrip('/')}/hall/posts/{post_id}"


def content_of(
    *,
    post_id: int,
    version: PostVersion,
    urgency: str,
    org_name: str,
    settings: Settings | None = None,
    library: Library | None = None,
) -> Content:
    """What the editor wrote (one version of the post), ready for every channel's ``render``.

    ``library``: the media library's alt text for images the post gives none, and the org's
    default cover (``Content.fallback_cover``)."""
    settings = settings or get_settings()
    base = settings.public_base_url.rstrip("/")
    alts = library.alts if library is not None else {}
    fallback = None
    if library is not None and library.default_cover:
        fallback = Image(
            path=str(Path(settings.media_dir) / library.default_cover),
            url=f"{base}/media/{library.default_cover}",
            alt=library.default_cover_alt,
        )
    return Content(
        post_id=post_id,
        version=version.version,
        title=version.title,
        body=version.body,
        summary=version.summary,
        images=tuple(
            Image(
                path=str(Path(settings.media_dir) / img["path"]),
                url=f"{base}/media/{img['path']}",
                alt=img.get("alt") or alts.get(img["path"], ""),
                content_type=img.get("content_type", ""),
            )
            for img in version.images
        ),
        link=post_link(post_id, settings),
        urgency=urgency,
        author=org_name,
        org_name=org_name,
        overrides=version.overrides,
        correction_note=version.correction_note,
        fallback_cover=fallback,
    )
