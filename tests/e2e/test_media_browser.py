# ruff: noqa: F811 (pytest fixtures are imported by name and used as arguments)
"""The media library in a real browser: an editor finds an earlier upload on the 媒体库 page
(menu), gives it alt text, and inserts it into a new post from compose's 从媒体库插入; the post
saves with that image. Pages run under the CSP (the autouse check of test_editor_ui)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlmodel import Session, select

from connectors.sandbox.server import RunningServer
from hub.db import engine_for
from hub.posts.models import Post, PostVersion
from tests.e2e.browser import one_database, screenshots
from tests.e2e.test_editor_ui import (  # noqa: F401  (fixtures)
    hub,
    log_in,
    no_csp_violations,
    open_page,
    png_bytes,
)
from tests.engine.conftest import (  # noqa: F401  (fixtures)
    Matrix,
    matrix,
    platforms,
    sandboxes,
)
from tests.factories import token_for

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


@one_database
def test_an_editor_reuses_a_library_image_in_compose(
    hub: RunningServer, matrix: Matrix, browser: Any
) -> None:
    headers = token_for("prov-editor", matrix.database_url)
    uploaded = httpx.post(
        f"{hub.base_url}/api/v1/media",
        files={"file": ("发布会现场.png", png_bytes(), "image/png")},
        headers=headers,
    ).json()

    context, page, watch = open_page(browser, hub.base_url)
    log_in(page, "prov-editor")
    page.click("nav.mainnav a[href='/media']")
    card = page.locator(f"li[data-media='{uploaded['id']}']")
    card.get_by_text("发布会现场.png").wait_for()
    card.locator("input[name=alt]").fill("省政府新闻发布会现场")
    card.locator(".alt-form button").click()
    page.get_by_text("已保存图片").wait_for()
    assert card.locator("img").get_attribute("alt") == "省政府新闻发布会现场"
    page.screenshot(path=str(screenshots() / "media.png"), full_page=True)

    page.goto("/compose")
    page.fill("#title", "省政府召开新闻发布会")
    page.fill("#body", "发布会介绍了全省经济运行情况。")
    page.click("#library summary")
    page.fill("#library-q", "发布会")
    page.locator(f"#library-grid button[data-path='{uploaded['path']}']").click()
    page.locator(f"#images img[src='/media/{uploaded['path']}']").wait_for()
    page.get_by_text("已保存").wait_for(timeout=20_000)
    watch.assert_only_own_host()
    context.close()

    with Session(engine_for(matrix.database_url)) as session:
        post = session.exec(select(Post).where(Post.title == "省政府召开新闻发布会")).one()
        version = session.exec(
            select(PostVersion).where(
                PostVersion.post_id == post.id, PostVersion.version == post.current_version
            )
        ).one()
    assert [image["path"] for image in version.images] == [uploaded["path"]]
