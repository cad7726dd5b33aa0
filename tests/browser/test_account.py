"""A user's own settings in Chromium at a laptop's and a phone's size: the account and keys pages, times in the
reader's zone, a key made once however often the page is reloaded, and changing the password (last: it ends the
module's other sessions)."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, expect

from tests.accounts import PASSWORD
from tests.browser.conftest import open_page, screenshot
from tests.browser.test_every_page import SIZES
from tests.stacks import Stack


def fits(page_width: int, size: str) -> bool:
    return page_width <= SIZES[size]["width"]


@pytest.mark.parametrize("size", SIZES)
def test_the_account_and_keys_pages_fit_and_show_times_in_the_readers_zone(
    browser: Browser, stack: Stack, size: str
) -> None:
    refusals: list[str] = []
    options = {"viewport": SIZES[size], "is_mobile": size == "phone", "timezone_id": "Asia/Kolkata"}
    with open_page(browser, stack, refusals, **options) as page:
        page.goto(f"{stack.base_url}/settings/account")
        expect(page.locator("h2")).to_have_text("Change your password")
        assert fits(page.evaluate("document.documentElement.scrollWidth"), size)
        screenshot(page, f"account-{size}")

        page.goto(f"{stack.base_url}/settings/keys")
        made = page.locator("#keys td[data-label='Made'] time").first
        expect(made).to_have_attribute("data-local", "1")
        assert made.inner_text().endswith(("IST", "GMT+5:30")), "shown in the browser's zone, named"
        assert made.get_attribute("title", timeout=1000).endswith(" UTC")  # type: ignore[union-attr]
        assert fits(page.evaluate("document.documentElement.scrollWidth"), size)
        screenshot(page, f"account-keys-{size}")
    assert refusals == []


def test_without_javascript_times_stay_in_utc_and_say_so(browser: Browser, stack: Stack) -> None:
    with open_page(browser, stack, [], viewport=SIZES["desktop"], java_script_enabled=False) as page:
        page.goto(f"{stack.base_url}/settings/keys")
        assert page.locator("#keys td[data-label='Made'] time").first.inner_text().endswith(" UTC")


def test_reloading_after_make_a_key_makes_no_other_key(browser: Browser, stack: Stack) -> None:
    refusals: list[str] = []
    with open_page(browser, stack, refusals, viewport=SIZES["phone"], is_mobile=True) as page:
        page.goto(f"{stack.base_url}/settings/keys")
        page.click("text=Make a key")
        assert page.evaluate("document.querySelector('#key-name').validity.valueMissing"), "the browser asks first"
        page.fill("#key-name", "made-once")
        page.click("text=Make a key")
        secret = page.locator("#new-key").inner_text().strip()
        assert page.url.endswith("/settings/keys") and secret not in page.url
        page.reload()
        expect(page.locator("#keys tr", has_text="made-once")).to_have_count(1)
        expect(page.locator("#new-key")).to_have_count(0)
    assert refusals == []


def test_changing_the_password_keeps_this_browser_signed_in(browser: Browser, stack: Stack) -> None:
    refusals: list[str] = []
    with open_page(browser, stack, refusals, viewport=SIZES["desktop"]) as page:
        page.goto(f"{stack.base_url}/settings/account")
        page.fill("#current-password", "not it at all")
        page.fill("#new-password", "a new long passphrase")
        page.fill("#again-password", "a new long passphrase")
        page.click("text=Change password")
        expect(page.locator(".field-error")).to_contain_text("not your current password")
        page.fill("#current-password", PASSWORD)
        page.fill("#new-password", "a new long passphrase")
        page.fill("#again-password", "a new long passphrase")
        page.click("text=Change password")
        expect(page.locator("[role=status]")).to_contain_text("Your password was changed")
        screenshot(page, "account-password-changed-desktop")
        page.reload()
        expect(page.locator("h2")).to_have_text("Change your password")
        expect(page.locator("[role=status]")).to_have_count(0)
    assert refusals == []
