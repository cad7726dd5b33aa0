"""The charts as a browser draws them, under the Content-Security-Policy, with a day of jobs behind them."""

from __future__ import annotations

import random
from datetime import timedelta

from playwright.sync_api import Page, expect

from tests.browser.conftest import screenshot
from tests.stacks import Stack
from webapp.db import transaction
from webapp.models import Job, utcnow

STATUSES = ["succeeded"] * 16 + ["failed"] * 2 + ["cancelled"]


def a_day_of_jobs(stack: Stack) -> None:
    """Some hundreds of penguins jobs over the last day, busier in the afternoon, a few still queued or running."""
    rng = random.Random(9)
    now = utcnow()
    jobs = []
    for hours_ago in range(24):
        for _ in range(rng.randint(2, 30)):
            created = now - timedelta(hours=hours_ago, seconds=rng.uniform(0, 3599))
            status = (
                rng.choice(["queued", "running"]) if hours_ago == 0 and rng.random() < 0.2 else rng.choice(STATUSES)
            )
            took = timedelta(seconds=rng.lognormvariate(-3.5, 1.2))
            ended = status not in ("queued", "running")
            jobs.append(
                Job(
                    kind="single",
                    status=status,
                    model_name="penguins",
                    model_version="1",
                    task_id="t",
                    inputs=[],
                    rows_total=1,
                    created_at=min(created, now - took),
                    finished_at=min(created + took, now) if ended else None,
                )
            )
    with transaction(stack.models.sessions) as session:
        session.add_all(jobs)


def test_the_home_page_draws_its_charts(page: Page, stack: Stack) -> None:
    a_day_of_jobs(stack)

    page.goto(f"{stack.base_url}/")

    expect(page.locator("figure#jobs-per-hour svg g.bar-group")).to_have_count(24)
    expect(page.locator("figure#latency svg rect.bar").first).to_be_visible()
    # Coloured by the stylesheet (no style attributes under the CSP): a succeeded segment is green.
    fill = page.locator("figure#jobs-per-hour rect.bar-succeeded").first.evaluate("e => getComputedStyle(e).fill")
    assert fill == "rgb(47, 158, 91)"
    screenshot(page, "home-charts")

    page.goto(f"{stack.base_url}/models/penguins")
    expect(page.locator("figure#model-latency svg rect.bar-p50").first).to_be_visible()
    screenshot(page, "model-latency")
