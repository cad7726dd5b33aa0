"""What the charts show: jobs per hour by status, and how long jobs took, counted by the database.

Every figure is one GROUP BY over the jobs created in the window, found through the (created_at, id) or
(model_name, created_at, id) index: the database returns a few hundred counts, never the jobs themselves. Hours and
latencies are computed by two small SQL expressions that compile differently on SQLite and Postgres.
"""

from __future__ import annotations

import time
import uuid
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar, cast

from sqlalchemy import ColumnElement, Float, Integer, case, func, literal_column, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from webapp.models import Job, JobStatus, utcnow
from webapp.services.jobs import owned_by

T = TypeVar("T")
# How long a web process shows the same charts: bars an hour wide hardly move in half a minute.
STATS_CACHE_SECONDS = 30.0
HOUR = 3600
# Upper edges of the latency buckets, in seconds (the last bucket has none): the 1-2.5-5 steps people read easily.
LATENCY_EDGES = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# Jobs whose latency is counted: they ran to an end (a cancelled job's time says nothing about the model).
SCORED = (JobStatus.SUCCEEDED, JobStatus.FAILED)


class unix_hour(FunctionElement[int]):
    """Whole hours since 1970-01-01 UTC of a timestamp column."""

    type = Integer()
    inherit_cache = True


@compiles(unix_hour, "sqlite")
def _unix_hour_sqlite(element: unix_hour, compiler: SQLCompiler, **kw: Any) -> str:
    # strftime('%s') gives whole seconds exactly; SQLite divides integers as integers.
    return f"(CAST(strftime('%s', {compiler.process(element.clauses, **kw)}) AS INTEGER) / {HOUR})"


@compiles(unix_hour, "postgresql")
def _unix_hour_postgres(element: unix_hour, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST(floor(date_part('epoch', {compiler.process(element.clauses, **kw)}) / {HOUR}) AS INTEGER)"


class seconds_between(FunctionElement[float]):
    """Seconds from the first timestamp column to the second."""

    type = Float()
    inherit_cache = True


@compiles(seconds_between, "sqlite")
def _seconds_between_sqlite(element: seconds_between, compiler: SQLCompiler, **kw: Any) -> str:
    start, end = (compiler.process(c, **kw) for c in element.clauses)
    return f"((julianday({end}) - julianday({start})) * 86400.0)"


@compiles(seconds_between, "postgresql")
def _seconds_between_postgres(element: seconds_between, compiler: SQLCompiler, **kw: Any) -> str:
    start, end = (compiler.process(c, **kw) for c in element.clauses)
    return f"date_part('epoch', {end} - {start})"


def latency_bucket(latency: ColumnElement[float]) -> ColumnElement[int]:
    """The index in LATENCY_EDGES of the first edge at or above `latency`; len(LATENCY_EDGES) past the last."""
    # Literals, not bound parameters: Postgres must see the same text in SELECT and GROUP BY.
    whens: list[tuple[ColumnElement[bool], Any]] = [
        (latency <= literal_column(repr(edge)), literal_column(str(i))) for i, edge in enumerate(LATENCY_EDGES)
    ]
    return case(*whens, else_=literal_column(str(len(LATENCY_EDGES))))


@dataclass(frozen=True)
class HourCounts:
    start: datetime
    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True)
class Bucket:
    """Jobs that took more than `low` and at most `high` seconds (no `high`: the open-ended last bucket)."""

    low: float
    high: float | None
    count: int


@dataclass(frozen=True)
class HourLatency:
    start: datetime
    jobs: int
    p50: float | None
    p95: float | None


@dataclass(frozen=True)
class Activity:
    """The home page's charts: jobs created per hour by their status now, and the latency of those that ended."""

    hours: list[HourCounts]
    latency: list[Bucket]
    since: datetime
    statuses: list[str] = field(default_factory=lambda: [s.value for s in JobStatus])

    @property
    def jobs(self) -> int:
        return sum(h.total for h in self.hours)

    @property
    def scored(self) -> int:
        return sum(b.count for b in self.latency)


