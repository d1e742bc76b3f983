"""Proofreading in a real Chromium: the compose page marks hits as the editor types and
「替换」 puts the suggestion in; the live console refuses a `block` hit and shows a warning.
Screenshots: test-artifacts/screenshots/compose-proofread.png, live-console-proofread.png."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright import sync_api as playwright_api

from hub.users.models import Role
from tests.e2e.browser import one_database, screenshots
from tests.e2e.live_support import Server
from tests.factories import load_guizhou, make_user, token_for

pytestmark = pytest.mark.e2e


@pytest.fixture
def server(hub_env: dict[str, str], tmp_path: Path) -> Iterator[Server]:
    url = hub_env["GOVHUB_DATABASE_URL"]
    load_guizhou(url)
    make_user(url, "kaili-editor", Role.editor, "522601")
    make_user(url, "kaili-reviewer", Role.reviewer, "522601")
    make_user(url, "admin", Role.admin, "520000")
    env = {k: v for k, v in os.environ.items() if k != "GOVHUB_REDIS_URL"}
    server = Server({**env, **hub_env}, tmp_path, tmp_path / "serve.log")
    try:
        yield server.wait_ready()
    finally:
        server.stop()


def log_in(browser: Any, server: Server, next_path: str, user: str = "kaili-editor") -> Any:
    page = browser.new_context(viewport={"width": 1366, "height": 900}, locale="zh-CN").new_page()
    page.set_default_timeout(20_000)
    page.goto(f"{server.base}/login?next={next_path}")
    page.fill("#username", user)
    page.fill("#password", f"{user}-password")
    page.click("button[type=submit]")
    return page


@one_database
def test_compose_marks_hits_as_you_type_and_replaces_with_one_click(
    server: Server, browser: Any
) -> None:
    page = log_in(browser, server, "/compose")
    page.wait_for_selector("#proof-list")
    page.fill("#title", "凯里市春耕生产工作会议召开")
    page.fill(
        "#body",
        "会议传达了农业部的通知，要求各村尽快按装滴灌设备。"
        "凯里市春耕进度全省第一，既使天气不利也要再接再励。",
    )
    marks = page.locator("#proof-marks mark")
    playwright_api.expect(marks).to_have_count(5)
    playwright_api.expect(page.locator("#proof-marks mark.proof-block").first).to_have_text(
        "农业部"
    )
    playwright_api.expect(page.locator("#proof-marks mark.proof-warn")).to_have_text("全省第一")
    playwright_api.expect(page.locator("#proof-count")).to_contain_text("4 处必须修改")
    page.screenshot(path=str(screenshots() / "compose-proofread.png"), full_page=True)

    item = page.locator("#proof-list li", has_text="按装")
    item.get_by_role("button", name="替换").click()
    playwright_api.expect(page.locator("#body")).to_have_value(
        "会议传达了农业部的通知，要求各村尽快安装滴灌设备。"
        "凯里市春耕进度全省第一，既使天气不利也要再接再励。"
    )
    playwright_api.expect(marks).to_have_count(4)


@one_database
def test_live_console_refuses_a_block_hit_and_shows_a_warning(
    server: Server, browser: Any, hub_env: dict[str, str]
) -> None:
    headers = token_for("kaili-editor", hub_env["GOVHUB_DATABASE_URL"])
    live = httpx.post(
        f"{server.base}/api/v1/live-sessions", json={"title": "春耕现场会"}, headers=headers
    ).json()
    httpx.post(f"{server.base}/api/v1/live-sessions/{live['id']}/start", headers=headers)
    console = log_in(browser, server, f"/live/{live['slug']}/console")
    console.wait_for_selector("#composer")

    console.fill("#text", "请各村按装滴灌设备。")
    console.press("#text", "Control+Enter")
    playwright_api.expect(console.locator("#composer-msg")).to_contain_text("「按装」")
    playwright_api.expect(console.locator("#e1")).to_have_count(0)

    console.fill("#text", "凯里市春耕进度全省第一。")
    console.press("#text", "Control+Enter")
    playwright_api.expect(console.locator("#composer-msg")).to_contain_text("校对提示")
    playwright_api.expect(console.locator("#composer-msg")).to_contain_text("全省第一")
    playwright_api.expect(console.locator("#e1 .text")).to_be_visible()
    console.screenshot(path=str(screenshots() / "live-console-proofread.png"), full_page=True)


def submitted_post(server: Server, url: str) -> dict[str, Any]:
    """A post to Kaili's release hall with one proofreading warning, submitted for review."""
    editor = token_for("kaili-editor", url)
    hall = httpx.post(
        f"{server.base}/api/v1/accounts",
        json={"org_code": "522601", "platform": "hall", "name": "凯里发布厅"},
        headers=token_for("admin", url),
    ).json()["id"]
    post: dict[str, Any] = httpx.post(
        f"{server.base}/api/v1/posts",
        json={
            "title": "春耕进展",
            "body": "凯里市春耕进度全省第一。",
            "target_account_ids": [hall],
        },
        headers=editor,
    ).json()
    httpx.post(f"{server.base}/api/v1/posts/{post['id']}/submit", headers=editor)
    return post


