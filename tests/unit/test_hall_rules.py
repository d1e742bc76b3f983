"""The release hall's pure rules as a reader or a partner notices them: excerpts, safe HTML,
links, search terms, feed text, partner retries and cache validators."""

from __future__ import annotations

from datetime import timedelta
from itertools import pairwise

import pytest

from hub.hall.rules import (
    backoff,
    etag_matches,
    excerpt,
    fts_phrase,
    like_pattern,
    public_url,
    sanitised,
    search_terms,
    text_to_html,
    uses_trigram,
    xml_text,
)


def test_an_excerpt_is_one_line_cut_with_an_ellipsis() -> None:
    assert excerpt("第一行\n\n第二行\t  第三行") == "第一行 第二行 第三行"
    long = "政" * 200
    cut = excerpt(long)
    assert len(cut) == 140 and cut.endswith("…")
    assert excerpt("政" * 140) == "政" * 140  # exactly at the limit: untouched
    assert excerpt("abcdef", limit=4) == "abc…"


def test_plain_text_becomes_escaped_paragraphs() -> None:
    html = text_to_html("第一段<b>粗</b>\n第二行\n\n第二段\r\n\r\n\n")
    assert str(html) == "<p>第一段&lt;b&gt;粗&lt;/b&gt;<br>第二行</p><p>第二段</p>"
    assert str(text_to_html("   \n\n  ")) == ""


def test_html_from_a_post_is_cleaned_before_it_is_shown() -> None:
    cleaned = str(sanitised('<p onclick="x()">通知<script>alert(1)</script></p>'))
    assert "<p>" in cleaned and "通知" in cleaned
    assert "script" not in cleaned and "onclick" not in cleaned


@pytest.mark.parametrize(
    ("value", "link"),
    [
        ("https://www.gov.cn/a", "https://www.gov.cn/a"),
        ("  http://example.org/x ", "http://example.org/x"),
        ("HTTPS://EXAMPLE.ORG/", "HTTPS://EXAMPLE.ORG/"),
        ("javascript:alert(1)", ""),
        ("data:text/html,<b>x</b>", ""),
        ("//evil.example/x", ""),
        ("", ""),
    ],
)
def test_only_web_addresses_become_links(value: str, link: str) -> None:
    assert public_url(value) == link


def test_a_query_is_at_most_five_terms_of_a_hundred_characters() -> None:
    assert search_terms("  防汛  应急 通知 ") == ["防汛", "应急", "通知"]
    assert search_terms("a b c d e f g") == ["a", "b", "c", "d", "e"]
    assert search_terms("长" * 150) == ["长" * 100]
    assert search_terms("防汛\x00通知") == ["防汛", "通知"]
    assert search_terms("   ") == []


def test_short_terms_are_searched_without_the_trigram_index() -> None:
    assert not uses_trigram("防汛")
    assert uses_trigram("防汛办")


def test_like_wildcards_in_a_term_are_searched_literally() -> None:
    assert like_pattern("100%") == "%100\\%%"
    assert like_pattern("a_b") == "%a\\_b%"
    assert like_pattern("c:\\x") == "%c:\\\\x%"


def test_fts_operators_in_a_term_are_plain_text() -> None:
    assert fts_phrase("防汛 OR 通知") == '"防汛 OR 通知"'
    assert fts_phrase('say "hi"') == '"say ""hi"""'
    assert fts_phrase("a\x00b") == '"ab"'


def test_feed_text_drops_characters_xml_cannot_carry() -> None:
    assert xml_text("通知\x00\x08\x0b\x1f完\ufffe") == "通知完"
    assert xml_text("第一行\n第二行\t结束\r") == "第一行\n第二行\t结束\r"


def test_a_failing_partner_is_retried_later_and_later_up_to_an_hour() -> None:
    waits = [backoff(n) for n in range(0, 10)]
    assert waits[:5] == [
        timedelta(seconds=30),
        timedelta(seconds=30),
        timedelta(minutes=1),
        timedelta(minutes=2),
        timedelta(minutes=4),
    ]
    assert all(a <= b for a, b in pairwise(waits))
    assert backoff(8) == timedelta(hours=1)
    assert backoff(10_000) == timedelta(hours=1)


@pytest.mark.parametrize(
    ("header", "matches"),
    [
        ('"v1"', True),
        ('W/"v1"', True),
        ('"v0", "v1"', True),
        ("*", True),
        ('"v2"', False),
        ("", False),
        (None, False),
    ],
)
def test_a_reader_with_the_current_page_gets_not_modified(
    header: str | None, matches: bool
) -> None:
    assert etag_matches(header, '"v1"') is matches
