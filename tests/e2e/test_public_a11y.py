# ruff: noqa: F811 (pytest fixtures are imported by name and used as arguments)
"""Accessibility of the public pages (issue 18): axe-core, vendored from the npm registry
(tests/e2e/vendor/axe.min.js, test-only: no production page loads it), runs in Chromium on the
release hall, a hall post page, a public live page and 互动回应; no serious or critical
violation of WCAG 2.1 A/AA. Keyboard: a skip link is the first thing Tab reaches."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors.sandbox.server import RunningServer
from hub.users.models import Role
from tests.e2e.browser import one_database
from tests.e2e.test_editor_ui import (  # noqa: F401  (fixtures)
    hub,
    no_csp_violations,
    open_page,
)
from tests.engine.conftest import (  # noqa: F401  (fixtures)
    Matrix,
    matrix,
    platforms,
    sandboxes,
)
from tests.factories import make_user, token_for
from tests.integration.hall_data import publish

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

AXE = Path(__file__).parent / "vendor" / "axe.min.js"
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


def violations(page: Any) -> list[str]:
    """Serious and critical axe violations on the page, one line each (rule, impact, where)."""
    page.add_script_tag(content=AXE.read_text(encoding="utf-8"))
    found = page.evaluate(
        """async (tags) => {
            const result = await axe.run(document, {runOnly: {type: 'tag', values: tags}});
            return result.violations
                .filter(v => v.impact === 'serious' || v.impact === 'critical')
                .map(v => `${v.id} (${v.impact}): ` + v.nodes.slice(0, 3)
                    .map(n => n.target.join(' ')).join(', '));
        }""",
        TAGS,
    )
    return list(found)


@one_database
def test_public_pages_have_no_serious_accessibility_violation(
    hub: RunningServer, matrix: Matrix, browser: Any
) -> None:
    url = matrix.database_url
    make_user(url, "kaili-editor", Role.editor, "522601")
    post = publish(
        url,
        org_code="522601",
        title="凯里市召开防汛工作会议",
        body="会议部署了**防汛**工作。\n\n![凯里市防汛工作会议现场](/static/favicon.svg)\n\n"
        "详见[凯里市人民政府网站](https://www.kaili.gov.cn/)。",
    )
    headers = token_for("kaili-editor", url)
    api = f"{hub.base_url}/api/v1/live-sessions"
    live = httpx.post(api, json={"title": "凯里市政府常务会议"}, headers=headers).json()
    httpx.post(f"{api}/{live['id']}/start", headers=headers).raise_for_status()
    httpx.post(
        f"{api}/{live['id']}/entries",
        json={"text": "会议审议通过营商环境优化方案。"},
        headers=headers,
    ).raise_for_status()

    # bypass_csp: the test injects axe as an inline script, which the pages' CSP rightly refuses
    context, page, _watch = open_page(browser, hub.base_url, bypass_csp=True)
    found: dict[str, list[str]] = {}
    for path in ("/hall", f"/hall/posts/{post.post_id}", f"/live/{live['slug']}", "/hall/answers"):
        answer = page.goto(path)
        assert answer is not None and answer.status == 200, path
        found[path] = violations(page)
        # keyboard: the first Tab lands on a link that skips to the main content
        page.keyboard.press("Tab")
        focused = page.evaluate(
            "() => [document.activeElement.tagName, document.activeElement.getAttribute('href')]"
        )
        found[path] += [] if focused == ["A", "#main"] else [f"first Tab reaches {focused}"]
        if page.locator("main#main").count() != 1:
            found[path].append("no <main id=main> landmark")
    assert found == {path: [] for path in found}

    # the post's picture is described; and the check does catch a picture that is not
    page.goto(f"/hall/posts/{post.post_id}")
    assert page.locator("main img[alt='凯里市防汛工作会议现场']").count() == 1
    page.evaluate(
        "() => { const i = document.createElement('img'); i.src = '/static/x.png';"
        " document.querySelector('main').append(i); }"
    )
    assert any(line.startswith("image-alt (critical)") for line in violations(page))
    context.close()
