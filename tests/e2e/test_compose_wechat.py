# ruff: noqa: F811 (pytest fixtures are imported by name and used as arguments)
"""Compose in a real browser: per WeChat account "publish only" or "push" (群发) with the pushes
left shown next to it, the comments choice, and a push over the allowance refused in Chinese."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from connectors.sandbox.server import RunningServer
from hub.web.app import create_app
from tests.e2e.browser import one_database, screenshots
from tests.e2e.test_editor_ui import hub, log_in, open_page, png_bytes
from tests.engine.conftest import (  # noqa: F401  (fixtures)
    Matrix,
    matrix,
    platforms,
    sandboxes,
)
from tests.factories import token_for

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

__all__ = ["hub"]


def push_once_by_api(matrix: Matrix, account: int) -> None:
    """Today's one push of a subscription account, written and approved through the API."""
    url = matrix.database_url
    editor, reviewer = token_for("prov-editor", url), token_for("prov-reviewer", url)
    with TestClient(create_app()) as client:
        kind = client.patch(
            f"/api/v1/accounts/{account}",
            json={"kind": "subscription"},
            headers=token_for("admin", url),
        )
        assert kind.status_code == 200, kind.text
        upload = client.post(
            "/api/v1/media",
            files={"file": ("cover.png", png_bytes(), "image/png")},
            headers=editor,
        )
        assert upload.status_code in (200, 201), upload.text
        body = {
            "title": "上午的群发",
            "body": "正文内容。",
            "images": [upload.json()["path"]],
            "target_account_ids": [account],
            "wechat_modes": {str(account): "push"},
        }
        post = client.post("/api/v1/posts", json=body, headers=editor).json()
        assert client.post(f"/api/v1/posts/{post['id']}/submit", headers=editor).status_code == 200
        approved = client.post(f"/api/v1/posts/{post['id']}/approve", headers=reviewer)
        assert approved.status_code == 200, approved.text


def test_a_push_over_the_allowance_is_refused_and_publishing_goes_through(
    hub: RunningServer, matrix: Matrix, browser: Any
) -> None:
    (account,) = matrix.add_accounts(["520000-xwb"], ("wechat",))
    push_once_by_api(matrix, account)

    context, page, _watch = open_page(browser, hub.base_url)
    log_in(page, "prov-editor")
    page.goto("/compose")
    page.fill("#title", "下午再群发一次")
    page.fill("#body", "下午的正文。")
    page.set_input_files(
        "#image-input", {"name": "photo.png", "mimeType": "image/png", "buffer": png_bytes()}
    )
    page.locator("#images img").wait_for()
    page.check(f"#org-tree input[value='{account}']")
    row = page.locator(f"#wechat-modes [data-account='{account}']")
    row.get_by_text("今日剩余 0 次").wait_for()
    page.select_option(f"#wechat-mode-{account}", "push")
    page.select_option("#wechat-comments", "fans")
    page.click("#submit")
    page.locator("#form-message", has_text="今日群发次数已用完").wait_for()
    assert "/board" not in page.url
    page.screenshot(path=str(screenshots() / "compose-wechat-push.png"), full_page=True)

    page.select_option(f"#wechat-mode-{account}", "publish")
    page.click("#submit")
    page.wait_for_url("**/board")
    post_id = int(page.url.rstrip("/").split("/")[-2])
    with TestClient(create_app()) as client:
        post = client.get(
            f"/api/v1/posts/{post_id}", headers=token_for("prov-editor", matrix.database_url)
        ).json()
    assert post["status"] == "in_review"
    assert post["wechat_modes"] == {}
    assert post["wechat_comments"] == "fans"
    context.close()


@one_database
def test_an_admin_sets_a_wechat_accounts_kind_on_the_accounts_page(
    hub: RunningServer, matrix: Matrix, browser: Any
) -> None:
    (account,) = matrix.add_accounts(["520000-xwb"], ("wechat",))
    context, page, _watch = open_page(browser, hub.base_url)
    log_in(page, "admin")
    page.goto("/accounts?platform=wechat")
    page.select_option(f"#kind-{account}", "service")
    page.locator(f"#account-{account} .result", has_text="已保存公众号类型").wait_for()
    with TestClient(create_app()) as client:
        shown = client.get(
            f"/api/v1/accounts/{account}", headers=token_for("admin", matrix.database_url)
        ).json()
    assert shown["kind"] == "service"
    page.reload()
    assert page.locator(f"#kind-{account}").input_value() == "service"
    context.close()
