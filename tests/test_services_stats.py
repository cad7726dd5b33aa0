"""The charts' figures, counted by each database from jobs made at known times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine

from tests.factories import add_job
from webapp.db import make_session_factory
from webapp.models import utcnow
from webapp.services.stats import LATENCY_EDGES, StatsService, quantile

NOW = datetime(2026, 11, 29, 15, 30, tzinfo=UTC)
MS = timedelta(milliseconds=1)


def job_at(
    engine: Engine, created: datetime, status: str = "succeeded", took: timedelta | None = None, **values: Any
) -> None:
    add_job(engine, status=status, created_at=created, finished_at=None if took is None else created + took, **values)


@pytest.fixture
def stats(engine: Engine) -> StatsService:
    return StatsService(make_session_factory(engine))


def test_jobs_are_counted_per_hour_by_status(engine: Engine, stats: StatsService) -> None:
    this_hour = datetime(2026, 11, 29, 15, tzinfo=UTC)
    first_hour = datetime(2026, 11, 28, 16, tzinfo=UTC)
    job_at(engine, this_hour + timedelta(minutes=10), took=20 * MS)
    job_at(engine, this_hour + timedelta(minutes=29), took=300 * MS)
    job_at(engine, this_hour + timedelta(minutes=1), "failed", took=3000 * MS)
    job_at(engine, this_hour + timedelta(minutes=2), "queued")
    job_at(engine, first_hour, took=7 * MS)  # the first second of the window
    job_at(engine, first_hour - timedelta(seconds=1), took=7 * MS)  # the last second before it
    job_at(engine, datetime(2026, 11, 29, 12, 59, 59, tzinfo=UTC), "cancelled", took=1000 * MS)
    job_at(engine, datetime(2026, 11, 29, 12, 0, tzinfo=UTC), "running")

    activity = stats.activity(now=NOW)

    assert activity.since == first_hour
    assert [h.start for h in activity.hours] == [first_hour + timedelta(hours=i) for i in range(24)]
    counted = {h.start.hour: {s: n for s, n in h.counts.items() if n} for h in activity.hours if h.total}
    assert counted == {
        16: {"succeeded": 1},
        12: {"cancelled": 1, "running": 1},
        15: {"succeeded": 2, "failed": 1, "queued": 1},
    }
    assert activity.jobs == 7


def test_latencies_fall_in_their_buckets(engine: Engine, stats: StatsService) -> None:
    start = datetime(2026, 11, 29, 9, tzinfo=UTC)
    for took_ms in (7, 20, 24, 300, 3000, 90_000):
        job_at(engine, start, took=took_ms * MS)
    job_at(engine, start, "failed", took=40 * MS)
    job_at(engine, start, "cancelled", took=40 * MS)  # a cancelled job's time is not a latency
    job_at(engine, start - timedelta(days=2), took=40 * MS)  # out of the window

    buckets = stats.activity(now=NOW).latency

    assert [(b.low, b.high) for b in buckets][:2] == [(0.0, 0.005), (0.005, 0.01)]
    assert buckets[-1].high is None and buckets[-1].low == LATENCY_EDGES[-1]
    by_edge = {b.high: b.count for b in buckets if b.count}
    assert by_edge == {0.01: 1, 0.025: 2, 0.05: 1, 0.5: 1, 5.0: 1, None: 1}


def test_a_day_without_jobs_has_24_empty_hours(stats: StatsService) -> None:
    activity = stats.activity(now=NOW)

    assert len(activity.hours) == 24 and activity.jobs == 0 and activity.scored == 0


def test_a_models_latency_per_hour_over_seven_days(engine: Engine, stats: StatsService) -> None:
    hour = datetime(2026, 11, 27, 8, tzinfo=UTC)
    for took_ms in (20, 20, 20, 3000):
        job_at(engine, hour + timedelta(minutes=5), took=took_ms * MS)
    job_at(engine, hour, took=9000 * MS, model_name="penguins")  # another model
    job_at(engine, hour, "cancelled", took=9000 * MS)
    job_at(engine, datetime(2026, 11, 22, 15, 59, tzinfo=UTC), took=9000 * MS)  # just before the 7 days

    hours = stats.model_latency("sizes", now=NOW)

    assert len(hours) == 7 * 24 and hours[0].start == datetime(2026, 11, 22, 16, tzinfo=UTC)
    (busy,) = [h for h in hours if h.jobs]
    assert busy.start == hour and busy.jobs == 4
    # 3 of 4 in (10 ms, 25 ms], 1 in (2.5 s, 5 s]: linear within the bucket that holds the rank.
    assert busy.p50 == pytest.approx(0.01 + 0.015 * 2 / 3)
    assert busy.p95 == pytest.approx(2.5 + 2.5 * 0.8)


def test_quantiles_of_counted_buckets() -> None:
    counts = [0] * (len(LATENCY_EDGES) + 1)
    assert quantile(counts, 0.5) is None
    counts[0] = 2
    assert quantile(counts, 0.5) == pytest.approx(0.0025)
    counts[-1] = 8
    assert quantile(counts, 0.95) == LATENCY_EDGES[-1]


def test_a_process_keeps_the_figures_for_a_while(engine: Engine) -> None:
    kept = StatsService(make_session_factory(engine), cache_seconds=60)
    fresh = StatsService(make_session_factory(engine))
    assert kept.activity().jobs == fresh.activity().jobs == 0

    job_at(engine, utcnow() - timedelta(minutes=1), took=20 * MS)

    assert (kept.activity().jobs, fresh.activity().jobs) == (0, 1)
    assert kept.activity(now=utcnow()).jobs == 1  # asked for a given moment: counted now
