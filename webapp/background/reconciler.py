"""The reconciler: makes every accepted job end, whatever crashed.

One pass takes back work whose worker vanished (its lease ran out: queued again, or failed `worker_lost` after
APOT_MAX_ATTEMPTS), publishes what never reached the broker or was lost there (a broker restart or flush), ends
CSV jobs whose last chunk was stored by a worker that died before saying so, and publishes webhooks long overdue.
Any number of reconcilers may run at once: on Postgres each takes its rows with FOR UPDATE SKIP LOCKED, on SQLite
writes are serialised anyway; a row is marked published in the same transaction that picks it, so two passes never
publish it twice.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from webapp.background.retention import Pruner
from webapp.db import transaction
from webapp.models import ChunkStatus, Job, JobChunk, JobKind, JobStatus, utcnow
from webapp.services.chunk_release import within_window
from webapp.services.dispatch import SCORE_CHUNK, SCORE_JOBS, Dispatch, Enqueue
from webapp.services.events import Announcer
from webapp.services.tracking.summaries import Compactor
from webapp.services.webhooks import delivery_dispatch

log = logging.getLogger(__name__)

# Rows one pass handles of each kind; the next pass takes the rest.
PASS_LIMIT = 1000
# A job whose publish failed is published again only after this, so the web's own publish (in progress) goes first.
PUBLISH_GRACE_SECONDS = 2.0
WORKER_LOST = "worker_lost: the worker scoring it stopped answering, {attempts} times; not tried again"


@dataclass(frozen=True)
class ReconcilerSettings:
    max_attempts: int
    republish_after_seconds: float
    batch_max_rows: int
    webhook_attempts: int = 5  # APOT_WEBHOOK_RETRY_SECONDS' pauses + 1
    chunks_in_flight: int = 8  # APOT_CSV_CHUNKS_IN_FLIGHT


@dataclass
class PassReport:
    requeued: list[uuid.UUID] = field(default_factory=list)
    lost: list[uuid.UUID] = field(default_factory=list)
    published_jobs: int = 0
    published_chunks: int = 0
    finished: list[uuid.UUID] = field(default_factory=list)
    webhooks: int = 0

    def __bool__(self) -> bool:
        return bool(
            self.requeued or self.lost or self.published_jobs or self.published_chunks or self.finished or self.webhooks
        )


class Reconciler:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        enqueue: Enqueue,
        announcer: Announcer,
        settings: ReconcilerSettings,
        *,
        pruner: Pruner | None = None,
        compactor: Compactor | None = None,
    ) -> None:
        self.sessions = sessions
        self.enqueue = enqueue
        self.announcer = announcer
        self.settings = settings
        # Retention rides on this loop rather than on Celery beat: every deployment already runs a reconciler
        # (`apot run`, `apot worker --beat`), several may run at once safely, and pruning is database work.
        self.pruner = pruner
        self.compactor = compactor  # merges the feature summaries workers append (services/tracking)

    def run_once(self, now: datetime | None = None) -> PassReport:
        now = now or utcnow()
        report = PassReport()
        self._take_back_jobs(now, report)
        self._take_back_chunks(now, report)
        self._finish_csv_jobs(report)
        self._publish_jobs(now, report)
        self._publish_chunks(now, report)
        self._publish_webhooks(now, report)
        return report

    def run_forever(self, every_seconds: float) -> None:
        """Pass after pass; a pass that fails (database or broker away) is logged and the next one tries again."""
        while True:
            started = time.monotonic()
            try:
                report = self.run_once()
                if self.pruner is not None:
                    self.pruner.prune_if_due()
                if self.compactor is not None:
                    self.compactor.compact_if_due()
            except Exception:
                log.warning("reconciler pass failed; trying again in %.0f s", every_seconds, exc_info=True)
            else:
                if report:
                    log.info(
                        "reconciler: %d taken back, %d lost, %d jobs and %d chunks published, %d CSV jobs finished, "
                        "%d webhooks published",
                        len(report.requeued),
                        len(report.lost),
                        report.published_jobs,
                        report.published_chunks,
                        len(report.finished),
                        report.webhooks,
                    )
            time.sleep(max(0.0, every_seconds - (time.monotonic() - started)))

    def _take_back_jobs(self, now: datetime, report: PassReport) -> None:
        expired = (Job.status == JobStatus.RUNNING) & (Job.kind != JobKind.CSV) & (Job.lease_until < now)
        tries_left = Job.attempts < self.settings.max_attempts
        with transaction(self.sessions) as session:
            again = _queue_again(session, Job, expired & tries_left)
            lost = _take(
                session,
                Job,
                expired & ~tries_left,
                status=JobStatus.FAILED,
                error=WORKER_LOST.format(attempts=self.settings.max_attempts),
                finished_at=now,
                lease_until=None,
            )
            self.announcer.announce(session, lost)
        report.requeued += again
        report.lost += lost

    def _take_back_chunks(self, now: datetime, report: PassReport) -> None:
        expired = (JobChunk.status == ChunkStatus.RUNNING) & (JobChunk.lease_until < now)
        tries_left = JobChunk.attempts < self.settings.max_attempts
        with transaction(self.sessions) as session:
            again = _queue_again(session, JobChunk, expired & tries_left)
            lost_chunks = _take(
                session, JobChunk, expired & ~tries_left, status=ChunkStatus.CANCELLED, lease_until=None
            )
            lost_jobs = set(
                session.scalars(select(JobChunk.job_id).where(JobChunk.id.in_(lost_chunks))) if lost_chunks else []
            )
            failed = session.scalars(
                update(Job)
                .where(Job.id.in_(lost_jobs), Job.status.in_([JobStatus.QUEUED, JobStatus.RUNNING]))
                .values(
                    status=JobStatus.FAILED,
                    error=WORKER_LOST.format(attempts=self.settings.max_attempts),
                    finished_at=now,
                )
                .returning(Job.id)
            ).all()
            session.execute(
                update(JobChunk)
                .where(JobChunk.job_id.in_(lost_jobs), JobChunk.status == ChunkStatus.QUEUED)
                .values(status=ChunkStatus.CANCELLED)
            )
            self.announcer.announce(session, failed)
        report.requeued += again
        report.lost += failed

    def _finish_csv_jobs(self, report: PassReport) -> None:
        unfinished = exists().where(JobChunk.job_id == Job.id, JobChunk.status != ChunkStatus.DONE)
        with transaction(self.sessions) as session:
            finished = session.scalars(
                update(Job)
                .where(
                    Job.kind == JobKind.CSV,
                    Job.status == JobStatus.RUNNING,
                    ~unfinished,
                    exists().where(JobChunk.job_id == Job.id),
                )
                .values(status=JobStatus.SUCCEEDED, finished_at=utcnow())
                .returning(Job.id)
            ).all()
            self.announcer.announce(session, finished)
        report.finished += finished

    def _publish_jobs(self, now: datetime, report: PassReport) -> None:
        waiting = (Job.status == JobStatus.QUEUED) & (Job.kind != JobKind.CSV) & self._unpublished(Job, now)
        with transaction(self.sessions) as session:
            # Marked published in the statement that picks them: another pass can no longer pick them.
            picked = _take(session, Job, waiting, published_at=now)
            # One message per model version, as from the web: a slow model's time limit fails only its jobs.
            sizes = session.execute(
                select(Job.id, Job.rows_total, Job.model_name + "@" + Job.model_version)
                .where(Job.id.in_(picked))
                .order_by(Job.model_name, Job.model_version)
            ).all()
        groups = _groups([(job_id, rows, model) for job_id, rows, model in sizes], self.settings.batch_max_rows)
        dispatches = [Dispatch(SCORE_JOBS, tuple(str(i) for i in group), str(uuid.uuid4())) for group in groups]
        if self._send(dispatches, Job, picked):
            report.published_jobs += len(picked)

    def _publish_chunks(self, now: datetime, report: PassReport) -> None:
        """Chunks lost on the way, or not yet released by a chain that broke: up to each job's window in flight."""
        live = exists().where(Job.id == JobChunk.job_id, Job.status.in_([JobStatus.QUEUED, JobStatus.RUNNING]))
        waiting = (JobChunk.status == ChunkStatus.QUEUED) & live & self._unpublished(JobChunk, now)
        with transaction(self.sessions) as session:
            chosen = within_window(session, waiting, self.settings.chunks_in_flight, PASS_LIMIT)
            picked = _take(session, JobChunk, waiting & JobChunk.id.in_(chosen), published_at=now) if chosen else []
            task_ids: dict[uuid.UUID, str] = {
                chunk_id: task_id
                for chunk_id, task_id in session.execute(
                    select(JobChunk.id, JobChunk.task_id).where(JobChunk.id.in_(picked))
                )
            }
        dispatches = [Dispatch(SCORE_CHUNK, (str(chunk_id),), task_ids[chunk_id]) for chunk_id in picked]
        if self._send(dispatches, JobChunk, picked):
            report.published_chunks += len(picked)

    def _publish_webhooks(self, now: datetime, report: PassReport) -> None:
        """Webhooks due long ago: never published (the process that ended the job died before it could, or the
        broker was down), lost by the broker, or held by a worker that died mid-attempt. Their due time is moved to
        now, so the next pass waits as long again; a second message for one webhook makes no second attempt."""
        overdue = (Job.webhook_due_at < now - timedelta(seconds=self.settings.republish_after_seconds)) & (
            Job.webhook_attempts < self.settings.webhook_attempts
        )
        with transaction(self.sessions) as session:
            picked = _take(session, Job, overdue, webhook_due_at=now)
        if picked:
            try:
                self.enqueue([delivery_dispatch(job_id) for job_id in picked])
            except Exception:
                # Still due (as of now): the pass after next tries again.
                log.warning("reconciler could not publish %d webhooks; later pass", len(picked), exc_info=True)
                return
            report.webhooks += len(picked)

    def _unpublished(self, table: Any, now: datetime) -> Any:
        """Never published (and past the web's own attempt), or published long ago and still not started."""
        return or_(
            and_(table.published_at.is_(None), _created(table) < now - timedelta(seconds=PUBLISH_GRACE_SECONDS)),
            table.published_at < now - timedelta(seconds=self.settings.republish_after_seconds),
        )

    def _send(self, dispatches: list[Dispatch], table: Any, ids: Sequence[uuid.UUID]) -> bool:
        if not dispatches:
            return False
        try:
            self.enqueue(dispatches)
        except Exception:
            log.warning("reconciler could not publish %d tasks; next pass", len(dispatches), exc_info=True)
            with transaction(self.sessions) as session:
                session.execute(update(table).where(table.id.in_(ids)).values(published_at=None))
            return False
        return True


