"""The hub's view of platforms: a validated key, and what the connectors declare about them.

The hub names no platform. Which platforms exist, what they are called and what they can do comes
from the connector registry (``connectors.registry``: entry points of the ``govhub.connectors``
group, plus ``register()`` in tests). A :class:`Platform` is a ``str`` whose value is one of the
registry's keys: the stored column and the REST/JSON values stay the plain keys (``weibo``,
``wechat``, ``hall``, ``webhook`` for the built-ins), which are a public contract.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from markupsafe import Markup
from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema
from sqlalchemy import String
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from connectors import registry
from connectors.base import PlatformInfo


class Platform(str):
    """A platform key known to the connector registry (validated on construction)."""

    __slots__ = ()

    def __new__(cls, value: object) -> Platform:
        if isinstance(value, Platform):
            return value
        key = str(value)
        known = registry.platforms()
        if key not in known:
            raise ValueError(f"未知平台「{key}」，可选：{'、'.join(known)}")
        return super().__new__(cls, key)

    @classmethod
    def stored(cls, value: str) -> Platform:
        """A key read back from the database: kept even when its plug-in is not installed now
        (the row stays readable; building its connector is what fails)."""
        return str.__new__(cls, value)

    @property
    def value(self) -> str:
        return str(self)

    def __str__(self) -> str:
        return str.__str__(self)

    def __repr__(self) -> str:
        return f"Platform({str.__repr__(self)})"

    @property
    def info(self) -> PlatformInfo:
        return registry.info(self)

    @property
    def label(self) -> str:
        return label(self)

    @classmethod
    def all(cls) -> tuple[Platform, ...]:
        """Every registered platform, in display order."""
        return tuple(str.__new__(cls, key) for key in registry.platforms())

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(
            cls,
            core_schema.str_schema(max_length=20),
            serialization=core_schema.plain_serializer_function_ser_schema(str),
        )

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {"type": "string", "enum": list(registry.platforms())}


class PlatformType(TypeDecorator[Platform]):
    """``accounts.platform``: VARCHAR(20) holding the key (no constraint: plug-ins add keys)."""

    impl = String(20)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else str(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> Platform | None:
        return None if value is None else Platform.stored(str(value))


def platforms() -> tuple[Platform, ...]:
    return Platform.all()


def info(platform: str) -> PlatformInfo:
    return registry.info(str(platform))


def label(platform: str, locale: str = "zh") -> str:
    """What editors read for ``platform`` (its key when no connector knows it any more)."""
    try:
        found = registry.info(str(platform))
    except registry.UnknownPlatform:
        return str(platform)
    return found.label_en if locale.startswith("en") else found.label_zh


def labels(locale: str = "zh") -> dict[str, str]:
    return registry.labels(locale)


def audit_label(platform: str, locale: str = "zh") -> str:
    """How the matrix coverage audit names one account of ``platform``."""
    try:
        found = registry.info(str(platform))
    except registry.UnknownPlatform:
        return str(platform)
    if locale.startswith("en"):
        return found.audit_label_en or found.label_en
    return found.audit_label_zh or found.label_zh


def with_flag(flag: str) -> tuple[Platform, ...]:
    """The platforms whose ``PlatformInfo`` has ``flag`` set (``builtin_channel``, ``audited``)."""
    return tuple(p for p in Platform.all() if getattr(p.info, flag))


def builtin_channel() -> Platform:
    """The platform every published post also goes to without being targeted (the hall)."""
    found = with_flag("builtin_channel")
    if not found:
        raise LookupError("no connector declares builtin_channel")
    return found[0]


def api_bases(settings: Any) -> dict[str, str]:
    """``{platform: its API base in these settings}`` for platforms that have an API."""
    return {
        i.key: str(getattr(settings, i.api_base_setting))
        for i in registry.infos()
        if i.api_base_setting
    }


def official_api_bases() -> dict[str, str]:
    """``{platform: the platform's official API base}``."""
    return {i.key: i.official_api_base for i in registry.infos() if i.official_api_base}


def needs_credentials(platform: str) -> bool:
    return registry.info(str(platform)).needs_credentials


def script_data(locale: str = "zh") -> Markup:
    """The JSON blob the base template puts in the page for the scripts (``window.GOVHUB``-free:
    a ``<script type="application/json" id="platforms">``): ``{key: {label, label_en}}``."""
    data = {
        i.key: {"label": label(i.key, locale), "label_zh": i.label_zh, "label_en": i.label_en}
        for i in registry.infos()
    }
    text = json.dumps(data, ensure_ascii=False).replace("<", "\\u003c")
    return Markup(text)


class LabelMap(Mapping[str, str]):
    """``{platform key: label}`` read from the registry on every access (a platform registered
    later is included), e.g. ``LabelMap(audit_label)``."""

    def __init__(self, label_of: Callable[[str], str]) -> None:
        self._label_of = label_of

    def __getitem__(self, key: str) -> str:
        if key not in registry.platforms():
            raise KeyError(key)
        return self._label_of(key)

    def __iter__(self) -> Iterator[str]:
        return iter(registry.platforms())

    def __len__(self) -> int:
        return len(registry.platforms())
