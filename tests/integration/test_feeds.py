"""Atom and JSON Feed of the release hall: whole hall and per org, escaped, cacheable."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from xml.etree import ElementTree as ET

from fastapi.testclient import TestClient

from hub.accounts.models import Platform
from tests.integration import hall_data
from tests.integration.test_hall import DANGEROUS, assert_harmless

A = "{http://www.w3.org/2005/Atom}"


def atom_entries(client: TestClient, path: str) -> tuple[ET.Element, list[ET.Element]]:
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/atom+xml")
    assert response.headers["cache-control"] == "public, max-age=10, stale-while-revalidate=30"
    root = ET.fromstring(response.content)
    assert root.tag == f"{A}feed"
    return root, root.findall(f"{A}entry")


def test_atom_feed_lists_the_hall_newest_first_with_links_and_authors(
    client: TestClient, guizhou: dict[str, str]
) -> None:
    url = guizhou["GOVHUB_DATABASE_URL"]
    kaili = hall_data.publish(url, org_code="522601", title="凯里市发布会", body="政务公开工作")
    guiyang = hall_data.publish(url, org_code="520102", title="南明区 <通知> & “公告”", body="x")
    weibo = hall_data.account(url, "522622", Platform("weibo"))
    old = hall_data.ingested(
        url,
        account_id=weibo,
        text="黄平县的一条微博",
        remote_id="w1",
        published_at=datetime(2025, 5, 1, 4, 0, tzinfo=UTC),
        remote_url="https://weibo.com/1/w1",
    )

    root, entries = atom_entries(client, "/hall/feed.atom")
    assert root.findtext(f"{A}title") == "政务新媒体发布厅"
    assert root.findtext(f"{A}id") == "http://hall.test/hall/feed.atom"
    self_link = root.find(f"{A}link[@rel='self']")
    assert self_link is not None and self_link.get("href") == "http://hall.test/hall/feed.atom"
    assert [e.findtext(f"{A}title") for e in entries] == [
        "南明区 <通知> & “公告”",  # escaped in XML, back to the same text after parsing
        "凯里市发布会",
        "黄平县的一条微博",
    ]
    first = entries[1]
    assert first.findtext(f"{A}id") == f"http://hall.test/hall/entries/{kaili.entry_id}"
    link = first.find(f"{A}link[@rel='alternate']")
    assert link is not None
    assert link.get("href") == f"http://hall.test/hall/posts/{kaili.post_id}"
    assert first.findtext(f"{A}author/{A}name") == "凯里市"
    content = first.find(f"{A}content")
    assert content is not None and content.get("type") == "html"
    assert "政务公开工作" in (content.text or "")
    ingested = entries[2]
    assert ingested.findtext(f"{A}published") == "2025-05-01T04:00:00+00:00"
    via = ingested.find(f"{A}link[@rel='via']")
    assert via is not None and via.get("href") == "https://weibo.com/1/w1"
    assert ingested.findtext(f"{A}id") == f"http://hall.test/hall/entries/{old}"

    raw = client.get("/hall/feed.atom").text
    assert "南明区 &lt;通知&gt; &amp; “公告”" in raw
    assert guiyang.post_id

    _, org_entries = atom_entries(client, "/hall/orgs/522600/feed.atom")
    assert [e.findtext(f"{A}title") for e in org_entries] == ["凯里市发布会", "黄平县的一条微博"]
    _, weibo_entries = atom_entries(client, "/hall/feed.atom?platform=weibo")
    assert [e.findtext(f"{A}title") for e in weibo_entries] == ["黄平县的一条微博"]
    assert client.get("/hall/orgs/999999/feed.atom").status_code == 404


def test_json_feed_is_valid_version_1_1(client: TestClient, guizhou: dict[str, str]) -> None:
    url = guizhou["GOVHUB_DATABASE_URL"]
    kaili = hall_data.publish(url, org_code="522601", title="凯里市发布会", body="**政务公开**")
    weibo = hall_data.account(url, "520102", Platform("weibo"))
    hall_data.ingested(url, account_id=weibo, text="南明区微博", remote_id="n1")

    response = client.get("/hall/feed.json")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/feed+json")
    feed = json.loads(response.content)
    assert feed["version"] == "https://jsonfeed.org/version/1.1"
    assert feed["title"] == "政务新媒体发布厅"
    assert feed["home_page_url"] == "http://hall.test/hall"
    assert feed["feed_url"] == "http://hall.test/hall/feed.json"
    assert isinstance(feed["items"], list) and len(feed["items"]) == 2
    for item in feed["items"]:
        assert {"id", "url", "title", "content_html", "date_published"} <= set(item)
        assert all(isinstance(item[key], str) and item[key] for key in ("id", "url", "title"))
        datetime.fromisoformat(item["date_published"])
        assert item["authors"][0]["name"]
    ids = [item["id"] for item in feed["items"]]
    assert len(set(ids)) == len(ids)
    post_item = feed["items"][1]
    assert post_item["url"] == f"http://hall.test/hall/posts/{kaili.post_id}"
    content = post_item["content_html"]
    assert "<p><strong>政务公开</strong></p>" in content
    assert post_item["title"] not in content, "a feed reader shows the title once, from 'title'"
    assert feed["items"][0]["content_html"] == "<p>南明区微博</p>"

    org_feed = client.get("/hall/orgs/522600/feed.json").json()
    assert org_feed["title"] == "黔东南苗族侗族自治州 · 政务新媒体发布厅"
    assert org_feed["feed_url"] == "http://hall.test/hall/orgs/522600/feed.json"
    assert [item["title"] for item in org_feed["items"]] == ["凯里市发布会"]


def test_feeds_carry_no_script_and_drop_withdrawn_posts(
    client: TestClient, guizhou: dict[str, str]
) -> None:
    url = guizhou["GOVHUB_DATABASE_URL"]
    dangerous = hall_data.publish(
        url, org_code="522601", title="<script>x</script>", body=DANGEROUS
    )
    weibo = hall_data.account(url, "522601", Platform("weibo"))
    hall_data.ingested(
        url,
        account_id=weibo,
        text="<img src=x onerror=alert(1)>",
        html='<p>ok</p><script>alert(1)</script><img src="x" onerror="alert(1)">',
        remote_id="evil",
    )

    for path in ("/hall/feed.atom", "/hall/orgs/522601/feed.atom"):
        raw = client.get(path).text
        assert "<script" not in raw
        _, entries = atom_entries(client, path)
        assert len(entries) == 2
        for entry in entries:
            assert_harmless(entry.findtext(f"{A}content") or "")
    for path in ("/hall/feed.json", "/hall/orgs/522601/feed.json"):
        raw = client.get(path).text
        assert "<script" not in raw  # text fields carry it as \u003cscript\u003e
        items = json.loads(raw)["items"]
        assert len(items) == 2
        for item in items:
            assert_harmless(item["content_html"])
        assert items[1]["title"] == "<script>x</script>"  # the same text, JSON-escaped on the wire

    etag = client.get("/hall/feed.atom").headers["etag"]
    assert client.get("/hall/feed.atom", headers={"If-None-Match": etag}).status_code == 304
    json_etag = client.get("/hall/feed.json").headers["etag"]
    assert json_etag != etag
    assert client.get("/hall/feed.json", headers={"If-None-Match": json_etag}).status_code == 304

    hall_data.withdraw(url, post_id=dangerous.post_id, reason="撤回")
    fresh = client.get("/hall/feed.atom", headers={"If-None-Match": etag})
    assert fresh.status_code == 200
    entries = ET.fromstring(fresh.content).findall(f"{A}entry")
    assert len(entries) == 1
    assert f"/hall/posts/{dangerous.post_id}" not in fresh.text
    items = client.get("/hall/feed.json").json()["items"]
    assert [item["url"] for item in items if "/hall/posts/" in item["url"]] == []
    assert len(items) == 1
