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


def test_the_weibo_preview_carries_the_one_picture_the_status_is_sent_with(
    client: TestClient, auth: dict[str, dict[str, str]]
) -> None:
    from tests.integration.test_editor_pages import png

    weibo = client.post(
        "/api/v1/accounts",
        json={
            "org_code": "522601",
            "platform": "weibo",
            "name": "凯里微博",
            "credentials": {"access_token": "t" * 32},
        },
        headers=auth["admin"],
    )
    assert weibo.status_code == 201, weibo.text
    paths = []
    for _ in range(2):
        sent = client.post(
            "/api/v1/media",
            files={"file": ("p.png", png(), "image/png")},
            headers=auth["kaili-editor"],
        )
        paths.append(sent.json()["path"])
    post = _post(
        client,
        auth["kaili-editor"],
        title="两张图",
        images=paths,
        target_account_ids=[weibo.json()["id"]],
    )
    previews = client.get(f"/api/v1/posts/{post}/preview", headers=auth["kaili-editor"]).json()
    card = next(p for p in previews if p["platform"] == "weibo")
    assert [url.split("/media/")[1] for url in card["images"]] == paths[:1]  # Weibo sends one
    login(client, "kaili-editor")
    assert 'id="weibo-pics"' in client.get(f"/posts/{post}/edit").text


def test_the_review_page_compares_with_the_last_submitted_version_and_names_the_author(
    client: TestClient, auth: dict[str, dict[str, str]], guizhou: dict[str, str]
) -> None:
    from sqlmodel import Session, select

    from hub.db import engine_for
    from hub.users.models import User

    with Session(engine_for(guizhou["GOVHUB_DATABASE_URL"])) as session:
        user = session.exec(select(User).where(User.username == "kaili-editor")).one()
        user.display_name = "王小凯"
        session.add(user)
        session.commit()
    editor, reviewer = auth["kaili-editor"], auth["kaili-reviewer"]
    account = _hall_account(client, auth)
    post = _post(client, editor, title="送审稿", body="第一句。", target_account_ids=[account])
    for body in ("第一句。第二句。", "第一句。第二句。第三句。"):  # autosaves: versions 2 and 3
        assert client.patch(f"/api/v1/posts/{post}", json={"body": body}, headers=editor).is_success
    assert client.post(f"/api/v1/posts/{post}/submit", headers=editor).is_success
    login(client, "kaili-reviewer")
    first = client.get(f"/review/{post}").text
    assert "这是首次送审，没有可比较的版本" in first  # not "第 2 版" against an autosave
    assert "王小凯" in first and "kaili-editor" not in first

    rejected = client.post(
        f"/api/v1/posts/{post}/reject", json={"reason": "补充时间"}, headers=reviewer
    )
    assert rejected.is_success, rejected.text
    for body in ("改一。", "改二：时间为明日9时。"):  # two more autosaves: versions 4 and 5
        assert client.patch(f"/api/v1/posts/{post}", json={"body": body}, headers=editor).is_success
    assert client.post(f"/api/v1/posts/{post}/submit", headers=editor).is_success
    second = client.get(f"/review/{post}").text
    assert "第 3 版（上次送审）" in second  # the version the reviewer rejected
    assert "第 4 版" not in second
