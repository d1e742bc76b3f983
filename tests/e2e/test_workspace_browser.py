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
from tests.e2e.browser import one_database, screenshots
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
# menu pages photographed for docs/ui.md on the way (`make screenshots` copies them there)
SHOTS = {
    "admin": ("/posts", "/admin/users", "/admin/orgs", "/accounts"),
    "supervisor": ("/audit", "/calendar", "/reach"),
}
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
            if path in SHOTS.get(username, ()):
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


@one_database
def test_api_docs_render_with_no_other_host(
    hub: RunningServer, matrix: Matrix, browser: Any
) -> None:
    context, page, watch = open_page(browser, hub.base_url)
    page.goto("/docs")
    page.locator(".swagger-ui .info .title", has_text="govhub").wait_for()
    page.locator(".opblock-tag", has_text="posts").first.wait_for()
    watch.assert_only_own_host()
    context.close()


@one_database
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


@one_database
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


# Text a page shows that is not interface text: what users and orgs wrote or are called. Pages
# mark it with data-user-content (or translate="no"); the language switch names 中文 in Chinese.
LEFTOVER_CHINESE = """(names) => {
  const cjk = /[\\u3400-\\u9fff]/;
  const clean = (text) => names.reduce((left, name) => left.split(name).join(''), text);
  const data = 'script,style,template,noscript,[data-user-content],[translate="no"],[lang^="zh"]';
  const found = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode;
    const el = node.parentElement;
    const text = clean(node.nodeValue);
    if (!cjk.test(text) || !el || el.closest(data)) continue;
    found.push(text.trim().slice(0, 40));
  }
  for (const el of document.body.querySelectorAll('[placeholder],[aria-label],[title]')) {
    if (el.closest(data)) continue;
    for (const name of ['placeholder', 'aria-label', 'title']) {
      const value = clean(el.getAttribute(name) || '');
      if (cjk.test(value)) found.push(`${name}=${value.slice(0, 40)}`);
    }
  }
  if (cjk.test(clean(document.title))) found.push(`<title>${document.title.slice(0, 40)}`);
  return found;
}"""

# Pages whose templates still speak Chinese in English (issue 18, "every page ... through the
# catalog"): listed here so that the test holds every other page to it. Empty since every menu
# page went through the catalog; a page that shows Chinese interface text fails the test.
NOT_YET_TRANSLATED: tuple[str, ...] = ()


def data_names(database_url: str) -> list[str]:
    """What orgs, accounts and users are called: data, in Chinese in any interface language."""
    from sqlmodel import Session, select

    from hub.accounts.models import Account
    from hub.db import engine_for
    from hub.orgs.models import Org
    from hub.users.models import User

    with Session(engine_for(database_url)) as session:
        found = {o.name for o in session.exec(select(Org))}
        found |= {a.name for a in session.exec(select(Account))}
        found |= {u.display_name for u in session.exec(select(User)) if u.display_name}
    return sorted(found, key=len, reverse=True)  # longest first: 贵州省财政厅 before 贵州省


def seed_case_and_clock(database_url: str) -> None:
    """Rows for the inbox, a case page with its history and the clocks page to show."""
    from datetime import UTC, datetime, timedelta

    from fastapi.testclient import TestClient

    from hub.web.app import create_app
    from tests.factories import token_for

    editor = token_for("prov-editor", database_url)
    started = (datetime.now(UTC) - timedelta(minutes=10)).isoformat()
    with TestClient(create_app()) as client:
        case = client.post(
            "/api/v1/cases",
            json={"org_code": "520000-xwb", "author_handle": "王先生", "text": "路灯坏了"},
            headers=editor,
        )
        assert case.status_code == 201, case.text
        note = client.post(
            f"/api/v1/cases/{case.json()['id']}/notes", json={"text": "已转城管"}, headers=editor
        )
        assert note.status_code == 201, note.text
        clock = client.post(
            "/api/v1/clocks",
            json={
                "kind": "disclosure",
                "org_code": "520000-xwb",
                "subject": "依申请公开答复",
                "started_at": started,
            },
            headers=editor,
        )
        assert clock.status_code == 201, clock.text


@one_database
def test_every_page_in_english_has_no_chinese_interface_words(
    hub: RunningServer, matrix: Matrix, browser: Any
) -> None:
    make_user(matrix.database_url, "supervisor", Role.supervisor, "520000-bgt")
    make_user(matrix.database_url, "kaili-editor", Role.editor, "522601")
    matrix.add_accounts(["520000-xwb"], ("weibo",))
    add_hall_account(matrix.database_url, "520000-xwb")
    seed_case_and_clock(matrix.database_url)
    names = data_names(matrix.database_url)
    leaks: dict[str, list[str]] = {}
    checked: set[str] = set()
    for username in ROLES:
        context, page, _watch = open_page(browser, hub.base_url)
        log_in(page, username)
        if username == "prov-editor":  # the pages of this change, in Chinese, for docs/ui.md
            for path, name in (
                ("/inbox", "inbox"),
                ("/clocks", "clocks"),
                ("/hall/answers", "hall-answers"),
            ):
                page.goto(path)
                page.screenshot(path=str(screenshots() / f"{name}.png"), full_page=True)
        page.goto("/lang/en?next=/")
        assert page.locator("html").get_attribute("lang") == "en"
        menu = page.eval_on_selector_all(
            "nav.mainnav a", "els => els.map(e => e.getAttribute('href'))"
        )
        seen: set[str] = set()
        for path in menu:
            for target in [path, *(_links(page) if page.goto(path) else [])][:25]:
                if target in seen or target.startswith("/hall") or target.startswith("/live/"):
                    continue  # public pages are Chinese by design
                seen.add(target)
                answer = page.goto(target)
                if answer is None or answer.status >= 400:
                    continue  # the menu test reports broken links
                checked.add(target)
                found = page.evaluate(LEFTOVER_CHINESE, names)
                if found and not target.startswith(NOT_YET_TRANSLATED):
                    leaks[f"{username} {target}"] = found[:6]
        context.close()
    assert {"/", "/inbox", "/inbox/stats", "/clocks", "/deliveries", "/posts"} <= checked
    assert any(path.startswith("/inbox/cases/") for path in checked), sorted(checked)
    assert leaks == {}, "\n".join(f"{k}: {v}" for k, v in sorted(leaks.items()))
