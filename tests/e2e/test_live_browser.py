"""The console in a real Chromium: Ctrl+Enter publishes; a public page in another browser
context shows it without a reload; an edit shows the correction mark there."""

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
from tests.e2e.live_support import Server
from tests.factories import load_guizhou, make_user, token_for

pytestmark = pytest.mark.e2e


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


def open_console(browser: Any, server: Server, slug: str, username: str, *, lang: str = "") -> Any:
    """Log in as ``username`` in a fresh browser context, landing on the session's console
    (through ``/lang/{lang}`` first when a language is given)."""
    console = browser.new_context().new_page()
    target = f"/live/{slug}/console"
    if lang:
        target = f"/lang/{lang}%3Fnext%3D{target}"
    console.goto(f"{server.base}/login?next={target}")
    console.fill("#username", username)
    console.fill("#password", f"{username}-password")
    console.click("button[type=submit]")
    return console


def test_console_posts_with_ctrl_enter_and_the_public_page_follows(
    server: Server, browser: Any, hub_env: dict[str, str]
) -> None:
    headers = token_for("kaili-editor", hub_env["GOVHUB_DATABASE_URL"])
    live = httpx.post(
        f"{server.base}/api/v1/live-sessions", json={"title": "凯里市政府常务会议"}, headers=headers
    ).json()
    httpx.post(f"{server.base}/api/v1/live-sessions/{live['id']}/start", headers=headers)

    console = open_console(browser, server, live["slug"], "kaili-editor")
    console.wait_for_selector("#composer")
    playwright_api.expect(console.locator("#conn")).to_have_text("已连接")

    reader = browser.new_context().new_page()
    reader.goto(f"{server.base}/live/{live['slug']}")
    playwright_api.expect(reader.locator("#live-status")).to_have_text("直播中")
    reader.wait_for_function("() => document.documentElement.classList.contains('js')")

    console.fill("#text", "会议审议通过《凯里市营商环境优化方案》。")
    console.check("#key_event")
    console.press("#text", "Control+Enter")
    entry = reader.locator("#e1")
    playwright_api.expect(entry.locator(".text")).to_have_text(
        "会议审议通过《凯里市营商环境优化方案》。"
    )
    playwright_api.expect(entry.locator(".key-badge")).to_have_text("要点")
    playwright_api.expect(console.locator("#e1 .text")).to_be_visible()

    answers = iter(["会议审议通过《凯里市营商环境优化方案（2026年版）》。", "补充方案年份"])
    console.on("dialog", lambda dialog: dialog.accept(next(answers)))
    console.locator("#e1 .tools button", has_text="编辑").click()
    playwright_api.expect(entry.locator(".corrected-mark")).to_contain_text("已更正")
    playwright_api.expect(entry.locator(".corrected-mark")).to_contain_text("补充方案年份")
    playwright_api.expect(entry.locator(".text")).to_contain_text("2026年版")

    reader.check("#key-only")  # 只看要点 hides the rest without a reload
    httpx.post(
        f"{server.base}/api/v1/live-sessions/{live['id']}/entries",
        json={"text": "普通条目"},
        headers=headers,
    )
    playwright_api.expect(reader.locator("#e2")).to_be_hidden()
    playwright_api.expect(reader.locator("#e1")).to_be_visible()


def test_the_public_page_shows_nothing_before_the_start_then_follows(
    server: Server, browser: Any, hub_env: dict[str, str]
) -> None:
    headers = token_for("kaili-editor", hub_env["GOVHUB_DATABASE_URL"])
    api = f"{server.base}/api/v1/live-sessions"
    live = httpx.post(api, json={"title": "凯里市新闻发布会"}, headers=headers).json()
    prepared = httpx.post(
        f"{api}/{live['id']}/entries", json={"text": "预备稿：发言人开场白"}, headers=headers
    )
    assert prepared.status_code == 201

    reader = browser.new_context().new_page()
    reader.goto(f"{server.base}/live/{live['slug']}")
    playwright_api.expect(reader.locator("#live-status")).to_have_text("即将开始")
    playwright_api.expect(reader.locator("#empty")).to_be_visible()
    assert "预备稿" not in reader.content()

    httpx.post(f"{api}/{live['id']}/start", headers=headers)
    playwright_api.expect(reader.locator("#e1 .text")).to_have_text(
        "预备稿：发言人开场白", timeout=20_000
    )
    playwright_api.expect(reader.locator("#live-status")).to_have_text("直播中")
    httpx.post(f"{api}/{live['id']}/entries", json={"text": "开始后的条目"}, headers=headers)
    playwright_api.expect(reader.locator("#e2 .text")).to_have_text("开始后的条目")  # streamed


