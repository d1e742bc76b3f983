"""Atom (RFC 4287) and JSON Feed 1.1 renderings of the hall's stream.

Atom is built with :mod:`xml.etree.ElementTree`, which escapes every text and attribute; bodies
go out as ``type="html"`` content (the sanitised HTML, escaped once more by the XML writer), and
characters XML 1.0 cannot carry are dropped. Entry ids are the entries' hall URLs (stable).
JSON Feed text goes out with ``<``, ``>`` and ``&`` as ``\\u`` escapes (the same strings).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from xml.etree import ElementTree as ET

from hub.hall.rules import xml_text
from hub.hall.service import HallItem

ATOM_NS = "http://www.w3.org/2005/Atom"
JSON_FEED_VERSION = "https://jsonfeed.org/version/1.1"
FEED_SIZE = 50


@dataclass(frozen=True)
class FeedInfo:
    """What the whole feed is: its title, its own URL and the HTML page it mirrors."""

    title: str
    feed_url: str
    home_url: str
    base_url: str
    updated: datetime


def _absolute(base: str, path: str) -> str:
    return f"{base.rstrip('/')}{path}"


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, tag, {k: xml_text(v) for k, v in attrs.items()})
    if text is not None:
        element.text = xml_text(text)
    return element


def atom_feed(info: FeedInfo, items: list[HallItem]) -> bytes:
    feed = ET.Element("feed", {"xmlns": ATOM_NS, "xml:lang": "zh-CN"})
    _sub(feed, "id", info.feed_url)
    _sub(feed, "title", info.title)
    _sub(feed, "updated", info.updated.isoformat())
    _sub(feed, "link", rel="self", type="application/atom+xml", href=info.feed_url)
    _sub(feed, "link", rel="alternate", type="text/html", href=info.home_url)
    _sub(feed, "generator", "govhub")
    for item in items:
        page = _absolute(info.base_url, item.path)
        entry = _sub(feed, "entry")
        _sub(entry, "id", _absolute(info.base_url, f"/hall/entries/{item.id}"))
        _sub(entry, "title", item.heading)
        _sub(entry, "link", rel="alternate", type="text/html", href=page)
        if item.source_url:
            _sub(entry, "link", rel="via", href=item.source_url)
        _sub(entry, "published", item.published_at.isoformat())
        _sub(entry, "updated", item.published_at.isoformat())
        author = _sub(entry, "author")
        _sub(author, "name", item.org_name)
        _sub(entry, "category", term=item.platform, label=item.platform_name)
        if item.summary:
            _sub(entry, "summary", item.summary, type="text")
        _sub(entry, "content", str(item.body_html), type="html")
    body: bytes = ET.tostring(feed, encoding="utf-8", xml_declaration=True)
    return body


def json_feed(info: FeedInfo, items: list[HallItem]) -> bytes:
    document: dict[str, Any] = {
        "version": JSON_FEED_VERSION,
        "title": info.title,
        "home_page_url": info.home_url,
        "feed_url": info.feed_url,
        "language": "zh-CN",
        "items": [
            {
                "id": _absolute(info.base_url, f"/hall/entries/{item.id}"),
                "url": _absolute(info.base_url, item.path),
                **({"external_url": item.source_url} if item.source_url else {}),
                "title": item.heading,
                "content_html": str(item.body_html),
                "summary": item.summary,
                "date_published": item.published_at.isoformat(),
                "authors": [{"name": item.org_name}],
                "tags": [item.platform_name],
            }
            for item in items
        ],
    }
    raw = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
    # Same JSON, but no reader that pastes a field into a page unescaped meets a raw tag.
    return raw.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026").encode()
