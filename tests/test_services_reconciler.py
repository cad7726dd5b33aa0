"""The reconciler on a real database: lost work is taken back, unpublished work published, each exactly once."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, insert, select, update
from sqlalchemy.orm import Session

from tests.conftest import RecordingEnqueue, worker_context
from webapp.background.reconciler import PUBLISH_GRACE_SECONDS, Reconciler, ReconcilerSettings
from webapp.models import ChunkStatus, Job, JobChunk, JobStatus, jobs_table, utcnow
from webapp.services.dispatch import SCORE_CHUNK, SCORE_JOBS
from webapp.services.events import SilentAnnouncer
from webapp.services.models import ModelRegistry
from webapp.services.scoring import score_jobs

GENTOO = {"island": "Biscoe", "bill_length_mm": 48.6, "flipper_length_mm": 230, "sex": "male"}
SETTINGS = ReconcilerSettings(max_attempts=2, republish_after_seconds=300, batch_max_rows=4)


def reconciler(registry: ModelRegistry, enqueue: RecordingEnqueue) -> Reconciler:
    return Reconciler(registry.sessions, enqueue, SilentAnnouncer(), SETTINGS)


def add_jobs(engine: Engine, count: int, **values: Any) -> list[uuid.UUID]:
    """Single-row penguin jobs, created a minute ago, as the intake stores them; `values` override columns."""
    created = utcnow() - timedelta(minutes=1)
    rows = [
        {
            "id": uuid.uuid4(),
            "kind": "single",
            "status": "queued",
            "model_name": "penguins",
            "model_version": "1",
            "task_id": "t",
            "inputs": [GENTOO],
            "rows_total": 1,
            "rows_done": 0,
            "rows_failed": 0,
            "attempts": 0,
            "created_at": created,
            "published_at": created,
            **values,
        }
        for _ in range(count)
    ]
    with engine.begin() as connection:
        connection.execute(insert(jobs_table), rows)
    return [row["id"] for row in rows]


def job(engine: Engine, job_id: uuid.UUID) -> Job:
    with Session(engine) as session:
        return session.get_one(Job, job_id)


def test_a_job_whose_worker_vanished_is_queued_again_and_published(registry: ModelRegistry, engine: Engine) -> None:
    enqueue = RecordingEnqueue()
    expired = utcnow() - timedelta(seconds=1)
    (lost,) = add_jobs(engine, 1, status="running", worker="gone:1", attempts=1, lease_until=expired)
    (alive,) = add_jobs(
        engine, 1, status="running", worker="here:2", attempts=1, lease_until=utcnow() + timedelta(seconds=60)
    )

    report = reconciler(registry, enqueue).run_once()

    assert report.requeued == [lost]
    assert enqueue.published == [str(lost)]
    assert (job(engine, lost).status, job(engine, lost).worker) == (JobStatus.QUEUED, None)
    assert job(engine, alive).status == JobStatus.RUNNING
    enqueue.deliver(registry)
    assert (job(engine, lost).status, job(engine, lost).attempts) == (JobStatus.SUCCEEDED, 2)


def test_a_job_lost_max_attempts_times_fails_with_worker_lost(registry: ModelRegistry, engine: Engine) -> None:
    expired = utcnow() - timedelta(seconds=1)
    (lost,) = add_jobs(engine, 1, status="running", worker="gone:1", attempts=2, lease_until=expired)

    report = reconciler(registry, RecordingEnqueue()).run_once()

    assert report.lost == [lost]
    failed = job(engine, lost)
    assert failed.status == JobStatus.FAILED
    assert failed.error is not None and failed.error.startswith("worker_lost")


def test_a_late_worker_cannot_overwrite_a_job_taken_back_from_it(registry: ModelRegistry, engine: Engine) -> None:
    enqueue = RecordingEnqueue()
    (job_id,) = add_jobs(engine, 1)
    slow = worker_context(registry)
    with Session(engine) as session, session.begin():  # the slow worker claimed it and then stalled
        session.execute(
            update(Job)
            .where(Job.id == job_id)
            .values(status="running", worker=slow.worker, attempts=1, lease_until=utcnow() - timedelta(seconds=1))
        )
    reconciler(registry, enqueue).run_once()
    enqueue.deliver(registry)  # another worker scores it
    finished = job(engine, job_id).finished_at

    score_jobs(slow, [str(job_id)])  # the stalled one's message is delivered again: the job is not queued

    assert job(engine, job_id).finished_at == finished
    assert job(engine, job_id).attempts == 2


def test_jobs_whose_publish_failed_are_published_after_the_grace(registry: ModelRegistry, engine: Engine) -> None:
    enqueue = RecordingEnqueue()
    pending = add_jobs(engine, 5, published_at=None)
    (fresh,) = add_jobs(engine, 1, published_at=None, created_at=utcnow())  # the web may still be publishing
    (published,) = add_jobs(engine, 1)  # reached the broker a minute ago: not yet due again

    report = reconciler(registry, enqueue).run_once()

    assert report.published_jobs == 5
    assert sorted(enqueue.published) == sorted(map(str, pending))
    assert [len(d.targets) for d in enqueue.dispatches] == [4, 1], "grouped up to batch_max_rows"
    assert {d.task for d in enqueue.dispatches} == {SCORE_JOBS}
    later = reconciler(registry, enqueue).run_once(utcnow() + timedelta(seconds=PUBLISH_GRACE_SECONDS + 1))
    assert later.published_jobs == 1 and enqueue.published[-1] == str(fresh)
    assert str(published) not in enqueue.published


def test_jobs_of_different_models_are_published_again_in_messages_of_their_own(
    registry: ModelRegistry, engine: Engine
) -> None:
    enqueue = RecordingEnqueue()
    penguins = add_jobs(engine, 2, published_at=None)
    sizes = add_jobs(engine, 1, published_at=None, model_name="sizes")

    reconciler(registry, enqueue).run_once()

    assert sorted(sorted(d.targets) for d in enqueue.dispatches) == sorted(
        [sorted(map(str, penguins)), [str(sizes[0])]]
    ), "a slow model's time limit must fail only its own jobs"


def test_jobs_the_broker_lost_are_published_again_after_republish_after(
    registry: ModelRegistry, engine: Engine
) -> None:
    enqueue = RecordingEnqueue()
    (lost,) = add_jobs(engine, 1)

    assert reconciler(registry, enqueue).run_once().published_jobs == 0
    later = utcnow() + timedelta(seconds=SETTINGS.republish_after_seconds)
    assert reconciler(registry, enqueue).run_once(later).published_jobs == 1
    assert enqueue.published == [str(lost)]


def test_a_failed_republish_is_tried_again_next_pass(registry: ModelRegistry, engine: Engine) -> None:
    enqueue = RecordingEnqueue()
    (job_id,) = add_jobs(engine, 1, published_at=None)
    enqueue.fail = True
    assert reconciler(registry, enqueue).run_once().published_jobs == 0
    assert job(engine, job_id).published_at is None

    enqueue.fail = False
    assert reconciler(registry, enqueue).run_once().published_jobs == 1


def test_csv_chunks_are_taken_back_and_a_job_whose_chunks_all_ended_is_finished(
    registry: ModelRegistry, engine: Engine
) -> None:
    enqueue = RecordingEnqueue()
    (csv_job,) = add_jobs(engine, 1, kind="csv", status="running", inputs=[], rows_total=2)
    expired = utcnow() - timedelta(seconds=1)
    chunk_ids = [uuid.uuid4(), uuid.uuid4()]
    with Session(engine) as session, session.begin():
        for position, (chunk_id, status) in enumerate(zip(chunk_ids, ["done", "running"], strict=True)):
            session.add(
                JobChunk(
                    id=chunk_id,
                    job_id=csv_job,
                    position=position,
                    first_row=position + 1,
                    status=status,
                    task_id=f"chunk-{position}",
                    rows=1,
                    input=b"",
                    attempts=1,
                    worker="gone:1",
                    lease_until=expired,
                    published_at=expired,
                )
            )

    report = reconciler(registry, enqueue).run_once()

    assert report.requeued == [chunk_ids[1]]
    assert [(d.task, d.targets) for d in enqueue.dispatches] == [(SCORE_CHUNK, (str(chunk_ids[1]),))]
    with Session(engine) as session, session.begin():
        session.execute(update(JobChunk).where(JobChunk.id == chunk_ids[1]).values(status=ChunkStatus.DONE))
    assert reconciler(registry, enqueue).run_once().finished == [csv_job]
    assert job(engine, csv_job).status == JobStatus.SUCCEEDED


def test_two_reconcilers_over_a_thousand_stuck_jobs_publish_each_once(registry: ModelRegistry, engine: Engine) -> None:
    stuck = add_jobs(engine, 1000, published_at=None)
    enqueue = RecordingEnqueue()
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def one_pass() -> None:
        barrier.wait()
        try:
            reconciler(registry, enqueue).run_once()
        except BaseException as exc:  # reported below; a thread's exception would otherwise vanish
            errors.append(exc)

    threads = [threading.Thread(target=one_pass) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    counts = Counter(enqueue.published)
    assert set(counts) == set(map(str, stuck))
    assert set(counts.values()) == {1}


@pytest.fixture(autouse=True)
def _penguins(registry: ModelRegistry) -> None:
    """The jobs name penguins version 1: registered by the registry fixture."""
    assert registry.get("penguins", "1")


def test_reconciling_nothing_changes_nothing(registry: ModelRegistry, engine: Engine) -> None:
    assert not reconciler(registry, RecordingEnqueue()).run_once()
    with Session(engine) as session:
        assert session.scalars(select(Job)).all() == []
