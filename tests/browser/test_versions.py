"""Comparing model versions in the browser, and what a failed htmx action shows."""

from __future__ import annotations

import time

import httpx2
from playwright.sync_api import Page, expect

from tests.browser.conftest import screenshot
from tests.models import sizes
from tests.stacks import Stack
from webapp.services.models import ModelInUse


def submit_sizes(page: Page, stack: Stack, version: str = "") -> None:
    """Predict with the form (of `version`, or the default) and open the new job's page."""
    page.goto(f"{stack.base_url}/models/sizes" + (f"?version={version}" if version else ""))
    page.fill("#f-size", "2")
    page.select_option("#f-colour", "red")
    page.click("#predict-form button[type=submit]")
    expect(page.locator("#job-status .badge")).to_have_text("succeeded", timeout=20_000)
    page.click("#job-status article header a")


def test_a_job_can_be_rerun_on_another_version_and_compared(page: Page, stack: Stack) -> None:
    doubled = sizes(20)
    stack.models.register(doubled.data, "joblib", "sizes", "compare-me", training=doubled.training)
    submit_sizes(page, stack)

    page.select_option("#compare-version", "compare-me")
    page.click("text=Re-run and compare")

    page.wait_for_url("**/compare")
    expect(page.locator("#comparison .prediction")).to_contain_text("moved by 20 on average", timeout=20_000)
    expect(page.locator("table.shifts tbody tr")).to_have_count(1)
    screenshot(page, "compare")
    removed_once_unused(stack, "sizes", "compare-me")


def test_an_action_that_fails_says_why_on_the_page(page: Page, stack: Stack) -> None:
    gone = sizes(30)
    stack.models.register(gone.data, "joblib", "sizes", "short-lived", training=gone.training)
    submit_sizes(page, stack, version="short-lived")
    removed_once_unused(stack, "sizes", "short-lived")
    gone_from_the_server(stack, "sizes", "short-lived")

    page.click("text=Run again")

    expect(page.locator("#problem")).to_contain_text("cannot be run again")
    expect(page.locator("#problem")).to_contain_text("short-lived")


def removed_once_unused(stack: Stack, name: str, version: str) -> None:
    """Remove a version as soon as no job waits on it: the job page just opened queues an explain job on it."""
    deadline = time.monotonic() + 20
    while True:
        try:
            stack.models.remove(name, version)
            return
        except ModelInUse:
            assert time.monotonic() < deadline, f"jobs on {name} {version} did not end"
            time.sleep(0.2)


def gone_from_the_server(stack: Stack, name: str, version: str) -> None:
    """The web keeps a model lookup for a second (REGISTRY_CACHE_SECONDS): a version removed by another process,
    as this test's is, is gone there only after that."""
    deadline = time.monotonic() + 10
    url = f"{stack.base_url}/api/v1/models/{name}?version={version}"
    while httpx2.get(url, headers=stack.auth).status_code != 404:
        assert time.monotonic() < deadline, f"the server still serves {name} {version}"
        time.sleep(0.1)
