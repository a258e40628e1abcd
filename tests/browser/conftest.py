"""Real-browser journeys through the console: a real ``sous serve --sandbox`` (its own folder,
database and free port; its output in ``serve.log`` there) and a headless Chromium driven by
Playwright. No browser is downloaded: ``SOUS_BROWSER`` names one, else ``chromium`` on the PATH.

Without Chromium or Playwright the tests skip with the remedy; ``SOUS_REQUIRE_BROWSER=1`` (set
by ``.ci/run``) makes that a failure. Every tab saves a numbered screenshot of each page it
shows to ``SOUS_SCREENSHOTS`` (else the test session's temporary folder), and one more when a
test fails; a test also fails when a page sent a request off this machine or logged a console
error (a CSP violation is one)."""

from __future__ import annotations

import os
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.browser.harness import SandboxServer, sandbox_server, slug
from tests.browser.needs import NO_BROWSER, NO_PLAYWRIGHT, browser_path, need

if TYPE_CHECKING:
    from tests.browser.tab import Browser, Tab

HERE = Path(__file__).resolve().parent
TABS = pytest.StashKey[list["Tab"]]()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="package")
def chromium() -> Iterator[Browser]:
    """One headless Chromium for the package's tests."""
    path = browser_path()
    if path is None:
        need(NO_BROWSER)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        need(NO_PLAYWRIGHT)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, headless=True)
        yield browser
        browser.close()


@pytest.fixture(scope="package")
def sandbox(chromium: Browser, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxServer]:
    """``sous serve --sandbox``, started once for the package (after the browser: without
    one, nothing is started)."""
    with sandbox_server(tmp_path_factory.mktemp("sandbox")) as server:
        yield server


@pytest.fixture(scope="package")
def other_key(sandbox: SandboxServer) -> str:
    """An admin key of a second workspace, ``other``, in the sandbox's database."""
    return sandbox.create_key("other")


@pytest.fixture(scope="package")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    given = os.environ.get("SOUS_SCREENSHOTS")
    folder = Path(given) if given else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def new_tab(
    request: pytest.FixtureRequest, chromium: Browser, sandbox: SandboxServer, screenshots: Path
) -> Iterator[Callable[[], Tab]]:
    """``new_tab()`` → a fresh visitor (own cookies) on the sandbox; closed after the test."""
    from tests.browser.tab import Tab

    tabs = request.node.stash.setdefault(TABS, [])

    def make() -> Tab:
        name = slug(request.node.name) + (f"-{len(tabs) + 1}" if tabs else "")
        tab = Tab(chromium, sandbox.base, screenshots, name)
        tabs.append(tab)
        return tab

    yield make
    for tab in tabs:
        tab.close()


@pytest.fixture
def tab(new_tab: Callable[[], Tab]) -> Tab:
    """A visitor who has not signed in."""
    return new_tab()


@pytest.fixture
def console(tab: Tab, sandbox: SandboxServer) -> Tab:
    """A visitor signed in with the sandbox's key (workspace ``sandbox``), on the home page."""
    tab.sign_in(sandbox.key)
    return tab


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    """After the test's own checks: no request left this machine, no console error."""
    yield
    problems = [p for tab in item.stash.get(TABS, []) for p in tab.problems()]
    if problems:
        pytest.fail("the pages were not clean:\n  " + "\n  ".join(problems), pytrace=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A failed test leaves a screenshot of each of its tabs as they were, named in the report."""
    report = yield
    if report.when == "call" and report.failed:
        taken = []
        for tab in item.stash.get(TABS, []):
            try:
                taken.append(str(tab.shot("failed")))
            except Exception as exc:  # a closed page has no screenshot to give
                taken.append(f"(no screenshot: {type(exc).__name__})")
        if taken:
            report.sections.append(("screenshots", "\n".join(taken)))
        server = getattr(item, "funcargs", {}).get("sandbox")
        if isinstance(server, SandboxServer):
            tail = server.log.read_text(errors="replace").splitlines()[-25:]
            report.sections.append((f"sous serve --sandbox ({server.log})", "\n".join(tail)))
    return report
