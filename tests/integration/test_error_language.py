"""Domain errors (hub.errors) reach the reader in the interface language: Chinese by default, in
English for a client that chose English (the ``govhub_lang`` cookie of the language switch, or
the user's stored locale)."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from hub.db import get_engine
from hub.users.models import User
from tests.integration.test_editor_pages import login

pytestmark = pytest.mark.integration


def api_errors(client: TestClient, headers: dict[str, str]) -> list[tuple[int, dict[str, str]]]:
    """A 422 with a field, a 404 and a 404 outside the reach, through the JSON API."""
    answers = [
        client.get("/api/v1/orgs/522601/reach?since=2026-13-01", headers=headers),
        client.post("/api/v1/notifications/999999/read", headers=headers),
        client.put(
            "/api/v1/notifications/org-robot/nosuch",
            json={"flavor": "wecom", "url": "https://qyapi.weixin.qq.com/x"},
            headers=headers,
        ),
    ]
    return [(a.status_code, a.json()) for a in answers]


def test_api_errors_are_chinese_unless_the_client_asks_for_english(
    client: TestClient, auth: dict[str, dict[str, str]]
) -> None:
    chinese = api_errors(client, auth["kaili-editor"])
    assert chinese == [
        (422, {"detail": "日期格式应为 2026-11-01（since='2026-13-01'）", "field": "since"}),
        (404, {"detail": "通知 999999 不存在"}),
        (404, {"detail": "机构 'nosuch' 不存在", "field": "code"}),
    ]
    client.cookies.set("govhub_lang", "en")
    english = api_errors(client, auth["kaili-editor"])
    assert english == [
        (422, {"detail": "Dates look like 2026-11-01 (since='2026-13-01')", "field": "since"}),
        (404, {"detail": "Notification 999999 does not exist"}),
        (404, {"detail": "Organisation 'nosuch' does not exist", "field": "code"}),
    ]


def test_a_user_whose_stored_locale_is_english_gets_english_errors(
    client: TestClient, auth: dict[str, dict[str, str]]
) -> None:
    with Session(get_engine()) as session:
        user = session.exec(select(User).where(User.username == "kaili-editor")).one()
        user.locale = "en"
        session.add(user)
        session.commit()
    answer = client.post("/api/v1/notifications/999999/read", headers=auth["kaili-editor"])
    assert answer.json() == {"detail": "Notification 999999 does not exist"}
    client.cookies.set("govhub_lang", "zh_CN")  # the switch wins over the stored locale
    answer = client.post("/api/v1/notifications/999999/read", headers=auth["kaili-editor"])
    assert answer.json() == {"detail": "通知 999999 不存在"}


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match
    return match.group(1)


def _mismatch(client: TestClient) -> str:
    page = client.get("/account")
    answer = client.post(
        "/account/password",
        data={
            "csrf": _csrf(page.text),
            "current_password": "admin-password",
            "new_password": "Another-Pass-2027",
            "confirm_password": "Another-Pass-2027x",
        },
    )
    return answer.text


def _blank_username(client: TestClient) -> str:
    page = client.get("/admin/users")
    answer = client.post(
        "/admin/users",
        data={
            "csrf": _csrf(page.text),
            "role": "editor",
            "username": " ",
            "display_name": "x",
            "org_code": "522601",
            "password": "Another-Pass-2027",
        },
    )
    return answer.text


def test_page_errors_follow_the_language_switch(client: TestClient) -> None:
    login(client, "admin")
    assert "两次输入的新密码不一致" in _mismatch(client)
    assert "请填写用户名" in _blank_username(client)
    client.get("/lang/en")
    english = _mismatch(client)
    assert "The two new passwords do not match" in english
    assert "两次输入的新密码不一致" not in english
    assert "Enter a username" in _blank_username(client)
