from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from hub.auditlog.models import AuditEntry
from hub.config import get_settings
from hub.db import get_engine
from hub.web.app import create_app


def test_token_login_and_me(client: TestClient) -> None:
    response = client.post(
        "/api/v1/auth/token", data={"username": "kaili-editor", "password": "kaili-editor-password"}
    )
    assert response.status_code == 200
    assert response.json()["expires_in"] == 60 * 60  # an hour by default, not 12
    headers = {"Authorization": f"Bearer {response.json()['access_token']}"}
    me = client.get("/api/v1/me", headers=headers).json()
    assert (me["username"], me["role"], me["org_code"]) == ("kaili-editor", "editor", "522601")
    assert client.get("/api/v1/me", headers={"Authorization": "Bearer forged"}).status_code == 401


def test_wrong_password_then_throttled(client: TestClient) -> None:
    for _ in range(5):
        wrong = client.post(
            "/api/v1/auth/token", data={"username": "kaili-editor", "password": "nope"}
        )
        assert wrong.status_code == 422
        assert wrong.json()["detail"] == "用户名或密码错误"
    blocked = client.post(
        "/api/v1/auth/token", data={"username": "kaili-editor", "password": "kaili-editor-password"}
    )
    assert blocked.status_code == 429
    assert "秒后再试" in blocked.json()["detail"]
    # another user from the same address is not locked out
    other = client.post(
        "/api/v1/auth/token",
        data={"username": "kaili-reviewer", "password": "kaili-reviewer-password"},
    )
    assert other.status_code == 200


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "the form carries a CSRF token"
    return match.group(1)


def test_browser_login_sets_an_httponly_cookie_and_requires_csrf(client: TestClient) -> None:
    page = client.get("/login")
    assert page.status_code == 200 and "登录" in page.text
    no_token = client.post(
        "/login",
        data={"username": "kaili-editor", "password": "kaili-editor-password"},
        follow_redirects=False,
    )
    assert no_token.status_code == 403
    assert (
        "govhub_session" not in no_token.headers.get("set-cookie", "")
        or "user_id" not in no_token.text
    )

    token = _csrf(client.get("/login").text)
    ok = client.post(
        "/login",
        data={"username": "kaili-editor", "password": "kaili-editor-password", "csrf": token},
        follow_redirects=False,
    )
    assert ok.status_code == 303
    cookie = ok.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie
    home = client.get("/")
    assert home.status_code == 200 and "凯里市" in home.text

    # the API accepts the cookie for reads but needs the CSRF header for writes
    assert client.get("/api/v1/me").status_code == 200
    denied = client.post("/api/v1/accounts", json={})
    assert denied.status_code == 403 and "CSRF" in denied.json()["detail"]

    logout_without = client.post("/logout", data={}, follow_redirects=False)
    assert logout_without.status_code == 400
    logout = client.post("/logout", data={"csrf": _csrf(home.text)}, follow_redirects=False)
    assert logout.status_code == 303
    assert client.get("/api/v1/me").status_code == 401


def _login_from(address: str, username: str, password: str) -> int:
    with TestClient(create_app(), client=(address, 40000)) as elsewhere:
        return elsewhere.post(
            "/api/v1/auth/token", data={"username": username, "password": password}
        ).status_code


def test_a_username_is_throttled_whichever_addresses_the_guesses_come_from(
    client: TestClient,
) -> None:
    for n in range(5):
        assert _login_from(f"198.51.100.{n + 1}", "kaili-editor", "guess") == 422
    # the right password from yet another address is refused while the username is locked
    assert _login_from("198.51.100.99", "kaili-editor", "kaili-editor-password") == 429
    assert _login_from("198.51.100.99", "kaili-reviewer", "kaili-reviewer-password") == 200


def test_one_address_guessing_many_usernames_is_throttled(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOVHUB_LOGIN_MAX_FAILURES_PER_IP", "6")
    get_settings.cache_clear()
    for username in ("admin", "supervisor", "prov-editor", "qdn-editor", "kaili-editor", "x"):
        wrong = client.post("/api/v1/auth/token", data={"username": username, "password": "1"})
        assert wrong.status_code == 422
    blocked = client.post(
        "/api/v1/auth/token",
        data={"username": "kaili-reviewer", "password": "kaili-reviewer-password"},
    )
    assert blocked.status_code == 429
    assert _login_from("198.51.100.20", "kaili-reviewer", "kaili-reviewer-password") == 200


def _created_from(
    address: str, forwarded: str, auth: dict[str, dict[str, str]], username: str
) -> str:
    """The client address the audit log records for a user created through a request."""
    with TestClient(create_app(), client=(address, 40000)) as caller:
        answer = caller.post(
            "/api/v1/users",
            json={
                "username": username,
                "password": "Qiandongnan#2027",
                "role": "editor",
                "org_code": "522601",
            },
            headers={**auth["admin"], "X-Forwarded-For": forwarded},
        )
        assert answer.status_code == 201, answer.text
    with Session(get_engine()) as session:
        entry = session.exec(
            select(AuditEntry).where(
                AuditEntry.action == "user.create", col(AuditEntry.summary).startswith(username)
            )
        ).one()
        return entry.client_ip


def test_x_forwarded_for_is_believed_only_from_trusted_proxies(
    client: TestClient, auth: dict[str, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    # default: no proxy is trusted, not even 127.0.0.1
    assert _created_from("127.0.0.1", "203.0.113.50", auth, "u1") == "127.0.0.1"
    monkeypatch.setenv("GOVHUB_TRUSTED_PROXIES", "127.0.0.1, 10.0.0.0/8")
    get_settings.cache_clear()
    # the right-most address no trusted proxy added: what the client put first cannot spoof it
    assert _created_from("10.1.2.3", "1.2.3.4, 203.0.113.50, 10.0.0.7", auth, "u2") == (
        "203.0.113.50"
    )
    assert _created_from("198.51.100.7", "203.0.113.50", auth, "u3") == "198.51.100.7"
    assert _created_from("127.0.0.1", "not-an-address", auth, "u4") == "127.0.0.1"


def test_serve_leaves_forwarded_headers_to_the_hub(monkeypatch: pytest.MonkeyPatch) -> None:
    """uvicorn's own proxy_headers would trust X-Forwarded-For from 127.0.0.1 regardless."""
    import uvicorn
    from typer.testing import CliRunner

    from hub.cli import app as cli

    seen: dict[str, object] = {}
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: seen.update(kwargs))
    assert CliRunner().invoke(cli, ["serve"]).exit_code == 0
    assert seen["proxy_headers"] is False


@pytest.mark.parametrize(
    ("password", "says"),
    [
        ("12345678", "密码太短"),
        ("qdn-newbie", "密码太简单"),  # the username itself
        ("abcdefghijkl", "密码太简单"),
        ("Qdn-Newbie-2027", "不能包含用户名"),
        ("Password2026!", "过于常见"),
    ],
)
def test_weak_passwords_are_refused_in_chinese(
    client: TestClient, auth: dict[str, dict[str, str]], password: str, says: str
) -> None:
    answer = client.post(
        "/api/v1/users",
        json={
            "username": "qdn-newbie",
            "password": password,
            "role": "editor",
            "org_code": "522600",
        },
        headers=auth["admin"],
    )
    assert answer.status_code == 422
    assert says in answer.json()["detail"] and answer.json()["field"] == "password"
    good = client.post(
        "/api/v1/users",
        json={
            "username": "qdn-newbie",
            "password": "Miao-Village-2027",
            "role": "editor",
            "org_code": "522600",
        },
        headers=auth["admin"],
    )
    assert good.status_code == 201
