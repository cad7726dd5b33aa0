"""The model page's tracking sections as a browser shows them: a drifting feature flagged, today's distribution
against the reference drawn, and the figures of the outcomes reported; a job page's explanation, live."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import update

from apot.client import Client
from ml.demo import training_data
from tests.browser.conftest import open_page, screenshot
from tests.browser.test_predict_flow import SIZES
from tests.stacks import Stack
from webapp.db import transaction
from webapp.models import Job, utcnow


def test_the_model_page_flags_drift_and_shows_how_right_the_model_was(page: Page, stack: Stack, tmp_path: Path) -> None:
    features, species = training_data()
    sample = features.sample(n=300, replace=True, random_state=4)
    truth = species.loc[sample.index].tolist()
    sample = sample.reset_index(drop=True)
    # Flipper lengths from the top of their range only: that feature drifts, the others do not.
    top = features["flipper_length_mm"]
    sample["flipper_length_mm"] = np.random.default_rng(4).integers(int(top.quantile(0.85)), int(top.max()), 300)
    path = tmp_path / "birds.csv"
    sample.to_csv(path, index=False)
    with Client(stack.base_url, api_key=stack.account.key) as client:
        job = client.wait(client.submit_csv("penguins", path)["id"], timeout=120)
        assert job["status"] == "succeeded"
        outcomes = tmp_path / "outcomes.csv"
        outcomes.write_text("job_id,row,outcome\n" + "".join(f"{job['id']},{i},{t}\n" for i, t in enumerate(truth)))
        assert client.record_outcomes(outcomes) == 300

    page.goto(f"{stack.base_url}/models/penguins")

    expect(page.locator("#drift .drift-flag")).to_contain_text("flipper_length_mm")
    expect(page.locator("#drift tr.flagged")).to_have_count(1)
    chart = page.locator("#drift figure.chart").first
    expect(chart.locator("rect.bar-today").first).to_be_visible()
    fill = chart.locator("rect.bar-reference").first.evaluate("e => getComputedStyle(e).fill")
    assert fill == "rgb(156, 195, 234)", "coloured by the stylesheet, under the CSP"
    expect(page.locator("#outcomes tr[data-version='1'] td").first).to_have_text("300 of 300 predictions")
    expect(page.locator("figure#outcomes-over-time rect.bar-version-0")).to_have_count(1)
    screenshot(page, "model-tracking")


def test_a_single_row_jobs_page_shows_what_moves_its_prediction(page: Page, stack: Stack) -> None:
    with Client(stack.base_url, api_key=stack.account.key) as client:
        job = client.predict("penguins", {"island": "Dream", "bill_length_mm": 49.0, "flipper_length_mm": 195})

    page.goto(f"{stack.base_url}/jobs/{job['id']}")

    # htmx asks for the panel, which polls itself until the worker has scored the explain job.
    curves = page.locator("#explanation figure.curve")
    expect(curves).to_have_count(len(stack.models.get("penguins").schema.features), timeout=20_000)
    expect(curves.first.locator("polyline.curve-line")).to_be_visible()
    expect(page.locator("#explanation table.contributions tr")).to_have_count(6)
    stroke = curves.first.locator("polyline").evaluate("e => getComputedStyle(e).fill")
    assert stroke == "none", "drawn as a line, coloured by the stylesheet"
    screenshot(page, "job-explanation")


@pytest.mark.parametrize("size", SIZES)
def test_the_explanation_appears_when_a_job_ends_without_a_reload(
    browser: Browser, stack: Stack, csp_refusals: list[str], size: str
) -> None:
    bird = {"island": "Biscoe", "bill_length_mm": 47.0, "flipper_length_mm": 215, "sex": "female"}
    with Client(stack.base_url, api_key=stack.account.key) as client:
        result = client.predict("penguins", bird)["result"]
    running = Job(
        kind="single",
        status="running",
        owner_id=stack.account.principal.user_id,
        model_name="penguins",
        model_version="1",
        task_id="t",
        inputs=[bird],
        rows_total=1,
        started_at=utcnow(),
    )
    with transaction(stack.models.sessions) as session:
        session.add(running)
    with open_page(browser, stack, csp_refusals, viewport=SIZES[size], is_mobile=size == "phone") as page:
        page.goto(f"{stack.base_url}/jobs/{running.id}")
        page.evaluate("window.notReloaded = true")
        expect(page.locator("article.status-card .badge")).to_have_text("running")
        expect(page.locator("#explanation")).to_have_count(0)

        with transaction(stack.models.sessions) as session:  # as a worker ends it
            ended = {"status": "succeeded", "result": result, "rows_done": 1, "finished_at": utcnow()}
            session.execute(update(Job).where(Job.id == running.id).values(**ended))

        curves = page.locator("#explanation figure.curve")
        expect(curves).to_have_count(len(stack.models.get("penguins").schema.features), timeout=20_000)
        assert page.evaluate("window.notReloaded"), "the panel came live, without a reload"
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= SIZES[size]["width"], f"the job page scrolls sideways ({width}px)"
        screenshot(page, f"job-explanation-live-{size}")
    assert csp_refusals == []
