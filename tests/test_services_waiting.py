"""Waiting for a job's end: no announcement may slip between storing a job and starting to watch it."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from tests.conftest import RecordingEnqueue, worker_context
from tests.loops import run
from webapp.models import JobStatus
from webapp.services.dispatch import Dispatch
from webapp.services.events import SilentAnnouncer, Wakeups
from webapp.services.intake import JobIntake
from webapp.services.jobs import JobRequest, JobService
from webapp.services.models import ModelRegistry
from webapp.services.scoring import score_jobs

GENTOO = {"island": "Biscoe", "bill_length_mm": 48.6, "flipper_length_mm": 230, "sex": "male"}


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

        def instant_worker(dispatches: Sequence[Dispatch]) -> None:
            """Scores the job while it is being published, and announces its end at once (the real scoring runs:
            only the broker hop is left out)."""
            for dispatch in dispatches:
                score_jobs(context, dispatch.targets)
                loop.call_soon_threadsafe(wakeups.wake, ",".join(dispatch.targets))

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
