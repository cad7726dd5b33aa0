"""The web's intake: jobs that arrive together are stored in one transaction and travel in one message."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from tests.accounts import Account
from tests.conftest import RecordingEnqueue
from webapp.models import Job, JobStatus
from webapp.services.dispatch import SCORE_JOBS
from webapp.services.events import SilentAnnouncer, Wakeups
from webapp.services.intake import JobIntake
from webapp.services.jobs import JobRequest, JobService
from webapp.services.models import ModelRegistry

GENTOO = {"island": "Biscoe", "bill_length_mm": 48.6, "flipper_length_mm": 230, "sex": "male"}
# Long enough that a group closed by the window, rather than by the rules under test, would be noticed.
LONG_WINDOW = 30.0


@pytest.fixture
def enqueue() -> RecordingEnqueue:
    return RecordingEnqueue()


def make_intake(registry: ModelRegistry, enqueue: RecordingEnqueue, max_rows: int) -> JobIntake:
    return JobIntake(registry.sessions, enqueue, max_rows=max_rows, wait_seconds=LONG_WINDOW)


@pytest.fixture
def intake(registry: ModelRegistry, enqueue: RecordingEnqueue) -> Iterator[JobIntake]:
    intake = make_intake(registry, enqueue, max_rows=256)
    intake.start()
    yield intake
    intake.stop()


def service(registry: ModelRegistry, intake: JobIntake, enqueue: RecordingEnqueue) -> JobService:
    return JobService(registry.sessions, registry, intake, enqueue, SilentAnnouncer(), Wakeups(), max_rows=100)


def test_a_lone_submission_is_stored_and_published_without_waiting_for_company(
    registry: ModelRegistry, intake: JobIntake, enqueue: RecordingEnqueue, engine: Engine
) -> None:
    job = service(registry, intake, enqueue).prepare(JobRequest("penguins", None, GENTOO))

    pending = intake.submit(job)
    stored = pending.stored.result(timeout=LONG_WINDOW / 3)
    assert pending.published.result(timeout=LONG_WINDOW / 3) is True

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
    stored = [p.stored.result(timeout=5) for p in pending]
    assert all(p.published.result(timeout=5) for p in pending)

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
            for full in pending[:2]:  # full groups go at once, without waiting for the arrival to end
                full.published.result(timeout=LONG_WINDOW / 3)
    finally:
        intake.stop()

    assert [len(d.targets) for d in enqueue.dispatches] == [2, 1], "2 + 2 rows reach 3; the third job waits"


def test_when_the_broker_is_unreachable_the_jobs_stay_queued_for_the_reconciler(
    registry: ModelRegistry, intake: JobIntake, enqueue: RecordingEnqueue, engine: Engine
) -> None:
    enqueue.fail = True
    jobs = service(registry, intake, enqueue)
    with intake.arriving():
        pending = [intake.submit(jobs.prepare(JobRequest("penguins", None, GENTOO))) for _ in range(2)]

    assert [p.stored.result(timeout=5).status for p in pending] == [JobStatus.QUEUED] * 2
    assert [p.published.result(timeout=5) for p in pending] == [False, False]
    with Session(engine) as session:
        waiting = session.execute(select(Job.status, Job.published_at)).all()
    assert waiting == [(JobStatus.QUEUED, None)] * 2, "queued, publish pending"


def test_a_retry_with_the_same_idempotency_key_gets_the_first_job_back(
    registry: ModelRegistry,
    intake: JobIntake,
    enqueue: RecordingEnqueue,
    engine: Engine,
    member: Account,
    admin: Account,
) -> None:
    jobs = service(registry, intake, enqueue)
    mine = member.principal.user_id
    first = jobs.create(JobRequest("penguins", None, GENTOO, idempotency_key="order-17", owner_id=mine))
    with intake.arriving():  # two more retries, arriving together
        retries = [
            intake.submit(
                jobs.prepare(JobRequest("penguins", None, [GENTOO] * 2, idempotency_key="order-17", owner_id=mine))
            )
            for _ in range(2)
        ]
    other = jobs.create(JobRequest("penguins", None, GENTOO, idempotency_key="order-18", owner_id=mine))
    # Keys are per user: another user's "order-17" is a job of their own.
    theirs = jobs.create(
        JobRequest("penguins", None, GENTOO, idempotency_key="order-17", owner_id=admin.principal.user_id)
    )
    assert all(r.published.result(timeout=5) for r in retries)

    assert [r.stored.result(timeout=5).id for r in retries] == [first.id, first.id]
    assert other.id != first.id and theirs.id not in (first.id, other.id)
    assert enqueue.published == [str(first.id), str(other.id), str(theirs.id)], "each job published once"
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(Job)) == 3


def test_stopping_stores_and_publishes_what_was_handed_in(
    registry: ModelRegistry, enqueue: RecordingEnqueue, engine: Engine
) -> None:
    intake = make_intake(registry, enqueue, max_rows=256)
    intake.start()
    jobs = service(registry, intake, enqueue)
    with intake.arriving():
        pending = intake.submit(jobs.prepare(JobRequest("penguins", None, GENTOO)))
        intake.stop()

    assert pending.stored.result(timeout=0).status == JobStatus.QUEUED
    assert pending.published.result(timeout=0) is True
    assert enqueue.published == [str(pending.job.id)]
