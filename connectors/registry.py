"""Which platforms exist: connector classes found by entry point, and a factory that wires one.

A platform is one connector class that declares its :class:`~connectors.base.PlatformInfo`
(``info``) and builds itself from the hub's settings (``from_wiring``). Packages announce their
connectors in the ``govhub.connectors`` entry-point group (the built-ins do the same in this
project's ``pyproject.toml``)::

    [project.entry-points."govhub.connectors"]
    weibo = "connectors.weibo:WeiboConnector"

The entry-point name must equal the class's ``info.key``. Tests add a platform of their own with
:func:`register` (and remove it with :func:`unregister`). Nothing in the hub names a platform:
it asks this module (:func:`platforms`, :func:`info`, :func:`connector_class`).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

import httpx

from connectors.base import Connector, ConnectorFactory, PlatformInfo, Wiring

if TYPE_CHECKING:
    from connectors.hall import HallStore
    from connectors.tokens import TokenStore
    from hub.config import Settings

GROUP = "govhub.connectors"

_lock = threading.Lock()
_discovered: dict[str, type[ConnectorFactory]] | None = None
_registered: dict[str, type[ConnectorFactory]] = {}


class UnknownPlatform(KeyError):
    """No connector is registered under this key."""


def _discover() -> dict[str, type[ConnectorFactory]]:
    """Load every entry point of the group once (cached for the process)."""
    global _discovered
    with _lock:
        if _discovered is None:
            found: dict[str, type[ConnectorFactory]] = {}
            for ep in entry_points(group=GROUP):
                cls = ep.load()
                key = cls.info.key
                if key != ep.name:
                    raise RuntimeError(
                        f"entry point {ep.name!r} of {GROUP} loads {cls.__name__}, whose "
                        f"info.key is {key!r}: they must be equal"
                    )
                found[key] = cls
            _discovered = found
        return _discovered


def _table() -> dict[str, type[ConnectorFactory]]:
    return {**_discover(), **_registered}


def register(cls: type[ConnectorFactory]) -> None:
    """Add (or replace) a platform at run time: tests, or a deployment without packaging."""
    _check_declares(cls)
    with _lock:
        _registered[cls.info.key] = cls


def unregister(key: str) -> None:
    """Forget a platform added with :func:`register` (entry points stay)."""
    with _lock:
        _registered.pop(key, None)


def _check_declares(cls: type[Any]) -> None:
    info = getattr(cls, "info", None)
    if not isinstance(info, PlatformInfo):
        raise TypeError(f"{cls.__name__} declares no PlatformInfo as `info`")
    if getattr(cls, "platform", None) != info.key:
        raise TypeError(f"{cls.__name__}.platform must equal info.key ({info.key!r})")
    if not callable(getattr(cls, "from_wiring", None)):
        raise TypeError(f"{cls.__name__} has no from_wiring(wiring) classmethod")


def platforms() -> tuple[str, ...]:
    """Every platform key, in display order (``info.order``, then key)."""
    table = _table()
    return tuple(sorted(table, key=lambda k: (table[k].info.order, k)))


def connector_class(platform: str) -> type[ConnectorFactory]:
    try:
        return _table()[platform]
    except KeyError:
        raise UnknownPlatform(f"unknown platform {platform!r}; known: {sorted(_table())}") from None


def info(platform: str) -> PlatformInfo:
    return connector_class(platform).info


def infos() -> tuple[PlatformInfo, ...]:
    """Every platform's info, in display order."""
    return tuple(info(key) for key in platforms())


def labels(locale: str = "zh") -> dict[str, str]:
    """``{key: label}`` for pages and scripts (``locale`` ``"en"`` gives the English labels)."""
    return {i.key: (i.label_en if locale.startswith("en") else i.label_zh) for i in infos()}


def build_connector(
    platform: str,
    *,
    client: httpx.Client,
    settings: Settings,
    hall_store: HallStore | None = None,
    token_store: TokenStore | None = None,
    services: Mapping[str, Any] | None = None,
) -> Connector:
    """A ready connector for ``platform``, built by its class from ``settings``.

    ``hall_store`` and ``token_store`` are the shared services the built-ins ask for by name
    (``Wiring.services``); ``services`` adds others.
    """
    cls = connector_class(platform)
    shared: dict[str, Any] = dict(services or {})
    if hall_store is not None:
        shared["hall_store"] = hall_store
    if token_store is not None:
        shared["token_store"] = token_store
    return cls.from_wiring(Wiring(client=client, settings=settings, services=shared))


class _Connectors(Mapping[str, type[ConnectorFactory]]):
    """Read-only ``{platform: connector class}`` view of the registry (kept for old callers)."""

    def __getitem__(self, key: str) -> type[ConnectorFactory]:
        return _table()[key]

    def __iter__(self) -> Any:
        return iter(platforms())

    def __len__(self) -> int:
        return len(_table())


CONNECTORS: Mapping[str, type[ConnectorFactory]] = _Connectors()
