"""The browser fixtures of tests/web/test_browser.py (demo city, Chromium, a page that fails on
console errors), shared with this folder's browser test."""

from tests.web.test_browser import browser, live_server, page  # noqa: F401
