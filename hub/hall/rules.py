"""Pure rules of the release hall: text shaping, search terms, retry backoff, caching."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import parse_qsl

from markupsafe import Markup, escape

from connectors.markup import sanitize_html

EXCERPT_CHARS = 140
TRIGRAM = 3  # the shortest term the trigram indexes can answer
MAX_TERMS = 5
MAX_TERM_CHARS = 100

FIRST_BACKOFF = timedelta(seconds=30)
MAX_BACKOFF = timedelta(hours=1)

CACHED_PARAMS = ("org", "platform", "page")  # what the cached pages read from the query

# Characters XML 1.0 forbids (feeds would not parse with them).
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def excerpt(value: str, limit: int = EXCERPT_CHARS) -> str:
    """``value`` on one line, cut to ``limit`` characters with an ellipsis."""
    flat = " ".join(value.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def text_to_html(value: str) -> Markup:
    """Plain text as escaped paragraphs (blank lines part them, newlines become <br>)."""
    paragraphs = [p.strip() for p in value.replace("\r\n", "\n").split("\n\n") if p.strip()]
    return Markup("").join(
        Markup("<p>{}</p>").format(Markup("<br>").join(escape(line) for line in p.split("\n")))
        for p in paragraphs
    )


def sanitised(fragment: str) -> Markup:
    """The one place the hall marks HTML safe: after nh3 has cleaned it (again)."""
    return Markup(sanitize_html(fragment))


def public_url(value: str) -> str:
    """``value`` when it is an http(s) URL (safe as a link target), else ''."""
    stripped = value.strip()
    return stripped if stripped.lower().startswith(("https://", "http://")) else ""


def search_terms(q: str) -> list[str]:
    """The whitespace-separated terms of a query (at most five, each cut to 100 characters).

    NUL separates terms too: neither PostgreSQL text nor SQLite's FTS5 phrase can carry one.
    """
    return [term[:MAX_TERM_CHARS] for term in q.replace("\x00", " ").split()][:MAX_TERMS]


def uses_trigram(term: str) -> bool:
    """Terms of three characters or more go through the trigram index; shorter ones use LIKE."""
    return len(term) >= TRIGRAM


def like_pattern(term: str) -> str:
    r"""A LIKE pattern finding ``term`` anywhere, with ``\`` as the escape character."""
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def fts_phrase(term: str) -> str:
    """``term`` as one FTS5 phrase (quotes doubled), so operators in it are plain text.

    A NUL would end the phrase inside SQLite's parser ("unterminated string"): dropped.
    """
    return '"' + term.replace("\x00", "").replace('"', '""') + '"'


def backoff(attempts: int) -> timedelta:
    """Wait before retrying a partner after ``attempts`` failures: 30 s, 1 min, 2 min ... 1 h."""
    wait: timedelta = FIRST_BACKOFF * (2 ** max(0, min(attempts, 20) - 1))
    return min(wait, MAX_BACKOFF)


def xml_text(value: str) -> str:
    """``value`` without the control characters XML cannot carry (escaping is the writer's)."""
    return _XML_ILLEGAL.sub("", value)


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """True when an ``If-None-Match`` header names ``etag`` (weak or strong) or is ``*``."""
    if not if_none_match:
        return False
    for candidate in if_none_match.split(","):
        tag = candidate.strip()
        if tag == "*" or tag.removeprefix("W/") == etag:
            return True
    return False


def cacheable_path(path: str) -> bool:
    """The hall's own pages and feeds (not ``/hall/answers``, which is the inbox's)."""
    if path in ("/hall", "/hall/feed.atom", "/hall/feed.json"):
        return True
    return path.startswith(("/hall/orgs/", "/hall/posts/", "/hall/entries/"))


def cache_key(path: str, query_string: bytes) -> tuple[str, str] | None:
    """(path, the parameters the pages read, sorted); None for a search (not cached)."""
    params: dict[str, str] = {}
    for name, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        if name == "q" and value.strip():
            return None
        if name in CACHED_PARAMS:
            params[name] = value  # the last one wins, as for the pages
    return path, "&".join(f"{k}={params[k]}" for k in sorted(params))


def not_modified(headers: dict[bytes, bytes], etag: str, last_modified: datetime) -> bool:
    """A conditional GET the stored answer satisfies (If-None-Match wins over If-Modified-Since)."""
    if_none_match = headers.get(b"if-none-match")
    if if_none_match is not None:
        return etag_matches(if_none_match.decode("latin-1"), etag)
    since = headers.get(b"if-modified-since")
    if since is None:
        return False
    try:
        when = parsedate_to_datetime(since.decode("latin-1"))
    except (TypeError, ValueError, IndexError):
        return False
    if when.tzinfo is None:
        return False
    return last_modified.replace(microsecond=0) <= when
