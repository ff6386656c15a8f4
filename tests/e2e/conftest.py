"""Browser tests: Python Playwright drives the system Chromium over the real stack.

The stack (moto server, gunicorn, a Celery worker) is tests/integration's session fixture. The
browser reaches only the stack: every request to another host (the OpenStreetMap base tiles) is
aborted before it leaves, so the page shows the heatmap over a plain background, as it must when
base tiles cannot load.

Needs `playwright` (in the lock) and Debian's Chromium,
which `make tools` installs. SAFETYHEATMAP_CHROMIUM names another Chromium binary.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from playwright import sync_api as playwright_sync


def expect(target: Any) -> Any:
    """Playwright's expect (waits and retries until the condition holds or times out)."""
    return playwright_sync.expect(target)


CHROMIUM = (
    os.environ.get("SAFETYHEATMAP_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
)

VIEWPORTS = {"desktop": (1280, 800), "phone": (360, 640)}

_LOCAL = re.compile(r"^https?://(127\.0\.0\.1|localhost)(:\d+)?/")


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    # `make test` installs Chromium (tools target); a missing browser is a failure, not a skip.
    assert os.path.exists(CHROMIUM), f"no Chromium at {CHROMIUM}: run `make tools`"
    with playwright_sync.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=["--disable-background-networking"])
        try:
            yield b
        finally:
            b.close()


@dataclass
class PageProblems:
    """What went wrong inside the page: script errors and Content-Security-Policy violations."""

    errors: list[str] = field(default_factory=list)

    def check(self) -> None:
        assert not self.errors, "the page reported problems:\n" + "\n".join(self.errors)


@dataclass
class OpenPage:
    page: Any
    problems: PageProblems


CSP_LISTENER = """
document.addEventListener('securitypolicyviolation', (e) => {
  console.error('CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI);
});
"""


@pytest.fixture
def open_page(browser: Any) -> Iterator[Callable[..., OpenPage]]:
    """open_page(url, viewport="desktop") -> a page that reaches only the local stack.

    bypass_csp=True lets the test inject scripts of its own (axe-core): only for that, since
    the page's own CSP is then not enforced (and its violations not reported).
    """
    contexts: list[Any] = []

    def _open(url: str, viewport: str = "desktop", bypass_csp: bool = False) -> OpenPage:
        width, height = VIEWPORTS[viewport]
        ctx = browser.new_context(
            viewport={"width": width, "height": height},
            locale="en-GB",
            timezone_id="UTC",
            reduced_motion="reduce",
            bypass_csp=bypass_csp,
        )
        contexts.append(ctx)
        ctx.route(
            re.compile(r"^https?://"),
            lambda route: route.continue_() if _LOCAL.match(route.request.url) else route.abort(),
        )
        page = ctx.new_page()
        page.set_default_timeout(15_000)
        problems = PageProblems()
        page.add_init_script(CSP_LISTENER)
        page.on("pageerror", lambda exc: problems.errors.append(f"page error: {exc}"))
        page.on(
            "console",
            lambda msg: (
                problems.errors.append(f"console: {msg.text}")
                if msg.type == "error" and "CSP violation" in msg.text
                else None
            ),
        )
        page.goto(url)
        page.wait_for_selector(".leaflet-container")
        return OpenPage(page, problems)

    yield _open
    for ctx in contexts:
        ctx.close()
