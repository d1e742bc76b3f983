"""Browser tests share one Chromium for the session (sync Playwright allows only one)."""

from tests.e2e.browser import browser  # noqa: F401
