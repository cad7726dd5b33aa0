"""The job history, one filter for the pages, the API and the CSV export: keyset pages, a bounded count, and an
export streamed in bounded batches."""

from __future__ import annotations

import csv
import hashlib
import io
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

from sqlalchemy import Uuid, func, literal, select, tuple_
from sqlalchemy.orm import Session, defer, sessionmaker

from webapp.csvio import neutralise
from webapp.models import Job, JobStatus, User, UTCDateTime
from webapp.services.jobs import owned_by
from webapp.services.pagination import decode_cursor, encode_cursor

# Counting stops here: a total of a million jobs would cost a scan of them on every view of the page; beyond this
# the history says "more than 10,000", which is as useful and costs at most this many index entries.
COUNT_CAP = 10_000
# An export holds at most this many jobs, newest first, read EXPORT_BATCH at a time (one short query each, so a slow
# download holds no connection and no lock between batches).
EXPORT_MAX_ROWS = 100_000
EXPORT_BATCH = 1_000
EXPORT_COLUMNS = (
    "id",
    "created_at",
    "user",
    "model",
    "version",
    "kind",
    "status",
    "rows_total",
    "rows_done",
    "rows_failed",
    "started_at",
    "finished_at",
    "error",
)


@dataclass(frozen=True)
class HistoryFilter:
    """Which jobs a history holds: one owner's (None: everyone's, for admins), of one status and one model, created
    at or after `created_after` and before `created_before` (kept in UTC; naive ones are taken as UTC)."""

    owner: uuid.UUID | None
    status: JobStatus | None = None
    model: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None

    def __post_init__(self) -> None:
        for bound in ("created_after", "created_before"):
            if (moment := getattr(self, bound)) is not None:
                object.__setattr__(self, bound, as_utc(moment))

    def apply(self, query: Any) -> Any:
        """The query limited to these jobs. Each condition is on the leading column of one of the jobs indexes
        ((owner_id|status|model_name), created_at, id), with the range on created_at after it."""
        if self.status is not None:
            query = query.where(Job.status == self.status)
        if self.model is not None:
            query = query.where(Job.model_name == self.model)
        if self.created_after is not None:
            query = query.where(Job.created_at >= self.created_after)
        if self.created_before is not None:
            query = query.where(Job.created_at < self.created_before)
        return owned_by(query, self.owner)

    @property
    def key(self) -> str:
        """A short digest of the filters, which a cursor carries so that it continues only the list it came from."""
        moments = (m.isoformat() if m else "" for m in (self.created_after, self.created_before))
        text = "\n".join((str(self.owner or ""), self.status or "", self.model or "", *moments))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Total:
    """How many jobs match, counted up to COUNT_CAP; `more` when there are more than that."""

    count: int
    more: bool


@dataclass(frozen=True)
class HistoryPage:
    jobs: list[Job]
    next_cursor: str | None  # continues after the last job, with the same filters only
    owners: dict[uuid.UUID, str]  # the names of the jobs' owners
    total: Total | None = None


def page(
    sessions: sessionmaker[Session],
    filters: HistoryFilter,
    *,
    limit: int = 50,
    cursor: str | None = None,
    total: bool = False,
) -> HistoryPage:
    """Jobs newest first, one page at a time (BadCursor for a cursor of other filters); with `total`, how many match."""
    query = filters.apply(_listed().limit(limit + 1))
    if cursor is not None:
        query = _after(query, *decode_cursor(cursor, filters.key))
    with sessions() as session:
        jobs = list(session.scalars(query))
        owners = _owner_names(session, jobs[:limit])
        counted = count(session, filters) if total else None
    next_cursor = (
        encode_cursor(jobs[limit - 1].created_at, jobs[limit - 1].id, filters.key) if len(jobs) > limit else None
    )
    return HistoryPage(jobs[:limit], next_cursor, owners, counted)


