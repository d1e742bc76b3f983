"""微直播 pages through HTTP with a session cookie like a browser: the sessions list (reach,
status filter), the 新建直播 form, the console's buttons and its summary link, the menu item."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from hub.db import engine_for
from hub.live.models import LiveSession
from hub.users.models import User
from hub.web.app import create_app
from tests.integration.test_editor_pages import login
from tests.integration.test_live_api import account, new_session

pytestmark = pytest.mark.integration


@contextmanager
def browser_as(username: str) -> Iterator[tuple[TestClient, str]]:
    """A client logged in through the form (its own cookie jar) and the page's CSRF token."""
    with TestClient(create_app(), client=("203.0.113.8", 50001)) as client:
        yield client, login(client, username)


def user_id(url: str, username: str) -> int:
    with Session(engine_for(url)) as session:
        found = session.exec(select(User).where(User.username == username)).one().id
        assert found is not None
        return found


def titles(html: str) -> list[str]:
    table = html.split('id="live-sessions"', 1)[1] if 'id="live-sessions"' in html else ""
    return re.findall(r'<tr data-slug="[^"]+">\s*<td>(?:<a [^>]+>)?([^<]+)', table)


def test_the_list_shows_the_sessions_in_reach_newest_first_with_a_status_filter(
    client: TestClient, auth: dict[str, dict[str, str]]
) -> None:
    kaili = new_session(client, auth["kaili-editor"], title="凯里市政府常务会议")
    new_session(client, auth["huangping-editor"], title="黄平县新闻发布会", org_code="522622")
    later = new_session(client, auth["kaili-editor"], title="凯里市防汛工作会议")
    client.post(f"/api/v1/live-sessions/{kaili['id']}/start", headers=auth["kaili-editor"])

    with browser_as("kaili-editor") as (browser, _csrf):
        page = browser.get("/live")
        assert page.status_code == 200
        assert titles(page.text) == ["凯里市防汛工作会议", "凯里市政府常务会议"]  # not 黄平县's
        badges = re.findall(r'<span class="badge l-\w+">([^<]+)</span>', page.text)
        assert badges == ["未开始", "直播中"]  # the status in words, not scheduled/live
        assert f'href="/live/{later["slug"]}/console"' in page.text
        assert f'href="/live/{later["slug"]}"' in page.text  # the public page
        assert titles(browser.get("/live?status=live").text) == ["凯里市政府常务会议"]
        assert titles(browser.get("/live?status=scheduled").text) == ["凯里市防汛工作会议"]
        assert titles(browser.get("/live?status=nonsense").text) == [  # unknown: all of them
            "凯里市防汛工作会议",
            "凯里市政府常务会议",
        ]
        english = browser.get("/lang/en?next=/live").text  # the catalog's words
        assert re.findall(r'<span class="badge l-\w+">([^<]+)</span>', english) == [
            "Not started",
            "Live",
        ]
        assert "New live session" in english

    with browser_as("qdn-editor") as (browser, _csrf):  # the prefecture reaches both counties
        assert set(titles(browser.get("/live").text)) == {
            "凯里市防汛工作会议",
            "凯里市政府常务会议",
            "黄平县新闻发布会",
        }

    with browser_as("kaili-reviewer") as (browser, _csrf):  # reviewers: the list, no 新建直播
        page = browser.get("/live")
        assert titles(page.text) == ["凯里市防汛工作会议", "凯里市政府常务会议"]
        assert 'href="/live/new"' not in page.text
        assert browser.get("/live/new").status_code == 403


def test_the_menu_has_micro_live_for_editors_reviewers_and_admins_only(
    client: TestClient,
) -> None:
    for username in ("kaili-editor", "kaili-reviewer", "admin"):
        with browser_as(username) as (browser, _csrf):
            assert '<a href="/live"' in browser.get("/").text, username
    with browser_as("supervisor") as (browser, _csrf):
        assert '<a href="/live"' not in browser.get("/").text
        assert browser.get("/live").status_code == 403


def test_a_console_outside_the_reach_is_a_404_page(
    client: TestClient, auth: dict[str, dict[str, str]]
) -> None:
    other = new_session(
        client, auth["huangping-editor"], title="黄平县新闻发布会", org_code="522622"
    )
    with browser_as("kaili-editor") as (browser, _csrf):
        page = browser.get(f"/live/{other['slug']}/console")
        assert page.status_code == 404
        assert "页面不存在" in page.text and "黄平县新闻发布会" not in page.text
        assert browser.get("/live/no-such-session/console").status_code == 404


def form_of(html: str) -> dict[str, str]:
    token = re.search(r'name="csrf" value="([^"]+)"', html.split('id="live-form"', 1)[1])
    assert token
    return {"csrf": token.group(1)}


