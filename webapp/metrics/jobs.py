"""Job counts and latency histograms, derived from the job table (the truth) and folded in as jobs settle.

Every web process computes the same figures from the same rows, so it does not matter which of several web
processes (or machines) a scrape reaches, nor how many workers on how many machines did the work; a restart resets
nothing. An ended job never changes again, so what was counted once is kept in memory and only jobs that ended
since (the finished_at index finds them) and jobs still queued or running are read on each scrape.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    DateTime,
    Engine,
    Float,
    Integer,
    Select,
    case,
    cast,
    func,
    literal,
    select,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import array

from webapp.metrics.tally import BUCKETS, SPANS, JobFigures, Key, Tally, copy_of, merge
from webapp.models import JobStatus, jobs_table, utcnow

# A job that ended longer ago than this is folded into the kept totals. The margin covers what could still
# appear behind the fold line: a commit that lands after its finished_at was taken, and the clock differences
# between the machines that write finished_at.
SETTLE_SECONDS = 60.0
OPEN = (JobStatus.QUEUED, JobStatus.RUNNING)
TIMES = ("created_at", "started_at", "finished_at")


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
        self._dialect = engine.dialect.name

    def read(self) -> JobFigures:
        """The figures now: one statement, so one snapshot, on either backend."""
        with self._lock:
            # Never back: a clock set back would otherwise make the next scrape read settled jobs a second time.
            line = max(self.clock() - self.settle, self._line or datetime.min.replace(tzinfo=UTC))
            with self.engine.begin() as connection:
                if self._dialect == "postgresql":
                    # The planner cannot guess how few groups there are (a handful per model) and sorts every
                    # job to form them; hashing them is twice as fast. For this statement only.
                    connection.exec_driver_sql("SET LOCAL enable_sort = off")
                rows = connection.execute(self._query(self._line, line)).all()
            recent: dict[Key, Tally] = {}
            open_jobs: dict[Key, Tally] = {}
            for row in rows:
                key, tally = (row.model_name, row.kind, row.status), tally_of(row)
                if row.status in OPEN:
                    merge(open_jobs, [(key, tally)])
                else:
                    merge(self._settled if row.settled else recent, [(key, tally)])
            self._line = line
            ended = {key: copy_of(tally) for key, tally in self._settled.items()}
            merge(ended, recent.items())
            return JobFigures(ended, open_jobs)

    def _query(self, since: datetime | None, line: datetime) -> Any:
        finished = jobs_table.c.finished_at
        # An ended job without a finished_at (none is written so, but a row may be) is folded at the first read.
        settled = case((finished < line, 1), (finished.is_(None), 1), else_=0)
        if since is None:  # the first read: every job, open ones too (told apart by status), in one plain scan
            return self._select(None, settled)
        still_open: ColumnElement[bool] = jobs_table.c.status.in_(OPEN)
        if self._dialect == "sqlite":
            # Its statistics say half the jobs share a status, so SQLite would rather walk every job in model order
            # than look the few open ones up by status: tell it they are few.
            still_open = func.unlikely(still_open)
        # A job gets its finished_at when it ends: the index on it finds the ones that ended since the last read.
        # (A status filter beside it would tempt SQLite to walk the status index over every ended job instead.)
        return self._select(finished >= since, settled).union_all(self._select(still_open, literal(0)))

    def _select(self, where: ColumnElement[bool] | None, settled: ColumnElement[int]) -> Select[Any]:
        """Jobs grouped by what labels them and by the bucket each of their latencies falls in: the database
        works out each job's seconds and buckets once, and returns a few rows per model."""
        columns = [jobs_table.c[name] for name in ("model_name", "kind", "status", "rows_done", "rows_failed")]
        stamps = select(*columns, settled.label("settled"), *(time_of(jobs_table.c[t], self._dialect) for t in TIMES))
        if where is not None:
            stamps = stamps.where(where)
        if self._dialect == "sqlite":
            # A subquery with a LIMIT is not merged into the query around it, so SQLite works out each job's
            # times once, instead of once per use (and once per bound of the buckets).
            stamps = stamps.limit(-1)
        row = stamps.subquery()
        spans = [seconds_between(row.c[a], row.c[b], self._dialect).label(n) for n, (a, b) in SPANS.items()]
        each = select(*(row.c[c.name] for c in columns), row.c.settled, *spans)
        if self._dialect == "sqlite":
            each = each.limit(-1)
        jobs = each.subquery()
        bucketed = select(
            jobs, *(bucket_of(jobs.c[name], self._dialect).label(f"{name}_bucket") for name in SPANS)
        ).subquery()
        group = [bucketed.c[name] for name in ("model_name", "kind", "status", "settled")]
        group += [bucketed.c[f"{name}_bucket"] for name in SPANS]
        return select(
            *group,
            func.count().label("jobs"),
            func.sum(bucketed.c.rows_done).label("rows_done"),
            func.sum(bucketed.c.rows_failed).label("rows_failed"),
            *(func.sum(bucketed.c[name]).label(f"{name}_sum") for name in SPANS),
        ).group_by(*group)


def bucket_of(seconds: ColumnElement[Any], dialect: str) -> ColumnElement[Any]:
    """The index in BUCKETS of the first bound at or above `seconds` (len(BUCKETS) past them all); NULL for NULL."""
    if dialect == "postgresql":
        # One binary search, not a CASE branch per bound. width_bucket counts the bounds at or below its operand;
        # counting those strictly below `seconds` (the index we want: Prometheus buckets are "less than or
        # equal") is the same question asked of the negated values.
        descending = array([-bound for bound in reversed(BUCKETS)], type_=Float)
        return len(BUCKETS) - func.width_bucket(-seconds, descending)
    bounds = [(seconds <= bound, index) for index, bound in enumerate(BUCKETS)]
    return case((seconds.is_(None), None), *bounds, else_=len(BUCKETS))


def time_of(stamp: Any, dialect: str) -> ColumnElement[Any]:
    """A timestamp in a form two of which subtract cheaply: on SQLite (where it is text, "YYYY-MM-DD
    HH:MM:SS.ffffff" in UTC) integer microseconds since 1970; julianday would round to the millisecond and put a
    job on a bucket's bound into the next one."""
    if dialect != "sqlite":
        return stamp
    whole = cast(func.strftime("%s", stamp), Integer)
    return (whole * 1_000_000 + cast(func.substr(stamp, 21, 6), Integer)).label(stamp.name)


def seconds_between(later: Any, earlier: Any, dialect: str) -> ColumnElement[Any]:
    """later - earlier (as time_of gives them) in seconds, as a double; NULL when either is NULL."""
    if dialect == "sqlite":
        return (later - earlier) / 1e6
    stamp = DateTime(timezone=True)
    # date_part, not EXTRACT: EXTRACT answers numeric, many times slower to compare and add over many rows.
    return func.date_part("epoch", type_coerce(later, stamp) - type_coerce(earlier, stamp), type_=Float)


def tally_of(row: Any) -> Tally:
    """What one result row (jobs alike down to their latency buckets) adds to its (model, kind, status)."""
    values = row._mapping
    tally = Tally(jobs=row.jobs, rows_done=int(row.rows_done or 0), rows_failed=int(row.rows_failed or 0))
    for name in SPANS:
        bucket = values[f"{name}_bucket"]
        if bucket is not None:
            tally.spans[name].observe(int(bucket), row.jobs, float(values[f"{name}_sum"] or 0))
    return tally
