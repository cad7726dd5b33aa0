"""Scoring a message of many small jobs: one model call per model version, each job its own outcome."""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sklearn.linear_model import Ridge
from sklearn.multioutput import MultiOutputRegressor
from sqlalchemy import Engine, delete, select, text, update
from sqlalchemy.orm import Session

from tests.conftest import RecordingEnqueue, worker_context
from tests.models import Trained
from tests.zoo import diabetes_two_targets
from webapp import db
from webapp.models import Job, JobStatus, RegisteredModel
from webapp.services import scoring
from webapp.services.events import SilentAnnouncer, Wakeups
from webapp.services.intake import JobIntake
from webapp.services.jobs import JobRequest, JobService
from webapp.services.models import ModelRegistry, estimator_bytes
from webapp.services.scoring import ScoringContext, score_jobs

GENTOO = {"island": "Biscoe", "bill_length_mm": 48.6, "flipper_length_mm": 230, "sex": "male"}
ADELIE = {"island": "Torgersen", "bill_length_mm": 36.7, "flipper_length_mm": 187, "bill_depth_mm": 19.3}
# Declared by its metadata to take "purple", which its encoder never saw: such a row passes validation and
# fails inside the model, the one kind of bad row that reaches a worker.
TOO_TRUSTING = {
    "features": [
        {"name": "size", "type": "number", "required": True},
        {"name": "colour", "type": "category", "required": True, "choices": ["blue", "purple", "red"]},
    ]
}


@pytest.fixture
def context(registry: ModelRegistry) -> ScoringContext:
    return worker_context(registry)


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The number of rows of each model call the scoring service makes (a spy: the real call still runs)."""
    made: list[int] = []
    real = scoring.predict_frame

    def counted(estimator: Any, frame: Any, outputs: Any) -> list[dict[str, Any]]:
        made.append(len(frame))
        return real(estimator, frame, outputs)

    monkeypatch.setattr(scoring, "predict_frame", counted)
    return made


@pytest.fixture
def jobs(registry: ModelRegistry) -> Iterator[JobService]:
    """The web's job service, its intake running; what it publishes is recorded, and scored by the tests."""
    enqueue = RecordingEnqueue()
    intake = JobIntake(registry.sessions, enqueue, max_rows=256, wait_seconds=0)
    intake.start()
    yield JobService(registry.sessions, registry, intake, enqueue, SilentAnnouncer(), Wakeups(), max_rows=100)
    intake.stop()


def store(jobs: JobService, model: str, inputs: Any) -> uuid.UUID:
    return jobs.create(JobRequest(model, None, inputs)).id


def read(engine: Engine, job_id: uuid.UUID) -> Job:
    with Session(engine) as session:
        job = session.get(Job, job_id)
        assert job is not None
        return job


def test_jobs_of_one_message_share_one_call_per_model_and_keep_their_own_results(
    context: ScoringContext, jobs: JobService, registry: ModelRegistry, engine: Engine, calls: list[int]
) -> None:
    gentoo = store(jobs, "penguins", GENTOO)
    batch = store(jobs, "penguins", [ADELIE, GENTOO])
    size = store(jobs, "sizes", {"size": 3, "colour": "red"})
    adelie = store(jobs, "penguins", ADELIE)

    score_jobs(context, [str(i) for i in (gentoo, batch, size, adelie)])

    assert sorted(calls) == [1, 4], "one call for the four penguin rows, one for sizes"
    labels = {
        job_id: [p["label"] for p in read(engine, job_id).result["predictions"]]  # type: ignore[index]
        for job_id in (gentoo, batch, adelie)
    }
    assert labels == {gentoo: ["Gentoo"], batch: ["Adelie", "Gentoo"], adelie: ["Adelie"]}
    assert read(engine, size).result == {"predictions": [{"value": pytest.approx(30.0)}]}
    assert {read(engine, i).status for i in (gentoo, batch, size, adelie)} == {JobStatus.SUCCEEDED}
    assert read(engine, batch).rows_done == 2


def test_a_row_the_model_rejects_fails_only_its_own_job(
    context: ScoringContext,
    jobs: JobService,
    registry: ModelRegistry,
    engine: Engine,
    trained_models: dict[str, Trained],
) -> None:
    sizes = trained_models["sizes"]
    registry.register(sizes.data, "joblib", "trusting", metadata=TOO_TRUSTING)
    good = store(jobs, "trusting", {"size": 2, "colour": "blue"})
    bad = store(jobs, "trusting", {"size": 2, "colour": "purple"})
    also_good = store(jobs, "trusting", [{"size": 1, "colour": "red"}, {"size": 4, "colour": "blue"}])

    score_jobs(context, [str(good), str(bad), str(also_good)])

    assert read(engine, good).status == JobStatus.SUCCEEDED
    predictions = read(engine, also_good).result["predictions"]  # type: ignore[index]
    assert [p["value"] for p in predictions] == pytest.approx([10.0, 40.0])
    failed = read(engine, bad)
    assert failed.status == JobStatus.FAILED
    assert failed.error is not None and "purple" in failed.error


