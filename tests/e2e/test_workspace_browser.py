# ruff: noqa: F811 (pytest fixtures are imported by name and used as arguments)
"""The editor's workspace in a real browser (issue 18): every menu page of every demo role opens
and links nowhere broken, /docs works with no other host, 测试连接 and 新增账号 on the accounts
page. Pages run under the CSP (the autouse check of test_editor_ui)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest

from connectors.sandbox.server import RunningServer
from hub.users.models import Role
from tests.e2e.browser import screenshots
from tests.e2e.test_editor_ui import (  # noqa: F401  (fixtures)
    add_hall_account,
    hub,
    log_in,
    no_csp_violations,
    open_page,
)
from tests.engine.conftest import (  # noqa: F401  (fixtures)
    Matrix,
    matrix,
    platforms,
    sandboxes,
)
from tests.factories import make_user

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

# one of each demo role (README), as the matrix fixture and this test make them
ROLES = ("admin", "supervisor", "prov-editor", "prov-reviewer", "kaili-editor")
NOT_A_PAGE = ("/logout", "/lang/", "/api/", "/media/", "/static/", "/hall/feed", "/docs")


def _links(page: Any) -> list[str]:
    hrefs = page.eval_on_selector_all("main a[href]", "els => els.map(e => e.getAttribute('href'))")
    own = []
    for href in hrefs:
        parts = urlsplit(href)
        if parts.netloc or not parts.path.startswith("/") or parts.path.startswith(NOT_A_PAGE):
            continue
        own.append(parts.path + (f"?{parts.query}" if parts.query else ""))
    return own


def test_every_menu_page_of_every_role_opens_and_its_links_work(
    hub: RunningServer, matrix: Matrix, browser: Any
) -> None:
    make_user(matrix.database_url, "supervisor", Role.supervisor, "520000-bgt")
    make_user(matrix.database_url, "kaili-editor", Role.editor, "522601")
    matrix.add_accounts(["520000-xwb"], ("weibo",))
    add_hall_account(matrix.database_url, "520000-xwb")
    broken: list[str] = []
    for username in ROLES:
        context, page, watch = open_page(browser, hub.base_url)
        log_in(page, username)
        menu = page.eval_on_selector_all(
            "nav.mainnav a", "els => els.map(e => e.getAttribute('href'))"
        )
        assert "/" in menu and len(menu) >= 5, (username, menu)
        followed: set[str] = set()
        for path in menu:
            answer = page.goto(path)
            assert answer is not None
            if answer.status >= 400:
                broken.append(f"{username}: menu {path} → {answer.status}")
                continue
            if username == "admin" and path in ("/posts", "/admin/users", "/admin/orgs"):
                name = path.strip("/").replace("/", "-")
                page.screenshot(path=str(screenshots() / f"{name}.png"), full_page=True)
            for link in _links(page)[:40]:
                if link in followed:
                    continue
                followed.add(link)
                status = page.request.get(link).status
                if status >= 400:
                    broken.append(f"{username}: {path} links {link} → {status}")
        watch.assert_only_own_host()
        context.close()
    assert broken == []


def test_api_docs_render_with_no_other_host(
    hub: RunningServer, matrix: Matrix, browser: Any
) -> None:
    context, page, watch = open_page(browser, hub.base_url)
    page.goto("/docs")
    page.locator(".swagger-ui .info .title", has_text="govhub").wait_for()
    page.locator(".opblock-tag", has_text="posts").first.wait_for()
    watch.assert_only_own_host()
    context.close()


def test_the_accounts_page_tests_a_connection_and_adds_an_account(
    hub: RunningServer, matrix: Matrix, browser: Any
) -> None:
    (weibo,) = matrix.add_accounts(["520000-xwb"], ("weibo",))
    context, page, _watch = open_page(browser, hub.base_url)
    log_in(page, "admin")
    page.goto("/accounts")
    page.click(f"button[data-test='{weibo}']")
    result = page.locator(f"#account-{weibo} .result")
    result.filter(has_text="连接").wait_for()
    text = result.inner_text()
    assert text.startswith("连接正常") and text.count("连接正常") == 1, text

    page.click("#new-account summary")
    page.select_option("#n-org", "520000-xwb")
    page.select_option("#n-platform", "wechat")
    assert page.locator("#n-wechat-app_id").is_visible()
    assert not page.locator("#n-weibo-access_token").is_visible()
    page.select_option("#n-platform", "hall")
    page.get_by_text("该平台不需要凭据。").wait_for()
    page.fill("#n-name", "新闻办发布厅")
    page.click("form[data-new-account] button[type=submit]")
    page.wait_for_url("**/accounts?added=*")
    assert page.locator("tr[id^=account-]", has_text="新闻办发布厅").count() == 1
    context.close()


def test_the_board_of_a_post_in_review_says_copies_come_at_approval(
    hub: RunningServer, matrix: Matrix, browser: Any
) -> None:
    from fastapi.testclient import TestClient

    from hub.web.app import create_app
    from tests.factories import token_for

    add_hall_account(matrix.database_url, "520000-xwb")
    editor = token_for("prov-editor", matrix.database_url)
    with TestClient(create_app()) as client:
        hall = client.get("/api/v1/accounts", headers=editor).json()[0]["id"]
        post = client.post(
            "/api/v1/posts",
            json={"title": "送审中的稿件", "body": "正文", "target_account_ids": [hall]},
            headers=editor,
        ).json()["id"]
        assert client.post(f"/api/v1/posts/{post}/submit", headers=editor).is_success
    context, page, _watch = open_page(browser, hub.base_url)
    log_in(page, "prov-editor")
    # count the live updates the board has drawn (the page's own listener runs first)
    page.add_init_script(
        """(() => {
          window.__drawn = 0;
          const add = EventSource.prototype.addEventListener;
          EventSource.prototype.addEventListener = function (type, listener, options) {
            const counted = type === "deliveries"
              ? function (event) { listener.call(this, event); window.__drawn += 1; }
              : listener;
            return add.call(this, type, counted, options);
          };
        })();"""
    )
    page.goto(f"/posts/{post}/board")
    # the live update redraws the table; it must keep saying why there is no row yet
    page.wait_for_function("() => window.__drawn > 0")
    assert page.locator("#board-rows").inner_text().strip() == "稿件批准后才会生成投递。"
    context.close()
