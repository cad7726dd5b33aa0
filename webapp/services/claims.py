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

from sqlalchemy import func, or_, select, tuple_, update
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
    table, now = jobs_table, utcnow()
    named = table.c.id.in_(job_ids)
    if session.get_bind().dialect.name == "postgresql":
        own = select(table.c.id).where(named, table.c.status == JobStatus.QUEUED).order_by(table.c.id)
        if not session.execute(own.with_for_update()).all():
            return []  # every one already claimed, cancelled or ended: nothing to take with them
    versions = select(table.c.model_name, table.c.model_version).where(named, table.c.status == JobStatus.QUEUED)
    # The others, oldest first, while the rows fit beside the message's own (a row or more each).
    waiting = (
        select(table.c.id, table.c.rows_total, table.c.created_at)
        .where(
            table.c.status == JobStatus.QUEUED,
            ~named,
            table.c.kind.in_([JobKind.SINGLE, JobKind.BATCH]),
            tuple_(table.c.model_name, table.c.model_version).in_(versions),
        )
        .order_by(table.c.created_at, table.c.id)
        .limit(max(max_rows - len(job_ids), 0))
        .with_for_update(skip_locked=True)
        .subquery()
    )
    ranked = select(
        waiting.c.id, func.sum(waiting.c.rows_total).over(order_by=(waiting.c.created_at, waiting.c.id)).label("rows")
    ).subquery()
    own_rows = select(func.coalesce(func.sum(table.c.rows_total), 0)).where(named).scalar_subquery()
    others = select(ranked.c.id).where(ranked.c.rows <= max_rows - own_rows)
    claimed = session.execute(
        update(table)
        .where(or_(named, table.c.id.in_(others)), table.c.status == JobStatus.QUEUED)
        .values(
            status=JobStatus.RUNNING,
            started_at=now,
            attempts=table.c.attempts + 1,
            worker=worker,
            lease_until=now + timedelta(seconds=lease_seconds),
        )
        .returning(
            table.c.id, table.c.model_name, table.c.model_version, table.c.inputs, table.c.started_at, table.c.kind
        )
    )
    return [ClaimedJob(*row) for row in claimed]
