"""The public release hall: the stream, filters, Chinese search, post and entry pages, caching."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser

from fastapi.testclient import TestClient

from hub.accounts.models import Platform
from hub.delivery.channels import post_link
from tests.integration import hall_data

DANGEROUS = (
    "第一段。\n\n<script>alert(1)</script>\n\n<img src=x onerror=alert(1)>\n\n政务公开照常进行。"
)


class _Tags(HTMLParser):
    """Every start tag and its attributes, to tell markup from escaped text."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def tags_of(html: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = _Tags()
    parser.feed(html)
    return parser.tags


def assert_harmless(html: str) -> None:
    """No script element and no event-handler attribute anywhere in the markup."""
    assert "<script" not in html.lower()
    for tag, attrs in tags_of(html):
        assert tag != "script"
        assert not [name for name in attrs if name.startswith("on")], (tag, attrs)


def headings(html: str) -> list[str]:
    return re.findall(r'<h2><a href="[^"]+">([^<]+)</a></h2>', html)


def test_stream_shows_every_entry_newest_first_and_filters_by_org_and_platform(
    client: TestClient, guizhou: dict[str, str]
) -> None:
    url = guizhou["GOVHUB_DATABASE_URL"]
    kaili = hall_data.publish(url, org_code="522601", title="凯里市召开新闻发布会", body="内容一")
    guiyang = hall_data.publish(url, org_code="520102", title="南明区发布天气预警", body="内容二")
    weibo = hall_data.account(url, "522622", Platform("weibo"), "黄平发布")
    hall_data.ingested(url, account_id=weibo, text="黄平县旅游节开幕啦", remote_id="w1")
    hall_data.ingested(
        url,
        account_id=weibo,
        text="一条很早以前的微博",
        remote_id="w0",
        published_at=datetime(2020, 1, 1, tzinfo=UTC),
    )

    page = client.get("/hall")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert headings(page.text) == [
        "黄平县旅游节开幕啦",
        "南明区发布天气预警",
        "凯里市召开新闻发布会",
        "一条很早以前的微博",
    ]
    assert '<html lang="zh-CN">' in page.text
    assert f'href="/hall/posts/{kaili.post_id}"' in page.text
    assert "共 4 条" in page.text

    # A prefecture includes its counties, not another prefecture's.
    qdn = client.get("/hall", params={"org": "522600"})
    assert headings(qdn.text) == [
        "黄平县旅游节开幕啦",
        "凯里市召开新闻发布会",
        "一条很早以前的微博",
    ]
    assert headings(client.get("/hall/orgs/522600").text) == headings(qdn.text)
    org_page = client.get("/hall/orgs/522600")
    assert "黔东南苗族侗族自治州" in org_page.text
    assert 'href="/hall/orgs/522600/feed.atom"' in org_page.text
    assert 'href="/hall/orgs/522601"' in org_page.text  # a county below it

    county = client.get("/hall/orgs/520102")
    assert headings(county.text) == ["南明区发布天气预警"]
    assert f'href="/hall/posts/{guiyang.post_id}"' in county.text

    weibo_only = client.get("/hall", params={"platform": "weibo"})
    assert headings(weibo_only.text) == ["黄平县旅游节开幕啦", "一条很早以前的微博"]
    both = client.get("/hall/orgs/522600", params={"platform": "hall"})
    assert headings(both.text) == ["凯里市召开新闻发布会"]

    assert client.get("/hall/orgs/999999").status_code == 404
    unknown = client.get("/hall", params={"org": "999999"})
    assert "未找到该机构" in unknown.text and headings(unknown.text) == []


def test_chinese_search_uses_trigrams_and_falls_back_to_like_for_short_terms(
    client: TestClient, guizhou: dict[str, str]
) -> None:
    url = guizhou["GOVHUB_DATABASE_URL"]
    hall_data.publish(
        url,
        org_code="522601",
        title="凯里市年度工作报告",
        body="今年我市全面推进政务公开，依法答复申请。",
    )
    hall_data.publish(url, org_code="520102", title="南明区防汛通知", body="请市民注意防范强降雨。")
    weibo = hall_data.account(url, "522622", Platform("weibo"))
    hall_data.ingested(url, account_id=weibo, text="黄平县政务服务中心搬迁公告", remote_id="w9")

    def found(q: str) -> list[str]:
        response = client.get("/hall", params={"q": q})
        assert response.status_code == 200
        return headings(response.text)

    assert found("政务公开") == ["凯里市年度工作报告"]  # in the body, 4 characters
    assert found("务公开") == ["凯里市年度工作报告"]  # the middle of a word, 3 characters
    assert found("政务") == ["黄平县政务服务中心搬迁公告", "凯里市年度工作报告"]  # 2: LIKE
    assert found("防汛") == ["南明区防汛通知"]  # in the title
    assert found("政务 搬迁") == ["黄平县政务服务中心搬迁公告"]  # every term must match
    assert found("交通管制") == []
    assert found('"政务" OR 1=1 %_') == []  # operators and wildcards are plain text
    assert "“政务公开”" in client.get("/hall", params={"q": "政务公开"}).text
    scoped = client.get("/hall/orgs/520102", params={"q": "政务"})
    assert headings(scoped.text) == []


