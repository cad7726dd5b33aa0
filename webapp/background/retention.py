"""Retention: the inputs and results of jobs that ended long ago are deleted; the rest of each job row stays.

A job's metadata (model, status, row counts, timings, error) is what history, charts and audits read, and it is
small; its inputs, result and CSV chunks are what grows. Pruning empties those in short transactions of at most
`batch_size` jobs, each found through a partial index of the ended jobs not yet pruned, so no statement holds many
rows for long and writers never wait behind it. On Postgres each batch takes its rows with SKIP LOCKED, so several
pruners at once (one per reconciler) share the work; on SQLite writes are serialised anyway.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, CursorResult, delete, func, null, select, update
from sqlalchemy.orm import Session, sessionmaker

from webapp.db import transaction
from webapp.models import Job, JobChunk, JobStatus, utcnow

log = logging.getLogger(__name__)

BATCH_SIZE = 1000
# How often a reconciler prunes: retention is counted in days, so a few minutes late is never noticed, and a pass
# that finds nothing costs one index probe.
PRUNE_EVERY_SECONDS = 600.0
# Batches one reconciler pass prunes at most: a large backlog (retention just turned on) is worked off over several
# passes, so taking back lost jobs and publishing never waits long behind it.
BATCHES_PER_PASS = 10


@dataclass
class PruneReport:
    cutoff: datetime
    dry_run: bool = False
    jobs: int = 0
    chunks: int = 0
    batches: int = 0

    def __str__(self) -> str:
        verb = "would delete" if self.dry_run else "deleted"
        chunks = f" and {_count(self.chunks, 'CSV chunk')}" if self.chunks else ""
        batches = "" if self.dry_run else f" in {_count(self.batches, 'batch')}"
        return (
            f"{verb} the inputs and results of {_count(self.jobs, 'job')}{chunks} that ended before "
            f"{self.cutoff:%Y-%m-%d %H:%M} UTC{batches}"
        )


def pruned_message(job: Job) -> str | None:
    """What the job page, the API and the CSV download say of a pruned job; None if it was not pruned."""
    if job.pruned_at is None or job.finished_at is None:
        return None
    days = (job.pruned_at - job.finished_at).days
    return f"The inputs and results of this job were deleted after {days} days (the server keeps them that long)."


class Pruner:
    def __init__(self, sessions: sessionmaker[Session], ttl_days: int, *, batch_size: int = BATCH_SIZE) -> None:
        self.sessions = sessions
        self.ttl_days = ttl_days  # 0: keep everything
        self.batch_size = batch_size
        self._next_run = 0.0

    def prune(
        self, *, older_than_days: int | None = None, dry_run: bool = False, max_batches: int | None = None
    ) -> PruneReport | None:
        """Delete the inputs and results of jobs that ended more than `older_than_days` (default: the TTL) ago, in
        at most `max_batches` batches (default: until none is left); None when retention is off and no age is given."""
        days = self.ttl_days if older_than_days is None else older_than_days
        if not days:
            return None
        now = utcnow()
        report = PruneReport(cutoff=now - timedelta(days=days), dry_run=dry_run)
        due = _due(report.cutoff)
        if dry_run:
            with self.sessions() as session:
                report.jobs = session.scalar(select(func.count()).select_from(Job).where(due)) or 0
                chunks = select(func.count()).select_from(JobChunk).join(Job, JobChunk.job_id == Job.id)
                report.chunks = session.scalar(chunks.where(due)) or 0
            return report
        while True:
            pruned, deleted = self._batch(due, now)
            report.jobs += pruned
            report.chunks += deleted
            report.batches += 1 if pruned else 0
            if pruned < self.batch_size or report.batches == max_batches:
                return report

    def prune_if_due(self) -> None:
        """Prune when PRUNE_EVERY_SECONDS have passed since the last time (the reconciler calls this every pass)."""
        if not self.ttl_days or time.monotonic() < self._next_run:
            return
        self._next_run = time.monotonic() + PRUNE_EVERY_SECONDS
        report = self.prune(max_batches=BATCHES_PER_PASS)
        if report is not None and report.jobs:
            log.info("retention: %s", report)
            if report.batches == BATCHES_PER_PASS:
                self._next_run = 0.0  # more is left: the next pass goes on

    def _batch(self, due: ColumnElement[bool], now: datetime) -> tuple[int, int]:
        """One transaction: up to batch_size jobs emptied and marked, their chunks deleted."""
        with transaction(self.sessions) as session:
            # Picked by a statement of its own, not a subquery of the UPDATE: on Postgres a LIMIT ... FOR UPDATE
            # subquery may be run again while the UPDATE goes, skip the rows it already changed and take more
            # than `batch_size` (a test saw all 5 of 5 jobs go in one "batch" of 2).
            picked = session.scalars(
                select(Job.id)
                .where(due)
                .order_by(Job.finished_at)
                .limit(self.batch_size)
                .with_for_update(skip_locked=True)
            ).all()
            if not picked:
                return 0, 0
            ids = session.scalars(
                update(Job)
                .where(Job.id.in_(picked), due)
                .values(inputs=[], result=null(), pruned_at=now)
                .returning(Job.id)
            ).all()
            chunks = session.execute(delete(JobChunk).where(JobChunk.job_id.in_(ids)))
            return len(ids), cast(CursorResult[Any], chunks).rowcount


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}{'es' if noun.endswith('ch') else 's'}"


def _due(cutoff: datetime) -> ColumnElement[bool]:
    # The first two terms are the partial index's own condition, spelled out so SQLite's planner uses it too; the
    # status is checked with NOT IN, which no index serves, or SQLite would rather walk the (status, ...) index.
    not_ended = [JobStatus.QUEUED, JobStatus.RUNNING]
    return (
        Job.finished_at.is_not(None)
        & Job.pruned_at.is_(None)
        & (Job.finished_at < cutoff)
        & Job.status.not_in(not_ended)
    )