def test_an_answer_of_another_shape_fails_the_whole_group_loudly_and_is_never_split_by_position(
    context: ScoringContext,
    jobs: JobService,
    registry: ModelRegistry,
    engine: Engine,
    caplog: pytest.LogCaptureFixture,
) -> None:
    features, targets = diabetes_two_targets()
    model = MultiOutputRegressor(Ridge()).fit(features, targets)
    registry.register(estimator_bytes(model), "joblib", "two", training=features)
    # As a two-target model registered before apot knew of targets: it answers two values per row.
    with registry.sessions.begin() as session:
        session.execute(update(RegisteredModel).where(RegisteredModel.name == "two").values(targets=None))
    rows = features.head(3).to_dict("records")
    ids = [store(jobs, "two", rows[0]), store(jobs, "two", rows[1:])]

    score_jobs(context, [str(i) for i in ids])

    for job_id in ids:
        job = read(engine, job_id)
        assert (job.status, job.result, job.rows_done) == (JobStatus.FAILED, None, 0)
        assert job.error is not None and "no result was kept" in job.error
    assert any(r.levelname == "ERROR" and "wrong shape" in r.getMessage() for r in caplog.records)


def test_a_message_delivered_twice_scores_each_job_once(
    context: ScoringContext, jobs: JobService, registry: ModelRegistry, engine: Engine, calls: list[int]
) -> None:
    ids = [str(store(jobs, "penguins", GENTOO)) for _ in range(3)]
    score_jobs(context, ids)
    first = [read(engine, uuid.UUID(i)).finished_at for i in ids]

    score_jobs(context, ids)

    assert calls == [3]
    assert [read(engine, uuid.UUID(i)).finished_at for i in ids] == first
    assert {read(engine, uuid.UUID(i)).attempts for i in ids} == {1}


def test_a_cancelled_job_in_the_message_stays_cancelled(
    context: ScoringContext, jobs: JobService, registry: ModelRegistry, engine: Engine
) -> None:
    kept, cancelled = store(jobs, "penguins", GENTOO), store(jobs, "penguins", ADELIE)
    with registry.sessions.begin() as session:
        session.get_one(Job, cancelled).status = JobStatus.CANCELLED

    score_jobs(context, [str(kept), str(cancelled)])

    assert read(engine, kept).status == JobStatus.SUCCEEDED
    assert read(engine, cancelled).status == JobStatus.CANCELLED
    assert read(engine, cancelled).result is None


def test_a_missing_model_version_fails_its_jobs_and_not_the_others(
    context: ScoringContext, jobs: JobService, registry: ModelRegistry, engine: Engine
) -> None:
    penguin, size = store(jobs, "penguins", GENTOO), store(jobs, "sizes", {"size": 1, "colour": "red"})
    # registry.remove refuses a version jobs wait on; a job queued between its check and its delete (or a version
    # deleted by hand) still finds it gone.
    with Session(engine) as session, session.begin():
        session.execute(delete(RegisteredModel).where(RegisteredModel.name == "sizes"))

    score_jobs(context, [str(penguin), str(size)])

    assert read(engine, penguin).status == JobStatus.SUCCEEDED
    gone = read(engine, size)
    assert gone.status == JobStatus.FAILED and "not registered" in (gone.error or "")


def messages(jobs: JobService) -> list[tuple[str, ...]]:
    """The job ids of each message the web published so far."""
    return [dispatch.targets for dispatch in jobs.enqueue.dispatches]  # type: ignore[attr-defined]


def message_of(jobs: JobService, job_id: uuid.UUID) -> tuple[str, ...]:
    return next(message for message in messages(jobs) if str(job_id) in message)


