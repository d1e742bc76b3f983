"""Issue 18, items 6-9 and 14, as a user sees the pages: 互动留言 and 时限看板 in the menu of the
roles that may use them, the clocks page's stop / cancel / link-a-post forms, the inbox in
Chinese (and English) words, /hall/answers in the hall's layout, og:image on hall post pages,
and /deliveries showing a live session's key-event posts as one row."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from hub.accounts.models import Platform
from hub.db import engine_for
from hub.live import service as live_service
from hub.web.app import create_app
from tests.integration import hall_data
from tests.integration.test_clocks_api import open_clock
from tests.integration.test_editor_pages import login
from tests.integration.test_live_api import account, new_session

pytestmark = pytest.mark.integration

Auth = dict[str, dict[str, str]]


@contextmanager
def browser_as(username: str) -> Iterator[tuple[TestClient, str]]:
    """A client logged in through the form (its own cookie jar) and the page's CSRF token."""
    with TestClient(create_app(), client=("203.0.113.9", 50002)) as client:
        yield client, login(client, username)


def menu(html: str) -> list[str]:
    nav = html.split('class="mainnav"', 1)[1].split("</nav>", 1)[0]
    return re.findall(r'<a href="([^"]+)"', nav)


def test_inbox_and_clocks_are_in_the_menu_of_every_role_that_may_use_them(
    client: TestClient,
) -> None:
    for username in ("kaili-editor", "kaili-reviewer", "supervisor", "admin"):
        with browser_as(username) as (browser, _csrf):
            links = menu(browser.get("/").text)
            assert "/inbox" in links and "/clocks" in links, (username, links)
            assert browser.get("/inbox").status_code == 200
            assert browser.get("/clocks").status_code == 200
    with browser_as("kaili-editor") as (browser, _csrf):
        page = browser.get("/inbox").text
        assert '<a href="/inbox" aria-current="page">' in page  # the current page is marked


def clock_id(client: TestClient, auth: Auth, minutes_ago: int) -> int:
    started = (datetime.now(UTC) - timedelta(minutes=minutes_ago)).isoformat()
    made = open_clock(client, auth["kaili-editor"], "disclosure", "522601", started)
    return int(made["id"])


def state(client: TestClient, auth: Auth, cid: int) -> dict[str, object]:
    answer = client.get(f"/api/v1/clocks/{cid}", headers=auth["kaili-editor"])
    assert answer.status_code == 200
    return dict(answer.json())


