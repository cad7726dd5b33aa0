"""After Predict: the answer comes into view with focus, earlier errors go, job pages stay live, and a job's inputs
can be edited and run again."""

from __future__ import annotations

import httpx2
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import open_page, register_diabetes, screenshot
from tests.browser.test_dashboard import fill_gentoo
from tests.stacks import Stack

SIZES = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}
GENTOO = {"island": "Biscoe", "bill_length_mm": 48.6, "flipper_length_mm": 230, "sex": "male"}
ADELIE = {"island": "Torgersen", "bill_length_mm": 39.1, "flipper_length_mm": 181, "sex": "female"}
IN_VIEW = "e => { const r = e.getBoundingClientRect(); return r.top >= 0 && r.top < window.innerHeight; }"


def fill_every_field(page: Page) -> None:
    """A valid value in every field: the middle of a number's range, the first choice of a list."""
    for field in page.locator("#predict-form input[type=number]").all():
        low, high = float(field.get_attribute("min") or 0), float(field.get_attribute("max") or 0)
        middle = (low + high) / 2
        field.fill(str(round(middle)) if field.get_attribute("step") == "1" else f"{middle:.3f}")
    for select in page.locator("#predict-form select").all():
        select.select_option(index=1)


@pytest.fixture(scope="module")
def diabetes(stack: Stack) -> None:
    register_diabetes(stack)


@pytest.mark.usefixtures("diabetes")
@pytest.mark.parametrize("size", SIZES)
def test_the_result_of_a_tall_form_comes_into_view_with_focus(
    browser: Browser, stack: Stack, csp_refusals: list[str], size: str
) -> None:
    with open_page(browser, stack, csp_refusals, viewport=SIZES[size], is_mobile=size == "phone") as page:
        page.goto(f"{stack.base_url}/models/diabetes")
        fill_every_field(page)
        page.click("#predict-form button[type=submit]")

        expect(page.locator("#job-status .badge")).to_have_text("succeeded", timeout=20_000)
        area = page.locator("#job-status")
        assert area.evaluate(IN_VIEW), "the result is on screen without scrolling"
        expect(area).to_be_focused()
        screenshot(page, f"predict-tall-form-result-{size}")
    assert csp_refusals == []


def test_a_success_clears_the_errors_of_the_refused_attempt(page: Page, stack: Stack) -> None:
    page.goto(f"{stack.base_url}/models/penguins")
    fill_gentoo(page)
    page.fill("#f-flipper_length_mm", "230.5")  # a fraction for a whole number: refused
    page.click("#predict-form button[type=submit]")
    expect(page.locator("#f-flipper_length_mm-error")).to_be_visible()
    expect(page.locator("#f-flipper_length_mm")).to_be_focused()  # the field to fix

    page.fill("#f-flipper_length_mm", "230")
    page.click("#predict-form button[type=submit]")

    expect(page.locator("#job-status .badge")).to_have_text("succeeded", timeout=20_000)
    expect(page.locator("#predict-form .form-error, #predict-form .field-error")).to_have_count(0)
    expect(page.locator("#predict-form .has-error, #predict-form [aria-invalid]")).to_have_count(0)
    screenshot(page, "predict-errors-cleared")


def test_a_batch_job_page_fills_in_its_predictions_after_run_again(page: Page, stack: Stack) -> None:
    with httpx2.Client(base_url=stack.base_url, headers=stack.auth, timeout=30) as api:
        job = api.post("/api/v1/jobs", json={"model": "penguins", "inputs": [GENTOO, ADELIE]}).json()
        api.get(f"/api/v1/jobs/{job['id']}", params={"wait": 30})
    page.goto(f"{stack.base_url}/jobs/{job['id']}")
    page.evaluate("window.notReloaded = true")

    page.click("text=Run again")

    page.wait_for_url(lambda url: job["id"] not in url)
    page.evaluate("window.notReloaded = true")
    expect(page.locator("article.status-card .badge")).to_have_text("succeeded", timeout=20_000)
    expect(page.locator("th", has_text="Prediction")).to_be_visible()
    expect(page.locator("article.status-card")).to_contain_text("2 predictions, in the table below")
    assert page.evaluate("window.notReloaded") is True, "the page filled in by itself"
    screenshot(page, "job-batch-run-again")


def test_a_job_can_be_edited_and_run_again_from_its_page(page: Page, stack: Stack) -> None:
    with httpx2.Client(base_url=stack.base_url, headers=stack.auth, timeout=30) as api:
        job = api.post("/api/v1/jobs", json={"model": "penguins", "inputs": GENTOO}).json()
    page.goto(f"{stack.base_url}/jobs/{job['id']}")

    page.click("text=Edit and run again")

    expect(page.locator("#f-island")).to_have_value("Biscoe")
    expect(page.locator("#f-bill_length_mm")).to_have_value("48.6")
    expect(page.locator("#f-sex")).to_have_value("male")
    page.fill("#f-bill_length_mm", "39.1")
    page.select_option("#f-island", "Torgersen")
    page.fill("#f-flipper_length_mm", "181")
    page.click("#predict-form button[type=submit]")
    expect(page.locator("#job-status .prediction strong")).to_have_text("Adelie", timeout=20_000)
    screenshot(page, "job-edit-and-run-again")
