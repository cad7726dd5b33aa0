"""Create, read, list and wait for jobs: the web side of a job's life."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Sequence
from contextlib import ExitStack, suppress
from dataclasses import dataclass
from typing import Any

import anyio
from sqlalchemy import select, update
from sqlalchemy.orm import Session, defer, sessionmaker

from ml.validation import InputError, InvalidInputs, validate_rows
from webapp.db import transaction
from webapp.models import ChunkStatus, Job, JobChunk, JobKind, JobStatus, utcnow
from webapp.services.accounts import Principal
from webapp.services.callback_urls import check_callback_url
from webapp.services.dispatch import Enqueue
from webapp.services.events import Announcer, Ending, Wakeups
from webapp.services.intake import PUBLISH_WAIT_SECONDS, JobIntake, Pending
from webapp.services.models import ModelRegistry
from webapp.services.reads import CoalescedReads

log = logging.getLogger(__name__)

# A submission is answered within this even if the database or the broker hangs.
SUBMIT_TIMEOUT_SECONDS = 10


class JobNotFound(LookupError):
    """No job has that id."""


class JobAlreadyEnded(RuntimeError):
    """Cancelling came too late."""


class Unavailable(RuntimeError):
    """The database did not answer in time; answered 503, like a database that cannot be reached."""


def not_stored(pending: Pending) -> Unavailable:
    """The 503 of a submission whose job was not stored in time; true to what happens to the job afterwards."""
    if pending.withdraw():
        return Unavailable("the database did not store the job in time; it was not created: try again")
    job = pending.job
    again = (
        f"submit again with the same Idempotency-Key ({job.idempotency_key!r}) to get it"
        if job.idempotency_key
        else f"look it up at /api/v1/jobs/{job.id} before submitting again"
    )
    return Unavailable(f"the database did not answer in time; the job may have been created as {job.id}: {again}")


@dataclass(frozen=True)
class JobRequest:
    """What a client asks for: a model, maybe a version, and one row or a list of rows."""

    model: str
    version: str | None
    inputs: dict[str, Any] | list[Any]
    compare_to: uuid.UUID | None = None
    idempotency_key: str | None = None
    owner_id: uuid.UUID | None = None
    api_key_id: uuid.UUID | None = None
    callback_url: str | None = None
    kind: JobKind | None = None  # None: single or batch, as `inputs` is an object or a list; else v2, say


def owned_by(query: Any, owner: uuid.UUID | None) -> Any:
    """The query limited to one owner's jobs; None leaves it open (an admin sees every job)."""
    return query if owner is None else query.where(Job.owner_id == owner)


