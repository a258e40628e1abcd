"""A browser tab on the console that keeps its findings (requests leaving this machine, console
errors, CSP violations) and a numbered screenshot of each page it shows.

Journeys import Playwright's names from here: without Playwright, the importing module is
skipped (failed under ``SOUS_REQUIRE_BROWSER=1``)."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

from tests.browser.harness import Findings, is_local, slug
from tests.browser.needs import NO_PLAYWRIGHT, need

try:
    from playwright.sync_api import (
        Browser,
        BrowserContext,
        ConsoleMessage,
        Error as PlaywrightError,
        Page,
        Response,
        Route,
        expect,
    )
except ImportError:  # pragma: no cover - only without the dev extra
    need(NO_PLAYWRIGHT)

__all__ = ["Browser", "Page", "PlaywrightError", "Tab", "expect"]

TIMEOUT_MS = 15_000
"""How long an ``expect`` waits for the page (a live update included) before failing."""
expect.set_options(timeout=TIMEOUT_MS)

CSP_LISTENER = """
document.addEventListener("securitypolicyviolation", (e) => {
  console.error(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI || "inline"}`);
});
"""
"""Added to every page before its own scripts (an init script is not subject to the page's
CSP): a violation is then a console error even where Chromium would report it quietly."""


class Tab:
    """One browser context (its own cookies: one visitor) and its page on ``base``."""

    def __init__(self, browser: Browser, base: str, shots: Path, name: str) -> None:
        self.base = base
        self.findings = Findings()
        self.screenshots: list[Path] = []
        self._shots, self._name = shots, name
        self.context: BrowserContext = browser.new_context(
            base_url=base, viewport={"width": 1280, "height": 800}
        )
        self.context.add_init_script(CSP_LISTENER)
        self.context.route("**/*", self._route)
        self.page: Page = self.context.new_page()
        self.watch(self.page)

    def watch(self, page: Page) -> None:
        """Record ``page``'s console errors and uncaught errors in :attr:`findings`."""
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.findings.errors.append(f"page error: {error}"))

    def _route(self, route: Route) -> None:
        url = route.request.url
        if is_local(url):
            route.continue_()
            return
        self.findings.outside.append(f"{route.request.method} {url}")
        route.abort("blockedbyclient")

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            where = message.location.get("url", "")
            self.findings.errors.append(f"console error: {message.text} ({where})")

    def allow_error(self, pattern: str) -> None:
        """A console error matching ``pattern`` is expected (e.g. a 401 answer's)."""
        self.findings.allowed.append(re.compile(pattern))

    def open(self, path: str, status: int = 200) -> Response:
        """Go to ``path`` (of the sandbox) and take a screenshot; the answer must be ``status``."""
        response = self.page.goto(path)
        assert response is not None, path
        assert response.status == status, f"{path} answered {response.status}"
        self.shot()
        return response

    def open_live(self, path: str) -> Response:
        """Open a live list at ``path`` and wait until its stream of changes has answered: a
        change made after this shows up on the page (one made before may not)."""
        with self.page.expect_response(lambda r: urlsplit(r.url).path == "/console/live") as live:
            response = self.open(path)
        assert live.value.status == 200, f"/console/live answered {live.value.status}"
        return response

    def shot(self, label: str = "") -> Path:
        """A screenshot of the whole page now, numbered in the order the test took them."""
        name = label or urlsplit(self.page.url).path
        path = self._shots / f"{self._name}-{len(self.screenshots) + 1:02d}-{slug(name)}.png"
        self.page.screenshot(path=path, full_page=True)
        self.screenshots.append(path)
        return path

    def sign_in(self, key: str) -> None:
        """Sign in through the form, as a merchant does, and land on the home page."""
        self.open("/console/sign-in")
        self.page.get_by_label("API key").fill(key)
        self.page.get_by_role("button", name="Sign in").click()
        expect(self.page).to_have_url(re.compile(r"/console/$"))
        self.shot()

    def problems(self) -> list[str]:
        """What went wrong on the pages of this tab, as lines for a failure message."""
        found = [f"request left 127.0.0.1: {url}" for url in self.findings.outside]
        return found + self.findings.unexpected_errors()

    def close(self) -> None:
        self.context.close()