def published(engine: Engine, job_ids: list[uuid.UUID]) -> None:
    """Wait until the intake has marked the jobs published: a row it is updating is skipped by a claim (on
    Postgres, SKIP LOCKED), and left to its own message."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if all(read(engine, job_id).published_at is not None for job_id in job_ids):
            return
        time.sleep(0.01)


def test_a_claim_takes_the_jobs_queued_behind_other_messages_and_their_messages_do_nothing(
    context: ScoringContext, jobs: JobService, engine: Engine, calls: list[int]
) -> None:
    ids = [store(jobs, "penguins", GENTOO if n % 2 else ADELIE) for n in range(5)]
    published(engine, ids)
    assert len(messages(jobs)) == 5, "stored one by one: one message each"

    first, *later = messages(jobs)
    score_jobs(context, first)

    assert calls == [5], "the backlog of the other messages went in the same call"
    scored = [read(engine, job_id) for job_id in ids]
    assert {job.status for job in scored} == {JobStatus.SUCCEEDED}
    assert len({job.started_at for job in scored}) == 1, "one claim"
    assert [job.result["predictions"][0]["label"] for job in scored] == ["Adelie", "Gentoo"] * 2 + ["Adelie"]  # type: ignore[index]
    for message in later:
        score_jobs(context, message)
    assert calls == [5], "the later messages found their jobs claimed"
    assert {read(engine, job_id).attempts for job_id in ids} == {1}


def test_a_claim_keeps_to_the_row_budget_and_always_takes_its_own_message(
    registry: ModelRegistry, jobs: JobService, engine: Engine, calls: list[int]
) -> None:
    context = dataclasses.replace(worker_context(registry), max_rows=3)
    older = [store(jobs, "penguins", GENTOO) for _ in range(3)]
    big = store(jobs, "penguins", [ADELIE] * 4)  # more rows than the budget on its own
    published(engine, [*older, big])

    score_jobs(context, message_of(jobs, big))

    assert calls == [4], "its own job, over the budget; no room for the others"
    assert [read(engine, job_id).status for job_id in older] == [JobStatus.QUEUED] * 3
    score_jobs(context, message_of(jobs, older[0]))
    assert calls == [4, 3], "the oldest three fit the budget together"
    assert {read(engine, job_id).status for job_id in [*older, big]} == {JobStatus.SUCCEEDED}


def test_a_claim_takes_only_queued_jobs_of_its_messages_model_versions(
    context: ScoringContext, jobs: JobService, registry: ModelRegistry, engine: Engine, calls: list[int]
) -> None:
    size = store(jobs, "sizes", {"size": 3, "colour": "red"})
    cancelled = store(jobs, "penguins", ADELIE)
    with registry.sessions.begin() as session:
        session.get_one(Job, cancelled).status = JobStatus.CANCELLED
    penguin = store(jobs, "penguins", GENTOO)
    published(engine, [size, cancelled, penguin])

    score_jobs(context, message_of(jobs, penguin))

    assert calls == [1]
    assert read(engine, penguin).status == JobStatus.SUCCEEDED
    assert read(engine, size).status == JobStatus.QUEUED, "another model waits for its own message"
    assert read(engine, cancelled).status == JobStatus.CANCELLED and read(engine, cancelled).result is None


def test_claims_racing_for_one_backlog_score_each_job_once(
    registry: ModelRegistry, jobs: JobService, engine: Engine, calls: list[int]
) -> None:
    ids = [store(jobs, "penguins", GENTOO) for _ in range(40)]
    published(engine, ids)
    contexts = [dataclasses.replace(worker_context(registry), worker=f"w{n}", max_rows=8) for n in range(4)]
    work = [(contexts[n % 4], message) for n, message in enumerate(messages(jobs))]

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda item: score_jobs(*item), work))

    scored = [read(engine, job_id) for job_id in ids]
    assert {job.status for job in scored} == {JobStatus.SUCCEEDED}
    assert {job.attempts for job in scored} == {1}, "no job claimed twice"
    assert sum(calls) == 40 and max(calls) <= 8


def test_a_messages_own_job_locked_by_another_transaction_is_waited_for_not_skipped(
    context: ScoringContext, jobs: JobService, engine: Engine
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer at a time: there is no row lock to skip")
    job_id = store(jobs, "penguins", GENTOO)
    published(engine, [job_id])
    with engine.connect() as web, web.begin():  # as the web does while it marks the job published
        web.execute(select(Job.id).where(Job.id == job_id).with_for_update())
        scoring = ThreadPoolExecutor(1).submit(score_jobs, context, message_of(jobs, job_id))
        time.sleep(0.5)  # long enough for the claim to reach the lock; the outcome holds whatever its timing

    scoring.result(timeout=60)
    assert read(engine, job_id).status == JobStatus.SUCCEEDED


def test_a_message_reports_its_own_failed_jobs_for_its_task_state(
    context: ScoringContext,
    jobs: JobService,
    registry: ModelRegistry,
    engine: Engine,
    trained_models: dict[str, Trained],
) -> None:
    registry.register(trained_models["sizes"].data, "joblib", "trusting", metadata=TOO_TRUSTING)
    good = store(jobs, "trusting", {"size": 2, "colour": "blue"})
    bad = store(jobs, "trusting", {"size": 2, "colour": "purple"})

    failed = score_jobs(context, [str(good), str(bad)])

    assert list(failed) == [str(bad)], "the task fails for the bad job, naming it, and not for the good one"
    assert failed[str(bad)] == read(engine, bad).error
    assert score_jobs(context, [str(good), str(bad)]) == failed, "delivered again: the same report, nothing scored"
    assert score_jobs(context, [str(good)]) == {}


def test_a_job_claimed_from_behind_another_message_is_reported_by_its_own_message(
    context: ScoringContext,
    jobs: JobService,
    registry: ModelRegistry,
    engine: Engine,
    trained_models: dict[str, Trained],
) -> None:
    registry.register(trained_models["sizes"].data, "joblib", "trusting", metadata=TOO_TRUSTING)
    good = store(jobs, "trusting", {"size": 2, "colour": "blue"})
    bad = store(jobs, "trusting", {"size": 2, "colour": "purple"})
    published(engine, [good, bad])
    assert message_of(jobs, good) != message_of(jobs, bad)

    assert score_jobs(context, message_of(jobs, good)) == {}, "it scored the bad job too, but that is not its own"
    assert read(engine, bad).status == JobStatus.FAILED
    assert list(score_jobs(context, message_of(jobs, bad))) == [str(bad)]


def test_a_claim_chosen_as_a_deadlocks_victim_runs_again_and_scores_its_jobs(
    context: ScoringContext, jobs: JobService, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two workers' claims and finishes can lock job rows in opposite orders; Postgres then rolls one back. Before,
    that task failed and its jobs waited out their lease (seen under 64 clients). Here another connection plays
    the other worker: it holds the job the claim locks second, then asks for the one the claim holds."""
    if engine.dialect.name == "sqlite":
        pytest.skip("SQLite has one writer at a time: no two transactions hold rows")
    retries: list[tuple[Any, ...]] = []
    monkeypatch.setattr(db.log, "warning", lambda *args: retries.append(args))
    while True:  # ids in the order the rows were stored: the claim locks them in that order whatever its plan
        first, second = store(jobs, "penguins", GENTOO), store(jobs, "penguins", GENTOO)
        if first < second:
            break
    published(engine, [first, second])
    lock = text("SELECT id FROM jobs WHERE id = :id FOR UPDATE")
    with engine.connect() as other:
        other.execute(lock, {"id": second})
        scoring_jobs = ThreadPoolExecutor(1).submit(score_jobs, context, [str(first), str(second)])
        time.sleep(0.5)  # the claim holds `first` and waits for `second`: its deadlock check comes first
        other.execute(lock, {"id": first})  # a cycle: Postgres rolls the claim back after deadlock_timeout
        other.commit()
        assert scoring_jobs.result(timeout=60) == {}

    assert {read(engine, first).status, read(engine, second).status} == {JobStatus.SUCCEEDED}
    assert [args[1] for args in retries] == ["40P01"], "the claim, the deadlock's victim, ran again"


