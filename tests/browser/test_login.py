"""Signing in with a browser: every page sends a stranger to the sign-in form, which sends them back afterwards."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.accounts import PASSWORD, Account, add_account
from tests.browser.conftest import screenshot
from tests.stacks import Stack


@pytest.fixture(scope="module")
def bea(stack: Stack) -> Account:
    """A member of the browser stack, who signs in with her name and password."""
    return add_account(stack.models.sessions, "bea")


def sign_in(page: Page, name: str, password: str) -> None:
    page.fill("#login-name", name)
    page.fill("#login-password", password)
    page.click("form[action$='/login'] button[type=submit]")


def test_a_stranger_visiting_jobs_lands_on_the_sign_in_page(anonymous_page: Page, stack: Stack) -> None:
    anonymous_page.goto(f"{stack.base_url}/jobs")

    assert anonymous_page.url.startswith(f"{stack.base_url}/login"), anonymous_page.url
    expect(anonymous_page.locator("h1")).to_have_text("Sign in")
    expect(anonymous_page.locator("nav")).to_have_count(0)
    screenshot(anonymous_page, "login")


def test_signing_in_lands_back_on_the_page_asked_for(anonymous_page: Page, stack: Stack, bea: Account) -> None:
    anonymous_page.goto(f"{stack.base_url}/jobs")

    sign_in(anonymous_page, bea.name, PASSWORD)

    anonymous_page.wait_for_url(f"{stack.base_url}/jobs")
    expect(anonymous_page.locator("h1")).to_have_text("Jobs")
    expect(anonymous_page.locator(".account")).to_contain_text(bea.name)


def test_a_wrong_password_is_refused_on_the_form(anonymous_page: Page, stack: Stack, bea: Account) -> None:
    anonymous_page.goto(f"{stack.base_url}/jobs")

    sign_in(anonymous_page, bea.name, "not her password")

    expect(anonymous_page.locator("form .field-error")).to_contain_text("do not match")
    assert anonymous_page.url.startswith(f"{stack.base_url}/login")
    expect(anonymous_page.locator("#login-name")).to_have_value(bea.name)


def test_a_member_who_signed_in_sees_htmx_poll_her_job_to_the_end(
    anonymous_page: Page, stack: Stack, bea: Account, csp_refusals: list[str]
) -> None:
    """The whole way a person goes, under the Content-Security-Policy: sign in, predict, watch the card update."""
    anonymous_page.goto(f"{stack.base_url}/models/penguins")
    sign_in(anonymous_page, bea.name, PASSWORD)
    anonymous_page.wait_for_url(f"{stack.base_url}/models/penguins")
    anonymous_page.evaluate("window.notReloaded = true")
    anonymous_page.select_option("#f-island", "Biscoe")
    anonymous_page.fill("#f-bill_length_mm", "48.6")
    anonymous_page.fill("#f-flipper_length_mm", "230")
    anonymous_page.select_option("#f-sex", "male")

    anonymous_page.click("#predict-form button[type=submit]")

    card = anonymous_page.locator("#job-status article.status-card")
    expect(card.locator(".badge")).to_have_text("succeeded", timeout=20_000)
    expect(card.locator(".prediction strong")).to_have_text("Gentoo")
    assert anonymous_page.evaluate("window.notReloaded") is True, "the page must not reload"
    assert csp_refusals == [], "htmx must work without anything the Content-Security-Policy refuses"
