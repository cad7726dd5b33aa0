"""Stores new small jobs and publishes their task in groups: one commit and one message for jobs that arrive together.

Per job, a commit and a Celery message are the costs that do not shrink with batching; grouping them here is what
lets a worker score many jobs with one call (see services/scoring.py). A group closes when it holds
`max_rows` rows, when no other submission is on its way, or `wait_seconds` after its first job — so a lone
request never waits, and a crowd of them travels together.

Storing and publishing run on two threads: a broker that is down or hangs holds up publishing only, never the
commits, and a request waits for its publish no longer than PUBLISH_WAIT_SECONDS. A job whose publish failed keeps
`published_at` empty, and the reconciler publishes it again (services/reconciler.py).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy import insert, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from webapp.db import transaction
from webapp.models import Job, jobs_table
from webapp.services.dispatch import SCORE_JOBS, Dispatch, Enqueue

log = logging.getLogger(__name__)

# How long a submission waits to hear that its task reached the broker; past it, it is answered all the same.
PUBLISH_WAIT_SECONDS = 1.5
# How long the next group is held back while the previous one is being published.
STORE_WAITS_FOR_PUBLISH_SECONDS = 0.2


@dataclass
class Pending:
    job: Job
    stored: Future[Job] = field(default_factory=Future)
    """The job as committed, or the one stored earlier under the same idempotency key."""
    published: Future[bool] = field(default_factory=Future)
    """Whether its task reached the broker; False leaves it to the reconciler."""


@dataclass(frozen=True)
class StoredGroup:
    pending: list[Pending]
    task_id: str


class JobIntake:
    """One per web process; requests hand in validated jobs and wait on futures."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        enqueue: Enqueue,
        *,
        max_rows: int,
        wait_seconds: float,
    ) -> None:
        self.sessions = sessions
        self.enqueue = enqueue
        self.max_rows = max_rows
        self.wait_seconds = wait_seconds
        self._pending: queue.Queue[Pending | None] = queue.Queue()
        self._stored: queue.Queue[StoredGroup | None] = queue.Queue()
        self._arriving = 0
        self._lock = threading.Lock()
        self._publisher_idle = threading.Event()
        self._publisher_idle.set()
        self._threads = [
            threading.Thread(target=self._store_groups, name="apot-intake-store", daemon=True),
            threading.Thread(target=self._publish_groups, name="apot-intake-publish", daemon=True),
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Store and publish what was handed in, then end the threads."""
        self._pending.put(None)
        for thread in self._threads:
            thread.join()

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

    def submit(self, job: Job) -> Pending:
        """Hand in a validated job; its futures say when it is committed and when its task was published."""
        pending = Pending(job)
        self._pending.put(pending)
        return pending

    def _store_groups(self) -> None:
        while True:
            # While a publish is under way the next group fills up: the same batching a single thread gave.
            # Not longer than this, so that a broker that hangs delays the commits only a little.
            self._publisher_idle.wait(STORE_WAITS_FOR_PUBLISH_SECONDS)
            group, stopping = self._gather()
            if group:
                self._store(group)
            if stopping:
                self._stored.put(None)
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

    def _store(self, group: list[Pending]) -> None:
        task_id = str(uuid.uuid4())
        for pending in group:
            pending.job.task_id = task_id
            # Counted as published from the start; a failed publish clears it (one write fewer per group).
            pending.job.published_at = pending.job.created_at
        try:
            with transaction(self.sessions) as session:
                inserted = insert_new(session, [pending.job for pending in group])
                earlier = _stored_earlier(session, [p.job for p in group if p.job.id not in inserted])
        except Exception as exc:
            log.exception("could not store %d new jobs", len(group), extra={"job_ids": [str(p.job.id) for p in group]})
            for pending in group:
                pending.stored.set_exception(exc)
                pending.published.set_result(False)
            return
        new = [pending for pending in group if pending.job.id in inserted]
        for pending in new:  # on this thread, off the requests' path
            job = pending.job
            log.info("job queued", extra={"job_id": str(job.id), "task_id": task_id, "model": job.model_name})
        for pending in group:
            if pending.job.id in inserted:
                pending.stored.set_result(pending.job)
                continue
            # A retry of a submission stored before: that job, published back then.
            before = earlier.get((pending.job.owner_id, pending.job.idempotency_key or ""))
            if before is None:  # the key's job was deleted between the insert and the read
                pending.stored.set_exception(LookupError("the job stored under this Idempotency-Key is gone"))
            else:
                pending.stored.set_result(before)
            pending.published.set_result(True)
        if new:
            self._stored.put(StoredGroup(new, task_id))

    def _publish_groups(self) -> None:
        while True:
            first = self._stored.get()
            groups = [first] if first is not None else []
            # While the broker was slow, groups piled up: they go in one call (one connection).
            while not self._stored.empty():
                more = self._stored.get_nowait()
                if more is None:
                    first = None
                    break
                groups.append(more)
            if groups:
                self._publish(groups)
            if first is None:
                return

    def _publish(self, groups: list[StoredGroup]) -> None:
        self._publisher_idle.clear()
        try:
            self._send(groups)
        finally:
            self._publisher_idle.set()

    def _send(self, groups: list[StoredGroup]) -> None:
        dispatches = [
            Dispatch(SCORE_JOBS, tuple(str(p.job.id) for p in group.pending), group.task_id) for group in groups
        ]
        try:
            self.enqueue(dispatches)
        except Exception:
            job_ids = [p.job.id for group in groups for p in group.pending]
            log.warning(
                "could not publish the tasks of %d jobs; the reconciler will",
                len(job_ids),
                exc_info=True,
                extra={"job_ids": [str(i) for i in job_ids], "task_ids": [group.task_id for group in groups]},
            )
            mark_unpublished(self.sessions, job_ids)
            published = False
        else:
            published = True
        for group in groups:
            for pending in group.pending:
                pending.published.set_result(published)


def insert_new(session: Session, jobs: Sequence[Job]) -> set[uuid.UUID]:
    """Insert the jobs; those whose idempotency key is already taken are left out. Returns the ids inserted."""
    keyed = [job for job in jobs if job.idempotency_key]
    plain = [job for job in jobs if not job.idempotency_key]
    connection = session.connection()
    if plain:  # the common case, and the cheapest statement: one cached INSERT, many parameter sets
        connection.execute(insert(jobs_table), [_row(job) for job in plain])
    inserted = {job.id for job in plain}
    if keyed:
        dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
        statement = dialect.insert(jobs_table).on_conflict_do_nothing().returning(jobs_table.c.id)
        inserted |= set(connection.execute(statement, [_row(job) for job in keyed]).scalars())
    return inserted


def _row(job: Job) -> dict[str, object]:
    return {column.key: getattr(job, column.key) for column in jobs_table.columns}


def _stored_earlier(session: Session, retried: list[Job]) -> dict[tuple[uuid.UUID | None, str], Job]:
    """The jobs stored before under the retried jobs' (owner, idempotency key) pairs."""
    keys = [(job.owner_id, job.idempotency_key) for job in retried if job.idempotency_key]
    if not keys:
        return {}
    query = select(Job).where(tuple_(Job.owner_id, Job.idempotency_key).in_(keys))
    return {(job.owner_id, job.idempotency_key or ""): job for job in session.scalars(query)}


def mark_unpublished(sessions: sessionmaker[Session], job_ids: list[uuid.UUID]) -> None:
    """These jobs' task did not reach the broker: the reconciler's next pass publishes them."""
    with transaction(sessions) as session:
        session.execute(update(Job).where(Job.id.in_(job_ids)).values(published_at=None))
