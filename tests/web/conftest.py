"""Real-browser fixtures: Debian's chromium driven by playwright's sync API against the e2e stack.

The browser lives on one dedicated thread (playwright's sync API is bound to the thread that started it and
must not run inside the tests' asyncio loop); tests hand it a function of a fresh page with `await web.run(fn)`.
The chromium comes from apt (scripts/ensure-browser.sh), never from `playwright install`.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import pytest
from playwright.sync_api import Browser, Page, Playwright, sync_playwright

# The e2e stack fixtures (`stack`, `bare_stack`, …) come from the tests.stack plugin.
from tests.stack import Stack

CHROMIUM = os.environ.get("ZHIDA_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
T = TypeVar("T")


class BrowserThread:
    """One chromium for the session, launched lazily on its own thread; each run gets a fresh context."""

    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="playwright")
        self._playwright: Playwright | None = None
        self._browser: Browser | None = None

    def _launch(self) -> Browser:
        if self._browser is None:
            if not os.access(CHROMIUM, os.X_OK):
                pytest.fail(f"{CHROMIUM} is missing: run `bash scripts/ensure-browser.sh` (make test does)")
            self._playwright = sync_playwright().start()
            self._browser = self._playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        return self._browser

    def _call(self, fn: Callable[[Page], T], base_url: str, artifacts: Path) -> T:
        context = self._launch().new_context(base_url=base_url, locale="zh-CN", viewport={"width": 1280, "height": 900})
        context.set_default_timeout(15_000)
        page = context.new_page()
        try:
            return fn(page)
        except BaseException as exc:
            # Leave what the browser saw next to the test's other files, and say where.
            try:
                page.screenshot(path=artifacts / "failure.png", full_page=True)
                (artifacts / "failure.html").write_text(page.content(), encoding="utf-8")
                exc.add_note(f"browser state at failure ({page.url}): {artifacts / 'failure.png'}, failure.html")
            except Exception:
                pass
            raise
        finally:
            context.close()

    async def run(self, fn: Callable[[Page], T], *, base_url: str, artifacts: Path) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._call, fn, base_url, artifacts)

    def _close(self) -> None:
        if self._browser is not None:
            self._browser.close()
        if self._playwright is not None:
            self._playwright.stop()

    def close(self) -> None:
        self._executor.submit(self._close).result(timeout=30)
        self._executor.shutdown()


class Web:
    """The browser pointed at one stack's API; `await web.run(fn)` calls fn(page) on the browser thread."""

    def __init__(self, browser: BrowserThread, running: Stack, artifacts: Path) -> None:
        self.browser = browser
        self.stack = running
        self.artifacts = artifacts

    def token(self, role: str, subject: str) -> str:
        return self.stack.token(role, subject)["Authorization"].removeprefix("Bearer ")

    async def run(self, fn: Callable[[Page], T]) -> T:
        return await self.browser.run(fn, base_url=self.stack.api.url, artifacts=self.artifacts)


@pytest.fixture(scope="session")
def browser_thread() -> Iterator[BrowserThread]:
    browser = BrowserThread()
    yield browser
    browser.close()


@pytest.fixture
def web(browser_thread: BrowserThread, stack: Stack, tmp_path: Path) -> Web:
    return Web(browser_thread, stack, tmp_path)


def sign_in(page: Page, token: str) -> None:
    """Sign in as a person does: the token typed into the login form and posted (never in a URL)."""
    page.goto("/web/login")
    page.get_by_label("访问令牌").fill(token)
    with page.expect_navigation():
        page.get_by_role("button", name="登录", exact=True).click()