def test_a_clock_is_stopped_cancelled_and_linked_to_a_post_from_the_clocks_page(
    client: TestClient, auth: Auth
) -> None:
    stop, cancel, link = (clock_id(client, auth, minutes) for minutes in (30, 20, 10))
    post = client.post(
        "/api/v1/posts",
        json={"org_code": "522601", "title": "答复稿件", "body": "正文"},
        headers=auth["kaili-editor"],
    )
    assert post.status_code == 201, post.text
    post_id = post.json()["id"]

    with browser_as("kaili-editor") as (browser, csrf):
        page = browser.get("/clocks").text
        for cid in (stop, cancel, link):
            assert f'action="/clocks/{cid}"' in page  # each open clock has its forms
        assert (
            ">停止</button>" in page and ">撤销</button>" in page and ">关联稿件</button>" in page
        )

        forged = browser.post(f"/clocks/{stop}", data={"action": "stop"})
        assert forged.status_code == 403 and state(client, auth, stop)["status"] == "running"

        done = browser.post(f"/clocks/{stop}", data={"action": "stop", "csrf": csrf})
        assert done.status_code == 200 and f"时限 {stop} 已停止：按时完成" in done.text
        assert state(client, auth, stop)["status"] == "met"
        again = browser.post(f"/clocks/{stop}", data={"action": "stop", "csrf": csrf})
        assert again.status_code == 409 and "已结束" in again.text

        blank = browser.post(f"/clocks/{cancel}", data={"action": "cancel", "csrf": csrf})
        assert blank.status_code == 422 and "请填写撤销原因" in blank.text
        cancelled = browser.post(
            f"/clocks/{cancel}", data={"action": "cancel", "reason": "误开", "csrf": csrf}
        )
        assert f"时限 {cancel} 已撤销" in cancelled.text
        assert state(client, auth, cancel)["status"] == "cancelled"

        bad = browser.post(
            f"/clocks/{link}", data={"action": "link", "post_id": "abc", "csrf": csrf}
        )
        assert bad.status_code == 422 and "请填写稿件编号" in bad.text
        missing = browser.post(
            f"/clocks/{link}", data={"action": "link", "post_id": "999999", "csrf": csrf}
        )
        assert missing.status_code == 404 and "不存在" in missing.text
        linked = browser.post(
            f"/clocks/{link}", data={"action": "link", "post_id": str(post_id), "csrf": csrf}
        )
        assert f"已关联稿件 {post_id}：稿件发布后时限自动停止" in linked.text
        shown = state(client, auth, link)
        assert shown["post_ids"] == [post_id] and shown["status"] == "running"
        assert f'href="/posts/{post_id}/board"' in linked.text  # the page links the post

    with browser_as("kaili-reviewer") as (browser, csrf):  # sees the clock, may not manage it
        assert f'action="/clocks/{link}"' not in browser.get("/clocks").text
        refused = browser.post(f"/clocks/{link}", data={"action": "stop", "csrf": csrf})
        assert refused.status_code == 403
    with browser_as("huangping-editor") as (browser, csrf):  # outside the reach: as if missing
        hidden = browser.post(f"/clocks/{link}", data={"action": "stop", "csrf": csrf})
        assert hidden.status_code == 404
    assert state(client, auth, link)["status"] == "running"


def test_linking_an_already_published_post_stops_the_clock_at_its_release(
    client: TestClient, auth: Auth, guizhou: dict[str, str]
) -> None:
    url = guizhou["GOVHUB_DATABASE_URL"]
    cid = clock_id(client, auth, 30)
    answered = hall_data.publish(url, org_code="522601", title="依申请公开答复", body="答复全文。")
    weibo = hall_data.account(url, "522601", Platform("weibo"), "凯里发布")
    hall_data.delivered(
        url, post_id=answered.post_id, version=1, account_id=weibo, remote_url="https://w.test/1"
    )
    with browser_as("kaili-editor") as (browser, csrf):
        page = browser.post(
            f"/clocks/{cid}",
            data={"action": "link", "post_id": f"#{answered.post_id}", "csrf": csrf},
        )
    assert f"已关联稿件 {answered.post_id}，按其发布时间停止时限：按时完成" in page.text
    shown = state(client, auth, cid)
    assert shown["status"] == "met" and shown["post_ids"] == [answered.post_id]
    stopped = datetime.fromisoformat(str(shown["stopped_at"]))
    assert datetime.now(UTC) - stopped > timedelta(seconds=4)  # the copy's time, not the click's


def test_the_inbox_reads_in_words_of_the_interface_language(client: TestClient, auth: Auth) -> None:
    made = client.post(
        "/api/v1/cases",
        json={"org_code": "522601", "author_handle": "王先生", "text": "路灯坏了什么时候修？"},
        headers=auth["kaili-editor"],
    )
    assert made.status_code == 201, made.text
    case_id = made.json()["id"]
    note = client.post(
        f"/api/v1/cases/{case_id}/notes", json={"text": "已联系城管"}, headers=auth["kaili-editor"]
    )
    assert note.status_code == 201, note.text

    with browser_as("kaili-editor") as (browser, _csrf):
        listing = browser.get("/inbox").text
        assert 'class="table compact cases"' in listing  # the house table
        assert "人工录入" in listing and "路灯坏了什么时候修？" in listing
        shown = re.sub(r"<[^>]+>", " ", listing)  # the text a reader sees, not the values
        for raw in ("weibo_comment", "wechat_message", "manual"):
            assert raw not in shown
        assert re.search(r"<option value=\"weibo_comment\"[^>]*>微博评论</option>", listing)
        assert re.search(r"<option value=\"wechat_message\"[^>]*>微信公众号私信</option>", listing)

        case = browser.get(f"/inbox/cases/{case_id}").text
        assert "<strong>收到留言</strong>" in case and "<strong>内部备注</strong>" in case
        assert "inbox created" not in case and "> created" not in case
        assert "kaili-editor</span></span> <strong>内部备注</strong>" in case

        english = browser.get("/lang/en?next=/inbox", follow_redirects=True).text
        assert "Source" in english and "Entered by hand" in english
        assert "路灯坏了什么时候修？" in english  # the follower's words stay as written


