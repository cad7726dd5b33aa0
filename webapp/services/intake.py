"""Stores new small jobs and publishes their task in groups: one commit and one message for jobs that arrive together.

Per job, a commit and a Celery message are the costs that do not shrink with batching; grouping them here is what
lets a worker score many jobs with one call (see services/scoring.py). A group closes when it holds
`max_rows` rows, when no other submission is on its way, or `wait_seconds` after its first job — so a lone
request never waits, and a crowd of them travels together.

Storing and publishing run on two watched threads (services/watched_threads.py): a broker that is down or hangs
holds up publishing only, and a request waits for its publish no longer than PUBLISH_WAIT_SECONDS. `published_at`
is written once the task reached the broker; until then the reconciler publishes the job itself after a couple of
seconds, whatever happened to this process. A request that stops waiting never harms the threads: a job withdrawn
before the store thread took it is never stored, a taken one's futures can only be resolved, not cancelled.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session, sessionmaker

from webapp.db import transaction
from webapp.models import Job, JobStatus, jobs_table, utcnow
from webapp.services.dispatch import SCORE_JOBS, Dispatch, Enqueue
from webapp.services.held_connection import HeldConnection
from webapp.services.job_inserts import insert_new, stored_earlier
from webapp.services.watched_threads import WatchedThreads

log = logging.getLogger(__name__)

# How long a submission waits to hear that its task reached the broker; past it, it is answered all the same.
PUBLISH_WAIT_SECONDS = 1.5
# How long the next group is held back while the previous one is being published.
STORE_WAITS_FOR_PUBLISH_SECONDS = 0.2
# A thread busy with one group longer than this is stuck: every wait in it has a shorter deadline (database, broker).
STUCK_AFTER_SECONDS = 60.0


@dataclass
class Pending:
    job: Job
    stored: Future[Job] = field(default_factory=Future)
    """The job as committed, or the one stored earlier under the same idempotency key; cancelled (`withdraw`)
    before the store thread takes it, the job is never stored."""
    published: Future[bool] = field(default_factory=Future)
    """Whether its task reached the broker; False leaves it to the reconciler."""

    def __post_init__(self) -> None:
        # Running from the start: a waiter that gives up (asyncio cancels a wrapped future) cannot cancel it.
        self.published.set_running_or_notify_cancel()

    def withdraw(self) -> bool:
        """The request stops waiting: True if the job will never be stored, False if it may have been or was."""
        return self.stored.cancel()


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
        on_stuck: Callable[[str], None] | None = None,
    ) -> None:
        self.sessions = sessions
        self.enqueue = enqueue
        self.max_rows = max_rows
        self.wait_seconds = wait_seconds
        self._pending: queue.Queue[Pending | None] = queue.Queue()
        self._stored: queue.Queue[StoredGroup | None] = queue.Queue()
        self._arriving = 0
        self._lock = threading.Lock()
        self._connection = HeldConnection(sessions)  # the store thread's
        self._publisher_idle = threading.Event()
        self._publisher_idle.set()
        self.threads = WatchedThreads(
            {"apot-intake-store": self._store_groups, "apot-intake-publish": self._publish_groups},
            stuck_after=STUCK_AFTER_SECONDS,
            on_stuck=on_stuck,
        )

    def start(self) -> None:
        self.threads.start()

    def stop(self, timeout: float | None = None) -> None:
        """Store and publish what was handed in, then end the threads (waiting at most `timeout` for each)."""
        self._pending.put(None)
        self.threads.join(timeout)

    def problem(self) -> str | None:
        """Why the intake cannot take jobs now (a thread ended or stuck), or None."""
        return self.threads.problem()

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
            group = [pending for pending in group if pending.stored.set_running_or_notify_cancel()]
            if group:
                with self.threads.busy("apot-intake-store"):
                    try:
                        self._store(group)
                    except Exception as exc:  # a bug: this group's requests get an error, the next group is served
                        log.exception("the intake failed to store %d jobs", len(group))
                        _fail(group, exc)
            if stopping:
                self._connection.close()
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
        # One message per model version: a slow model's time limit fails only its own jobs.
        task_ids: dict[tuple[str, str], str] = {}
        for pending in group:
            job = pending.job
            job.task_id = task_ids.setdefault((job.model_name, job.model_version), str(uuid.uuid4()))
        try:
            inserted, earlier = self._insert(group)
        except Exception as exc:
            if len(group) > 1:  # one member's bad value fails the whole INSERT: alone, only that one fails (logged)
                for pending in group:
                    self._store([pending])
                return
            log.exception("could not store a new job", extra={"job_id": str(group[0].job.id)})
            _fail(group, exc)
            return
        new = [pending for pending in group if pending.job.id in inserted]
        for pending in new:  # on this thread, off the requests' path
            job = pending.job
            log.info("job queued", extra={"job_id": str(job.id), "task_id": job.task_id, "model": job.model_name})
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
        for task_id in task_ids.values():
            same_task = [pending for pending in new if pending.job.task_id == task_id]
            if same_task:
                self._stored.put(StoredGroup(same_task, task_id))

    def _insert(self, group: list[Pending]) -> tuple[set[uuid.UUID], dict[tuple[uuid.UUID | None, str], Job]]:
        def insert(session: Session) -> tuple[set[uuid.UUID], dict[tuple[uuid.UUID | None, str], Job]]:
            inserted = insert_new(session, [pending.job for pending in group])
            return inserted, stored_earlier(session, [p.job for p in group if p.job.id not in inserted])

        return self._connection.transaction(insert)

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
            with self.threads.busy("apot-intake-publish"):
                self._send(groups)
        except Exception:  # a bug: the reconciler publishes these jobs; the next groups are served
            log.exception("the intake failed to publish %d groups", len(groups))
            for group in groups:
                _resolve(group.pending, published=False)
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
            for group in groups:
                _resolve(group.pending, published=False)
            return
        pending = [p for group in groups for p in group.pending]
        _resolve(pending, published=True)  # the requests go on before the write below
        mark_published(self.sessions, [p.job.id for p in pending])


def _resolve(group: Sequence[Pending], *, published: bool) -> None:
    for pending in group:
        if not pending.published.done():
            pending.published.set_result(published)


def _fail(group: Sequence[Pending], exc: Exception) -> None:
    for pending in group:
        if not pending.stored.done():
            pending.stored.set_exception(exc)
    _resolve(group, published=False)


# Built once: a statement rebuilt per group cost more CPU than the database's work on it.
_UNCLAIMED = (
    select(jobs_table.c.id)
    .where(jobs_table.c.id.in_(bindparam("job_ids", expanding=True)), jobs_table.c.status == JobStatus.QUEUED)
    .order_by(jobs_table.c.id)
    .with_for_update(skip_locked=True)
)
_MARK_PUBLISHED = update(jobs_table).where(jobs_table.c.id.in_(_UNCLAIMED)).values(published_at=bindparam("now"))


def mark_published(sessions: sessionmaker[Session], job_ids: list[uuid.UUID]) -> None:
    """Their task reached the broker (if this write fails, the reconciler sends a second, harmless message).

    Jobs a worker is claiming meanwhile are skipped, never waited for: a claimed job needs no mark (the reconciler
    looks only at queued ones), and waiting here for a claim that waits for the other rows of this group was a
    deadlock (seen under 64 clients: the publish thread stalled a second, then its mark was rolled back)."""
    try:
        with transaction(sessions) as session:
            session.connection().execute(_MARK_PUBLISHED, {"job_ids": job_ids, "now": utcnow()})
    except Exception:
        log.warning("could not mark %d published jobs as published", len(job_ids), exc_info=True)
