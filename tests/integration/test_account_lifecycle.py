"""Accounts and sessions: logout and revocation on the server, idle timeout, disable/enable,
password reset and change, sign out everywhere — over the API, the pages and the CLI."""

from __future__ import annotations

import re
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlmodel import Session, select
from typer.testing import CliRunner

from hub.auditlog.models import AuditEntry
from hub.cli import app as cli
from hub.db import engine_for
from hub.sqltypes import utcnow
from hub.users.models import User, UserSession
from hub.web.app import create_app

NEW_PASSWORD = "Qiandongnan#2027"


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "the form carries a CSRF token"
    return match.group(1)


def _log_in(browser: TestClient, username: str, password: str | None = None) -> None:
    answer = browser.post(
        "/login",
        data={
            "username": username,
            "password": password or f"{username}-password",
            "csrf": _csrf(browser.get("/login").text),
        },
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text


def _token(client: TestClient, username: str, password: str | None = None) -> dict[str, str]:
    answer = client.post(
        "/api/v1/auth/token",
        data={"username": username, "password": password or f"{username}-password"},
    )
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def _user_id(url: str, username: str) -> int:
    with Session(engine_for(url)) as session:
        user = session.exec(select(User).where(User.username == username)).one()
        assert user.id is not None
        return user.id


def _actions(url: str) -> list[str]:
    with Session(engine_for(url)) as session:
        return [e.action for e in session.exec(select(AuditEntry)).all()]


def test_logout_ends_the_session_on_the_server_so_a_copied_cookie_stops_working(
    client: TestClient,
) -> None:
    _log_in(client, "kaili-editor")
    stolen = client.cookies.get("govhub_session")
    assert stolen
    home = client.get("/")
    assert home.status_code == 200
    client.post("/logout", data={"csrf": _csrf(home.text)}, follow_redirects=False)
    with TestClient(create_app(), client=("198.51.100.9", 40000)) as thief:
        thief.cookies.set("govhub_session", stolen)
        assert thief.get("/api/v1/me").status_code == 401
        page = thief.get("/", follow_redirects=False)
        assert page.status_code == 303 and page.headers["location"].startswith("/login")


def test_a_web_session_idle_longer_than_the_timeout_is_signed_out(
    client: TestClient, guizhou: dict[str, str]
) -> None:
    _log_in(client, "kaili-editor")
    assert client.get("/api/v1/me").status_code == 200
    with Session(engine_for(guizhou["GOVHUB_DATABASE_URL"])) as session:
        [row] = session.exec(select(UserSession)).all()
        row.last_seen_at = utcnow() - timedelta(minutes=31)  # default idle timeout: 30 minutes
        session.add(row)
        session.commit()
    assert client.get("/api/v1/me").status_code == 401
    assert client.get("/", follow_redirects=False).headers["location"].startswith("/login")


def test_use_keeps_a_session_alive_past_the_idle_timeout(
    client: TestClient, guizhou: dict[str, str]
) -> None:
    _log_in(client, "kaili-editor")
    with Session(engine_for(guizhou["GOVHUB_DATABASE_URL"])) as session:
        [row] = session.exec(select(UserSession)).all()
        row.last_seen_at = utcnow() - timedelta(minutes=29)
        session.add(row)
        session.commit()
    assert client.get("/api/v1/me").status_code == 200  # used at minute 29: the clock restarts
    with Session(engine_for(guizhou["GOVHUB_DATABASE_URL"])) as session:
        [row] = session.exec(select(UserSession)).all()
        assert utcnow() - row.last_seen_at < timedelta(minutes=1)


def test_disabling_a_user_ends_every_session_and_token_at_once(
    client: TestClient, auth: dict[str, dict[str, str]], guizhou: dict[str, str]
) -> None:
    url = guizhou["GOVHUB_DATABASE_URL"]
    editor_id = _user_id(url, "kaili-editor")
    with TestClient(create_app()) as browser:
        _log_in(browser, "kaili-editor")
        token = _token(client, "kaili-editor")
        assert browser.get("/api/v1/me").status_code == 200

        for who in ("kaili-reviewer", "qdn-editor", "supervisor"):  # no user.manage right
            refused = client.patch(
                f"/api/v1/users/{editor_id}", json={"is_active": False}, headers=auth[who]
            )
            assert refused.status_code == 403
        done = client.patch(
            f"/api/v1/users/{editor_id}", json={"is_active": False}, headers=auth["admin"]
        )
        assert done.status_code == 200 and done.json()["is_active"] is False

        assert browser.get("/api/v1/me").status_code == 401
        assert client.get("/api/v1/me", headers=token).status_code == 401
        again = client.post(
            "/api/v1/auth/token",
            data={"username": "kaili-editor", "password": "kaili-editor-password"},
        )
        assert again.status_code == 422
    own = client.patch(
        f"/api/v1/users/{_user_id(url, 'admin')}", json={"is_active": False}, headers=auth["admin"]
    )
    assert own.status_code == 422 and "自己" in own.json()["detail"]

    result = CliRunner().invoke(cli, ["users", "enable", "kaili-editor"])
    assert result.exit_code == 0, result.output
    assert "enabled" in result.output
    assert client.get("/api/v1/me", headers=_token(client, "kaili-editor")).status_code == 200
    result = CliRunner().invoke(cli, ["users", "disable", "kaili-editor"])
    assert result.exit_code == 0 and "disabled" in result.output
    assert client.get("/api/v1/me", headers=token).status_code == 401
    missing = CliRunner().invoke(cli, ["users", "disable", "nobody"])
    assert missing.exit_code == 1 and "不存在" in missing.output
    assert {"user.disable", "user.enable"} <= set(_actions(url))


def test_change_own_password_needs_the_current_one_and_signs_out_everywhere(
    client: TestClient, guizhou: dict[str, str]
) -> None:
    old_token = _token(client, "kaili-editor")
    with TestClient(create_app()) as other_browser:
        _log_in(other_browser, "kaili-editor")
        wrong = client.post(
            "/api/v1/me/password",
            json={"current_password": "guess", "new_password": NEW_PASSWORD},
            headers=old_token,
        )
        assert wrong.status_code == 422 and wrong.json()["detail"] == "当前密码不正确"
        weak = client.post(
            "/api/v1/me/password",
            json={"current_password": "kaili-editor-password", "new_password": "12345678"},
            headers=old_token,
        )
        assert weak.status_code == 422 and "至少需要10个字符" in weak.json()["detail"]
        done = client.post(
            "/api/v1/me/password",
            json={"current_password": "kaili-editor-password", "new_password": NEW_PASSWORD},
            headers=old_token,
        )
        assert done.status_code == 200, done.text
        assert client.get("/api/v1/me", headers=old_token).status_code == 401
        assert other_browser.get("/api/v1/me").status_code == 401
    assert (
        client.post(
            "/api/v1/auth/token",
            data={"username": "kaili-editor", "password": "kaili-editor-password"},
        ).status_code
        == 422
    )
    assert (
        client.get("/api/v1/me", headers=_token(client, "kaili-editor", NEW_PASSWORD)).status_code
        == 200
    )
    assert "user.password_change" in _actions(guizhou["GOVHUB_DATABASE_URL"])


def test_the_account_page_changes_the_password_and_keeps_only_this_browser(
    client: TestClient,
) -> None:
    with TestClient(create_app()) as elsewhere:
        _log_in(elsewhere, "kaili-editor")
        _log_in(client, "kaili-editor")
        home = client.get("/")
        assert 'href="/account"' in home.text  # reachable from the header of every page
        page = client.get("/account")
        assert page.status_code == 200 and "修改密码" in page.text
        assert "当前在 2 个浏览器中登录" in page.text
        mismatch = client.post(
            "/account/password",
            data={
                "csrf": _csrf(page.text),
                "current_password": "kaili-editor-password",
                "new_password": NEW_PASSWORD,
                "confirm_password": NEW_PASSWORD + "x",
            },
        )
        assert "两次输入的新密码不一致" in mismatch.text
        contains_name = client.post(
            "/account/password",
            data={
                "csrf": _csrf(page.text),
                "current_password": "kaili-editor-password",
                "new_password": "Kaili-Editor-2027",
                "confirm_password": "Kaili-Editor-2027",
            },
        )
        assert "密码不能包含用户名" in contains_name.text
        changed = client.post(
            "/account/password",
            data={
                "csrf": _csrf(page.text),
                "current_password": "kaili-editor-password",
                "new_password": NEW_PASSWORD,
                "confirm_password": NEW_PASSWORD,
            },
        )
        assert changed.status_code == 200 and "密码已修改" in changed.text
        assert client.get("/api/v1/me").status_code == 200  # this browser goes on
        assert elsewhere.get("/api/v1/me").status_code == 401  # the other one is signed out


def test_sign_out_everywhere_from_the_account_page(client: TestClient) -> None:
    token = _token(client, "kaili-editor")
    with TestClient(create_app()) as elsewhere:
        _log_in(elsewhere, "kaili-editor")
        _log_in(client, "kaili-editor")
        page = client.get("/account")
        answer = client.post(
            "/account/sign-out-everywhere", data={"csrf": _csrf(page.text)}, follow_redirects=False
        )
        assert (answer.status_code, answer.headers["location"]) == (303, "/login")
        assert client.get("/api/v1/me").status_code == 401
        assert elsewhere.get("/api/v1/me").status_code == 401
        assert client.get("/api/v1/me", headers=token).status_code == 401


def test_sign_out_everywhere_over_the_api(client: TestClient) -> None:
    first, second = _token(client, "kaili-editor"), _token(client, "kaili-editor")
    assert client.post("/api/v1/me/sign-out-everywhere", headers=first).status_code == 200
    assert client.get("/api/v1/me", headers=second).status_code == 401


def test_admin_users_page_disables_enables_and_resets_passwords(
    client: TestClient, auth: dict[str, dict[str, str]], guizhou: dict[str, str]
) -> None:
    url = guizhou["GOVHUB_DATABASE_URL"]
    editor_id = _user_id(url, "kaili-editor")
    victim_token = _token(client, "kaili-editor")
    with TestClient(create_app()) as editor_browser:
        _log_in(editor_browser, "kaili-editor")
        assert editor_browser.get("/admin/users").status_code == 403
        assert 'href="/admin/users"' not in editor_browser.get("/").text

    _log_in(client, "admin")
    assert 'href="/admin/users"' in client.get("/").text  # in the admin's menu
    page = client.get("/admin/users")
    assert page.status_code == 200 and "kaili-editor" in page.text and "停用" in page.text
    csrf = _csrf(page.text)
    weak = client.post(
        f"/admin/users/{editor_id}/password", data={"csrf": csrf, "password": "12345678"}
    )
    assert "至少需要10个字符" in weak.text
    reset = client.post(
        f"/admin/users/{editor_id}/password", data={"csrf": csrf, "password": NEW_PASSWORD}
    )
    assert "已重置 kaili-editor 的密码" in reset.text
    assert client.get("/api/v1/me", headers=victim_token).status_code == 401
    token = _token(client, "kaili-editor", NEW_PASSWORD)

    off = client.post(f"/admin/users/{editor_id}/active", data={"csrf": csrf, "active": "0"})
    assert "已停用 kaili-editor" in off.text
    row = re.search(rf'id="user-{editor_id}">(.*?)</tr>', off.text, re.S)
    assert row is not None and "已停用" in row.group(1) and "启用" in row.group(1)
    assert client.get("/api/v1/me", headers=token).status_code == 401
    on = client.post(f"/admin/users/{editor_id}/active", data={"csrf": csrf, "active": "1"})
    assert "已启用 kaili-editor" in on.text
    assert (
        client.get("/api/v1/me", headers=_token(client, "kaili-editor", NEW_PASSWORD)).status_code
        == 200
    )

    over_api = client.post(
        f"/api/v1/users/{editor_id}/password",
        json={"password": "kaili-editor-2027X"},
        headers=auth["admin"],
    )
    assert over_api.status_code == 422 and "用户名" in over_api.json()["detail"]
    assert {"user.password_reset", "user.disable", "user.enable"} <= set(_actions(url))


def test_the_cli_resets_a_password_under_the_password_rule(
    client: TestClient, guizhou: dict[str, str]
) -> None:
    token = _token(client, "kaili-editor")
    weak = CliRunner().invoke(
        cli, ["users", "reset-password", "kaili-editor", "--password", "kaili-editor1!"]
    )
    assert weak.exit_code == 1 and "用户名" in weak.output
    done = CliRunner().invoke(
        cli, ["users", "reset-password", "kaili-editor", "--password", NEW_PASSWORD]
    )
    assert done.exit_code == 0, done.output
    assert client.get("/api/v1/me", headers=token).status_code == 401
    assert (
        client.get("/api/v1/me", headers=_token(client, "kaili-editor", NEW_PASSWORD)).status_code
        == 200
    )


def test_a_county_admin_cannot_tell_another_countys_user_from_a_missing_one(
    client: TestClient, guizhou: dict[str, str]
) -> None:
    from hub.users.models import Role
    from tests.factories import make_user, token_for

    url = guizhou["GOVHUB_DATABASE_URL"]
    make_user(url, "huangping-admin", Role.admin, "522622")
    kaili_editor = _user_id(url, "kaili-editor")
    bearer = token_for("huangping-admin", url)
    for user_id in (kaili_editor, 999_999):  # another county's user, and no user at all
        patched = client.patch(
            f"/api/v1/users/{user_id}", json={"is_active": False}, headers=bearer
        )
        reset = client.post(
            f"/api/v1/users/{user_id}/password",
            json={"password": "Aa1-long-enough"},
            headers=bearer,
        )
        assert (patched.status_code, reset.status_code) == (404, 404)
    with TestClient(create_app()) as browser:
        _log_in(browser, "huangping-admin")
        page = browser.get("/admin/users")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert csrf
        for user_id in (kaili_editor, 999_999):
            answer = browser.post(
                f"/admin/users/{user_id}/active",
                data={"csrf": csrf.group(1), "active": "0"},
                follow_redirects=False,
            )
            assert answer.status_code == 404
    with Session(engine_for(url)) as session:
        still = session.get(User, kaili_editor)
        assert still is not None and still.is_active