class JobService:
    """Jobs as the web side sees them; one per process, shared by the pages and the JSON API."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        models: ModelRegistry,
        intake: JobIntake,
        enqueue: Enqueue,
        announcer: Announcer,
        wakeups: Wakeups,
        *,
        max_rows: int,
        allow_private_callbacks: bool = False,
    ) -> None:
        self.sessions = sessions
        self.models = models
        self.intake = intake
        self.enqueue = enqueue
        self.announcer = announcer
        self.wakeups = wakeups
        self.reads = CoalescedReads(self.get_many)
        self.max_rows = max_rows
        self.allow_private_callbacks = allow_private_callbacks

    def create(self, request: JobRequest | Job) -> Job:
        """Validate the rows against the model's schema (a Job apot made itself is taken as it is), store a queued
        job and publish its task (waiting for the broker a bounded time: if not, it stays queued for the reconciler)."""
        with self.intake.arriving():
            pending = self.intake.submit(request if isinstance(request, Job) else self.prepare(request))
        try:
            job = pending.stored.result(SUBMIT_TIMEOUT_SECONDS)
        except TimeoutError as exc:
            raise not_stored(pending) from exc
        with suppress(TimeoutError):
            pending.published.result(PUBLISH_WAIT_SECONDS)
        return job

    async def create_async(self, request: JobRequest, *, wait: float | None = None) -> Job:
        """`create` for async routes: the event loop keeps serving while the job is stored. With `wait`, the job
        once it has ended, or as it stands when `wait` seconds have passed."""
        deadline = time.monotonic() + (wait or 0)
        with ExitStack() as watching:
            with self.intake.arriving():
                job = await anyio.to_thread.run_sync(self.prepare, request)
                # Watched before it is stored: a job can end before this coroutine runs again.
                ended = watching.enter_context(self.wakeups.watch(job.id)) if wait is not None else None
                pending = self.intake.submit(job)
            try:
                with anyio.fail_after(SUBMIT_TIMEOUT_SECONDS):
                    job = await asyncio.wrap_future(pending.stored)
            except TimeoutError as exc:
                raise not_stored(pending) from exc
            with anyio.move_on_after(PUBLISH_WAIT_SECONDS):
                await asyncio.wrap_future(pending.published)
            if ended is None:
                return job
            if job.id != pending.job.id:  # a retry: the job stored under its Idempotency-Key is the one to wait for
                return await self.wait(job.id, max(0.0, deadline - time.monotonic()))
            return await self._until_ended(job.id, ended, deadline, seen=job)

    def find_by_key(self, idempotency_key: str, owner: uuid.UUID | None) -> Job | None:
        """The job this owner submitted earlier with this Idempotency-Key, if any."""
        query = select(Job).where(Job.idempotency_key == idempotency_key, Job.owner_id == owner)
        with self.sessions() as session:
            return session.scalars(query).one_or_none()

    def check_callback(self, url: str | None) -> str | None:
        """The callback URL if webhooks may go there (CallbackRefused otherwise); resolves its host, so it blocks."""
        if url is not None:
            check_callback_url(url, allow_private=self.allow_private_callbacks)
        return url

    def prepare(self, request: JobRequest) -> Job:
        """The queued job a request asks for, its rows checked against the model's schema; not stored yet."""
        info = self.models.get(request.model, request.version)
        callback_url = self.check_callback(request.callback_url)
        batch = isinstance(request.inputs, list)
        rows = request.inputs if isinstance(request.inputs, list) else [request.inputs]
        if batch and not 1 <= len(rows) <= self.max_rows:
            raise InvalidInputs(
                [
                    InputError(
                        (),
                        f"List should have between 1 and {self.max_rows} rows, not {len(rows)}",
                        "too_long",
                    )
                ]
            )
        return Job(
            id=uuid.uuid4(),
            kind=request.kind or (JobKind.BATCH if batch else JobKind.SINGLE),
            status=JobStatus.QUEUED,
            model_name=info.name,
            model_version=info.version,
            task_id="",  # the intake sets it: jobs stored together share one message
            inputs=validate_rows(info.schema, rows, batch=batch),
            rows_total=len(rows),
            compare_to=request.compare_to,
            idempotency_key=request.idempotency_key,
            owner_id=request.owner_id,
            api_key_id=request.api_key_id,
            callback_url=callback_url,
            webhook_attempts=0,
            rows_done=0,
            rows_failed=0,
            attempts=0,
            created_at=utcnow(),
        )

    def rerun(self, job: Job, by: Principal, version: str | None = None, *, compare: bool = False) -> Job:
        """A new job of `by` with the inputs of a single or batch job, on its model version or on `version`; with
        `compare`, the new job points back at the old one so the two can be shown side by side."""
        target = self.models.get(job.model_name, version or job.model_version)
        # Another version may take fewer features: it is given those it knows (a CSV passes the rest through).
        rows = [{k: v for k, v in row.items() if k in target.schema.names} for row in job.inputs]
        inputs = rows[0] if job.kind == JobKind.SINGLE else rows
        return self.create(
            JobRequest(
                job.model_name,
                target.version,
                inputs,
                job.id if compare else None,
                owner_id=by.user_id,
                api_key_id=by.api_key_id,
            )
        )

    def cancel(self, job_id: uuid.UUID, *, owner: uuid.UUID | None) -> Job:
        """Stop a queued or running job: chunks not yet started are never scored, what was scored is kept."""
        with transaction(self.sessions) as session:
            cancelled = session.execute(
                owned_by(update(Job), owner)
                .where(Job.id == job_id, Job.status.in_([JobStatus.QUEUED, JobStatus.RUNNING]))
                .values(status=JobStatus.CANCELLED, finished_at=utcnow())
                .returning(Job.id)
            ).first()
            if cancelled:
                self.announcer.announce(session, [job_id])
                session.execute(
                    update(JobChunk)
                    .where(JobChunk.job_id == job_id, JobChunk.status == ChunkStatus.QUEUED)
                    .values(status=ChunkStatus.CANCELLED)
                )
        job = self.get(job_id, owner=owner)  # JobNotFound for another owner's job, which nothing above touched
        if not cancelled:
            raise JobAlreadyEnded(f"the job has already {job.status}")
        log.info("job cancelled", extra={"job_id": str(job.id), "task_id": job.task_id})
        return job

    def get(self, job_id: uuid.UUID, *, owner: uuid.UUID | None) -> Job:
        """The job with that id, or JobNotFound; another owner's job is not found either (None: any owner)."""
        with self.sessions() as session:
            job = session.get(Job, job_id)
        if job is None or (owner is not None and job.owner_id != owner):
            raise JobNotFound(f"no job with id {job_id}")
        return job

    def get_many(self, job_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Job]:
        """The jobs among these ids that exist, by id, in one query; without inputs, which no answer to a wait shows."""
        with self.sessions() as session:
            query = select(Job).options(defer(Job.inputs, raiseload=True)).where(Job.id.in_(job_ids))
            return {job.id: job for job in session.scalars(query)}

    async def wait(self, job_id: uuid.UUID, seconds: float) -> Job:
        """The job once it has ended, or as it stands when `seconds` have passed; woken by the job's end."""
        deadline = time.monotonic() + seconds
        with self.wakeups.watch(job_id) as ended:
            return await self._until_ended(job_id, ended, deadline)

    async def _until_ended(self, job_id: uuid.UUID, ended: Ending, deadline: float, *, seen: Job | None = None) -> Job:
        """`seen` is the job as read after `ended` began to be watched (None: read it now)."""
        pauses = self.wakeups.pauses()
        job, read = seen, seen
        while True:
            if job is None:
                job = read = await self.reads.get(job_id)
                if job is None:
                    raise JobNotFound(f"no job with id {job_id}")
            left = deadline - time.monotonic()
            if JobStatus(job.status).ended or left <= 0:
                return job
            with anyio.move_on_after(min(left, next(pauses))):
                await ended.wait()
            ended.clear()
            # The announcement said what the end wrote: the job as seen before, with that, is the job now.
            job = ended.end.apply(read) if ended.end is not None and read is not None else None
