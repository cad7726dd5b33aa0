"""Uploading a CSV in the browser and watching its progress bar fill."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page, expect

from ml.demo import write_sample_csv
from tests.browser.conftest import screenshot
from tests.stacks import Stack


def test_an_upload_shows_a_progress_bar_that_reaches_100_percent(page: Page, stack: Stack, tmp_path: Path) -> None:
    sample = write_sample_csv(tmp_path / "penguins.csv", 20_000, seed=3)
    page.goto(f"{stack.base_url}/models/penguins")
    page.click("text=Upload a CSV")
    expect(page.locator("#upload-model")).to_have_value("penguins")
    page.set_input_files("#upload-file", str(sample))

    page.click("#upload-form button[type=submit]")

    page.wait_for_url("**/jobs/*")
    bar = page.locator("article.status-card progress")
    expect(bar).to_have_attribute("max", "20000")
    expect(page.locator("article.status-card .badge")).to_have_text("succeeded", timeout=30_000)
    expect(bar).to_have_attribute("value", "20000")
    expect(page.locator(".progress-facts")).to_contain_text("20,000 of 20,000 rows (100 %)")
    download = page.locator("text=Download results")
    expect(download).to_be_visible()
    with page.expect_download() as caught:
        download.click()
    saved = caught.value.path()
    assert saved is not None
    assert len(Path(saved).read_text().splitlines()) == 20_001
    screenshot(page, "csv-job")


def test_a_file_without_the_models_columns_is_explained_on_the_form(page: Page, stack: Stack, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("species,island\nAdelie,Dream\n")
    page.goto(f"{stack.base_url}/upload?model=penguins")
    page.set_input_files("#upload-file", str(wrong))
    page.click("#upload-form button[type=submit]")
    expect(page.locator("#upload-file-error")).to_contain_text("bill_length_mm, flipper_length_mm")
    assert "/upload" in page.url
    screenshot(page, "upload-invalid")
