"""Shared rendering helpers: channel templates, Markdown to plain text and to safe HTML.

Post bodies are a Markdown subset. Raw HTML in them is never trusted: markdown-it runs with
``html`` disabled (raw tags come out escaped) and the result is sanitised again with nh3's
allow-list, so ``<script>``, ``on*`` handlers and ``javascript:`` links never survive.
"""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources
from pathlib import Path

import jinja2
import nh3
from markdown_it import MarkdownIt


def installed_templates() -> Path:
    """The repository's templates/ folder wherever the hub is installed: the ``hub.templates``
    package (setup.py maps the folder onto it; a wheel carries it inside ``hub/``)."""
    found = resources.files("hub.templates")
    if not isinstance(found, Path):  # only a zipped install would give something else
        raise RuntimeError(f"the templates must be installed as files, not {found!r}")
    return found


TEMPLATES_DIR = installed_templates()

ALLOWED_TAGS = {
    "p", "br", "strong", "em", "b", "i", "u", "s", "h1", "h2", "h3", "h4", "h5", "h6",
    "ul", "ol", "li", "blockquote", "hr", "pre", "code", "a", "img", "table", "thead",
    "tbody", "tr", "th", "td", "article", "section",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "img": {"src", "alt", "title"}}
URL_SCHEMES = {"http", "https", "mailto"}

_markdown = MarkdownIt("commonmark", {"html": False}).enable("table")
_BLOCK_ENDS = {"paragraph_close", "heading_close", "list_item_close", "blockquote_close"}


def template_environment(templates_dir: str | Path | None = None) -> jinja2.Environment:
    """Templates from ``templates_dir`` first (an admin's overrides), then the installed ones.

    ``*.html.j2`` templates are autoescaped; ``*.txt.j2`` are not. One environment per folder
    per process, so templates are compiled once (Jinja2 environments are safe to share).
    """
    return _environment(str(templates_dir) if templates_dir is not None else None)


@lru_cache(maxsize=16)
def _environment(templates_dir: str | None) -> jinja2.Environment:
    search = [templates_dir] if templates_dir is not None else []
    search.append(str(TEMPLATES_DIR))
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(search),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html", "html.j2")),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def sanitize_html(fragment: str) -> str:
    """Keep only the allow-listed tags and attributes; links get ``rel="noopener noreferrer"``."""
    return nh3.clean(
        fragment,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel="noopener noreferrer",
    )


def markdown_to_html(body: str) -> str:
    """Markdown body to sanitised HTML."""
    return sanitize_html(_markdown.render(body))


def _joined(parts: list[str]) -> str:
    """Join paragraphs: no space between two CJK characters, one space otherwise."""
    out = ""
    for part in parts:
        if not out:
            out = part
        elif not out[-1].isascii() and not part[0].isascii():
            out += part
        else:
            out += " " + part
    return out


def markdown_to_text(body: str) -> str:
    """Markdown body to one line of plain text (link targets and image sources dropped)."""
    parts: list[str] = []
    current: list[str] = []
    for token in _markdown.parse(body):
        if token.type == "inline" and token.children:
            for child in token.children:
                if child.type in ("text", "code_inline"):
                    current.append(child.content)
                elif child.type in ("softbreak", "hardbreak"):
                    current.append("\n")
        elif token.type in ("code_block", "fence"):
            current.append(token.content)
        if token.type in _BLOCK_ENDS or token.type in ("code_block", "fence"):
            text = re.sub(r"\s+", " ", "".join(current)).strip()
            if text:
                parts.append(text)
            current = []
    return _joined(parts)
