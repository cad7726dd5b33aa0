"""Every page at a laptop's and a phone's size: nothing the Content-Security-Policy refuses, nothing wider than the
window, and a screenshot of each for people to look at (test-output/screenshots/page-*)."""

from __future__ import annotations

import time

import httpx2
import pytest
from playwright.sync_api import Browser, Dialog, expect

from tests.browser.conftest import open_page, register_diabetes, screenshot
from tests.stacks import Stack

SIZES = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}
GENTOO = {"island": "Biscoe", "bill_length_mm": 48.6, "flipper_length_mm": 230, "sex": "male"}
ADELIE = {"island": "Torgersen", "bill_length_mm": 39.1, "flipper_length_mm": 181, "sex": "female"}
OPEN = ("queued", "running")
CSV = "island,bill_length_mm,flipper_length_mm\nBiscoe,48.6,230\nDream,nope,190\nTorgersen,39.1,181\n"


@pytest.fixture(scope="module")
def jobs(stack: Stack) -> dict[str, str]:
    """One ended job of each kind, by name (and the diabetes demo registered)."""
    register_diabetes(stack)
    with httpx2.Client(base_url=stack.base_url, headers=stack.auth, timeout=30) as api:
        single = api.post("/api/v1/jobs", json={"model": "penguins", "inputs": GENTOO}).json()["id"]
        batch = api.post("/api/v1/jobs", json={"model": "penguins", "inputs": [GENTOO, ADELIE]}).json()["id"]
        files = {"file": ("penguins.csv", CSV, "text/csv")}
        csv_job = api.post("/api/v1/jobs/csv", files=files, data={"model": "penguins"}).json()["id"]
        for job_id in (single, batch, csv_job):
            deadline = time.monotonic() + 90
            while (status := api.get(f"/api/v1/jobs/{job_id}", params={"wait": 10}).json()["status"]) in OPEN:
                assert time.monotonic() < deadline, f"job {job_id} still {status}"
            assert status == "succeeded"
    return {"single": single, "batch": batch, "csv": csv_job}


def pages(jobs: dict[str, str]) -> dict[str, str]:
    return {
        "home": "/",
        "model-penguins": "/models/penguins",
        "model-diabetes": "/models/diabetes",
        "upload": "/upload",
        "jobs": "/jobs",
        "job-single": f"/jobs/{jobs['single']}",
        "job-batch": f"/jobs/{jobs['batch']}",
        "job-csv": f"/jobs/{jobs['csv']}",
        "account": "/settings/account",
        "keys": "/settings/keys",
        "users": "/admin/users",
        "api-docs": "/docs",
    }


@pytest.mark.parametrize("size", SIZES)
def test_every_page_fits_the_window_under_the_csp(
    browser: Browser, stack: Stack, jobs: dict[str, str], size: str
) -> None:
    viewport = SIZES[size]
    refusals: list[str] = []
    too_wide: dict[str, int] = {}
    with open_page(browser, stack, refusals, viewport=viewport, is_mobile=size == "phone") as page:
        for name, path in pages(jobs).items():
            response = page.goto(f"{stack.base_url}{path}")
            assert response is not None and response.ok, f"{path} answered {response and response.status}"
            page.wait_for_load_state("networkidle")
            if name == "api-docs":
                page.locator("#swagger-ui .opblock").first.wait_for()
            width = page.evaluate("document.documentElement.scrollWidth")
            if width > viewport["width"]:
                too_wide[name] = width
            screenshot(page, f"page-{name}-{size}")
    assert refusals == [], "a page broke its Content-Security-Policy"
    assert too_wide == {}, f"pages wider than the {viewport['width']} px window (they scroll sideways)"


def test_signing_in_fits_a_phone(browser: Browser, stack: Stack) -> None:
    refusals: list[str] = []
    with open_page(browser, None, refusals, viewport=SIZES["phone"], is_mobile=True) as page:
        page.goto(f"{stack.base_url}/login")
        assert page.evaluate("document.documentElement.scrollWidth") <= SIZES["phone"]["width"]
        screenshot(page, "page-login-phone")
    assert refusals == []


def test_revoking_a_key_asks_first_and_the_new_key_has_a_copy_button(
    browser: Browser, stack: Stack, csp_refusals: list[str]
) -> None:
    with open_page(browser, stack, csp_refusals, viewport=SIZES["desktop"]) as page:
        page.context.grant_permissions(["clipboard-read", "clipboard-write"])
        page.goto(f"{stack.base_url}/settings/keys")
        page.fill("#key-name", "to-revoke")
        page.click("text=Make a key")
        page.click("#new-key + button.copy")
        assert page.evaluate("navigator.clipboard.readText()") == page.locator("#new-key").inner_text().strip()
        row = page.locator("#keys tr", has_text="to-revoke")
        questions: list[str] = []

        def say_no(dialog: Dialog) -> None:
            questions.append(dialog.message)
            dialog.dismiss()

        page.evaluate("window.notReloaded = true")
        page.once("dialog", say_no)
        row.locator("button", has_text="Revoke").click()
        page.wait_for_load_state("networkidle")
        assert page.evaluate("window.notReloaded") is True, "said no: the form was not sent"
        expect(row).to_contain_text("in use")

        page.once("dialog", lambda dialog: dialog.accept())
        row.locator("button", has_text="Revoke").click()
        expect(page.locator("#keys tr", has_text="to-revoke")).to_contain_text("revoked")
        assert questions and "to-revoke" in questions[0]
    assert csp_refusals == []