def test_a_claim_waiting_for_its_own_job_holds_no_one_elses(
    context: ScoringContext, jobs: JobService, engine: Engine
) -> None:
    """The lock order that keeps claims out of deadlocks: a claim takes its own rows first, and only then others'.
    Were it to lock the backlog first, two claims could each hold the other's own job as backlog while waiting for
    their own (seen under 64 clients, before the retry and this order)."""
    if engine.dialect.name == "sqlite":
        pytest.skip("SQLite has one writer at a time: no two transactions hold rows")
    behind = store(jobs, "penguins", ADELIE)  # stored first, so a plan may meet it before the claim's own job
    own = store(jobs, "penguins", GENTOO)
    published(engine, [own, behind])
    lock = text("SELECT id FROM jobs WHERE id = :id FOR UPDATE")
    with engine.connect() as web, engine.connect() as other_worker:
        web.execute(lock, {"id": own})  # e.g. the web still marking it published: the claim must wait for it
        scoring_jobs = ThreadPoolExecutor(1).submit(score_jobs, context, [str(own)])
        time.sleep(0.5)
        assert not scoring_jobs.done(), "the claim waits for its own job"
        taken = other_worker.execute(text("SELECT id FROM jobs WHERE id = :id FOR UPDATE NOWAIT"), {"id": behind})
        assert taken.scalar_one() == behind, "meanwhile another worker can take the job queued behind it"
        other_worker.rollback()
        web.rollback()
        assert scoring_jobs.result(timeout=60) == {}

    assert {read(engine, own).status, read(engine, behind).status} == {JobStatus.SUCCEEDED}
