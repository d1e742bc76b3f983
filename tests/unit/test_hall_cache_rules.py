"""Which hall answers are cached, under which key, and when a stored answer satisfies a request."""

from __future__ import annotations

from datetime import UTC, datetime

from hub.hall.rules import cache_key, cacheable_path, not_modified

LAST = datetime(2026, 11, 30, 2, 0, 0, 500_000, tzinfo=UTC)
ETAG = '"abc"'


def test_the_halls_own_pages_and_feeds_are_cached_and_nothing_else() -> None:
    for path in ("/hall", "/hall/feed.json", "/hall/feed.atom", "/hall/orgs/522601",
                 "/hall/orgs/522601/feed.json", "/hall/posts/7", "/hall/entries/9"):  # fmt: skip
        assert cacheable_path(path), path
    for path in ("/hall/answers", "/halls", "/hall/feed.xml", "/", "/posts/7", "/api/v1/partners"):
        assert not cacheable_path(path), path


def test_the_key_keeps_what_the_pages_read_in_one_order_and_searches_are_not_cached() -> None:
    assert cache_key("/hall", b"page=2&org=522600&utm_source=x") == ("/hall", "org=522600&page=2")
    assert cache_key("/hall", b"org=522600&page=2") == cache_key("/hall", b"page=2&org=522600")
    assert cache_key("/hall", b"page=1&page=3") == ("/hall", "page=3")  # the last one, as pages
    assert cache_key("/hall", b"") == ("/hall", "")
    assert cache_key("/hall", b"q=%20&platform=weibo") == ("/hall", "platform=weibo")
    assert cache_key("/hall", b"q=%E9%98%B2%E6%B1%9B") is None
    assert cache_key("/hall", b"page=2&q=abc") is None


def test_if_none_match_decides_and_if_modified_since_only_without_it() -> None:
    assert not_modified({b"if-none-match": b'W/"abc", "x"'}, ETAG, LAST)
    assert not not_modified({b"if-none-match": b'"x"'}, ETAG, LAST)
    at = b"Mon, 30 Nov 2026 02:00:00 GMT"  # Last-Modified has whole seconds
    assert not_modified({b"if-modified-since": at}, ETAG, LAST)
    assert not not_modified({b"if-modified-since": b"Mon, 30 Nov 2026 01:59:59 GMT"}, ETAG, LAST)
    assert not not_modified({b"if-none-match": b'"x"', b"if-modified-since": at}, ETAG, LAST)
    for garbage in (b"yesterday", b"", b"Mon, 30 Nov 2026 02:00:00"):
        assert not not_modified({b"if-modified-since": garbage}, ETAG, LAST), garbage
    assert not not_modified({}, ETAG, LAST)
