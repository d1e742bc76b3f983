"""The media library: uploads recorded per org, searched within the reach, alt text on public
renderings, and the org's default cover standing in when a platform needs one."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from hub.db import engine_for
from hub.media.models import MediaItem
from hub.sqltypes import utcnow
from tests.integration.test_editor_pages import login, png

pytestmark = pytest.mark.integration


def upload(
    client: TestClient, headers: dict[str, str], name: str, size: tuple[int, int], alt: str = ""
) -> dict[str, Any]:
    sent = client.post(
        "/api/v1/media",
        files={"file": (name, png(size), "image/png")},
        data={"alt": alt},
        headers=headers,
    )
    assert sent.status_code == 201, sent.text
    body: dict[str, Any] = sent.json()
    return body


def names(client: TestClient, headers: dict[str, str], **params: Any) -> list[str]:
    listed = client.get("/api/v1/media", params=params, headers=headers)
    assert listed.status_code == 200, listed.text
    return [item["original_name"] for item in listed.json()["items"]]


def test_uploads_are_listed_per_org_subtree_and_searchable(
    client: TestClient, auth: dict[str, dict[str, str]], guizhou: dict[str, str]
) -> None:
    flood = upload(client, auth["kaili-editor"], "防汛会议.png", (64, 48), alt="  防汛会议\n现场 ")
    upload(client, auth["kaili-editor"], "春耕.png", (30, 20))
    upload(client, auth["huangping-editor"], "黄平风光.png", (20, 20))

    assert flood["width"] == 64 and flood["height"] == 48
    assert flood["alt"] == "防汛会议 现场" and flood["org_code"] == "522601"
    assert flood["size"] == len(png((64, 48)))
    assert names(client, auth["kaili-editor"]) == ["春耕.png", "防汛会议.png"]  # newest first
    assert names(client, auth["huangping-editor"]) == ["黄平风光.png"]
    assert sorted(names(client, auth["qdn-editor"])) == ["春耕.png", "防汛会议.png", "黄平风光.png"]
    assert names(client, auth["kaili-editor"], q="防汛") == ["防汛会议.png"]
    assert names(client, auth["kaili-editor"], q="现场") == ["防汛会议.png"]  # alt text too
    assert names(client, auth["kaili-editor"], q="%") == []  # a wildcard matches itself

    page = client.get(
        "/api/v1/media", params={"per_page": 1, "page": 2}, headers=auth["kaili-editor"]
    )
    assert page.json()["total"] == 2 and [i["original_name"] for i in page.json()["items"]] == [
        "防汛会议.png"
    ]
    # by date: uploaded today, none a week ago
    today = utcnow().date()
    week_ago = (today - timedelta(days=7)).isoformat()
    assert len(names(client, auth["kaili-editor"], since=today.isoformat())) == 2
    assert names(client, auth["kaili-editor"], until=week_ago) == []
    backwards = client.get(
        "/api/v1/media",
        params={"since": today.isoformat(), "until": week_ago},
        headers=auth["kaili-editor"],
    )
    assert backwards.status_code == 422 and "起始日期" in backwards.json()["detail"]
    with Session(engine_for(guizhou["GOVHUB_DATABASE_URL"])) as session:
        row = session.exec(select(MediaItem).where(MediaItem.path == flood["path"])).one()
        assert len(row.content_hash) == 64 and row.uploaded_by is not None


def test_alt_text_is_changed_within_reach_and_used_on_the_public_page(
    client: TestClient, auth: dict[str, dict[str, str]]
) -> None:
    image = upload(client, auth["kaili-editor"], "会场.png", (40, 30))
    url = f"/api/v1/media/{image['id']}"
    assert client.patch(url, json={"alt": "x"}, headers=auth["huangping-editor"]).status_code == 404
    assert client.patch(url, json={"alt": "x"}, headers=auth["kaili-reviewer"]).status_code == 403
    assert (
        client.patch(
            "/api/v1/media/99999", json={"alt": "x"}, headers=auth["kaili-editor"]
        ).status_code
        == 404
    )
    too_long = client.patch(url, json={"alt": "长" * 201}, headers=auth["kaili-editor"])
    assert too_long.status_code == 422
    changed = client.patch(url, json={"alt": "凯里市防汛会议会场"}, headers=auth["kaili-editor"])
    assert changed.status_code == 200 and changed.json()["alt"] == "凯里市防汛会议会场"

    post = client.post(
        "/api/v1/posts",
        json={
            "title": "凯里市召开防汛会议",
            "body": "会议部署防汛工作。",
            "images": [image["path"]],
        },
        headers=auth["kaili-editor"],
    ).json()
    preview = client.get(f"/api/v1/posts/{post['id']}/preview", headers=auth["kaili-editor"])
    hall = next(p for p in preview.json() if p["platform"] == "hall")
    assert 'alt="凯里市防汛会议会场"' in hall["html"]


def test_the_orgs_default_cover_stands_in_for_a_missing_image(
    client: TestClient, auth: dict[str, dict[str, str]]
) -> None:
    account = client.post(
        "/api/v1/accounts",
        json={
            "org_code": "522601",
            "platform": "wechat",
            "name": "凯里发布",
            "credentials": {"app_id": "wxkaili0001", "app_secret": "secret"},
        },
        headers=auth["admin"],
    )
    assert account.status_code == 201, account.text
    post = client.post(
        "/api/v1/posts",
        json={
            "title": "凯里市召开防汛会议",
            "body": "会议部署防汛工作。",
            "target_account_ids": [account.json()["id"]],
        },
        headers=auth["kaili-editor"],
    ).json()

    def wechat() -> dict[str, Any]:
        preview = client.get(f"/api/v1/posts/{post['id']}/preview", headers=auth["kaili-editor"])
        found: dict[str, Any] = next(p for p in preview.json() if p["platform"] == "wechat")
        return found

    before = wechat()
    assert "默认封面" in next(p["message"] for p in before["problems"] if "封面" in p["message"])
    refused = client.post(f"/api/v1/posts/{post['id']}/submit", headers=auth["kaili-editor"])
    assert refused.status_code == 422 and "封面" in refused.json()["detail"]

    cover = upload(client, auth["kaili-editor"], "凯里封面.png", (900, 383), alt="凯里发布")
    where = "/api/v1/orgs/522601/default-cover"
    assert (
        client.put(where, json={"media_id": cover["id"]}, headers=auth["kaili-editor"]).status_code
        == 403
    )
    unknown = client.put(where, json={"media_id": 99999}, headers=auth["admin"])
    assert unknown.status_code == 422 and "媒体库" in unknown.json()["detail"]
    done = client.put(where, json={"media_id": cover["id"]}, headers=auth["admin"])
    assert done.status_code == 200 and done.json()["default_cover"] == cover["path"]

    after = wechat()
    assert after["cover"].endswith(cover["url"])
    assert not [p for p in after["problems"] if "封面" in p["message"]]
    submitted = client.post(f"/api/v1/posts/{post['id']}/submit", headers=auth["kaili-editor"])
    assert submitted.status_code == 200, submitted.text
    # a post with its own image keeps it as the cover
    own = upload(client, auth["kaili-editor"], "现场.png", (300, 200))
    second = client.post(
        "/api/v1/posts",
        json={
            "title": "凯里市防汛检查",
            "body": "检查防汛工作。",
            "images": [own["path"]],
            "target_account_ids": [account.json()["id"]],
        },
        headers=auth["kaili-editor"],
    ).json()
    preview = client.get(f"/api/v1/posts/{second['id']}/preview", headers=auth["kaili-editor"])
    assert next(p for p in preview.json() if p["platform"] == "wechat")["cover"].endswith(
        own["url"]
    )


def test_the_media_page_lists_searches_and_edits_within_reach(
    client: TestClient, auth: dict[str, dict[str, str]]
) -> None:
    flood = upload(client, auth["kaili-editor"], "防汛会议.png", (64, 48))
    upload(client, auth["kaili-editor"], "春耕.png", (30, 20))
    upload(client, auth["huangping-editor"], "黄平风光.png", (20, 20))

    csrf = login(client, "kaili-editor")
    home = client.get("/")
    assert 'href="/media"' in home.text  # in the menu
    page = client.get("/media")
    assert page.status_code == 200
    assert "防汛会议.png" in page.text and "春耕.png" in page.text and "黄平风光" not in page.text
    searched = client.get("/media", params={"q": "春耕"})
    assert "春耕.png" in searched.text and "防汛会议.png" not in searched.text
    assert "日期格式" in client.get("/media", params={"since": "2026-13-01"}).text

    saved = client.post(
        f"/media/{flood['id']}/alt",
        data={"csrf": csrf, "alt": "凯里市防汛会议现场"},
        follow_redirects=False,
    )
    assert saved.status_code == 303
    after = client.get("/media")
    assert 'alt="凯里市防汛会议现场"' in after.text and "已保存图片" in after.text
    assert "默认封面" not in after.text  # an editor does not set covers
    refused = client.post(
        f"/media/{flood['id']}/cover", data={"csrf": csrf}, follow_redirects=False
    )
    assert refused.status_code == 403

    client.post("/logout", data={"csrf": csrf})
    csrf = login(client, "huangping-editor")
    hidden = client.post(
        f"/media/{flood['id']}/alt", data={"csrf": csrf, "alt": "x"}, follow_redirects=False
    )
    assert hidden.status_code == 404

    client.post("/logout", data={"csrf": csrf})
    csrf = login(client, "admin")
    made = client.post(f"/media/{flood['id']}/cover", data={"csrf": csrf}, follow_redirects=False)
    assert made.status_code == 303
    assert (
        client.get("/api/v1/orgs/522601", headers=auth["admin"]).json()["default_cover"]
        == (flood["path"])
    )
    assert "默认封面" in client.get("/media").text
