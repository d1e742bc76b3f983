"""Hall and webhook rendering: Markdown to safe HTML, and the webhook's signing and SSRF guard."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest

from connectors.base import Account, Content
from connectors.errors import Misconfigured
from connectors.hall import HallConnector, MemoryHallStore
from connectors.markup import markdown_to_html, markdown_to_text
from connectors.webhook import WebhookConnector, is_public_address, sign, verify_signature

HOSTILE = (
    "正文<script>alert(1)</script>\n\n"
    '<img src=x onerror="alert(2)">\n\n'
    "[点我](javascript:alert(3))\n\n"
    '![图](https://img.example/a.png "t" onerror=alert(4))'
)


class _Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))


def assert_inert(html: str) -> None:
    """No script element, no on* attribute, no javascript: URL: hostile input is only text."""
    parser = _Elements()
    parser.feed(html)
    for tag, attrs in parser.elements:
        assert tag not in ("script", "iframe", "object", "style")
        for name, value in attrs.items():
            assert not name.startswith("on")
            assert not (value or "").strip().lower().startswith("javascript:")


def test_markdown_html_never_keeps_scripts_or_handlers() -> None:
    html = markdown_to_html(HOSTILE)
    assert_inert(html)
    assert "<script" not in html
    assert "&lt;script&gt;" in html  # shown as text
    assert "<p>正文" in html


def test_markdown_keeps_article_markup() -> None:
    html = markdown_to_html("# 标题\n\n**加粗** [链接](https://a.example/x)\n\n- 一\n- 二")
    assert "<h1>标题</h1>" in html
    assert "<strong>加粗</strong>" in html
    assert '<a href="https://a.example/x" rel="noopener noreferrer">链接</a>' in html
    assert "<li>一</li>" in html


def test_markdown_to_text_joins_chinese_paragraphs_without_spaces() -> None:
    assert markdown_to_text("# 标题\n\n第一段。\n\n第二段 with English") == (
        "标题第一段。第二段 with English"
    )


def test_hall_page_is_sanitised_through_the_template() -> None:
    hall = HallConnector(MemoryHallStore("http://hall.test"), public_base_url="http://hall.test")
    rendition = hall.render(
        Content(post_id=7, version=1, title="<b>标题</b>", body=HOSTILE, correction_note="更正")
    )
    assert_inert(rendition.html)
    # the article body only: the hall page shows the title (escaped by its own template)
    assert "标题" not in rendition.html and rendition.title == "<b>标题</b>"
    assert "更正说明" in rendition.html
    assert rendition.link == "http://hall.test/posts/7"


def test_hall_template_directory_can_be_overridden(tmp_path: Path) -> None:
    channels = tmp_path / "channels"
    channels.mkdir()
    (channels / "hall.html.j2").write_text("<p>自定义：{{ title }}</p>", encoding="utf-8")
    hall = HallConnector(
        MemoryHallStore("http://hall.test"),
        public_base_url="http://hall.test",
        templates_dir=tmp_path,
    )
    assert hall.render(Content(1, 1, "标题", "正文")).html == "<p>自定义：标题</p>"


def test_signature_round_trip_and_staleness() -> None:
    body = '{"id":"1","title":"发布"}'.encode()
    header = sign("s3cret", "1700000000", body)
    assert header.startswith("sha256=")
    assert verify_signature("s3cret", "1700000000", body, header, now=1700000100)
    assert not verify_signature("other", "1700000000", body, header, now=1700000100)
    assert not verify_signature("s3cret", "1700000000", body + b" ", header, now=1700000100)
    assert not verify_signature("s3cret", "1700000000", body, header, now=1700001000)
    assert not verify_signature("s3cret", "not-a-time", body, header)


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.9", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),
        ("::1", False),
        ("fe80::1", False),
        ("fd00::1", False),
        ("::ffff:127.0.0.1", False),
        ("0.0.0.0", False),
        ("100.64.0.1", False),
        ("8.8.8.8", True),
        ("2400:3200::1", True),
    ],
)
def test_is_public_address(address: str, public: bool) -> None:
    assert is_public_address(address) is public


@pytest.mark.parametrize(
    "addresses",
    [["127.0.0.1"], ["10.0.0.5"], ["169.254.169.254"], ["93.184.216.34", "192.168.0.1"], []],
)
def test_webhook_refuses_targets_resolving_to_private_addresses(addresses: list[str]) -> None:
    connector = WebhookConnector(
        httpx.Client(), allow_private=False, resolver=lambda host, port: addresses
    )
    account = Account(1, "webhook", "https://partner.example/hook", credentials={"secret": "s"})
    with pytest.raises(Misconfigured):
        connector.target(account)


def test_webhook_accepts_public_targets_and_private_ones_when_allowed() -> None:
    account = Account(1, "webhook", "http://partner.example/hook", credentials={"secret": "s"})
    public = WebhookConnector(
        httpx.Client(), allow_private=False, resolver=lambda host, port: ["93.184.216.34"]
    )
    assert public.target(account) == "http://partner.example/hook"
    local = Account(1, "webhook", "http://127.0.0.1:9/hook", credentials={"secret": "s"})
    assert WebhookConnector(httpx.Client(), allow_private=True).target(local).endswith("/hook")


def test_webhook_refuses_non_http_targets() -> None:
    account = Account(1, "webhook", "file:///etc/passwd", credentials={"secret": "s"})
    with pytest.raises(Misconfigured):
        WebhookConnector(httpx.Client(), allow_private=True).target(account)
