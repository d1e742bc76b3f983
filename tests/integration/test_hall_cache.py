"""The hall's page cache: rendered once per change, gone within a second of a withdrawal everywhere."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from email.utils import format_datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from hub.db import engine_for
from hub.sqltypes import utcnow
from hub.web.app import create_app
from tests.integration import hall_data
from tests.integration.test_editor_pages import login
from tests.integration.test_observability import metrics_on, scrape, value

__all__ = ["metrics_on"]  # a fixture of the observability tests, used here too

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CACHE_CONTROL = "public, max-age=10, stale-while-revalidate=30"


@pytest.fixture
def second(guizhou: dict[str, str]) -> Iterator[TestClient]:
    """Another app instance on the same database (what a second worker process is)."""
    with TestClient(create_app(), client=("203.0.113.8", 50001)) as other:
        yield other


def withdraw_elsewhere(url: str, post_id: int) -> None:
    """Withdraw through the ORM in another process, so only the database can tell this one."""
    code = (
        "import sys; from tests.integration import hall_data; "
        "hall_data.withdraw(sys.argv[1], post_id=int(sys.argv[2]), reason='数据有误')"
    )
    subprocess.run([sys.executable, "-c", code, url, str(post_id)], cwd=ROOT, check=True)


def within(seconds: float, check: Callable[[], bool]) -> float:
    """Poll ``check`` until it holds; fail after ``seconds``. Returns how long it took."""
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < seconds, f"not within {seconds} s"
        time.sleep(0.02)
    return time.monotonic() - start


def test_a_post_withdrawn_in_another_process_leaves_every_page_and_feed_within_a_second(
    client: TestClient, second: TestClient, guizhou: dict[str, str]
) -> None:
    url = guizhou["GOVHUB_DATABASE_URL"]
    kept = hall_data.publish(url, org_code="522601", title="保留的稿件", body="照常")
    gone = hall_data.publish(url, org_code="522601", title="将撤回的稿件", body="有误")
    lists = ("/hall", "/hall/orgs/522601", "/hall/orgs/522600")
    feeds = ("/hall/feed.json", "/hall/feed.atom", "/hall/orgs/522601/feed.json")
    post_page = f"/hall/posts/{gone.post_id}"
    for app in (client, second):  # both processes hold every page in their cache
        for path in (*lists, *feeds, post_page):
            assert "将撤回的稿件" in app.get(path).text, path
        assert app.get(post_page).status_code == 200

    withdraw_elsewhere(url, gone.post_id)

    def gone_everywhere() -> bool:
        for app in (client, second):
            for path in (*lists, *feeds):
                if "将撤回的稿件" in app.get(path).text:
                    return False
            if app.get(post_page).status_code != 410:
                return False
        return True

    within(1.0, gone_everywhere)
    for app in (client, second):
        withdrawn = app.get(post_page)
        assert withdrawn.status_code == 410 and "该稿件已撤回" in withdrawn.text
        assert "数据有误" in withdrawn.text
        assert "保留的稿件" in app.get("/hall").text
        items = json.loads(app.get("/hall/feed.json").text)["items"]
        assert [i["title"] for i in items] == ["保留的稿件"]
        assert app.get(f"/hall/posts/{kept.post_id}").status_code == 200


def test_a_page_is_rendered_once_then_served_without_the_database(
    client: TestClient, guizhou: dict[str, str]
) -> None:
    url = guizhou["GOVHUB_DATABASE_URL"]
    hall_data.publish(url, org_code="522601", title="新闻发布会", body="内容")
    statements: list[str] = []

    def count(_conn: object, _cursor: object, sql: str, *_args: object) -> None:
        statements.append(sql)

    event.listen(engine_for(url), "before_cursor_execute", count)
    try:
        first = client.get("/hall/feed.json")
        rendering = len(statements)
        assert rendering > 2  # the first one reads the hall
        for _ in range(30):
            assert client.get("/hall/feed.json").content == first.content
    finally:
        event.remove(engine_for(url), "before_cursor_execute", count)
    # at most the version row, read every 250 ms, in the 30 answers after the first
    reads = statements[rendering:]
    assert all("heartbeats" in sql for sql in reads), reads


def test_cached_answers_carry_validators_and_the_security_headers_and_answer_304(
    client: TestClient, guizhou: dict[str, str]
) -> None:
    url = guizhou["GOVHUB_DATABASE_URL"]
    posted = hall_data.publish(url, org_code="522601", title="第一条", body="内容")
    for path in ("/hall", "/hall/feed.json", f"/hall/posts/{posted.post_id}"):
        client.get(path)
        cached = client.get(path)
        assert cached.status_code == 200
        assert cached.headers["cache-control"] == CACHE_CONTROL
        assert cached.headers["etag"].startswith('"')
        assert cached.headers["content-length"] == str(len(cached.content))
        assert "default-src 'self'" in cached.headers["content-security-policy"]
        assert cached.headers["x-frame-options"] == "DENY"
        assert cached.headers["x-content-type-options"] == "nosniff"
        assert "set-cookie" not in cached.headers

        same = client.get(path, headers={"If-None-Match": cached.headers["etag"]})
        assert same.status_code == 304 and same.content == b""
        assert same.headers["etag"] == cached.headers["etag"]
        since = client.get(path, headers={"If-Modified-Since": cached.headers["last-modified"]})
        assert since.status_code == 304, path
        earlier = format_datetime(utcnow().replace(year=2020), usegmt=True)
        assert client.get(path, headers={"If-Modified-Since": earlier}).status_code == 200
        # If-None-Match decides when both are sent
        both = {"If-None-Match": '"other"', "If-Modified-Since": cached.headers["last-modified"]}
        assert client.get(path, headers=both).status_code == 200

    etag = client.get("/hall").headers["etag"]
    hall_data.publish(url, org_code="522601", title="第二条", body="内容")
    fresh = client.get("/hall", headers={"If-None-Match": etag})
    assert fresh.status_code == 200 and "第二条" in fresh.text


def test_a_signed_in_editor_gets_the_same_hall_and_no_cookie_and_editor_pages_are_not_public(
    client: TestClient, guizhou: dict[str, str]
) -> None:
    url = guizhou["GOVHUB_DATABASE_URL"]
    hall_data.publish(url, org_code="522601", title="第一条", body="内容")
    with TestClient(create_app()) as anonymous:
        public = anonymous.get("/hall")
    login(client, "kaili-editor")
    for _ in range(2):  # rendered for the editor, then from the cache
        seen = client.get("/hall")
        assert seen.content == public.content
        assert "set-cookie" not in seen.headers
    home = client.get("/")
    assert home.status_code == 200
    assert "public" not in home.headers.get("cache-control", "")
    assert client.get("/").status_code == 200  # the session still works after the hall


def test_search_is_answered_from_the_database_and_unknown_pages_are_not_kept(
    client: TestClient, guizhou: dict[str, str]
) -> None:
    url = guizhou["GOVHUB_DATABASE_URL"]
    hall_data.publish(url, org_code="522601", title="防汛通知", body="内容")
    assert "防汛通知" in client.get("/hall", params={"q": "防汛"}).text
    hall_data.publish(url, org_code="522601", title="防汛续报", body="内容")
    assert "防汛续报" in client.get("/hall", params={"q": "防汛"}).text
    assert client.get("/hall/posts/999999").status_code == 404
    late = hall_data.publish(url, org_code="522601", title="后来的稿件", body="内容")
    assert client.get(f"/hall/posts/{late.post_id}").status_code == 200


def test_with_the_cache_off_the_hall_still_answers_and_validates(
    guizhou: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from hub.config import Settings

    url = guizhou["GOVHUB_DATABASE_URL"]
    hall_data.publish(url, org_code="522601", title="第一条", body="内容")
    with TestClient(create_app(Settings(hall_cache=False))) as plain:
        first = plain.get("/hall")
        assert first.status_code == 200 and "第一条" in first.text
        assert first.headers["cache-control"] == CACHE_CONTROL
        same = plain.get("/hall", headers={"If-None-Match": first.headers["etag"]})
        assert same.status_code == 304


def test_with_redis_a_change_elsewhere_is_pushed_to_every_process_at_once(
    guizhou: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from hub.config import Settings, get_settings

    redis_url = os.environ.get("GOVHUB_TEST_REDIS_URL", "")
    if not redis_url:
        pytest.skip("GOVHUB_TEST_REDIS_URL is unset")
    monkeypatch.setenv("GOVHUB_REDIS_URL", redis_url)  # this process and the withdrawing one
    get_settings.cache_clear()
    url = guizhou["GOVHUB_DATABASE_URL"]
    gone = hall_data.publish(url, org_code="522601", title="将撤回的稿件", body="有误")
    # a process that would read the database's stamp only once a minute
    with TestClient(create_app(Settings(hall_cache_check_ms=60_000))) as slow:
        assert "将撤回的稿件" in slow.get("/hall").text
        withdraw_elsewhere(url, gone.post_id)
        within(1.0, lambda: "将撤回的稿件" not in slow.get("/hall").text)
        assert slow.get(f"/hall/posts/{gone.post_id}").status_code == 410


def test_a_copy_landing_and_an_org_renamed_show_on_pages_already_cached(
    client: TestClient, guizhou: dict[str, str]
) -> None:
    from sqlmodel import Session

    from hub.accounts.models import Platform
    from hub.orgs.service import get_by_code

    url = guizhou["GOVHUB_DATABASE_URL"]
    posted = hall_data.publish(url, org_code="522601", title="第一条", body="内容")
    post_page, org_page = f"/hall/posts/{posted.post_id}", "/hall/orgs/522601"
    assert "weibo.com" not in client.get(post_page).text
    assert "凯里市人民政府新闻办" not in client.get(org_page).text

    weibo = hall_data.account(url, "522601", Platform("weibo"), "凯里发布")
    hall_data.delivered(
        url,
        post_id=posted.post_id,
        version=1,
        account_id=weibo,
        remote_url="https://weibo.com/7/Q1",
    )
    assert "https://weibo.com/7/Q1" in client.get(post_page).text

    with Session(engine_for(url)) as session:
        org = get_by_code(session=session, code="522601")
        org.name = "凯里市人民政府新闻办"
        session.add(org)
        session.commit()
    assert "凯里市人民政府新闻办" in client.get(org_page).text
    assert "凯里市人民政府新闻办" in client.get("/hall/feed.json").text


def test_answers_from_the_cache_are_timed_under_their_route(
    metrics_on: TestClient, guizhou: dict[str, str]
) -> None:
    posted = hall_data.publish(
        guizhou["GOVHUB_DATABASE_URL"], org_code="522601", title="第一条", body="内容"
    )
    name = "govhub_http_request_duration_seconds_count"
    labels = {"method": "GET", "route": "/hall/posts/{post_id}", "status": "200"}
    before = scrape(metrics_on)
    for _ in range(3):  # rendered once, then twice from the cache
        assert metrics_on.get(f"/hall/posts/{posted.post_id}").status_code == 200
    assert value(scrape(metrics_on), name, **labels) == value(before, name, **labels) + 3
