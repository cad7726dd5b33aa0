"""A real Chromium (Debian's package) driven by Playwright against a real embedded stack."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.models import Trained
from tests.services import IN_CI
from tests.stacks import Stack, running_stack

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"
# Chromium logs every refusal under the policy with this phrase (a refused eval also throws an error saying so).
CSP = "Content Security Policy"
# Assertions wait as long as page actions do (Playwright's default is 5 s): a page that answers is not a failure
# because two cores are busy with a worker, a database and the browser at once.
expect.set_options(timeout=15_000)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, trained_models: dict[str, Trained]) -> Iterator[Stack]:
    with running_stack("embedded", tmp_path_factory.mktemp("browser"), trained_models) as stack:
        yield stack


# Package scope, not session: Playwright's sync API keeps an event loop marked running in the main thread while it is
# open, and every later test that calls asyncio.run (webhook delivery, the intake's deadline tests) would fail.
@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing (apt-get install chromium), so the browser tests did not run"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@contextmanager
def open_page(browser: Browser, stack: Stack | None, refusals: list[str], **options: Any) -> Iterator[Page]:
    """A page in a context of its own, signed in as the stack's admin (None: anonymous); what the browser refuses
    under the Content-Security-Policy is appended to `refusals`."""
    context = browser.new_context(**options)
    if stack is not None:
        cookie = stack.session_cookie()
        context.add_cookies([{"name": cookie["name"], "value": cookie["value"], "url": cookie["url"]}])
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.on("console", lambda message: refusals.append(message.text) if CSP in message.text else None)
    page.on("pageerror", lambda error: refusals.append(str(error)) if CSP in str(error) else None)
    try:
        yield page
    finally:
        context.close()


@pytest.fixture
def csp_refusals() -> list[str]:
    """What this test's pages refused under the Content-Security-Policy; a test may assert on it as it goes."""
    return []


@pytest.fixture
def page(browser: Browser, stack: Stack, csp_refusals: list[str]) -> Iterator[Page]:
    """A fresh page, signed in; whatever the test does on it must not break the Content-Security-Policy."""
    with open_page(browser, stack, csp_refusals, viewport={"width": 1200, "height": 900}) as page:
        yield page
    assert csp_refusals == [], "the page broke its Content-Security-Policy"


@pytest.fixture
def anonymous_page(browser: Browser, csp_refusals: list[str]) -> Iterator[Page]:
    """A fresh page of a browser that has not signed in."""
    with open_page(browser, None, csp_refusals, viewport={"width": 1200, "height": 900}) as page:
        yield page
    assert csp_refusals == [], "the page broke its Content-Security-Policy"


def screenshot(page: Page, name: str) -> Path:
    """Saved under test-output/ (git-ignored) for people to look at."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def register_diabetes(stack: Stack) -> None:
    """The diabetes demo (10 fields: a form taller than a laptop's window), registered and visible to the web."""
    import httpx2

    from ml.demo import DEMO_METADATA, DEMOS
    from webapp.services.models import estimator_bytes

    estimator, training = DEMOS["diabetes"]()
    metadata = DEMO_METADATA["diabetes"]
    stack.models.register(estimator_bytes(estimator), "joblib", "diabetes", training=training, metadata=metadata)
    deadline = time.monotonic() + 30  # the web server's registry cache is a few seconds old at most
    while httpx2.get(f"{stack.base_url}/api/v1/models/diabetes", headers=stack.auth).status_code != 200:
        assert time.monotonic() < deadline, "the web server never saw the new model"
        time.sleep(0.5)