def test_post_page_is_the_weibo_link_target_with_og_tags_and_every_copy(
    client: TestClient, guizhou: dict[str, str]
) -> None:
    url = guizhou["GOVHUB_DATABASE_URL"]
    first = hall_data.publish(
        url, org_code="522601", title="凯里市通报防疫情况", body="**截至今日**，无新增病例。"
    )
    # A correction went out as version 2 to the same hall account, and to Weibo.
    hall_data.publish(
        url,
        org_code="522601",
        title="凯里市通报防疫情况（更正）",
        body="截至今日，新增病例 0 例。",
        hall_account=first.account_id,
        correction_note="更正了病例数的表述",
        version=2,
        post_id=first.post_id,
    )
    weibo = hall_data.account(url, "522601", Platform("weibo"), "凯里发布")
    hall_data.delivered(
        url,
        post_id=first.post_id,
        version=2,
        account_id=weibo,
        remote_url="https://weibo.com/7000001/Qa1b2c3",
    )

    page = client.get(f"/hall/posts/{first.post_id}")
    assert page.status_code == 200
    html = page.text
    link = post_link(first.post_id)
    assert link == f"http://hall.test/hall/posts/{first.post_id}"
    assert '<meta property="og:title" content="凯里市通报防疫情况（更正）">' in html
    assert '<meta property="og:type" content="article">' in html
    assert f'<meta property="og:url" content="{link}">' in html
    assert '<meta property="og:description" content="截至今日，新增病例 0 例。">' in html
    assert "<h1>凯里市通报防疫情况（更正）</h1>" in html
    assert html.count("<h1>") == 1, "the title is shown once"
    assert html.count("更正了病例数的表述") == 1, "the correction note is shown once"
    assert "凯里市" in html
    assert "<time datetime=" in html
    assert 'href="https://weibo.com/7000001/Qa1b2c3"' in html
    assert "政务微博 · 凯里发布" in html
    assert re.search(r'href="/hall/entries/\d+"', html)
    # The hall lists the post's newest version once per hall entry; the old one is gone from
    # the post page.
    assert "无新增病例" not in html

    entry = client.get(f"/hall/entries/{first.entry_id}")
    assert entry.status_code == 200
    assert f'href="/hall/posts/{first.post_id}"' in entry.text

    assert client.get("/hall/posts/999999").status_code == 404
    assert client.get("/hall/posts/abc").status_code == 404
    assert client.get("/hall/entries/999999").status_code == 404


def test_ingested_entry_page_shows_text_and_the_original(
    client: TestClient, guizhou: dict[str, str]
) -> None:
    url = guizhou["GOVHUB_DATABASE_URL"]
    weibo = hall_data.account(url, "522622", Platform("weibo"), "黄平发布")
    entry_id = hall_data.ingested(
        url,
        account_id=weibo,
        text="黄平县今日发布：<b>旧州古镇</b>迎来游客高峰",
        remote_id="w2",
        remote_url="https://weibo.com/7000002/Xyz",
        published_at=datetime(2026, 3, 1, 23, 30, tzinfo=UTC),
    )
    page = client.get(f"/hall/entries/{entry_id}")
    assert page.status_code == 200
    assert "2026-03-02 07:30" in page.text  # Beijing time (GOVHUB_TIMEZONE)
    assert "&lt;b&gt;旧州古镇&lt;/b&gt;" in page.text
    assert "<b>旧州古镇" not in page.text
    assert 'href="https://weibo.com/7000002/Xyz"' in page.text
    assert "在政务微博查看原文" in page.text
    assert '<meta property="og:type" content="article">' in page.text


