"""Debian's headless Chromium driven by Playwright (sync API): never downloads a browser.

``make browser`` installs Chromium with apt when it is missing (as root); without it the
browser tests fail with this message rather than skip.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path(os.environ.get("GOVHUB_CHROMIUM", "/usr/bin/chromium"))
ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: the browser tests need Debian's Chromium. Install it with "
            "`make browser` (as root: apt-get install -y chromium fonts-wqy-microhei) or point "
            "GOVHUB_CHROMIUM at a Chromium binary.",
            pytrace=False,
        )
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        pytest.fail("playwright is missing: pip install -e '.[dev]'", pytrace=False)
    # CI runs its two halves side by side on two cores, each with its servers and a Chromium: an
    # answer the page waits for took over Playwright's default 5 s twice (stop 23). A budget, not
    # a sleep: an expectation that holds returns at once.
    expect.set_options(timeout=15_000)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield chromium
        chromium.close()


def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


# A browser test that proves nothing database-specific (what the page does in the browser: its
# scripts, markup, wording, CSP, accessibility) runs on the embedded default only; the
# integration tests run the same routes on PostgreSQL. The end-to-end paths that publish, run a
# live session or reach the inbox keep both databases (the commit that marked each test says why).
one_database = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