def test_hall_answers_has_the_hall_layout_a_way_back_and_a_link_from_the_hall(
    client: TestClient, auth: Auth
) -> None:
    made = client.post(
        "/api/v1/cases",
        json={"org_code": "522601", "author_handle": "李四", "text": "图书馆周一开门吗？"},
        headers=auth["kaili-editor"],
    )
    case_id = made.json()["id"]
    reply = client.post(
        f"/api/v1/cases/{case_id}/replies",
        json={"text": "周一闭馆。", "publish_on_hall": True},
        headers=auth["kaili-editor"],
    )
    assert reply.status_code == 201, reply.text

    assert 'href="/hall/answers"' in client.get("/hall").text
    page = client.get("/hall/answers")
    assert page.status_code == 200
    html = page.text
    assert '<link rel="stylesheet" href="/static/css/hall.css">' in html
    assert '<header class="hall-top">' in html and '<main id="main"' in html
    assert "<h1>网民留言答复</h1>" in html
    assert '<a href="/hall">发布厅</a>' in html  # the breadcrumb back
    assert "周一闭馆。" in html and "李*" in html and "李四" not in html


def test_hall_post_pages_name_an_absolute_og_image(
    client: TestClient, guizhou: dict[str, str]
) -> None:
    url = guizhou["GOVHUB_DATABASE_URL"]
    plain = hall_data.publish(url, org_code="522601", title="无图稿件", body="只有文字。")
    page = client.get(f"/hall/posts/{plain.post_id}").text
    base = hall_data.BASE
    assert f'<meta property="og:image" content="{base}/static/img/hall-share.png">' in page
    assert client.get("/static/img/hall-share.png").status_code == 200
    pictured = hall_data.publish(
        url, org_code="522601", title="有图稿件", body="![现场](/media/1/photo.jpg)\n\n正文。"
    )
    html = client.get(f"/hall/posts/{pictured.post_id}").text
    assert '<meta property="og:title" content="有图稿件">' in html
    assert '<meta property="og:description"' in html
    found = re.search(r'<meta property="og:image" content="([^"]+)">', html)
    assert found and found.group(1).startswith(f"{base}/")
    assert found.group(1) != f"{base}/static/img/hall-share.png"


def test_deliveries_show_a_live_sessions_key_event_posts_as_one_row(
    client: TestClient, auth: Auth, guizhou: dict[str, str]
) -> None:
    url = guizhou["GOVHUB_DATABASE_URL"]
    first, second = account(url, "522601", "weibo"), account(url, "522601", "weibo")
    editor = auth["kaili-editor"]
    live = new_session(client, editor, target_account_ids=[first, second], plan="常务会议要点")
    base = f"/api/v1/live-sessions/{live['id']}"
    assert client.post(f"{base}/plan/approve", headers=auth["kaili-reviewer"]).status_code == 200
    client.post(f"{base}/start", headers=editor)
    for text in ("审议通过营商环境条例", "部署冬季安全生产"):
        entry = client.post(
            f"{base}/entries", json={"text": text, "key_event": True}, headers=editor
        )
        assert entry.status_code == 201, entry.text
    with Session(engine_for(url)) as session:
        live_service.fanout(session=session, now=datetime.now(UTC))
        session.commit()

    with browser_as("kaili-editor") as (browser, _csrf):
        page = browser.get("/deliveries").text
    table = page.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    assert table.count(live["title"]) == 1, table
    assert f'href="/live/{live["slug"]}/console"' in table
    assert "条要点稿件" in table
