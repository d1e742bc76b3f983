"""微直播 from the menu in a real Chromium: 新建直播 with a target and an approver, the console
before the start (no 结束直播), two pinned entries in a row, the end and its summary link."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright import sync_api as playwright_api
from sqlmodel import Session, select

from hub.db import engine_for
from hub.users.models import Role, User
from tests.e2e.browser import screenshots
from tests.e2e.live_support import Server
from tests.factories import load_guizhou, make_user, token_for
from tests.integration.test_live_api import account

pytestmark = pytest.mark.e2e
expect = playwright_api.expect


@pytest.fixture
def server(hub_env: dict[str, str], tmp_path: Path) -> Iterator[Server]:
    url = hub_env["GOVHUB_DATABASE_URL"]
    load_guizhou(url)
    make_user(url, "kaili-editor", Role.editor, "522601")
    make_user(url, "kaili-reviewer", Role.reviewer, "522601")
    env = {k: v for k, v in os.environ.items() if k != "GOVHUB_REDIS_URL"}
    server = Server({**env, **hub_env}, tmp_path, tmp_path / "serve.log")
    try:
        yield server.wait_ready()
    finally:
        server.stop()


def test_an_editor_creates_runs_and_ends_a_session_from_the_menu(
    server: Server, browser: Any, hub_env: dict[str, str]
) -> None:
    url = hub_env["GOVHUB_DATABASE_URL"]
    weibo = account(url, "522601", "weibo")
    with Session(engine_for(url)) as session:
        reviewer = session.exec(select(User).where(User.username == "kaili-reviewer")).one()
    page = browser.new_context(viewport={"width": 1366, "height": 900}).new_page()
    page.goto(f"{server.base}/login")
    page.fill("#username", "kaili-editor")
    page.fill("#password", "kaili-editor-password")
    page.click("button[type=submit]")
    page.click("nav.mainnav >> text=微直播")
    expect(page).to_have_url(f"{server.base}/live")
    page.click("#new-live")
    page.fill("#title", "凯里市新闻发布会")
    page.fill("#starts_at", "2026-12-01T09:30")
    page.check(f"input[name=target_ids][value='{weibo}']")
    page.check(f"input[name=approver_ids][value='{reviewer.id}']")
    page.screenshot(path=str(screenshots() / "live-new.png"), full_page=True)
    page.click("#live-form button[type=submit]")

    expect(page.locator("#session-status")).to_have_text("未开始")
    expect(page.locator("[data-action=start]")).to_be_visible()
    expect(page.locator("[data-action=end]")).to_have_count(0)  # not before the start
    page.click("[data-action=start]")
    expect(page.locator("#session-status")).to_have_text("直播中")
    expect(page.locator("#conn")).to_have_text("已连接")

    for seq, text in (
        (1, "发布会开始，市长通报一季度经济运行情况。"),
        (2, "一季度地区生产总值同比增长5.2%。"),
    ):
        expect(page.locator("#pin")).to_be_visible()  # still there for the next entry
        page.fill("#text", text)
        page.check("#pin")
        page.press("#text", "Control+Enter")
        expect(page.locator(f"#e{seq} .text")).to_have_text(text)
        expect(page.locator(f"#e{seq} .pin-badge")).to_have_text("置顶")
    live_id = page.locator("#console").get_attribute("data-id")
    headers = token_for("kaili-editor", url)
    entries = httpx.get(
        f"{server.base}/api/v1/live-sessions/{live_id}/entries", headers=headers
    ).json()["entries"]
    assert [(e["seq"], e["pinned"]) for e in entries] == [(1, True), (2, True)]
    page.screenshot(path=str(screenshots() / "live-console.png"), full_page=True)

    page.once("dialog", lambda dialog: dialog.accept())
    page.click("[data-action=end]")
    expect(page.locator("#session-status")).to_have_text("已结束")
    link = page.locator("#summary-link")
    expect(link).to_have_text("凯里市新闻发布会（图文直播回顾）")
    expect(page.locator("#composer")).to_have_count(0)
    href = link.get_attribute("href")
    assert href is not None and href.startswith("/posts/") and href.endswith("/edit")
    link.click()
    expect(page).to_have_url(f"{server.base}{href}")
    expect(page.locator("#title")).to_have_value("凯里市新闻发布会（图文直播回顾）")

    page.goto(f"{server.base}/live")
    row = page.locator("#live-sessions tbody tr", has_text="凯里市新闻发布会")
    expect(row.locator(".badge")).to_have_text("已结束")
    expect(row.locator("a", has_text="回顾稿")).to_be_visible()
    page.screenshot(path=str(screenshots() / "live-list.png"), full_page=True)
