"""The dashboard as a person uses it: fill the form, watch the job, find it in the history."""

from __future__ import annotations

from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import open_page, screenshot
from tests.stacks import Stack


def fill_gentoo(page: Page, bill_length: str = "48.6") -> None:
    page.select_option("#f-island", "Biscoe")
    page.fill("#f-bill_length_mm", bill_length)
    page.fill("#f-flipper_length_mm", "230")
    page.select_option("#f-sex", "male")


def test_submitting_the_form_shows_the_result_without_a_reload(
    page: Page, stack: Stack, csp_refusals: list[str]
) -> None:
    """htmx posts the form and then polls the status card, all under the Content-Security-Policy."""
    page.goto(f"{stack.base_url}/models/penguins")
    page.evaluate("window.notReloaded = true")
    fill_gentoo(page)
    polls: list[str] = []
    page.on("request", lambda request: polls.append(request.url) if request.url.endswith("/status") else None)

    page.click("#predict-form button[type=submit]")

    card = page.locator("#job-status article.status-card")
    expect(card).to_have_class("card status-card status-succeeded", timeout=20_000)
    assert polls, "the card reached its end by htmx polling it"
    assert csp_refusals == [], "htmx must work without anything the Content-Security-Policy refuses"
    expect(card.locator(".prediction strong")).to_have_text("Gentoo")
    expect(card.locator(".probabilities meter")).to_have_count(3)
    expect(card.locator(".steps li.current")).to_have_text("Done")
    assert page.evaluate("window.notReloaded") is True, "the page must not reload"
    assert "/models/penguins" in page.url
    screenshot(page, "predict")


def test_an_invalid_value_is_explained_next_to_its_field(page: Page, stack: Stack) -> None:
    page.goto(f"{stack.base_url}/models/penguins")
    page.evaluate("window.notReloaded = true")
    fill_gentoo(page)
    page.fill("#f-flipper_length_mm", "230.5")

    page.click("#predict-form button[type=submit]")

    error = page.locator("#f-flipper_length_mm-error")
    expect(error).to_contain_text("valid integer")
    expect(page.locator("#f-flipper_length_mm")).to_have_value("230.5")
    expect(page.locator("#f-island")).to_have_value("Biscoe")
    expect(page.locator("#job-status article")).to_have_count(0)
    assert page.evaluate("window.notReloaded") is True
    screenshot(page, "predict-invalid")

    page.fill("#f-flipper_length_mm", "230")  # fixing it and submitting again works from the swapped-in form
    page.click("#predict-form button[type=submit]")
    expect(page.locator("#job-status .badge")).to_have_text("succeeded", timeout=20_000)


def test_a_value_outside_the_training_range_is_scored_and_the_card_says_so(page: Page, stack: Stack) -> None:
    page.goto(f"{stack.base_url}/models/penguins")
    fill_gentoo(page, bill_length="500")

    page.click("#predict-form button[type=submit]")

    card = page.locator("#job-status article.status-card")
    expect(card.locator(".badge")).to_have_text("succeeded", timeout=20_000)
    expect(card.locator("ul.warnings li")).to_have_text(
        "bill_length_mm = 500.0: outside the range seen in training (32.1 to 59.6)"
    )
    screenshot(page, "predict-warning")


def test_the_new_job_is_in_the_history_and_has_its_page(page: Page, stack: Stack) -> None:
    page.goto(f"{stack.base_url}/models/penguins")
    fill_gentoo(page)
    page.click("#predict-form button[type=submit]")
    link = page.locator("#job-status article header a")
    expect(link).to_be_visible()
    job_path = link.get_attribute("href") or ""
    job_id = job_path.rsplit("/", 1)[-1]

    page.click("nav >> text=Jobs")

    row = page.locator(f"#row-{job_id}")
    expect(row).to_be_visible()
    expect(row.locator(".badge")).to_have_text("succeeded", timeout=20_000)
    screenshot(page, "jobs")
    row.locator("a").first.click()
    expect(page.locator("h1")).to_contain_text(job_id)
    expect(page.locator("article.status-card .prediction strong")).to_have_text("Gentoo")
    screenshot(page, "job")


def test_the_form_works_by_keyboard_alone(page: Page, stack: Stack) -> None:
    page.goto(f"{stack.base_url}/models/penguins")
    page.focus("#f-island")
    page.keyboard.press("B")  # a focused select takes the option whose text starts with the key
    page.keyboard.press("Tab")
    page.keyboard.type("48.6")
    page.keyboard.press("Tab")
    page.keyboard.type("230")
    page.keyboard.press("Enter")
    expect(page.locator("#job-status .badge")).to_have_text("succeeded", timeout=20_000)


def test_without_javascript_the_form_posts_and_lands_on_the_job_page(browser: Browser, stack: Stack) -> None:
    with open_page(browser, stack, [], java_script_enabled=False) as page:
        page.goto(f"{stack.base_url}/models/penguins")
        fill_gentoo(page)
        page.click("#predict-form button[type=submit]")
        page.wait_for_url("**/jobs/*")
        # The page refreshes itself (no script needed) until the job has ended.
        expect(page.locator("article.status-card .badge")).to_have_text("succeeded", timeout=20_000)


def test_pages_are_readable_on_a_phone(browser: Browser, stack: Stack) -> None:
    with open_page(browser, stack, [], viewport={"width": 390, "height": 844}, is_mobile=True) as page:
        page.goto(f"{stack.base_url}/models/penguins")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"the predict page scrolls sideways on a phone ({width}px)"
        screenshot(page, "predict-phone")
