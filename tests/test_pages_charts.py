"""The charts on the home and model pages: inline SVG with a bar per figure, and a plain empty state."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.factories import add_job
from tests.html import one, parse
from webapp.models import utcnow

MS = timedelta(milliseconds=1)


def hours_ago(hours: int) -> datetime:
    """Ten minutes into the hour that began `hours` hours before this one: never on an hour's edge."""
    return utcnow().replace(minute=10, second=0, microsecond=0) - timedelta(hours=hours)


def job(engine: Engine, created: datetime, status: str = "succeeded", took_ms: int | None = 30, **values: Any) -> None:
    finished = None if took_ms is None else created + took_ms * MS
    add_job(engine, status=status, created_at=created, finished_at=finished, **values)


def test_the_home_page_charts_the_last_day(admin_client: TestClient, engine: Engine) -> None:
    job(engine, hours_ago(2))
    job(engine, hours_ago(2), took_ms=40)
    job(engine, hours_ago(2), "failed", took_ms=3000)
    job(engine, hours_ago(5), "cancelled")
    job(engine, hours_ago(30))  # more than a day ago

    page = parse(admin_client.get("/").text)

    per_hour = one(page, "figure#jobs-per-hour")
    svg = one(per_hour, "svg[role=img]")
    assert one(svg, "svg > title").text == "Jobs created per hour, by status"
    assert len(svg.select("g.bar-group")) == 24
    segments = [rect["class"][1] for rect in svg.select("rect.bar")]
    assert sorted(segments) == ["bar-cancelled", "bar-failed", "bar-succeeded"]
    assert len(one(per_hour, ".visually-hidden table").select("tbody tr")) == 24

    latency = one(page, "figure#latency")
    bars = latency.select("svg rect.bar")
    assert [one(bar, "title").text for bar in bars] == ["≤ 50 ms: 2 jobs", "≤ 5 s: 1 jobs"]


def test_stacked_segments_are_as_tall_as_their_share(admin_client: TestClient, engine: Engine) -> None:
    for _ in range(3):
        job(engine, hours_ago(1))
    job(engine, hours_ago(1), "failed")

    svg = one(parse(admin_client.get("/").text), "figure#jobs-per-hour svg")

    heights = {rect["class"][1]: float(str(rect["height"])) for rect in svg.select("rect.bar")}
    assert heights["bar-succeeded"] == pytest.approx(3 * heights["bar-failed"], abs=0.1)


def test_a_quiet_day_says_so(admin_client: TestClient, engine: Engine) -> None:
    job(engine, hours_ago(30))

    page = parse(admin_client.get("/").text)

    assert page.select("figure.chart") == []
    assert one(page, "section.activity p.empty").text == "No jobs in the last 24 hours."


def test_the_model_page_charts_its_latency_per_hour(admin_client: TestClient, engine: Engine) -> None:
    for hours in (3, 3, 27, 100):
        job(engine, hours_ago(hours), model_name="penguins")
    job(engine, hours_ago(3), model_name="sizes")
    job(engine, hours_ago(8 * 24), model_name="penguins")  # more than 7 days ago

    figure = one(parse(admin_client.get("/models/penguins").text), "figure#model-latency")

    assert len(figure.select("g.bar-group")) == 3
    assert len(figure.select("rect.bar-p50")) == len(figure.select("rect.bar-p95")) == 3
    assert len(one(figure, ".visually-hidden table").select("tbody tr")) == 3


def test_a_model_without_recent_jobs_has_no_chart(admin_client: TestClient, engine: Engine) -> None:
    job(engine, hours_ago(3), model_name="sizes")

    page = parse(admin_client.get("/models/penguins").text)

    assert page.select("figure.chart") == []
    assert "No finished jobs of this model in the last 7 days." in [p.text for p in page.select("p.empty")]
