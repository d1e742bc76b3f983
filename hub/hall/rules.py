"""Pure rules of the release hall: text shaping, search terms, retry backoff, cache validators."""

from __future__ import annotations

import re
from datetime import timedelta

from markupsafe import Markup, escape

from connectors.markup import sanitize_html

EXCERPT_CHARS = 140
TRIGRAM = 3  # the shortest term the trigram indexes can answer
MAX_TERMS = 5
MAX_TERM_CHARS = 100

FIRST_BACKOFF = timedelta(seconds=30)
MAX_BACKOFF = timedelta(hours=1)

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
