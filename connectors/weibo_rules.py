"""Weibo's text rules as pure functions: counting, hashtag neutralising, shortening.

The connector, the sandbox and the hub's previews all call these; none re-implements them.

Counting (platforms.md): Weibo counts half-character units. A non-ASCII character is 2 units, an
ASCII character 1 unit, and every ``http(s)://`` URL of up to 140 bytes 20 units whatever its
length; the counted length is ``ceil(units / 2)``. Whether ``https://`` URLs really get the
20-unit treatment is unconfirmed, so :func:`fit_status` also keeps the status within the limit
when https URLs are counted character by character (``https_as_url=False``).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass

TEXT_MAX = 140
URL_UNITS = 20
URL_MAX_BYTES = 140
ELLIPSIS = "…"
FULLWIDTH_HASH = "＃"

# An ASCII URL: scheme, then every character RFC 3986 allows (no spaces, no CJK).
URL_RE = re.compile(r"https?://[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+")
HASHTAG_RE = re.compile(r"#[^#\n]+#")
SENTENCE_END = "。！？；.!?;"
SOFT_BREAKS = "，、：,:）)」』】"


def _char_units(text: str) -> int:
    return sum(1 if ord(ch) < 128 else 2 for ch in text)


def weibo_units(text: str, *, https_as_url: bool = True) -> int:
    """Half-character units of ``text`` by Weibo's rule (see module docstring)."""
    units = 0
    position = 0
    for match in URL_RE.finditer(text):
        units += _char_units(text[position : match.start()])
        url = match.group()
        shortened = len(url.encode()) <= URL_MAX_BYTES and (
            https_as_url or not url.startswith("https://")
        )
        units += URL_UNITS if shortened else _char_units(url)
        position = match.end()
    return units + _char_units(text[position:])


def weibo_length(text: str, *, https_as_url: bool = True) -> int:
    """Counted characters of ``text`` against Weibo's 140 limit: ``ceil(units / 2)``."""
    return -(-weibo_units(text, https_as_url=https_as_url) // 2)


def _split_urls(text: str) -> list[tuple[bool, str]]:
    """``text`` as (is_url, piece) segments, in order."""
    pieces: list[tuple[bool, str]] = []
    position = 0
    for match in URL_RE.finditer(text):
        if match.start() > position:
            pieces.append((False, text[position : match.start()]))
        pieces.append((True, match.group()))
        position = match.end()
    if position < len(text):
        pieces.append((False, text[position:]))
    return pieces


def image_type(data: bytes) -> str:
    """The MIME type of an image from its first bytes ("" when not JPEG, PNG, GIF or WebP)."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return ""


def without_urls(text: str) -> str:
    return URL_RE.sub(" ", text)


def find_hashtags(text: str) -> list[str]:
    """``#topic#`` pairs outside URLs (share.json refuses them)."""
    return HASHTAG_RE.findall(without_urls(text))


def neutralise_hashtags(text: str) -> str:
    """Replace every ASCII ``#`` outside URLs with a full-width ``＃``: no topic pair survives."""
    return "".join(
        piece if is_url else piece.replace("#", FULLWIDTH_HASH)
        for is_url, piece in _split_urls(text)
    )


def contains_url_under(text: str, base_url: str) -> bool:
    """True when ``text`` holds a URL starting with ``base_url`` (the app's safe domain)."""
    base = base_url.rstrip("/")
    return any(
        url == base or url.startswith(base + "/") or url.startswith(base + "?")
        for url in URL_RE.findall(text)
    )


def status_fingerprint(text: str) -> str:
    """A digest of a status that survives Weibo's URL rewriting (t.cn links) and whitespace.

    Used to recognise our own post in ``user_timeline`` after an ambiguous outcome.
    """
    core = re.sub(r"\s+", "", without_urls(neutralise_hashtags(text))).rstrip(ELLIPSIS)
    return hashlib.sha256(core.encode()).hexdigest()[:16]


def shorten(text: str, max_units: int) -> str:
    """``text`` cut to at most ``max_units``, never inside a URL.

    Prefers the end of a sentence (。！？；.!?) in the second half of the budget; otherwise cuts at
    a word or clause boundary and appends ``…``.
    """
    text = text.strip()
    if weibo_units(text) <= max_units:
        return text
    budget = max_units - _char_units(ELLIPSIS)
    kept: list[str] = []
    used = 0
    for is_url, piece in _split_urls(text):
        if is_url:
            cost = URL_UNITS if len(piece.encode()) <= URL_MAX_BYTES else _char_units(piece)
            if used + cost > budget:
                break
            kept.append(piece)
            used += cost
            continue
        stop = False
        for ch in piece:
            cost = 1 if ord(ch) < 128 else 2
            if used + cost > budget:
                stop = True
                break
            kept.append(ch)
            used += cost
        if stop:
            break
    prefix = "".join(kept)
    masked = URL_RE.sub(lambda m: "x" * len(m.group()), prefix)  # boundaries outside URLs only
    sentence_cut = max(masked.rfind(mark) for mark in SENTENCE_END)
    if sentence_cut >= 0 and weibo_units(prefix[: sentence_cut + 1]) * 2 >= max_units:
        return prefix[: sentence_cut + 1]  # a whole sentence needs no ellipsis
    rest = text[len(prefix) :]
    if _is_word_char(prefix[-1:]) and _is_word_char(rest[:1]):
        # The cut falls inside a Latin word or number: step back to the last boundary.
        cut = max(masked.rfind(mark) for mark in " \n" + SOFT_BREAKS)
        if cut > 0:
            prefix = prefix[: cut + 1]
    prefix = prefix.rstrip(" \n,，、:：;；")
    if any(url.end() == len(prefix) for url in URL_RE.finditer(prefix)):
        return prefix  # ends with a whole URL: an ellipsis would read as part of it
    return prefix + ELLIPSIS


def _is_word_char(ch: str) -> bool:
    return bool(ch) and ch.isascii() and ch.isalnum()


@dataclass(frozen=True)
class FittedStatus:
    text: str  # the whole status
    shortened: bool
    lead: str  # the lead as it went into the status


def fit_status(
    lead: str,
    fill: Callable[[str], str],
    *,
    limit: int = TEXT_MAX,
    margin: int = 2,
) -> FittedStatus:
    """Shorten ``lead`` so that ``fill(lead)`` (the status layout, link included) fits the limit.

    The result counts at most ``limit - margin`` by Weibo's rule, and at most ``limit`` when https
    URLs are counted character by character. Whatever ``fill`` adds (the link) is never cut.
    """

    def fits(status: str) -> bool:
        return (
            weibo_length(status) <= limit - margin
            and weibo_length(status, https_as_url=False) <= limit
        )

    lead = lead.strip()
    status = fill(lead)
    if fits(status):
        return FittedStatus(status, shortened=False, lead=lead)
    empty = fill("")
    budget = min(
        (limit - margin) * 2 - weibo_units(empty),
        limit * 2 - weibo_units(empty, https_as_url=False),
    )
    while budget > 0:
        short = shorten(lead, budget)
        status = fill(short)
        if fits(status):
            return FittedStatus(status, shortened=True, lead=short)
        budget -= 1
    return FittedStatus(empty, shortened=True, lead="")