def test_the_form_creates_a_session_with_targets_and_an_approver(
    client: TestClient, guizhou: dict[str, str]
) -> None:
    url = guizhou["GOVHUB_DATABASE_URL"]
    weibo = account(url, "522601", "weibo")
    elsewhere = account(url, "522622", "weibo")
    reviewer = user_id(url, "kaili-reviewer")
    me = user_id(url, "kaili-editor")
    with browser_as("kaili-editor") as (browser, _csrf):
        page = browser.get("/live/new")
        assert page.status_code == 200
        assert f'name="target_ids" value="{weibo}"' in page.text
        assert f'name="target_ids" value="{elsewhere}"' not in page.text  # out of reach
        assert f'name="approver_ids" value="{reviewer}"' in page.text
        assert f'name="approver_ids" value="{me}"' not in page.text  # never the creator
        fields: dict[str, Any] = {
            **form_of(page.text),
            "title": "凯里市新闻发布会",
            "org_code": "522601",
            "meeting_kind": "press",
            "starts_at": "2026-12-01T09:30",
            "target_ids": [str(weibo)],
            "approver_ids": [str(reviewer)],
            "approval_required": "1",
        }

        refused = browser.post("/live/new", data={**fields, "approver_ids": [str(me)]})
        assert refused.status_code == 422
        assert "创建人" in refused.text or "审核" in refused.text
        assert 'value="凯里市新闻发布会"' in refused.text  # what was typed stays
        wrong = browser.post("/live/new", data={**fields, "target_ids": [str(elsewhere)]})
        assert wrong.status_code == 422 and "不属于凯里市" in wrong.text
        stale = browser.post("/live/new", data={**fields, "csrf": "x"})
        assert stale.status_code == 403

        done = browser.post("/live/new", data=fields, follow_redirects=False)
        assert done.status_code == 303
        with Session(engine_for(url)) as session:
            live = session.exec(select(LiveSession)).one()
        assert done.headers["location"] == f"/live/{live.slug}/console"
        assert live.title == "凯里市新闻发布会"
        assert live.target_account_ids == [weibo] and live.approver_ids == [reviewer]
        assert live.approval_required and live.meeting_kind.value == "press"
        assert (
            live.starts_at is not None and live.starts_at.isoformat() == "2026-12-01T01:30:00+00:00"
        )


def test_the_console_offers_end_only_while_live_and_links_the_summary_after(
    client: TestClient, auth: dict[str, dict[str, str]], guizhou: dict[str, str]
) -> None:
    url = guizhou["GOVHUB_DATABASE_URL"]
    hall = account(url, "522601", "wechat")
    live = new_session(client, auth["kaili-editor"], target_account_ids=[hall])
    api = f"/api/v1/live-sessions/{live['id']}"
    with browser_as("kaili-editor") as (browser, _csrf):
        console = f"/live/{live['slug']}/console"
        before = browser.get(console).text
        assert "未开始" in before and 'data-action="start"' in before
        assert 'data-action="end"' not in before
        assert 'id="pin"' in before and 'id="pinned"' not in before
        client.post(f"{api}/start", headers=auth["kaili-editor"])
        during = browser.get(console).text
        assert "直播中" in during and 'data-action="end"' in during
        assert 'data-action="start"' not in during
        client.post(
            f"{api}/entries",
            json={"text": "要点一", "key_event": True},
            headers=auth["kaili-editor"],
        )
        ended = client.post(f"{api}/end", headers=auth["kaili-editor"]).json()
        after = browser.get(console).text
        assert "已结束" in after and 'data-action="end"' not in after
        post_id = ended["summary_post"]["id"]
        assert 'id="summary-link"' in after and f'href="/posts/{post_id}/edit"' in after
        assert "图文直播回顾" in after
        listing = browser.get("/live").text
        assert f'href="/posts/{post_id}/edit"' in listing  # 回顾稿 in the list too
    with browser_as("kaili-reviewer") as (browser, _csrf):  # a reviewer opens it to review
        assert f'href="/review/{post_id}"' in browser.get(f"/live/{live['slug']}/console").text


def test_the_demo_seeds_one_scheduled_session_with_an_approver(
    client: TestClient, guizhou: dict[str, str]
) -> None:
    from hub.live.demo import seed_session
    from hub.sqltypes import utcnow

    url = guizhou["GOVHUB_DATABASE_URL"]
    weibo = account(url, "522601", "weibo")
    for _time in range(2):  # every `govhub demo` start: still one
        with Session(engine_for(url)) as session:
            seed_session(session=session, now=utcnow())
            session.commit()
    with Session(engine_for(url)) as session:
        (live,) = session.exec(select(LiveSession)).all()
    assert live.status.value == "scheduled" and live.starts_at is not None
    assert live.approver_ids == [user_id(url, "kaili-reviewer")]
    assert live.target_account_ids == [weibo]
    with browser_as("kaili-editor") as (browser, _csrf):
        assert titles(browser.get("/live").text) == [live.title]
        assert browser.get(f"/live/{live.slug}/console").status_code == 200
