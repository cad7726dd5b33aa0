"""An admin manages a model's versions in Chromium at a laptop's and a phone's size: make one the default, compare
two, remove one (after saying yes); and the diabetes form says what s1…s6 are."""

from __future__ import annotations

import time

import httpx2
import pytest
from playwright.sync_api import Browser, Dialog, expect

from tests.browser.conftest import open_page, register_diabetes, screenshot
from tests.browser.test_every_page import SIZES
from tests.models import sizes
from tests.stacks import Stack


def register_two_versions(stack: Stack, name: str) -> None:
    for factor in (10, 20):
        model = sizes(factor)
        stack.models.register(model.data, "joblib", name, training=model.training)
    deadline = time.monotonic() + 30  # the web server's registry cache is a few seconds old at most
    while httpx2.get(f"{stack.base_url}/api/v1/models/{name}", headers=stack.auth).status_code != 200:
        assert time.monotonic() < deadline, "the web server never saw the new model"
        time.sleep(0.5)


def finished_job(stack: Stack, name: str) -> None:
    with httpx2.Client(base_url=stack.base_url, headers=stack.auth, timeout=30) as api:
        job = api.post("/api/v1/jobs", json={"model": name, "inputs": {"size": 2, "colour": "red"}}).json()["id"]
        assert api.get(f"/api/v1/jobs/{job}", params={"wait": 20}).json()["status"] == "succeeded"


@pytest.mark.parametrize("size", SIZES)
def test_an_admin_sets_the_default_compares_and_removes_versions(browser: Browser, stack: Stack, size: str) -> None:
    name = f"boxes-{size}"
    register_two_versions(stack, name)
    finished_job(stack, name)
    refusals: list[str] = []
    with open_page(browser, stack, refusals, viewport=SIZES[size], is_mobile=size == "phone") as page:
        page.goto(f"{stack.base_url}/models/{name}")
        versions = page.locator("table.versions")
        assert page.evaluate("document.documentElement.scrollWidth") <= SIZES[size]["width"]
        screenshot(page, f"model-admin-{size}")

        versions.locator("tr", has_text="Predict with this version").locator("button", has_text="Make default").click()
        expect(versions.locator("tr", has=page.locator(".badge"))).to_contain_text("2")

        page.select_option("#compare-old", "1")
        page.select_option("#compare-new", "2")
        page.click("text=Compare versions")
        page.wait_for_url("**/compare")
        expect(page.locator("#comparison")).to_contain_text("1", timeout=20_000)
        assert page.evaluate("document.documentElement.scrollWidth") <= SIZES[size]["width"]
        screenshot(page, f"model-admin-compare-{size}")

        page.goto(f"{stack.base_url}/models/{name}")
        questions: list[str] = []

        def say_no(dialog: Dialog) -> None:
            questions.append(dialog.message)
            dialog.dismiss()

        page.once("dialog", say_no)
        versions.locator("tr", has_text="Predict with this version").locator("button", has_text="Remove").click()
        expect(versions.locator("tbody tr")).to_have_count(2)
        page.once("dialog", lambda dialog: dialog.accept())
        versions.locator("tr", has_text="Predict with this version").locator("button", has_text="Remove").click()
        expect(versions.locator("tbody tr")).to_have_count(1)
        assert questions and "Remove version 1" in questions[0]
        screenshot(page, f"model-admin-removed-{size}")
    assert refusals == []


def test_the_diabetes_form_says_what_its_serum_fields_are(browser: Browser, stack: Stack) -> None:
    register_diabetes(stack)
    refusals: list[str] = []
    with open_page(browser, stack, refusals, viewport=SIZES["phone"], is_mobile=True) as page:
        page.goto(f"{stack.base_url}/models/diabetes")
        expect(page.locator("#f-s1-hint")).to_contain_text("tc: total serum cholesterol")
        expect(page.locator("label[for=f-bmi]")).to_contain_text("(kg/m²)")
        assert page.evaluate("document.documentElement.scrollWidth") <= SIZES["phone"]["width"]
        screenshot(page, "model-diabetes-described-phone")
    assert refusals == []
