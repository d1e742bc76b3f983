"""The editor's pages and their helper routes, through HTTP with a session cookie like a browser."""

from __future__ import annotations

import io
import re

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from connectors.weibo_rules import weibo_length
from hub.web.app import create_app

pytestmark = pytest.mark.integration


def login(client: TestClient, username: str) -> str:
    """Log in through the form; return the page's CSRF token (what page scripts send)."""
    page = client.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf, page.text
    done = client.post(
        "/login",
        data={"username": username, "password": f"{username}-password", "csrf": csrf.group(1)},
        follow_redirects=False,
    )
    assert done.status_code == 303, done.text
    home = client.get("/")
    token = re.search(r'<meta name="csrf-token" content="([^"]+)"', home.text)
    assert token
    return token.group(1)


def png(size: tuple[int, int] = (40, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 40, 40)).save(buffer, "PNG")
    return buffer.getvalue()


def test_an_uploaded_image_is_stored_under_a_random_name_and_served(
    client: TestClient, auth: dict[str, dict[str, str]]
) -> None:
    sent = client.post(
        "/api/v1/media",
        files={"file": ("../../evil.php", png(), "image/png")},
        headers=auth["kaili-editor"],
    )
    assert sent.status_code == 201, sent.text
    body = sent.json()
    assert re.fullmatch(r"uploads/[0-9a-f]{32}\.png", body["path"])
    assert body["url"] == f"/media/{body['path']}"
    served = client.get(body["url"])
    assert served.status_code == 200
    assert served.headers["content-type"] == "image/png"
    assert served.content == png()


def test_an_upload_that_is_not_an_image_is_refused_in_words(
    client: TestClient, auth: dict[str, dict[str, str]]
) -> None:
    sent = client.post(
        "/api/v1/media",
        files={"file": ("photo.jpg", b"<?php echo 1; ?>" * 10, "image/jpeg")},
        headers=auth["kaili-editor"],
    )
    assert sent.status_code == 422
    assert "JPEG" in sent.json()["detail"] and "PNG" in sent.json()["detail"]


def test_an_upload_over_ten_megabytes_is_refused_with_413(
    client: TestClient, auth: dict[str, dict[str, str]]
) -> None:
    big = png() + b"\0" * (10 * 1024 * 1024)
    sent = client.post(
        "/api/v1/media", files={"file": ("big.png", big, "image/png")}, headers=auth["kaili-editor"]
    )
    assert sent.status_code == 413
    assert "10 MB" in sent.json()["detail"]


def test_media_outside_the_media_folder_is_not_served(client: TestClient) -> None:
    assert client.get("/media/../../pyproject.toml").status_code == 404
    assert client.get("/media/%2e%2e/%2e%2e/pyproject.toml").status_code == 404
    assert client.get("/media/uploads/nothing.png").status_code == 404


def test_a_supervisor_cannot_upload(client: TestClient, auth: dict[str, dict[str, str]]) -> None:
    sent = client.post(
        "/api/v1/media", files={"file": ("a.png", png(), "image/png")}, headers=auth["supervisor"]
    )
    assert sent.status_code == 403


@pytest.mark.parametrize(
    "text",
    ["贵州省人民政府新闻办公室", "abc def", "详情见 https://example.gov.cn/a/b?c=1 ，欢迎关注", ""],
)
def test_weibo_count_is_the_connectors_count(
    client: TestClient, auth: dict[str, dict[str, str]], text: str
) -> None:
    counted = client.post(
        "/api/v1/tools/weibo-count", json={"text": text}, headers=auth["kaili-editor"]
    )
    assert counted.status_code == 200
    assert counted.json() == {"count": weibo_length(text), "limit": 140}


def test_weibo_count_needs_a_login(client: TestClient) -> None:
    assert client.post("/api/v1/tools/weibo-count", json={"text": "x"}).status_code == 401


def test_pages_send_a_visitor_to_the_login_page_and_back(client: TestClient) -> None:
    for path in ("/", "/compose", "/review", "/calendar", "/deliveries", "/accounts", "/audit-log"):
        answer = client.get(path, follow_redirects=False)
        assert answer.status_code == 303, path
        assert answer.headers["location"].startswith("/login?next=")


