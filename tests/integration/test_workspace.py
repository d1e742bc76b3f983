"""The editor's workspace (issue 18): the 稿件 page, the workbench, review, admin and audit pages,
as a browser sees them (HTTP with a session cookie)."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from tests.integration.test_editor_pages import login

pytestmark = pytest.mark.integration


def _post(client: TestClient, headers: dict[str, str], **body: object) -> int:
    created = client.post("/api/v1/posts", json={"body": "正文", **body}, headers=headers)
    assert created.status_code == 201, created.text
    return int(created.json()["id"])


def _hall_account(client: TestClient, auth: dict[str, dict[str, str]]) -> int:
    made = client.post(
        "/api/v1/accounts",
        json={"org_code": "522601", "platform": "hall", "name": "凯里发布厅"},
        headers=auth["admin"],
    )
    assert made.status_code == 201, made.text
    return int(made.json()["id"])


def _titles(html: str) -> list[str]:
    table = html[html.index('id="posts"') :]
    return re.findall(r'<a href="/[^"]+">([^<]+)</a>', table[: table.index("</table>")])


def test_the_posts_page_finds_my_posts_and_my_orgs_within_reach(
    client: TestClient, auth: dict[str, dict[str, str]]
) -> None:
    kaili = auth["kaili-editor"]
    _post(client, kaili, title="凯里市防汛通知", body="请做好防汛准备。")
    _post(
        client,
        kaili,
        title="凯里市交通提示",
        body="春节期间凯里南站加开列车。",
        urgency="hot_topic",
    )
    _post(client, auth["huangping-editor"], title="黄平县防汛通知", body="防汛")
    login(client, "kaili-editor")

    page = client.get("/posts")
    assert page.status_code == 200
    assert set(_titles(page.text)) == {"凯里市防汛通知", "凯里市交通提示"}  # not another county's
    assert "稿件" in page.text and 'href="/posts"' in page.text  # in the menu

    assert _titles(client.get("/posts?q=防汛").text) == ["凯里市防汛通知"]  # title
    assert _titles(client.get("/posts?q=加开列车").text) == ["凯里市交通提示"]  # body
    assert _titles(client.get("/posts?urgency=hot_topic").text) == ["凯里市交通提示"]
    assert _titles(client.get("/posts?status=published").text) == []
    assert "没有符合条件的稿件" in client.get("/posts?status=published").text
    assert client.get("/posts?since=2001-01-01&until=2001-12-31").text.count("data-post=") == 0
    assert client.get("/posts?since=yesterday").status_code == 200  # a bad date is said, not 500
    assert "日期格式应为" in client.get("/posts?since=yesterday").text

    drafts = client.get("/drafts", follow_redirects=False)
    assert drafts.status_code == 303
    assert drafts.headers["location"].startswith("/posts?status=drafts")
    assert set(_titles(client.get(drafts.headers["location"]).text)) == {
        "凯里市防汛通知",
        "凯里市交通提示",
    }
    # the prefecture sees its counties' posts too (reach)
    client.cookies.clear()
    login(client, "qdn-editor")
    assert len(_titles(client.get("/posts").text)) == 3


def test_the_posts_page_pages(client: TestClient, auth: dict[str, dict[str, str]]) -> None:
    for n in range(31):
        _post(client, auth["kaili-editor"], title=f"稿件{n:02d}")
    login(client, "kaili-editor")
    first = client.get("/posts")
    assert first.text.count("data-post=") == 30
    assert "第 1 / 2 页" in first.text and "page_no=2" in first.text
    second = client.get("/posts?page_no=2")
    assert _titles(second.text) == ["稿件00"]  # the oldest change last


def test_the_workbench_shows_my_posts_in_review_and_the_board_explains_no_copies(
    client: TestClient, auth: dict[str, dict[str, str]]
) -> None:
    account = _hall_account(client, auth)
    post = _post(client, auth["kaili-editor"], title="待审的通知", target_account_ids=[account])
    submitted = client.post(f"/api/v1/posts/{post}/submit", headers=auth["kaili-editor"])
    assert submitted.status_code == 200, submitted.text
    login(client, "kaili-editor")
    home = client.get("/").text
    waiting = home[home.index('id="h-waiting"') : home.index('id="h-review"')]
    assert "待审的通知" in waiting and "待审核" in waiting
    board = client.get(f"/posts/{post}/board")
    assert board.status_code == 200
    assert "稿件批准后才会生成投递" in board.text
    client.cookies.clear()
    login(client, "kaili-reviewer")
    home = client.get("/").text
    assert "待审的通知" in home[home.index('id="h-review"') :]


def test_a_blocked_submission_is_explained_in_chinese_naming_the_platform(
    client: TestClient, auth: dict[str, dict[str, str]]
) -> None:
    none = _post(client, auth["kaili-editor"], title="无账号")
    refused = client.post(f"/api/v1/posts/{none}/submit", headers=auth["kaili-editor"])
    assert refused.status_code == 422
    assert refused.json()["detail"] == "请先选择至少一个发布账号，再提交审核"

    wechat = client.post(
        "/api/v1/accounts",
        json={
            "org_code": "522601",
            "platform": "wechat",
            "name": "凯里发布",
            "credentials": {"app_id": "wxkaili", "app_secret": "s" * 32},
        },
        headers=auth["admin"],
    )
    assert wechat.status_code == 201, wechat.text
    post = _post(
        client, auth["kaili-editor"], title="没有封面", target_account_ids=[wechat.json()["id"]]
    )
    refused = client.post(f"/api/v1/posts/{post}/submit", headers=auth["kaili-editor"])
    assert refused.status_code == 422
    detail = refused.json()["detail"]
    assert detail.startswith("提交审核前请先解决以下问题：微信公众号：")
    assert "wechat" not in detail and "fix these" not in detail
