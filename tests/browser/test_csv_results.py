"""A CSV job's results in its page, in Chromium at a laptop's and a phone's size: the first rows, the chart of the
predictions, the bad rows a page at a time (plain links), under the CSP and no wider than the window."""

from __future__ import annotations

import time
from typing import Any

import httpx2
import pytest
from playwright.sync_api import Browser, expect

from tests.browser.conftest import open_page, screenshot
from tests.browser.test_every_page import SIZES
from tests.stacks import Stack

ROWS = 300


def penguins() -> str:
    """300 rows, every fifth (60, more than a page) with a bill length that is not a number."""
    lines = [
        f"{('Biscoe', 'Dream', 'Torgersen')[n % 3]},{'n/a' if n % 5 == 0 else 35 + n % 20},{180 + n % 50},"
        f"{'male' if n % 2 else 'female'}"
        for n in range(1, ROWS + 1)
    ]
    return "island,bill_length_mm,flipper_length_mm,sex\n" + "\n".join(lines) + "\n"


def sizes() -> str:
    return "size,colour\n" + "\n".join(f"{n % 40},{('blue', 'red')[n % 2]}" for n in range(200)) + "\n"


@pytest.fixture(scope="module")
def jobs(stack: Stack) -> dict[str, str]:
    """A classifier's CSV job with bad rows and a regressor's, ended."""
    made = {}
    with httpx2.Client(base_url=stack.base_url, headers=stack.auth, timeout=30) as api:
        for name, model, text in (("classes", "penguins", penguins()), ("values", "sizes", sizes())):
            files = {"file": (f"{name}.csv", text, "text/csv")}
            made[name] = api.post("/api/v1/jobs/csv", files=files, data={"model": model}).json()["id"]
            deadline = time.monotonic() + 90
            while api.get(f"/api/v1/jobs/{made[name]}", params={"wait": 10}).json()["status"] in ("queued", "running"):
                assert time.monotonic() < deadline
    return made


@pytest.mark.parametrize("size", SIZES)
def test_a_csv_jobs_results_chart_and_bad_rows_fit_the_window(
    browser: Browser, stack: Stack, jobs: dict[str, Any], size: str
) -> None:
    viewport = SIZES[size]
    refusals: list[str] = []
    with open_page(browser, stack, refusals, viewport=viewport, is_mobile=size == "phone") as page:
        page.goto(f"{stack.base_url}/jobs/{jobs['classes']}")
        results = page.locator("#results")
        expect(results.locator("table.csv-preview tbody tr")).to_have_count(20)
        expect(results.locator("figure.chart svg rect.bar")).to_have_count(3)
        expect(results.locator("table.bad-rows tbody tr")).to_have_count(50)
        expect(results).to_contain_text("60 rows were not predicted; page 1 of 2")
        expect(page.locator("article.status-card")).to_contain_text("60 rows had bad values and were skipped")
        assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
        screenshot(page, f"csv-results-{size}")

        results.locator("nav.pager a[rel=next]").click()  # a plain link: works without JavaScript too
        page.wait_for_url("**bad_page=2*")
        rows = page.locator("table.bad-rows tbody tr")
        expect(rows).to_have_count(10)
        expect(rows.first.locator("td").first).to_have_text("255")
        expect(rows.first).to_contain_text("'n/a' is not a number")
        assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
        screenshot(page, f"csv-bad-rows-page-2-{size}")

        page.goto(f"{stack.base_url}/jobs/{jobs['values']}")
        chart = page.locator("#results figure.chart")
        expect(chart.locator("svg > title")).to_have_text("Predicted values")
        expect(chart.locator("rect.bar")).to_have_count(12)
        expect(page.locator("#results")).to_contain_text("None.")  # no bad rows
        assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
        screenshot(page, f"csv-results-regressor-{size}")
    assert refusals == [], "the page broke its Content-Security-Policy"
