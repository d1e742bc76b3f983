# ruff: noqa: F811 (pytest fixtures are imported by name and used as arguments)
"""The editor's UI in a real browser: compose, review, live delivery board, language, safety.

The hub runs on a loopback port (uvicorn in a thread), with a real Celery worker and beat
(``python -m hub worker|beat``) and the Weibo and WeChat sandboxes on loopback, as in
tests/engine. Screenshots land in test-artifacts/screenshots/ (printed by the test).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from connectors.sandbox.server import RunningServer, free_port, serve
from connectors.weibo_rules import weibo_length
from hub.config import get_settings
from hub.users.models import Role
from hub.web.app import create_app
from tests.e2e.browser import one_database, screenshots
from tests.engine.conftest import (  # noqa: F401  (fixtures)
    Matrix,
    Process,
    cover_image,
    matrix,
    platforms,
    processes,
    sandboxes,
)
from tests.factories import make_user, token_for

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

NASTY = "<script>alert(1)</script> 与 <img src=x onerror=alert(1)>"


@pytest.fixture
def hub(matrix: Matrix, monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningServer]:
    """The hub on a loopback port; its public address is its own (hall links, images)."""
    port = free_port()
    monkeypatch.setenv("GOVHUB_PUBLIC_BASE_URL", f"http://127.0.0.1:{port}")
    get_settings.cache_clear()
    server = serve(create_app(), port=port)
    yield server
    server.stop()


WATCHES: list[Watch] = []


class Watch:
    """What a page did that a user (or an attacker) would care about."""

    def __init__(self, page: Any, base_url: str) -> None:
        self.dialogs: list[str] = []
        self.hosts: set[str] = set()
        self.csp_violations: list[str] = []
        self.script_errors: list[str] = []
        self.own = urlsplit(base_url).netloc
        page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        page.on("request", self._request)
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.script_errors.append(str(error)))
        WATCHES.append(self)

    def _console(self, message: Any) -> None:
        # Chromium reports a CSP violation as a console error "Refused to ... Content Security
        # Policy ...": a page that broke under the policy fails its test.
        if message.type == "error" and "Content Security Policy" in message.text:
            self.csp_violations.append(message.text)

    def _request(self, request: Any) -> None:
        parts = urlsplit(request.url)
        if parts.scheme in ("http", "https", "ws", "wss"):
            self.hosts.add(parts.netloc)

    def assert_only_own_host(self) -> None:
        assert self.hosts <= {self.own}, f"requests to other hosts: {self.hosts - {self.own}}"


@pytest.fixture(autouse=True)
def no_csp_violations() -> Iterator[None]:
    """Every page a test opened ran under the CSP without a violation or a script error."""
    WATCHES.clear()
    yield
    violations = [v for watch in WATCHES for v in watch.csp_violations]
    errors = [e for watch in WATCHES for e in watch.script_errors]
    WATCHES.clear()
    assert violations == [], violations
    assert errors == [], errors


def open_page(browser: Any, base_url: str, **options: Any) -> tuple[Any, Any, Watch]:
    context = browser.new_context(
        base_url=base_url, viewport={"width": 1366, "height": 768}, locale="zh-CN", **options
    )
    page = context.new_page()
    page.set_default_timeout(20_000)
    return context, page, Watch(page, base_url)


def log_in(page: Any, username: str) -> None:
    page.goto("/login")
    page.fill("#username", username)
    page.fill("#password", f"{username}-password")
    page.click("button[type=submit]")
    page.wait_for_url("**/")


def png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (800, 450), (30, 80, 160)).save(buffer, "PNG")
    return buffer.getvalue()


def long_body(chars: int = 2000) -> str:
    paragraph = (
        "为深入贯彻落实政务公开工作要求，全省各级政府及其部门要进一步加强政务新媒体建设，"
        "做好信息发布、政策解读和回应关切工作，及时准确发布权威信息，切实保障人民群众的知情权、参与权和监督权。"
    )
    text = "## 会议要求\n\n"
    while len(text) < chars:
        text += paragraph + "\n\n"
    return text[:chars]


def add_hall_account(database_url: str, org_code: str) -> None:
    from sqlmodel import Session

    from hub.accounts.models import AccountCreate, Platform
    from hub.accounts.service import create
    from hub.config import get_settings
    from hub.db import engine_for

    with Session(engine_for(database_url)) as session:
        create(
            session=session,
            data=AccountCreate(org_code=org_code, platform=Platform("hall"), name="省政府发布厅"),
            credentials_key=get_settings().credentials_key,
        )
        session.commit()


def test_an_editor_composes_a_reviewer_approves_and_the_board_goes_live(
    hub: RunningServer,
    matrix: Matrix,
    processes: Callable[..., Process],
    browser: Any,
) -> None:
    accounts = matrix.add_accounts(["520000-xwb"], ("weibo", "wechat"))
    add_hall_account(matrix.database_url, "520000-xwb")  # every approved post also goes here
    processes("worker", "--concurrency", "4")
    processes("beat")
    shots = screenshots()
    print(f"\nscreenshots: {shots}")

    context, page, watch = open_page(browser, hub.base_url)
    log_in(page, "prov-editor")
    page.screenshot(path=str(shots / "dashboard.png"), full_page=True)

    page.goto("/compose")
    title = "全省政务公开工作推进会召开"
    body = long_body()
    page.fill("#title", title)
    page.fill("#body", body)
    page.fill("#summary", "全省政务公开工作推进会今天在贵阳召开，部署下一阶段重点任务。")
    page.set_input_files(
        "#image-input", {"name": "photo.png", "mimeType": "image/png", "buffer": png_bytes()}
    )
    page.locator("#images img").wait_for()
    for account_id in accounts:
        page.check(f"#org-tree input[value='{account_id}']")
    page.get_by_text("已保存").wait_for(timeout=20_000)

    counter = page.locator("#weibo-counter")
    page.wait_for_function(
        "() => document.querySelector('#weibo-counter').dataset.count"
    )  # a function: CSP forbids eval
    weibo_text = page.locator("#weibo-text").inner_text()
    assert int(counter.get_attribute("data-count") or "-1") == weibo_length(weibo_text)
    assert "/ 140" in counter.inner_text()
    # the Weibo card shows the one picture the status is sent with
    picture = page.locator("#weibo-pics img")
    picture.wait_for()
    assert picture.count() == 1
    assert picture.get_attribute("src") == page.locator("#images img").first.get_attribute("src")
    wechat = page.frame_locator("#wechat-frame")
    wechat.locator("body").get_by_text("会议要求").wait_for()
    assert page.locator("#wechat-title").inner_text() == title
    page.screenshot(path=str(shots / "compose.png"), full_page=True)

    page.click("#submit")
    page.wait_for_url("**/board")
    post_id = int(page.url.rstrip("/").split("/")[-2])
    page.evaluate("window.__sameDocument = true")

    reviewer_context, reviewer, reviewer_watch = open_page(browser, hub.base_url)
    log_in(reviewer, "prov-reviewer")
    reviewer.goto("/review")
    reviewer.click(f"a[href='/review/{post_id}']")
    reviewer.fill("#comment", "同意发布")
    reviewer.click("button[data-act=approve]")
    reviewer.wait_for_url(f"**/posts/{post_id}/board")

    copies = len(accounts) + 1  # Weibo, WeChat and the org's release-hall account
    rows = page.locator("#board-rows tr[data-delivery]")
    published = page.locator("#board-rows tr[data-status=published]")
    published.nth(copies - 1).wait_for(timeout=180_000)
    assert rows.count() == published.count() == copies
    assert page.evaluate("window.__sameDocument") is True  # no reload: the events did it
    assert page.locator("#board-rows a", has_text="查看").count() == copies
    page.get_by_text("全部完成").wait_for()
    page.screenshot(path=str(shots / "board.png"), full_page=True)

    # the post is on the public release hall and in both of its feeds
    hall = context.new_page()
    hall.goto(f"/hall/posts/{post_id}")
    assert title in hall.inner_text("main")
    atom = hall.request.get("/hall/feed.atom")
    feed = hall.request.get("/hall/feed.json")
    assert atom.ok and title in atom.text()
    assert feed.ok and any(item["title"] == title for item in feed.json()["items"])
    hall.screenshot(path=str(shots / "hall.png"), full_page=True)
    hall.close()

    page.click("a[lang=en]")
    page.get_by_role("navigation", name="Main navigation").wait_for()
    nav = page.get_by_role("navigation", name="Main navigation").inner_text()
    assert "Workbench" in nav and "Compose" in nav and "Deliveries" in nav
    assert page.locator("#board-rows .badge", has_text="Published").count() == copies
    page.goto("/")
    assert "My drafts" in page.inner_text("main")
    page.screenshot(path=str(shots / "dashboard-en.png"), full_page=True)

    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"/posts/{post_id}/edit")
    page.screenshot(path=str(shots / "compose-phone.png"), full_page=True)

    assert watch.dialogs == [] and reviewer_watch.dialogs == []
    watch.assert_only_own_host()
    reviewer_watch.assert_only_own_host()
    reviewer_context.close()
    context.close()


def test_an_editor_retries_a_refused_copy_from_the_board(
    hub: RunningServer,
    matrix: Matrix,
    processes: Callable[..., Process],
    browser: Any,
) -> None:
    from pathlib import Path

    from connectors.sandbox.weibo import Fault
    from tests.engine.test_fanout import publish_post

    weibo, wechat = matrix.add_accounts(["520000-xwb"], ("weibo", "wechat"))
    # Weibo refuses the first share (content refused: no automatic retry for that).
    matrix.platforms.weibo.add_fault(Fault(endpoint="share", code=20018, times=1))
    processes("worker", "--concurrency", "4")
    processes("beat")
    post_id, _title = publish_post(matrix, [weibo, wechat], Path(get_settings().media_dir))

    context, page, watch = open_page(browser, hub.base_url)
    log_in(page, "gov-editor")
    page.goto(f"/posts/{post_id}/board")
    refused = page.locator("#board-rows tr[data-status=failed]")
    refused.wait_for(timeout=120_000)
    assert "微博" in refused.inner_text()
    assert refused.locator(".err").inner_text().strip(), "the platform's reason is shown"
    page.locator("#board-rows tr[data-status=published]").wait_for(timeout=120_000)
    page.screenshot(path=str(screenshots() / "board-failed.png"), full_page=True)

    refused.get_by_role("button", name="重试").click()
    # The row leaves 'failed' and, the platform accepting it this time, ends published.
    page.locator("#board-rows tr[data-status=published]").nth(1).wait_for(timeout=120_000)
    assert page.locator("#board-rows tr[data-status=failed]").count() == 0
    page.get_by_text("全部完成").wait_for()
    assert page.locator("#board-message").inner_text().strip() == ""
    assert matrix.platforms.weibo.calls("share") == 2
    assert watch.dialogs == []
    watch.assert_only_own_host()
    context.close()


@one_database
def test_markup_in_a_post_is_shown_as_text(
    hub: RunningServer,
    matrix: Matrix,
    browser: Any,
) -> None:
    accounts = matrix.add_accounts(["520000-xwb"], ("weibo", "wechat"))
    with TestClient(create_app()) as client:
        editor = token_for("prov-editor", matrix.database_url)
        reviewer = token_for("prov-reviewer", matrix.database_url)
        created = client.post(
            "/api/v1/posts",
            json={
                "title": "标题",  # WeChat refuses NASTY as a title (over 32 characters)
                "body": "第一段\n\n" + NASTY,
                "target_account_ids": accounts,
                "images": [cover_image(Path(get_settings().media_dir))],
            },
            headers=editor,
        )
        assert created.status_code == 201, created.text
        post_id = created.json()["id"]
        # the review page diffs against the version a reviewer saw: submit, reject, edit
        submitted = client.post(f"/api/v1/posts/{post_id}/submit", headers=editor)
        assert submitted.is_success, submitted.text
        rejected = client.post(
            f"/api/v1/posts/{post_id}/reject", json={"reason": "改一下"}, headers=reviewer
        )
        assert rejected.is_success, rejected.text
        client.patch(
            f"/api/v1/posts/{post_id}",
            json={"title": NASTY, "body": "改过的\n\n" + NASTY},
            headers=editor,
        )

    context, page, watch = open_page(browser, hub.base_url)
    log_in(page, "prov-editor")
    page.goto(f"/posts/{post_id}/edit")
    assert NASTY in page.input_value("#body")
    page.wait_for_function(
        "() => document.querySelector('#weibo-counter').dataset.count"
    )  # a function: CSP forbids eval
    page.frame_locator("#wechat-frame").locator("body").get_by_text("改过的").wait_for()
    context.close()

    context, page, reviewer_watch = open_page(browser, hub.base_url)
    log_in(page, "prov-reviewer")
    page.goto(f"/review/{post_id}")
    assert NASTY in page.inner_text("pre.source")
    assert "<script>alert(1)</script>" in page.inner_text(".diff")
    assert NASTY in page.inner_text("h1")
    page.goto("/review")
    page.goto("/")
    assert watch.dialogs == [] and reviewer_watch.dialogs == []
    watch.assert_only_own_host()
    reviewer_watch.assert_only_own_host()
    context.close()


@one_database
def test_a_write_without_the_csrf_token_is_refused(
    hub: RunningServer,
    matrix: Matrix,
    browser: Any,
) -> None:
    context, page, _watch = open_page(browser, hub.base_url)
    log_in(page, "prov-editor")
    refused = page.request.post("/api/v1/posts", data={"title": "无令牌", "body": "正文"})
    assert refused.status == 403
    assert "CSRF" in refused.json()["detail"]
    form_post = page.request.post("/logout", form={"csrf": "forged"})
    assert form_post.status >= 400
    page.goto("/")
    assert page.url.endswith("/")  # still logged in: the forged logout did nothing
    context.close()


@one_database
def test_an_editor_cannot_open_another_countys_post(
    hub: RunningServer,
    matrix: Matrix,
    browser: Any,
) -> None:
    make_user(matrix.database_url, "kaili-editor", Role.editor, "522601")
    make_user(matrix.database_url, "huangping-editor", Role.editor, "522622")
    with TestClient(create_app()) as client:
        created = client.post(
            "/api/v1/posts",
            json={"title": "黄平县内部稿件", "body": "正文"},
            headers=token_for("huangping-editor", matrix.database_url),
        )
        post_id = created.json()["id"]
    context, page, _watch = open_page(browser, hub.base_url)
    log_in(page, "kaili-editor")
    answer = page.goto(f"/posts/{post_id + 1000}/edit")
    assert answer is not None and answer.status == 404
    missing = page.inner_text("main")
    # outside one's reach a post reads exactly like one that does not exist (no existence leak)
    for path in (f"/posts/{post_id}/edit", f"/posts/{post_id}/board", f"/review/{post_id}"):
        answer = page.goto(path)
        assert answer is not None and answer.status == 404, path
        assert page.inner_text("main") == missing.replace(str(post_id + 1000), str(post_id))
        assert "黄平县内部稿件" not in page.content()
    context.close()


@one_database
def test_every_page_runs_under_the_csp_and_inline_script_is_blocked(
    hub: RunningServer,
    matrix: Matrix,
    browser: Any,
) -> None:
    context, page, watch = open_page(browser, hub.base_url)
    log_in(page, "prov-editor")
    pages = ("/", "/compose", "/review", "/calendar", "/deliveries", "/clocks", "/hall", "/inbox")
    for path in (*pages, "/accounts", "/audit", "/audit-log"):  # the last ones may say 403
        answer = page.goto(path)
        assert answer is not None and (answer.status == 200 or path not in pages), path
        assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
    assert watch.csp_violations == [] and watch.script_errors == []
    # An injected inline script (what an XSS would be) does not run, and the browser says why.
    with pytest.raises(Exception, match="violates the following Content Security Policy"):
        page.add_script_tag(content="window.injected = true;")
    assert page.evaluate("window.injected === undefined")
    watch.csp_violations.clear()  # the violation this test caused on purpose
    context.close()
