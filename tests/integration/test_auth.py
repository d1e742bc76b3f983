from __future__ import annotations

import re

from fastapi.testclient import TestClient


def test_token_login_and_me(client: TestClient) -> None:
    response = client.post(
        "/api/v1/auth/token", data={"username": "kaili-editor", "password": "kaili-editor-password"}
    )
    assert response.status_code == 200
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
        assert wrong.json()["detail"] == "wrong username or password"
    blocked = client.post(
        "/api/v1/auth/token", data={"username": "kaili-editor", "password": "kaili-editor-password"}
    )
    assert blocked.status_code == 429
    assert "try again in" in blocked.json()["detail"]
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
