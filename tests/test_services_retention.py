"""Retention on each database: the old ended jobs lose their inputs and results, in batches; nothing else changes."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from tests.factories import add_job
from webapp.background import retention
from webapp.background.retention import Pruner
from webapp.cli import cli
from webapp.config import get_settings
from webapp.db import make_session_factory
from webapp.models import Job, JobChunk, utcnow

DAY = timedelta(days=1)
INPUTS = [{"a": 1.0, "b": 2.0}]
RESULT = {"predictions": [{"value": 3.0}]}


@dataclass
class Jobs:
    old_ended: list[uuid.UUID]
    kept: list[uuid.UUID]


def job(engine: Engine, age: timedelta | None, status: str = "succeeded", kind: str = "single") -> uuid.UUID:
    """A job that ended `age` ago (None: not ended), created a minute before, with inputs, a result, two chunks."""
    now = utcnow()
    created = now - (age or timedelta(0)) - timedelta(minutes=1)
    finished = None if age is None else now - age
    job_id = uuid.uuid4()
    add_job(
        engine,
        id=job_id,
        status=status,
        kind=kind,
        inputs=INPUTS,
        result=RESULT,
        created_at=created,
        finished_at=finished,
    )
    with Session(engine) as session, session.begin():
        for position in range(2):
            session.add(
                JobChunk(job_id=job_id, position=position, first_row=1, task_id="t", rows=1, input=b"in", result=b"r")
            )
    return job_id


@pytest.fixture
def jobs(engine: Engine) -> Jobs:
    old = [job(engine, 40 * DAY, status) for status in ("succeeded", "failed", "cancelled", "succeeded")]
    old.append(job(engine, 31 * DAY, kind="csv"))
    kept = [
        job(engine, 29 * DAY),  # ended, but not long enough ago
        job(engine, None, "running"),  # created 40 days ago and still running
        job(engine, None, "queued"),
    ]
    with Session(engine) as session, session.begin():  # an old job still running: its age is its creation's
        for job_id in kept[1:]:
            session.get_one(Job, job_id).created_at = utcnow() - 40 * DAY
    return Jobs(old, kept)


def rows(engine: Engine) -> dict[uuid.UUID, Job]:
    with Session(engine) as session:
        return {j.id: j for j in session.scalars(select(Job))}


def chunks_of(engine: Engine, job_id: uuid.UUID) -> int:
    with Session(engine) as session:
        return session.scalar(select(func.count()).select_from(JobChunk).where(JobChunk.job_id == job_id)) or 0


def test_only_the_old_ended_jobs_lose_their_data_in_batches(engine: Engine, jobs: Jobs) -> None:
    before = rows(engine)

    report = Pruner(make_session_factory(engine), ttl_days=30, batch_size=2).prune()

    assert report is not None
    assert (report.jobs, report.chunks, report.batches) == (5, 10, 3)
    after = rows(engine)
    for job_id in jobs.old_ended:
        old, new = before[job_id], after[job_id]
        assert (new.inputs, new.result, chunks_of(engine, job_id)) == ([], None, 0)
        assert new.pruned_at is not None
        kept = ("status", "kind", "model_name", "model_version", "rows_total", "created_at", "finished_at", "error")
        assert {f: getattr(new, f) for f in kept} == {f: getattr(old, f) for f in kept}
    for job_id in jobs.kept:
        assert (after[job_id].inputs, after[job_id].result, after[job_id].pruned_at) == (INPUTS, RESULT, None)
        assert chunks_of(engine, job_id) == 2


def test_a_second_run_finds_nothing(engine: Engine, jobs: Jobs) -> None:
    pruner = Pruner(make_session_factory(engine), ttl_days=30)
    assert pruner.prune() is not None

    again = pruner.prune()

    assert again is not None and (again.jobs, again.batches) == (0, 0)


def test_a_dry_run_counts_and_changes_nothing(engine: Engine, jobs: Jobs) -> None:
    report = Pruner(make_session_factory(engine), ttl_days=30).prune(dry_run=True)

    assert report is not None and (report.jobs, report.chunks) == (5, 10)
    assert all(j.pruned_at is None and j.inputs == INPUTS for j in rows(engine).values())


def test_an_age_given_overrides_the_ttl_and_a_pass_stops_after_its_batches(engine: Engine, jobs: Jobs) -> None:
    pruner = Pruner(make_session_factory(engine), ttl_days=0, batch_size=1)
    assert pruner.prune() is None  # retention off

    report = pruner.prune(older_than_days=35, max_batches=3)

    assert report is not None and (report.jobs, report.batches) == (3, 3)
    assert pruner.prune(older_than_days=35) is not None
    assert sum(j.pruned_at is not None for j in rows(engine).values()) == 4  # the 40-day-old ones, not the 31


Run = Callable[..., tuple[int, str]]


@pytest.fixture
def apot(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Run]:
    monkeypatch.setenv("APOT_DATABASE_URL", database_url)
    monkeypatch.setenv("APOT_RESULT_TTL_DAYS", "30")
    get_settings.cache_clear()

    def run(*args: Any) -> tuple[int, str]:
        result = CliRunner().invoke(cli, list(args))
        return result.exit_code, result.output

    yield run
    get_settings.cache_clear()


def test_apot_prune_says_what_it_deleted(apot: Run, engine: Engine, jobs: Jobs) -> None:
    code, output = apot("prune", "--dry-run")
    assert code == 0 and output.startswith("would delete the inputs and results of 5 jobs and 10 CSV chunks")

    code, output = apot("prune", "--batch-size", "2")
    assert code == 0 and output.startswith("deleted the inputs and results of 5 jobs and 10 CSV chunks that ended")
    assert output.strip().endswith("UTC in 3 batches")

    code, output = apot("prune", "--older-than-days", "10")
    assert code == 0 and output.startswith("deleted the inputs and results of 1 job and 2 CSV chunks")


def test_the_reconciler_prunes_every_ten_minutes_and_works_off_a_backlog(
    engine: Engine, jobs: Jobs, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(retention, "BATCHES_PER_PASS", 2)
    pruner = Pruner(make_session_factory(engine), ttl_days=30, batch_size=1)

    pruned = []
    for _ in range(4):  # passes of the reconciler, seconds apart
        pruner.prune_if_due()
        pruned.append(sum(j.pruned_at is not None for j in rows(engine).values()))

    # Two batches a pass while more is left; then nothing until PRUNE_EVERY_SECONDS have passed.
    assert pruned == [2, 4, 5, 5]
