"""The history filtered by model, status and days in the reader's time zone, with its total, its user column and
its export, at a laptop's and a phone's size (screenshots test-output/screenshots/page-jobs-filtered-*)."""

from __future__ import annotations

import csv
import io
import re
import time
from datetime import datetime
from zoneinfo import ZoneInfo

import httpx2
import pytest
from playwright.sync_api import Browser, expect

from tests.browser.conftest import open_page, screenshot
from tests.browser.test_every_page import ADELIE, GENTOO, SIZES
from tests.stacks import Stack

ZONE = "Pacific/Kiritimati"  # UTC+14: its today is rarely UTC's, so days in the wrong zone would show no jobs


@pytest.fixture(scope="module")
def ended(stack: Stack) -> list[str]:
    """Two ended jobs of penguins."""
    with httpx2.Client(base_url=stack.base_url, headers=stack.auth, timeout=30) as api:
        ids = [
            api.post("/api/v1/jobs", json={"model": "penguins", "inputs": row}).json()["id"] for row in (GENTOO, ADELIE)
        ]
        deadline = time.monotonic() + 90
        for job_id in ids:
            while api.get(f"/api/v1/jobs/{job_id}", params={"wait": 10}).json()["status"] in ("queued", "running"):
                assert time.monotonic() < deadline
    return ids


@pytest.mark.parametrize("size", SIZES)
def test_the_filtered_history_fits_and_exports_what_it_lists(
    browser: Browser, stack: Stack, ended: list[str], size: str
) -> None:
    refusals: list[str] = []
    viewport = SIZES[size]
    today = datetime.now(ZoneInfo(ZONE)).date().isoformat()
    with open_page(browser, stack, refusals, viewport=viewport, is_mobile=size == "phone", timezone_id=ZONE) as page:
        page.goto(f"{stack.base_url}/jobs")
        page.select_option("#filter-model", "penguins")
        page.select_option("#filter-status", "succeeded")
        page.fill("#filter-from", today)
        page.fill("#filter-to", today)
        page.locator("#filter-to").dispatch_event("change")
        zone = ZONE.replace("/", "%2F")
        expect(page).to_have_url(re.compile(f"model=penguins&.*from={today}&to={today}&tz={zone}"))
        expect(page.locator(".history-total")).to_contain_text(f"days in {ZONE}")
        rows = [str(row.get_attribute("id")).removeprefix("row-") for row in page.locator("#results tbody tr").all()]
        assert set(ended) <= set(rows)
        total = page.locator(".history-total strong").inner_text()
        assert total == f"{len(rows)} jobs"
        assert page.locator("#results thead th").nth(1).inner_text() == "User"
        href = page.locator(".history-total a[download]").get_attribute("href")
        assert href is not None
        exported = page.request.get(href)
        assert exported.ok and exported.headers["content-type"].startswith("text/csv")
        assert [line["id"] for line in csv.DictReader(io.StringIO(exported.text()))] == rows
        page.wait_for_load_state("networkidle")
        width = page.evaluate("document.documentElement.scrollWidth")
        screenshot(page, f"page-jobs-filtered-{size}")
    assert refusals == [], "the history broke its Content-Security-Policy"
    assert width <= viewport["width"], f"the filtered history is {width} px wide in a {viewport['width']} px window"