def _created(table: Any) -> Any:
    # A chunk is as old as its job (its rows were stored in the job's transaction).
    if table is JobChunk:
        return select(Job.created_at).where(Job.id == JobChunk.job_id).scalar_subquery()
    return Job.created_at


def _take(session: Session, table: Any, condition: Any, **values: Any) -> list[uuid.UUID]:
    """Update at most PASS_LIMIT rows that meet `condition` and return their ids. The condition is checked again by
    the UPDATE itself, and on Postgres rows another pass holds are skipped (SKIP LOCKED), so of several passes at
    once each row goes to one."""
    candidates = select(table.id).where(condition).limit(PASS_LIMIT).with_for_update(skip_locked=True)
    return list(
        session.scalars(
            update(table)
            .where(table.id.in_(candidates.scalar_subquery()), condition)
            .values(**values)
            .returning(table.id)
        )
    )


def _queue_again(session: Session, table: Any, condition: Any) -> list[uuid.UUID]:
    """Queued, unclaimed and unpublished again: the same pass publishes them."""
    # JobStatus.QUEUED and ChunkStatus.QUEUED are the same word.
    return _take(session, table, condition, status=JobStatus.QUEUED, worker=None, lease_until=None, published_at=None)


def _groups(sizes: Sequence[tuple[uuid.UUID, int, str]], max_rows: int) -> list[list[uuid.UUID]]:
    """Job ids (in model order) in messages of one model each and at most `max_rows` rows (a bigger job travels
    alone)."""
    groups: list[list[uuid.UUID]] = []
    rows, current = max_rows, None
    for job_id, size, model in sizes:
        if rows + size > max_rows or model != current:
            groups.append([])
            rows, current = 0, model
        groups[-1].append(job_id)
        rows += size
    return groups