def test_every_page_opens_for_an_editor(client: TestClient) -> None:
    login(client, "kaili-editor")
    for path, words in {
        "/": "我的草稿",
        "/compose": "提交审核",
        "/review": "待我审核或会签",
        "/calendar?view=month": "发布日历",
        "/calendar?view=week": "发布日历",
        "/deliveries": "投递",
        "/accounts": "账号",
    }.items():
        page = client.get(path)
        assert page.status_code == 200, path
        assert words in page.text, path


def test_the_audit_log_page_is_for_admins_and_supervisors(client: TestClient) -> None:
    login(client, "kaili-editor")
    assert client.get("/audit-log").status_code == 403
    client.cookies.clear()
    login(client, "supervisor")
    page = client.get("/audit-log?action=post.&page_no=1")
    assert page.status_code == 200
    assert "操作日志" in page.text


def test_an_editor_cannot_open_another_countys_post(
    client: TestClient, auth: dict[str, dict[str, str]]
) -> None:
    created = client.post(
        "/api/v1/posts",
        json={"title": "黄平县通知", "body": "内容"},
        headers=auth["huangping-editor"],
    )
    assert created.status_code == 201, created.text
    post_id = created.json()["id"]
    login(client, "kaili-editor")
    for path in (f"/posts/{post_id}/edit", f"/posts/{post_id}/board", f"/review/{post_id}"):
        page = client.get(path)
        assert page.status_code == 404, path  # outside the reach: as if it did not exist
        assert "黄平县通知" not in page.text
    assert client.get("/posts/999999/edit").status_code == 404


def test_a_cookie_write_without_the_csrf_header_is_refused(client: TestClient) -> None:
    csrf = login(client, "kaili-editor")
    body = {"title": "测试", "body": "正文"}
    refused = client.post("/api/v1/posts", json=body)
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["detail"]
    accepted = client.post("/api/v1/posts", json=body, headers={"X-CSRF-Token": csrf})
    assert accepted.status_code == 201


def test_the_review_page_shows_markup_in_a_post_as_text(
    client: TestClient, auth: dict[str, dict[str, str]]
) -> None:
    nasty = "<script>alert(1)</script> <img src=x onerror=alert(1)>"
    created = client.post(
        "/api/v1/posts", json={"title": "标题", "body": "第一版"}, headers=auth["kaili-editor"]
    )
    post_id = created.json()["id"]
    client.patch(f"/api/v1/posts/{post_id}", json={"body": nasty}, headers=auth["kaili-editor"])
    login(client, "kaili-reviewer")
    page = client.get(f"/review/{post_id}")
    assert page.status_code == 200
    assert "<script>alert(1)</script>" not in page.text
    assert "<img src=x" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text


def test_the_versions_api_lists_every_version(
    client: TestClient, auth: dict[str, dict[str, str]]
) -> None:
    created = client.post(
        "/api/v1/posts", json={"title": "标题", "body": "一"}, headers=auth["kaili-editor"]
    )
    post_id = created.json()["id"]
    client.patch(f"/api/v1/posts/{post_id}", json={"body": "二"}, headers=auth["kaili-editor"])
    versions = client.get(f"/api/v1/posts/{post_id}/versions", headers=auth["kaili-editor"])
    assert [(v["version"], v["body"]) for v in versions.json()] == [(1, "一"), (2, "二")]
    assert (
        client.get(
            f"/api/v1/posts/{post_id}/versions", headers=auth["huangping-editor"]
        ).status_code
        == 404
    )


def test_the_language_switch_sticks(client: TestClient) -> None:
    login(client, "kaili-editor")
    switched = client.get("/lang/en?next=/calendar", follow_redirects=False)
    assert switched.status_code == 303
    assert switched.headers["location"] == "/calendar"
    page = client.get("/")
    assert "Workbench" in page.text and "My drafts" in page.text
    assert '<html lang="en">' in page.text
    client.get("/lang/zh_CN")
    assert "我的草稿" in client.get("/").text


def test_the_language_switch_only_returns_to_this_site(client: TestClient) -> None:
    answer = client.get("/lang/en?next=//evil.example/", follow_redirects=False)
    assert answer.headers["location"] == "/"


def test_the_app_builds_without_errors() -> None:
    assert create_app() is not None
