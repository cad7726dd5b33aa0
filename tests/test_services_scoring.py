"""Scoring a message of many small jobs: one model call per model version, each job its own outcome."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sklearn.linear_model import Ridge
from sklearn.multioutput import MultiOutputRegressor
from sqlalchemy import Engine, update
from sqlalchemy.orm import Session

from tests.conftest import RecordingEnqueue, worker_context
from tests.models import Trained
from tests.zoo import diabetes_two_targets
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
    registry.remove("sizes")

    score_jobs(context, [str(penguin), str(size)])

    assert read(engine, penguin).status == JobStatus.SUCCEEDED
    gone = read(engine, size)
    assert gone.status == JobStatus.FAILED and "not registered" in (gone.error or "")