def test_an_approver_releases_a_key_event_with_one_click(
    server: Server, browser: Any, hub_env: dict[str, str]
) -> None:
    url = hub_env["GOVHUB_DATABASE_URL"]
    headers = token_for("kaili-editor", url)
    with Session(engine_for(url)) as session:
        me = session.exec(select(User).where(User.username == "kaili-reviewer")).one()
    api = f"{server.base}/api/v1/live-sessions"
    live = httpx.post(
        api, json={"title": "凯里市新闻发布会", "approver_ids": [me.id]}, headers=headers
    ).json()
    httpx.post(f"{api}/{live['id']}/start", headers=headers)
    httpx.post(
        f"{api}/{live['id']}/entries",
        json={"text": "全市启动防汛四级应急响应。", "key_event": True},
        headers=headers,
    )

    console = open_console(browser, server, live["slug"], "kaili-reviewer")
    waiting = console.locator("#key-pending")
    playwright_api.expect(waiting).to_be_visible()
    playwright_api.expect(waiting).to_contain_text("全市启动防汛四级应急响应。")
    console.click("[data-approve-key='1']")
    playwright_api.expect(waiting).to_be_hidden()
    left = httpx.get(f"{api}/{live['id']}/key-pending", headers=headers).json()
    assert left == []


def test_the_console_sends_a_picture_picked_from_the_media_library(
    server: Server, browser: Any, hub_env: dict[str, str]
) -> None:
    """从媒体库选图: the picker compose uses, in the console; the entry goes out with that
    picture exactly as with an uploaded one (the same stored path, the same public image)."""
    from hub.live.models import LiveEntry
    from tests.e2e.test_editor_ui import png_bytes

    url = hub_env["GOVHUB_DATABASE_URL"]
    headers = token_for("kaili-editor", url)
    uploaded = httpx.post(
        f"{server.base}/api/v1/media",
        files={"file": ("发布会主席台.png", png_bytes(), "image/png")},
        headers=headers,
    ).json()
    api = f"{server.base}/api/v1/live-sessions"
    live = httpx.post(api, json={"title": "凯里市新闻发布会"}, headers=headers).json()
    httpx.post(f"{api}/{live['id']}/start", headers=headers)

    console = open_console(browser, server, live["slug"], "kaili-editor")
    console.wait_for_selector("#composer")
    playwright_api.expect(console.locator("#conn")).to_have_text("已连接")  # scripts ran
    console.click("#library summary")
    console.fill("#library-q", "主席台")
    console.locator(f"#library-grid button[data-path='{uploaded['path']}']").click()
    playwright_api.expect(console.locator("#picked-name")).to_have_text("发布会主席台.png")
    playwright_api.expect(console.locator("#picked-img")).to_have_attribute("src", uploaded["url"])
    console.fill("#text", "发布会现场：市长出席并讲话。")
    console.press("#text", "Control+Enter")
    playwright_api.expect(console.locator("#e1 .text")).to_have_text("发布会现场：市长出席并讲话。")
    playwright_api.expect(console.locator("#e1 img")).to_have_attribute("src", uploaded["url"])
    playwright_api.expect(console.locator("#picked")).to_be_hidden()  # the next entry has none

    reader = browser.new_context().new_page()
    reader.goto(f"{server.base}/live/{live['slug']}")
    playwright_api.expect(reader.locator("#e1 img")).to_have_attribute("src", uploaded["url"])

    with Session(engine_for(url)) as session:
        (entry,) = session.exec(select(LiveEntry)).all()
    assert entry.images == [uploaded["path"]]  # what an uploaded picture stores


def test_the_console_speaks_english_when_english_is_chosen(
    server: Server, browser: Any, hub_env: dict[str, str]
) -> None:
    """The console's script words come from the catalog like the page's (issue 18); the public
    page stays Chinese."""
    headers = token_for("kaili-editor", hub_env["GOVHUB_DATABASE_URL"])
    live = httpx.post(
        f"{server.base}/api/v1/live-sessions", json={"title": "凯里市政府常务会议"}, headers=headers
    ).json()
    httpx.post(f"{server.base}/api/v1/live-sessions/{live['id']}/start", headers=headers)
    console = open_console(browser, server, live["slug"], "kaili-editor", lang="en")
    console.wait_for_selector("#composer")
    assert console.locator("html").get_attribute("lang") == "en"
    playwright_api.expect(console.locator("#conn")).to_have_text("Connected")
    console.fill("#text", "会议审议通过《凯里市营商环境优化方案》。")
    console.check("#key_event")
    console.press("#text", "Control+Enter")
    tools = console.locator("#e1 .tools")
    playwright_api.expect(tools.locator("button", has_text="Edit")).to_be_visible()
    playwright_api.expect(tools.locator("button", has_text="Pin")).to_be_visible()
    playwright_api.expect(console.locator("#e1 .key-badge")).to_have_text("Key event")
    words = console.locator("#e1").inner_text() + console.locator("#e1 .tools").inner_text()
    assert not any(w in words for w in ("编辑", "删除", "置顶", "要点")), words

    reader = browser.new_context().new_page()
    reader.goto(f"{server.base}/live/{live['slug']}")
    playwright_api.expect(reader.locator("#e1 .key-badge")).to_have_text("要点")
