"""Job counts and latency histograms, derived from the job table (the truth) and folded in as jobs settle.

Every web process computes the same figures from the same rows, so it does not matter which of several web
processes (or machines) a scrape reaches, nor how many workers on how many machines did the work; a restart resets
nothing. An ended job never changes again, so what was counted once is kept in memory and only jobs that ended
since (the finished_at index finds them) and jobs still queued or running are read on each scrape.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, DateTime, Engine, Select, case, extract, func, literal, select, type_coerce

from webapp.models import JobStatus, jobs_table, utcnow

# Upper bounds of the latency histograms, in seconds: from a single row scored in a batch to a big CSV file.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)
# A job that ended longer ago than this is folded into the kept totals. The margin covers what could still
# appear behind the fold line: a commit that lands after its finished_at was taken, and the clock differences
# between the machines that write finished_at.
SETTLE_SECONDS = 60.0
OPEN = (JobStatus.QUEUED, JobStatus.RUNNING)
ENDED = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)
# Jobs that ran to a result; a cancelled job's times say when someone gave up, not how apot performs.
TIMED = (JobStatus.SUCCEEDED, JobStatus.FAILED)
# The three latencies, as (later, earlier) columns: queued→started, started→finished, end to end.
SPANS = {
    "wait": ("started_at", "created_at"),
    "run": ("finished_at", "started_at"),
    "end_to_end": ("finished_at", "created_at"),
}

Key = tuple[str, str, str]  # model, kind, status


@dataclass
class Histogram:
    """Cumulative counts: `at_or_below[i]` jobs took at most BUCKETS[i] seconds, of `count` in all; and their sum.

    Cumulative counts add up bucket by bucket, so histograms of several groups of jobs merge by addition."""

    at_or_below: list[int] = field(default_factory=lambda: [0] * len(BUCKETS))
    count: int = 0
    total: float = 0.0

    def add(self, other: Histogram) -> None:
        self.at_or_below = [a + b for a, b in zip(self.at_or_below, other.at_or_below, strict=True)]
        self.count += other.count
        self.total += other.total

    def buckets(self) -> list[tuple[str, float]]:
        """(le, count) pairs in Prometheus' order, ending with +Inf."""
        pairs = [(str(bound), float(n)) for bound, n in zip(BUCKETS, self.at_or_below, strict=True)]
        return [*pairs, ("+Inf", float(self.count))]


@dataclass
class Tally:
    """What the jobs of one (model, kind, status) add up to."""

    jobs: int = 0
    rows_done: int = 0
    rows_failed: int = 0
    spans: dict[str, Histogram] = field(default_factory=lambda: {name: Histogram() for name in SPANS})

    def add(self, other: Tally) -> None:
        self.jobs += other.jobs
        self.rows_done += other.rows_done
        self.rows_failed += other.rows_failed
        for name, histogram in other.spans.items():
            self.spans[name].add(histogram)


def merge(target: dict[Key, Tally], more: Iterable[tuple[Key, Tally]]) -> None:
    for key, tally in more:
        target.setdefault(key, Tally()).add(tally)


@dataclass(frozen=True)
class JobFigures:
    """One scrape's view: ended jobs (settled and recent together) and jobs still open, by (model, kind, status)."""

    ended: dict[Key, Tally]
    open: dict[Key, Tally]


