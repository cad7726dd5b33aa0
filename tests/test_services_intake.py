"""The web's intake: jobs that arrive together are stored in one transaction and travel in one message."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from tests.conftest import RecordingEnqueue
from webapp.models import Job, JobStatus
from webapp.services.dispatch import SCORE_JOBS
from webapp.services.events import SilentAnnouncer, Wakeups
from webapp.services.intake import JobIntake, QueueUnavailable
from webapp.services.jobs import JobRequest, JobService
from webapp.services.models import ModelRegistry

GENTOO = {"island": "Biscoe", "bill_length_mm": 48.6, "flipper_length_mm": 230, "sex": "male"}
# Long enough that a group closed by the window, rather than by the rules under test, would be noticed.
LONG_WINDOW = 30.0


@pytest.fixture
def enqueue() -> RecordingEnqueue:
    return RecordingEnqueue()


def make_intake(registry: ModelRegistry, enqueue: RecordingEnqueue, max_rows: int) -> JobIntake:
    return JobIntake(registry.sessions, enqueue, SilentAnnouncer(), max_rows=max_rows, wait_seconds=LONG_WINDOW)


@pytest.fixture
def intake(registry: ModelRegistry, enqueue: RecordingEnqueue) -> Iterator[JobIntake]:
    intake = make_intake(registry, enqueue, max_rows=256)
    intake.start()
    yield intake
    intake.stop()


def service(registry: ModelRegistry, intake: JobIntake, enqueue: RecordingEnqueue) -> JobService:
    return JobService(registry.sessions, registry, intake, enqueue, Wakeups(), max_rows=100)


def test_a_lone_submission_is_stored_and_published_without_waiting_for_company(
    registry: ModelRegistry, intake: JobIntake, enqueue: RecordingEnqueue, engine: Engine
) -> None:
    job = service(registry, intake, enqueue).prepare(JobRequest("penguins", None, GENTOO))

    stored = intake.submit(job).result(timeout=LONG_WINDOW / 3)

    assert enqueue.dispatches[0].task == SCORE_JOBS
    assert enqueue.published == [str(stored.id)]
    with Session(engine) as session:
        assert session.get_one(Job, stored.id).task_id == enqueue.dispatches[0].task_id


def test_submissions_arriving_together_share_one_commit_and_one_message(
    registry: ModelRegistry, intake: JobIntake, enqueue: RecordingEnqueue, engine: Engine
) -> None:
    jobs = service(registry, intake, enqueue)
    with intake.arriving():  # another request is still being validated: the group waits for it
        pending = [intake.submit(jobs.prepare(JobRequest("penguins", None, GENTOO))) for _ in range(3)]
        pending.append(intake.submit(jobs.prepare(JobRequest("penguins", None, [GENTOO, GENTOO]))))
    stored = [future.result(timeout=5) for future in pending]

    (dispatch,) = enqueue.dispatches
    assert sorted(dispatch.targets) == sorted(str(job.id) for job in stored)
    with Session(engine) as session:
        task_ids = set(session.scalars(select(Job.task_id)))
    assert task_ids == {dispatch.task_id}


def test_a_group_holds_at_most_max_rows(registry: ModelRegistry, enqueue: RecordingEnqueue) -> None:
    intake = make_intake(registry, enqueue, max_rows=3)
    intake.start()
    try:
        jobs = service(registry, intake, enqueue)
        with intake.arriving():
            pending = [intake.submit(jobs.prepare(JobRequest("penguins", None, [GENTOO] * 2))) for _ in range(3)]
            for future in pending[:2]:  # full groups go at once, without waiting for the arrival to end
                future.result(timeout=LONG_WINDOW / 3)
    finally:
        intake.stop()

    assert [len(d.targets) for d in enqueue.dispatches] == [2, 1], "2 + 2 rows reach 3; the third job waits"


def test_when_the_broker_is_unreachable_every_job_of_the_group_fails_with_that_reason(
    registry: ModelRegistry, intake: JobIntake, enqueue: RecordingEnqueue, engine: Engine
) -> None:
    enqueue.fail = True
    jobs = service(registry, intake, enqueue)
    with intake.arriving():
        pending = [intake.submit(jobs.prepare(JobRequest("penguins", None, GENTOO))) for _ in range(2)]

    for future in pending:
        with pytest.raises(QueueUnavailable):
            future.result(timeout=5)
    with Session(engine) as session:
        ended = session.execute(select(Job.status, Job.error)).all()
    assert ended == [(JobStatus.FAILED, "the task queue could not be reached")] * 2


def test_stopping_stores_and_publishes_what_was_handed_in(
    registry: ModelRegistry, enqueue: RecordingEnqueue, engine: Engine
) -> None:
    intake = make_intake(registry, enqueue, max_rows=256)
    intake.start()
    jobs = service(registry, intake, enqueue)
    with intake.arriving():
        pending = intake.submit(jobs.prepare(JobRequest("penguins", None, GENTOO)))
        intake.stop()

    assert pending.result(timeout=0).status == JobStatus.QUEUED
    assert enqueue.published == [str(pending.result().id)]
