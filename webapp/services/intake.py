"""Stores new small jobs and publishes their task in groups: one commit and one message for jobs that arrive together.

Per job, a commit and a Celery message are the costs that do not shrink with batching; grouping them here is what
lets a worker score many jobs with one call (see services/scoring.py). A group closes when it holds
`max_rows` rows, when no other submission is on its way, or `wait_seconds` after its first job — so a lone
request never waits, and a crowd of them travels together.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy import insert, update
from sqlalchemy.orm import Session, sessionmaker

from webapp.db import transaction
from webapp.models import Job, JobStatus, jobs_table, utcnow
from webapp.services.dispatch import SCORE_JOBS, Dispatch, Enqueue
from webapp.services.events import Announcer

log = logging.getLogger(__name__)


class QueueUnavailable(RuntimeError):
    """The job was stored but its task could not be published."""


@dataclass
class Pending:
    job: Job
    stored: Future[Job] = field(default_factory=Future)


class JobIntake:
    """One per web process; a thread of its own writes and publishes, requests wait on a future."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        enqueue: Enqueue,
        announcer: Announcer,
        *,
        max_rows: int,
        wait_seconds: float,
    ) -> None:
        self.sessions = sessions
        self.enqueue = enqueue
        self.announcer = announcer
        self.max_rows = max_rows
        self.wait_seconds = wait_seconds
        self._pending: queue.Queue[Pending | None] = queue.Queue()
        self._arriving = 0
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="apot-intake", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Store and publish what was handed in, then end the thread."""
        self._pending.put(None)
        self._thread.join()

    @contextmanager
    def arriving(self) -> Iterator[None]:
        """Around the validation of a submission: an open group waits for it (up to `wait_seconds`)."""
        with self._lock:
            self._arriving += 1
        try:
            yield
        finally:
            with self._lock:
                self._arriving -= 1

    def submit(self, job: Job) -> Future[Job]:
        """Hand in a validated job; the future resolves once it is committed and its task published."""
        pending = Pending(job)
        self._pending.put(pending)
        return pending.stored

    def _run(self) -> None:
        while True:
            group, stopping = self._gather()
            if group:
                self._store_and_publish(group)
            if stopping:
                return

    def _gather(self) -> tuple[list[Pending], bool]:
        first = self._pending.get()
        if first is None:
            return [], True
        group, rows = [first], first.job.rows_total
        deadline = time.monotonic() + self.wait_seconds
        while rows < self.max_rows:
            try:
                item = self._pending.get_nowait()
            except queue.Empty:
                left = deadline - time.monotonic()
                if self._arriving == 0 or left <= 0:
                    break
                try:
                    item = self._pending.get(timeout=min(left, 0.0005))
                except queue.Empty:
                    continue
            if item is None:
                return group, True
            group.append(item)
            rows += item.job.rows_total
        return group, False

    def _store_and_publish(self, group: list[Pending]) -> None:
        task_id = str(uuid.uuid4())
        for pending in group:
            pending.job.task_id = task_id
        try:
            with transaction(self.sessions) as session:
                session.connection().execute(insert(jobs_table), [_row(pending.job) for pending in group])
        except Exception as exc:
            log.exception("could not store %d new jobs", len(group))
            for pending in group:
                pending.stored.set_exception(exc)
            return
        job_ids = [pending.job.id for pending in group]
        try:
            # After the commit, so a worker always finds the rows the message names.
            self.enqueue([Dispatch(SCORE_JOBS, tuple(str(job_id) for job_id in job_ids), task_id)])
        except Exception as exc:
            log.exception("could not publish the task of %d jobs", len(group))
            fail_unpublished(self.sessions, self.announcer, job_ids)
            error = QueueUnavailable("the task queue cannot be reached right now; the job was not started")
            error.__cause__ = exc
            for pending in group:
                pending.stored.set_exception(error)
            return
        for pending in group:
            pending.stored.set_result(pending.job)


def _row(job: Job) -> dict[str, object]:
    return {column.key: getattr(job, column.key) for column in jobs_table.columns}


def fail_unpublished(sessions: sessionmaker[Session], announcer: Announcer, job_ids: list[uuid.UUID]) -> None:
    """Fail committed jobs whose task never reached the broker, so none stays queued with nothing to run it."""
    with transaction(sessions) as session:
        failed = session.scalars(
            update(Job)
            .where(Job.id.in_(job_ids), Job.status == JobStatus.QUEUED)
            .values(status=JobStatus.FAILED, finished_at=utcnow(), error="the task queue could not be reached")
            .returning(Job.id)
        ).all()
        announcer.announce(session, failed)