class JobFigureSource:
    """Reads job figures; keeps the totals of settled jobs between scrapes. Safe to share between threads."""

    def __init__(
        self, engine: Engine, *, settle_seconds: float = SETTLE_SECONDS, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self.engine = engine
        self.settle = timedelta(seconds=settle_seconds)
        self.clock = clock
        self._settled: dict[Key, Tally] = {}
        self._line: datetime | None = None  # jobs that finished before it are in _settled
        self._lock = threading.Lock()  # two scrapes at once must not fold the same jobs twice
        self._columns = aggregate_columns(engine.dialect.name)

    def read(self) -> JobFigures:
        """The figures now: one statement, so one snapshot, on either backend."""
        with self._lock:
            # Never back: a clock set back would otherwise make the next scrape read settled jobs a second time.
            line = max(self.clock() - self.settle, self._line or datetime.min.replace(tzinfo=UTC))
            with self.engine.connect() as connection:
                rows = connection.execute(self._query(self._line, line)).all()
            recent: dict[Key, Tally] = {}
            open_jobs: dict[Key, Tally] = {}
            for row in rows:
                key, tally = (row.model_name, row.kind, row.status), tally_of(row)
                if row.status in OPEN:
                    open_jobs[key] = tally
                else:
                    merge(self._settled if row.settled else recent, [(key, tally)])
            self._line = line
            ended = {key: copy_of(tally) for key, tally in self._settled.items()}
            merge(ended, recent.items())
            return JobFigures(ended, open_jobs)

    def _query(self, since: datetime | None, line: datetime) -> Any:
        finished = jobs_table.c.finished_at
        settled = case((finished < line, 1), else_=0).label("settled")
        ended: ColumnElement[bool] = jobs_table.c.status.in_(ENDED)
        if since is not None:
            ended = ended & (finished >= since)  # the finished_at index finds them
        return self._select(ended, settled).union_all(self._select(jobs_table.c.status.in_(OPEN)))

    def _select(self, where: ColumnElement[bool], settled: ColumnElement[int] | None = None) -> Select[Any]:
        group = [jobs_table.c.model_name, jobs_table.c.kind, jobs_table.c.status]
        if settled is None:  # open jobs: a constant column, outside GROUP BY (where a bare 0 means a position)
            return select(*group, literal(0).label("settled"), *self._columns).where(where).group_by(*group)
        return select(*group, settled, *self._columns).where(where).group_by(*group, settled)


def aggregate_columns(dialect: str) -> list[ColumnElement[Any]]:
    """Counts and sums of a group of jobs, with each latency's bucket counts computed by the database."""
    columns: list[ColumnElement[Any]] = [
        func.count().label("jobs"),
        func.coalesce(func.sum(jobs_table.c.rows_done), 0).label("rows_done"),
        func.coalesce(func.sum(jobs_table.c.rows_failed), 0).label("rows_failed"),
    ]
    for name, (later, earlier) in SPANS.items():
        seconds = seconds_between(jobs_table.c[later], jobs_table.c[earlier], dialect)
        columns.append(func.coalesce(func.sum(seconds), 0).label(f"{name}_sum"))
        columns.append(func.count(seconds).label(f"{name}_count"))
        columns += [
            func.sum(case((seconds <= bound, 1), else_=0)).label(f"{name}_le_{i}") for i, bound in enumerate(BUCKETS)
        ]
    return columns


def seconds_between(later: Any, earlier: Any, dialect: str) -> ColumnElement[Any]:
    """later - earlier in seconds; NULL when either is NULL."""
    if dialect == "sqlite":  # stored as ISO text in UTC; julianday keeps well under a millisecond
        return (func.julianday(later) - func.julianday(earlier)) * 86400.0
    stamp = DateTime(timezone=True)
    return extract("epoch", type_coerce(later, stamp) - type_coerce(earlier, stamp))


def tally_of(row: Any) -> Tally:
    tally = Tally(jobs=row.jobs, rows_done=int(row.rows_done), rows_failed=int(row.rows_failed))
    values = row._mapping
    for name in SPANS:
        tally.spans[name] = Histogram(
            [int(values[f"{name}_le_{i}"] or 0) for i in range(len(BUCKETS))],
            int(values[f"{name}_count"]),
            float(values[f"{name}_sum"]),
        )
    return tally


def copy_of(tally: Tally) -> Tally:
    copy = Tally()
    copy.add(tally)
    return copy


def by_label(figures: dict[Key, Tally], labels: Sequence[int]) -> dict[tuple[str, ...], Tally]:
    """Tallies summed over the parts of the key not named by `labels` (0 model, 1 kind, 2 status)."""
    summed: dict[tuple[str, ...], Tally] = {}
    for key, tally in figures.items():
        summed.setdefault(tuple(key[i] for i in labels), Tally()).add(tally)
    return summed