def owner_names(sessions: sessionmaker[Session], jobs: list[Job]) -> dict[uuid.UUID, str]:
    """The names of these jobs' owners, by id."""
    with sessions() as session:
        return _owner_names(session, jobs)


def _owner_names(session: Session, jobs: list[Job]) -> dict[uuid.UUID, str]:
    ids = {job.owner_id for job in jobs if job.owner_id is not None}
    if not ids:
        return {}
    return {owner: name for owner, name in session.execute(select(User.id, User.name).where(User.id.in_(ids)))}


def count(session: Session, filters: HistoryFilter) -> Total:
    """The number of matching jobs, up to COUNT_CAP (a LIMIT inside the count, so it never scans more)."""
    capped = filters.apply(select(Job.id)).limit(COUNT_CAP + 1).subquery()
    found = session.scalar(select(func.count()).select_from(capped)) or 0
    return Total(min(found, COUNT_CAP), found > COUNT_CAP)


def export_csv(sessions: sessionmaker[Session], filters: HistoryFilter, *, with_users: bool) -> Iterator[str]:
    """The matching jobs as CSV text, newest first, a batch at a time, at most EXPORT_MAX_ROWS; every cell a
    spreadsheet would run as a formula is neutralised. `with_users` adds the owner's name (for admins)."""
    columns = [c for c in EXPORT_COLUMNS if with_users or c != "user"]
    yield _csv_lines([columns])
    query = filters.apply(_listed().limit(EXPORT_BATCH))
    left, last = EXPORT_MAX_ROWS, None
    while left > 0:
        with sessions() as session:
            jobs = list(session.scalars(_after(query, *last) if last else query))[:left]
            owners = _owner_names(session, jobs) if with_users else {}
        if not jobs:
            return
        cells = (_export_cells(job, owners.get(job.owner_id) if job.owner_id else None) for job in jobs)
        yield _csv_lines([[cell for name, cell in row if name in columns] for row in cells])
        left -= len(jobs)
        last = jobs[-1].created_at, jobs[-1].id


def day_range(first: date | None, last: date | None, zone: tzinfo) -> tuple[datetime | None, datetime | None]:
    """Calendar days as a person means them, in their time zone: from the start of `first` to the end of `last`."""
    after = datetime.combine(first, time(), zone) if first else None
    before = datetime.combine(last + timedelta(days=1), time(), zone) if last and last < date.max else None
    return after, before


def as_utc(moment: datetime) -> datetime:
    """The moment in UTC (a naive one is taken as UTC); one beyond the calendar's ends in UTC (the first day of
    year 1 east of Greenwich, the last of 9999 west of it) becomes that end, which compares the same with every job."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        return (datetime.min if moment.year == 1 else datetime.max).replace(tzinfo=UTC)


def _listed() -> Any:
    """Jobs newest first, without inputs and results, which no list shows (a batch's are large)."""
    return select(Job).options(defer(Job.inputs), defer(Job.result)).order_by(Job.created_at.desc(), Job.id.desc())


def _after(query: Any, created_at: datetime, job_id: uuid.UUID) -> Any:
    after = tuple_(literal(created_at, UTCDateTime()), literal(job_id, Uuid()))
    return query.where(tuple_(Job.created_at, Job.id) < after)


def _export_cells(job: Job, owner: str | None) -> list[tuple[str, str]]:
    moments = [m.isoformat() if m else "" for m in (job.created_at, job.started_at, job.finished_at)]
    values = (
        str(job.id),
        moments[0],
        owner or "",
        job.model_name,
        job.model_version,
        job.kind,
        job.status,
        str(job.rows_total),
        str(job.rows_done),
        str(job.rows_failed),
        moments[1],
        moments[2],
        job.error or "",
    )
    return [(name, neutralise(value)) for name, value in zip(EXPORT_COLUMNS, values, strict=True)]


def _csv_lines(rows: list[list[str]]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    return out.getvalue()