@one_database
@pytest.mark.parametrize("page_name", ["review", "compose", "accounts", "live console"])
def test_action_buttons_wait_for_their_script(
    server: Server, browser: Any, hub_env: dict[str, str], page_name: str
) -> None:
    """On a slow line a page shows before its script has run. A click on 批准 then did nothing
    at all, and 提交审核 (or Enter in the title) sent the draft's form nowhere, reloading the page
    with the draft in the address. Those controls stay disabled until the script has wired them."""
    url = hub_env["GOVHUB_DATABASE_URL"]
    if page_name == "review":
        user, path, script = (
            "kaili-reviewer",
            f"/review/{submitted_post(server, url)['id']}",
            "review.js",
        )
        controls = ["[data-act=approve]", "[data-act=reject]"]
    elif page_name == "compose":
        user, path, script, controls = (
            "kaili-editor",
            "/compose",
            "compose.js",
            ["#submit", "#save", "[data-md=bold]"],
        )
    elif page_name == "accounts":
        user, path, script = "admin", "/accounts", "accounts.js"
        controls = ["form[data-new-account] button[type=submit]"]
    else:
        headers = token_for("kaili-editor", url)
        live = httpx.post(
            f"{server.base}/api/v1/live-sessions", json={"title": "春耕现场会"}, headers=headers
        ).json()
        httpx.post(f"{server.base}/api/v1/live-sessions/{live['id']}/start", headers=headers)
        user, path, script = "kaili-editor", f"/live/{live['slug']}/console", "live-console.js"
        controls = ["#publish", "[data-action=end]"]
    context = browser.new_context(locale="zh-CN")
    held: list[Any] = []
    context.route(f"**/static/js/{script}", lambda route: held.append(route))
    page = context.new_page()
    page.goto(f"{server.base}/login?next={path}")
    page.fill("#username", user)
    page.fill("#password", f"{user}-password")
    page.click("button[type=submit]", no_wait_after=True)
    if page_name == "accounts":
        page.click("#h-new-account")  # the form is folded away; opening it needs no script
    for control in controls:
        playwright_api.expect(page.locator(control)).to_be_visible()
    assert held, f"{script} was not requested"
    for control in controls:
        playwright_api.expect(page.locator(control)).to_be_disabled()
    if page_name == "compose":
        page.fill("#title", "未保存的标题")
        page.press("#title", "Enter")  # implicit submission: nothing, while the script is held
        assert page.url == f"{server.base}{path}"
        playwright_api.expect(page.locator("#title")).to_have_value("未保存的标题")
    held[0].continue_()
    for control in controls:
        playwright_api.expect(page.locator(control)).to_be_enabled()
    context.close()


def test_review_page_asks_a_reason_for_each_warning_and_records_it(
    server: Server, browser: Any, hub_env: dict[str, str]
) -> None:
    url = hub_env["GOVHUB_DATABASE_URL"]
    post = submitted_post(server, url)

    page = log_in(browser, server, f"/review/{post['id']}", "kaili-reviewer")
    playwright_api.expect(page.locator("#review-body mark.proof-warn")).to_have_text("全省第一")
    # the post goes to the release hall only: the reviewer sees the hall page it will make,
    # and no empty Weibo or WeChat preview
    playwright_api.expect(page.locator("section[data-channel=hall]")).to_be_visible()
    playwright_api.expect(page.frame_locator("#hall-frame").locator("h1")).to_have_text("春耕进展")
    playwright_api.expect(page.locator("section[data-channel=weibo]")).to_be_hidden()
    playwright_api.expect(page.locator("section[data-channel=wechat]")).to_be_hidden()
    page.click("[data-act=approve]")
    playwright_api.expect(page.locator("#review-message")).to_contain_text("说明理由")
    page.fill("[data-ack-text='全省第一']", "农业农村厅通报的排名")
    page.screenshot(path=str(screenshots() / "review-proofread.png"), full_page=True)
    page.click("[data-act=approve]")
    page.wait_for_url(f"**/posts/{post['id']}/board")
    kept = httpx.get(
        f"{server.base}/api/v1/proofread/acknowledgements", headers=token_for("admin", url)
    ).json()
    assert [(a["text"], a["reason"]) for a in kept] == [("全省第一", "农业农村厅通报的排名")]
