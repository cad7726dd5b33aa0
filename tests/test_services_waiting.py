"""Waiting for a job's end: no announcement may slip between storing a job and starting to watch it."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import Iterable, Mapping, Sequence

import pytest
from sqlalchemy.orm import Session

from tests.conftest import RecordingEnqueue, worker_context
from tests.loops import run
from webapp.models import Job, JobStatus
from webapp.services.dispatch import Dispatch
from webapp.services.events import NO_ENDS, JobEnd, SilentAnnouncer, Wakeups, payloads
from webapp.services.intake import JobIntake
from webapp.services.jobs import JobRequest, JobService
from webapp.services.models import ModelRegistry
from webapp.services.reads import CoalescedReads
from webapp.services.scoring import score_jobs

GENTOO = {"island": "Biscoe", "bill_length_mm": 48.6, "flipper_length_mm": 230, "sex": "male"}


class LoopbackAnnouncer:
    """Hands announcements straight to this process's wake-ups, as the listener would (no channel in between)."""

    def __init__(self, wakeups: Wakeups, loop: asyncio.AbstractEventLoop) -> None:
        self.wakeups, self.loop = wakeups, loop

    def announce(
        self, session: Session, job_ids: Iterable[uuid.UUID], ends: Mapping[uuid.UUID, JobEnd] = NO_ENDS
    ) -> None:
        for payload in payloads(job_ids, ends):
            self.loop.call_soon_threadsafe(self.wakeups.wake, payload)


def test_prefer_wait_sees_a_job_that_ends_before_the_request_looks_again(
    registry: ModelRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Were the announcement missed, only this recheck would find the end, long after the request gave up.
    monkeypatch.setattr(Wakeups, "LISTENING_RECHECK_SECONDS", 60.0)
    context = worker_context(registry)

    async def scenario() -> str:
        loop = asyncio.get_running_loop()
        wakeups = Wakeups()
        wakeups.listening = True
        announcing = dataclasses.replace(context, announcer=LoopbackAnnouncer(wakeups, loop))

        def instant_worker(dispatches: Sequence[Dispatch]) -> None:
            """Scores the job while it is being published, and announces its end at once (the real scoring runs:
            only the broker hop is left out)."""
            for dispatch in dispatches:
                score_jobs(announcing, dispatch.targets)

        intake = JobIntake(registry.sessions, instant_worker, max_rows=256, wait_seconds=0)
        intake.start()
        try:
            jobs = JobService(
                registry.sessions, registry, intake, RecordingEnqueue(), SilentAnnouncer(), wakeups, max_rows=10
            )
            job = await jobs.create_async(JobRequest("penguins", None, GENTOO), wait=5)
        finally:
            intake.stop()
        return job.status

    assert run(scenario) == JobStatus.SUCCEEDED


def test_prefer_wait_answers_from_the_announced_end_without_reading_the_job_again(registry: ModelRegistry) -> None:
    context = worker_context(registry)
    reads: list[list[uuid.UUID]] = []

    async def scenario() -> Job:
        wakeups = Wakeups()
        wakeups.listening = True
        announcing = dataclasses.replace(context, announcer=LoopbackAnnouncer(wakeups, asyncio.get_running_loop()))
        enqueue = RecordingEnqueue()
        intake = JobIntake(registry.sessions, enqueue, max_rows=256, wait_seconds=0)
        intake.start()
        try:
            jobs = JobService(registry.sessions, registry, intake, enqueue, SilentAnnouncer(), wakeups, max_rows=10)

            def counted(job_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Job]:
                reads.append(list(job_ids))
                return jobs.get_many(job_ids)

            jobs.reads = CoalescedReads(counted)
            waiting = asyncio.create_task(jobs.create_async(JobRequest("penguins", None, GENTOO), wait=5))
            while not enqueue.dispatches:
                await asyncio.sleep(0.01)
            await asyncio.to_thread(score_jobs, announcing, enqueue.dispatches[0].targets)
            return await waiting
        finally:
            intake.stop()

    job = run(scenario)

    assert job.status == JobStatus.SUCCEEDED
    assert job.result is not None and [p["label"] for p in job.result["predictions"]] == ["Gentoo"]
    assert job.started_at is not None and job.finished_at is not None and job.rows_done == 1
    assert reads == [], "answered from the announcement"
    with registry.sessions() as session:
        stored = session.get_one(Job, job.id)
        assert (stored.result, stored.finished_at, stored.started_at) == (job.result, job.finished_at, job.started_at)
