"""How a worker takes jobs: a message's own queued jobs and, with them, those queued behind them for the same model
versions, marked running under a lease in one transaction.

This is where grouping pays under load: the backlog waits in the broker, one message per group the web stored, and
the first message a worker takes scores what the messages behind it carry; those then find their jobs claimed and
do nothing. A lone job is claimed at once, as before.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Integer, bindparam, func, or_, select, tuple_, update
from sqlalchemy.orm import Session

from webapp.models import JobKind, JobStatus, jobs_table, utcnow


@dataclass(frozen=True)
class ClaimedJob:
    id: uuid.UUID
    model_name: str
    model_version: str
    inputs: list[dict[str, Any]]
    started_at: datetime
    kind: str = JobKind.SINGLE


def claim_jobs(
    session: Session, job_ids: list[uuid.UUID], *, worker: str, lease_seconds: float, max_rows: int
) -> list[ClaimedJob]:
    """Move the message's jobs from queued to running for `worker`, and with them every other small job queued for
    the same model versions, up to `max_rows` rows, with a lease the reconciler honours.

    Lock order is what keeps two claims out of a deadlock on Postgres: a claim first locks its own rows, in id order,
    waiting for them if it must (no other message carries them; the web may be marking them published); only then
    does it lock others' rows, skipping any another transaction holds (SKIP LOCKED), so it never waits while holding
    rows someone else waits for. Were the others locked first, two claims could each take the other's own job as
    backlog and then wait for it. On SQLite the one UPDATE holds the database's write lock: no two claims overlap,
    and a read before it would only risk a stale snapshot that cannot be upgraded to a write.
    """
    now, connection = utcnow(), session.connection()
    ids = {"job_ids": job_ids}
    if connection.dialect.name == "postgresql" and not connection.execute(_OWN, ids).all():
        return []  # every one already claimed, cancelled or ended: nothing to take with them
    claimed = connection.execute(
        _CLAIM,
        {
            **ids,
            "room": max(max_rows - len(job_ids), 0),
            "max_rows": max_rows,
            "claimed_at": now,
            "claimer": worker,
            "lease_ends": now + timedelta(seconds=lease_seconds),
        },
    )
    return [ClaimedJob(*row) for row in claimed]


# The statements are built once (their parameters bound per claim): building and caching them anew for each claim
# cost a worker more CPU than the database's work on them.
_table = jobs_table
_named = _table.c.id.in_(bindparam("job_ids", expanding=True))
_OWN = select(_table.c.id).where(_named, _table.c.status == JobStatus.QUEUED).order_by(_table.c.id).with_for_update()
_versions = select(_table.c.model_name, _table.c.model_version).where(_named, _table.c.status == JobStatus.QUEUED)
# The others, oldest first, while the rows fit beside the message's own (a row or more each).
_waiting = (
    select(_table.c.id, _table.c.rows_total, _table.c.created_at)
    .where(
        _table.c.status == JobStatus.QUEUED,
        ~_named,
        _table.c.kind.in_([JobKind.SINGLE, JobKind.BATCH]),
        tuple_(_table.c.model_name, _table.c.model_version).in_(_versions),
    )
    .order_by(_table.c.created_at, _table.c.id)
    .limit(bindparam("room", type_=Integer))
    .with_for_update(skip_locked=True)
    .subquery()
)
_ranked = select(
    _waiting.c.id, func.sum(_waiting.c.rows_total).over(order_by=(_waiting.c.created_at, _waiting.c.id)).label("rows")
).subquery()
_own_rows = select(func.coalesce(func.sum(_table.c.rows_total), 0)).where(_named).scalar_subquery()
_others = select(_ranked.c.id).where(_ranked.c.rows <= bindparam("max_rows", type_=Integer) - _own_rows)
_CLAIM = (
    update(_table)
    .where(or_(_named, _table.c.id.in_(_others)), _table.c.status == JobStatus.QUEUED)
    .values(
        status=JobStatus.RUNNING,
        started_at=bindparam("claimed_at"),
        attempts=_table.c.attempts + 1,
        worker=bindparam("claimer"),
        lease_until=bindparam("lease_ends"),
    )
    .returning(
        _table.c.id, _table.c.model_name, _table.c.model_version, _table.c.inputs, _table.c.started_at, _table.c.kind
    )
)
