"""GET /metrics: counters and histograms move by exactly what the jobs did, on a real database."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine

import webapp.metrics.worker  # noqa: F401  (registers the worker-side metric in this process)
from tests.conftest import RecordingEnqueue
from tests.factories import add_job
from tests.metrics import Samples, moved, parse, value
from webapp.db import make_session_factory
from webapp.metrics.exposition import MetricsService
from webapp.metrics.jobs import JobFigureSource
from webapp.metrics.tally import BUCKETS
from webapp.metrics.tracking import TrackingCollector
from webapp.models import utcnow
from webapp.services.models import ModelRegistry

PENGUIN = {"island": "Biscoe", "bill_length_mm": 48.6, "flipper_length_mm": 230, "sex": "male"}
README = (Path(__file__).resolve().parent.parent / "README.md").read_text()
SPANS = ("apot_job_wait_seconds", "apot_job_run_seconds", "apot_job_end_to_end_seconds")


def scrape(client: TestClient) -> Samples:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return parse(response.text)


def submit(client: TestClient, model: str, inputs: Any) -> str:
    response = client.post("/api/v1/jobs", json={"model": model, "inputs": inputs})
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def test_metrics_is_open_and_outside_the_api(client: TestClient) -> None:
    assert client.get("/metrics").status_code == 200  # no key, no session
    assert "/metrics" not in client.get("/openapi.json").json()["paths"]


def test_every_metric_is_in_the_readme_with_its_type(engine: Engine) -> None:
    add_job(engine, took=timedelta(seconds=1))
    tracking = TrackingCollector(make_session_factory(engine))
    web = MetricsService(JobFigureSource(engine), lambda: ("apot", 3), tracking).render().decode()
    worker = generate_latest(REGISTRY).decode()  # this process imported the worker-side metric
    exported = {
        family.name: family.type
        for family in text_string_to_metric_families(web + worker)
        if family.name.startswith("apot_")
    }
    section = README.split("## Metrics", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `(apot_[a-z0-9_]+)` \| (\w+) \|", section, flags=re.MULTILINE)
    assert {name.removesuffix("_total"): kind for name, kind in rows} == exported


def test_counters_and_histograms_move_by_what_the_jobs_did(
    client: TestClient, enqueue: RecordingEnqueue, registry: ModelRegistry
) -> None:
    before = scrape(client)
    submit(client, "penguins", PENGUIN)
    submit(client, "penguins", [PENGUIN, PENGUIN, PENGUIN])
    submit(client, "sizes", {"size": 2, "colour": "red"})
    csv = client.post(
        "/api/v1/jobs/csv",
        files={"file": ("s.csv", b"size,colour\n1,red\n2,green\n3,red\n4,blue\n", "text/csv")},
        data={"model": "sizes"},
    )
    assert csv.status_code == 202, csv.text
    cancelled = submit(client, "penguins", PENGUIN)
    enqueue.dispatches = [d for d in enqueue.dispatches if cancelled not in d.targets]
    assert client.post(f"/api/v1/jobs/{cancelled}/cancel").status_code == 200

    queued = scrape(client)
    assert moved(before, queued) == {
        ("apot_jobs_created_total", frozenset({("model", "penguins"), ("kind", "single")})): 2,
        ("apot_jobs_created_total", frozenset({("model", "penguins"), ("kind", "batch")})): 1,
        ("apot_jobs_created_total", frozenset({("model", "sizes"), ("kind", "single")})): 1,
        ("apot_jobs_created_total", frozenset({("model", "sizes"), ("kind", "csv")})): 1,
        ("apot_jobs_open", frozenset({("model", "penguins"), ("status", "queued")})): 2,
        ("apot_jobs_open", frozenset({("model", "sizes"), ("status", "queued")})): 2,
        ("apot_jobs_finished_total", frozenset({("model", "penguins"), ("status", "cancelled")})): 1,
        ("apot_rows_scored_total", frozenset({("model", "penguins")})): 0,  # a cancelled job did no rows
        ("apot_rows_failed_total", frozenset({("model", "penguins")})): 0,
    }

    enqueue.deliver(registry)

    after = scrape(client)
    for model, jobs, rows in (("penguins", 2, 4), ("sizes", 2, 5)):
        assert value(after, "apot_jobs_finished_total", model=model, status="succeeded") == jobs
        assert value(after, "apot_rows_scored_total", model=model) == rows
        assert value(after, "apot_jobs_open", model=model, status="queued") == 0
        for span in SPANS:  # the cancelled job is in none of them
            assert value(after, f"{span}_count", model=model) == jobs
            assert value(after, f"{span}_bucket", model=model, le="+Inf") == jobs
            assert value(after, f"{span}_sum", model=model) >= 0
    assert {key for key in moved(queued, after) if key[0] == "apot_jobs_created_total"} == set()


def test_histogram_buckets_and_sums_follow_the_job_rows(client: TestClient, engine: Engine) -> None:
    now = utcnow()
    for wait, run in ((0.02, 0.3), (0.02, 4.0), (40.0, 0.5)):  # 0.5 s is on a bound: "less than or equal"
        started = now - timedelta(seconds=run)
        add_job(engine, created_at=started - timedelta(seconds=wait), started_at=started, finished_at=now)

    samples = scrape(client)

    def buckets(name: str) -> dict[str, float]:
        return {le: value(samples, f"{name}_bucket", model="sizes", le=le) for le in ("0.025", "0.5", "5.0", "60.0")}

    assert buckets("apot_job_wait_seconds") == {"0.025": 2, "0.5": 2, "5.0": 2, "60.0": 3}
    assert buckets("apot_job_run_seconds") == {"0.025": 0, "0.5": 2, "5.0": 3, "60.0": 3}
    assert buckets("apot_job_end_to_end_seconds") == {"0.025": 0, "0.5": 1, "5.0": 2, "60.0": 3}
    assert value(samples, "apot_job_run_seconds_sum", model="sizes") == pytest.approx(4.8)
    assert value(samples, "apot_job_end_to_end_seconds_bucket", model="sizes", le="+Inf") == 3
    assert len(BUCKETS) + 1 == len([k for k in samples if k[0] == "apot_job_run_seconds_bucket"])


class Clock:
    """A clock the test moves: settled jobs are folded in as it passes them."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now


def test_folding_settled_jobs_in_neither_loses_nor_repeats_any(engine: Engine) -> None:
    clock = Clock()
    start = clock.now
    source = JobFigureSource(engine, settle_seconds=60, clock=clock)
    old = start - timedelta(minutes=10)
    add_job(engine, created_at=old, started_at=old, finished_at=old)
    add_job(engine, created_at=start, finished_at=start)
    add_job(engine, status="running", finished_at=None)

    def ended() -> int:
        return sum(t.jobs for t in source.read().ended.values())

    assert ended() == 2  # one folded at the first read, one recent
    assert ended() == 2  # read again: the folded one is not counted twice
    clock.now += timedelta(minutes=5)  # the recent one settles now
    assert ended() == 2
    clock.now -= timedelta(hours=1)  # a clock set back must not re-read what was folded
    assert ended() == 2
    later = start + timedelta(minutes=5)  # after the fold line (start + 4 min)
    add_job(engine, created_at=later, finished_at=later)
    figures = source.read()
    assert sum(t.jobs for t in figures.ended.values()) == 3
    assert [t.jobs for t in figures.open.values()] == [1]