def test_script_and_event_handlers_never_reach_a_reader(
    client: TestClient, guizhou: dict[str, str]
) -> None:
    url = guizhou["GOVHUB_DATABASE_URL"]
    posted = hall_data.publish(
        url, org_code="522601", title="<script>alert(1)</script>标题", body=DANGEROUS
    )
    weibo = hall_data.account(url, "522601", Platform("weibo"))
    # An entry whose stored html is hostile: pages clean it again before showing it.
    hostile = hall_data.ingested(
        url,
        account_id=weibo,
        text="<script>alert(1)</script><img src=x onerror=alert(1)>",
        html='<p>正文</p><script>alert(1)</script><img src="x" onerror="alert(1)">',
        remote_id="evil",
        remote_url="javascript:alert(1)",
    )
    pages = [
        "/hall",
        "/hall?q=政务公开",
        "/hall/orgs/522601",
        f"/hall/posts/{posted.post_id}",
        f"/hall/entries/{posted.entry_id}",
        f"/hall/entries/{hostile}",
    ]
    for path in pages:
        response = client.get(path)
        assert response.status_code == 200, path
        assert_harmless(response.text)
        assert "javascript:" not in response.text
    post_page = client.get(f"/hall/posts/{posted.post_id}").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;标题" in post_page
    assert "政务公开照常进行" in post_page


def test_withdrawn_post_says_so_with_410_and_leaves_the_lists(
    client: TestClient, guizhou: dict[str, str]
) -> None:
    url = guizhou["GOVHUB_DATABASE_URL"]
    kept = hall_data.publish(url, org_code="522601", title="保留的稿件", body="内容")
    gone = hall_data.publish(url, org_code="522601", title="撤回的稿件", body="有误的内容")
    assert headings(client.get("/hall").text) == ["撤回的稿件", "保留的稿件"]

    hall_data.withdraw(url, post_id=gone.post_id, reason="数据有误，核实后重新发布")

    page = client.get(f"/hall/posts/{gone.post_id}")
    assert page.status_code == 410
    assert "该稿件已撤回" in page.text
    assert "数据有误，核实后重新发布" in page.text
    assert "有误的内容" not in page.text
    entry = client.get(f"/hall/entries/{gone.entry_id}")
    assert entry.status_code == 410 and "该稿件已撤回" in entry.text
    assert headings(client.get("/hall").text) == ["保留的稿件"]
    assert headings(client.get("/hall/orgs/522601").text) == ["保留的稿件"]
    assert client.get(f"/hall/posts/{kept.post_id}").status_code == 200


def test_pages_are_cacheable_and_answer_304_until_something_changes(
    client: TestClient, guizhou: dict[str, str]
) -> None:
    url = guizhou["GOVHUB_DATABASE_URL"]
    posted = hall_data.publish(url, org_code="522601", title="第一条", body="内容")

    for path in ("/hall", "/hall/orgs/522601", f"/hall/posts/{posted.post_id}"):
        first = client.get(path)
        assert first.headers["cache-control"] == "public, max-age=10, stale-while-revalidate=30"
        etag = first.headers["etag"]
        again = client.get(path, headers={"If-None-Match": etag})
        assert again.status_code == 304, path
        assert again.content == b""
        assert again.headers["etag"] == etag
        assert client.get(path, headers={"If-None-Match": f'W/{etag}, "other"'}).status_code == 304

    etag = client.get("/hall").headers["etag"]
    assert client.get("/hall?q=内容").headers["etag"] != etag  # the query is part of it
    hall_data.publish(url, org_code="522601", title="第二条", body="内容")
    fresh = client.get("/hall", headers={"If-None-Match": etag})
    assert fresh.status_code == 200
    assert headings(fresh.text) == ["第二条", "第一条"]
    assert fresh.headers["etag"] != etag

    etag = fresh.headers["etag"]
    hall_data.withdraw(url, post_id=posted.post_id, reason="撤回")
    after = client.get("/hall", headers={"If-None-Match": etag})
    assert after.status_code == 200 and headings(after.text) == ["第二条"]


def test_pages_of_twenty_with_links_between_them(
    client: TestClient, guizhou: dict[str, str]
) -> None:
    url = guizhou["GOVHUB_DATABASE_URL"]
    weibo = hall_data.account(url, "522601", Platform("weibo"))
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for n in range(25):
        hall_data.ingested(
            url,
            account_id=weibo,
            text=f"第{n:02d}条微博",
            remote_id=f"r{n}",
            published_at=start + timedelta(hours=n),
        )
    first = client.get("/hall")
    assert headings(first.text)[0] == "第24条微博" and len(headings(first.text)) == 20
    assert "第 1 / 2 页" in first.text
    assert 'href="/hall?page=2" rel="next"' in first.text
    second = client.get("/hall", params={"page": "2"})
    assert headings(second.text) == [f"第{n:02d}条微博" for n in (4, 3, 2, 1, 0)]
    assert 'href="/hall" rel="prev"' in second.text
    assert headings(client.get("/hall", params={"page": "99"}).text) == headings(second.text)
    assert headings(client.get("/hall", params={"page": "x"}).text) == headings(first.text)