class StatsService:
    """The figures, each kept `cache_seconds` by this process: one count over a day or a week of jobs costs the
    database a scan of that many index entries (~0.1 s a day at one job a second, ~1 s a week), too much for every
    view of a page whose bars are an hour wide."""

    def __init__(self, sessions: sessionmaker[Session], *, cache_seconds: float = 0) -> None:
        self.sessions = sessions
        self.cache_seconds = cache_seconds
        self._cache: dict[tuple[Any, ...], tuple[float, Any]] = {}

    def _kept(self, key: tuple[Any, ...], compute: Callable[[], T]) -> T:
        kept = self._cache.get(key)
        if kept is not None and kept[0] > time.monotonic():
            return cast(T, kept[1])
        value = compute()
        if self.cache_seconds:
            self._cache[key] = (time.monotonic() + self.cache_seconds, value)
        return value

    def activity(self, *, now: datetime | None = None, hours: int = 24, owner_id: uuid.UUID | None = None) -> Activity:
        """Jobs of the last `hours` hours (the current one included); one owner's, or everyone's for None."""
        if now is None:
            return self._kept(
                ("activity", hours, owner_id), lambda: self.activity(now=utcnow(), hours=hours, owner_id=owner_id)
            )
        first = _hour_of(now) - hours + 1
        hour = unix_hour(Job.created_at)
        bucket = latency_bucket(seconds_between(Job.created_at, Job.finished_at))
        query = (
            select(hour, Job.status, bucket, func.count())
            .where(Job.created_at >= _at_hour(first))
            .group_by(hour, Job.status, bucket)
        )
        query = owned_by(query, owner_id)
        per_hour: dict[int, dict[str, int]] = {h: dict.fromkeys(JobStatus, 0) for h in range(first, first + hours)}
        latency = [0] * (len(LATENCY_EDGES) + 1)
        with self.sessions() as session:
            for h, status, b, count in session.execute(query):
                if h in per_hour and status in per_hour[h]:
                    per_hour[h][status] += count
                if status in SCORED:
                    latency[b] += count
        return Activity(
            hours=[HourCounts(_at_hour(h), {str(s): n for s, n in c.items()}) for h, c in per_hour.items()],
            latency=_buckets(latency),
            since=_at_hour(first),
        )

    def model_latency(
        self, name: str, *, now: datetime | None = None, days: int = 7, owner_id: uuid.UUID | None = None
    ) -> list[HourLatency]:
        """A model's p50 and p95 per hour over the last `days` days, estimated from the latency buckets (as
        Prometheus does: linear within the bucket). Hours without a finished job have no figures. One owner's jobs,
        or everyone's for None."""
        if now is None:
            return self._kept(
                ("model", name, days, owner_id),
                lambda: self.model_latency(name, now=utcnow(), days=days, owner_id=owner_id),
            )
        hours = days * 24
        first = _hour_of(now) - hours + 1
        hour = unix_hour(Job.created_at)
        bucket = latency_bucket(seconds_between(Job.created_at, Job.finished_at))
        query = (
            select(hour, bucket, func.count())
            .where(Job.model_name == name, Job.created_at >= _at_hour(first), Job.status.in_(SCORED))
            .group_by(hour, bucket)
        )
        query = owned_by(query, owner_id)
        counts = {h: [0] * (len(LATENCY_EDGES) + 1) for h in range(first, first + hours)}
        with self.sessions() as session:
            for h, b, count in session.execute(query):
                if h in counts:
                    counts[h][b] += count
        return [
            HourLatency(_at_hour(h), sum(c), quantile(c, 0.5), quantile(c, 0.95)) for h, c in sorted(counts.items())
        ]


def quantile(counts: list[int], q: float) -> float | None:
    """The q-quantile of latencies counted per bucket of LATENCY_EDGES, linear within its bucket; None if none."""
    total = sum(counts)
    if not total:
        return None
    rank = q * total
    cumulative = [sum(counts[: i + 1]) for i in range(len(counts))]
    i = min(bisect_right(cumulative, rank - 1e-9), len(counts) - 1)
    if i == len(LATENCY_EDGES):
        return LATENCY_EDGES[-1]  # the open bucket has no upper edge: all that is known is "more than this"
    low = LATENCY_EDGES[i - 1] if i else 0.0
    below = cumulative[i - 1] if i else 0
    return low + (LATENCY_EDGES[i] - low) * (rank - below) / counts[i]


def _buckets(counts: list[int]) -> list[Bucket]:
    lows = (0.0, *LATENCY_EDGES)
    highs: tuple[float | None, ...] = (*LATENCY_EDGES, None)
    return [Bucket(low, high, n) for low, high, n in zip(lows, highs, counts, strict=True)]


def _hour_of(moment: datetime) -> int:
    return int(moment.timestamp()) // HOUR


def _at_hour(hour: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=hour * HOUR)
