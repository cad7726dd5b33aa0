"""Workers that die: a SIGKILLed worker's job is taken back when its lease runs out and scored once by another."""

from __future__ import annotations

import csv
import io
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress

import httpx2
import psutil
from sqlalchemy import func, select

from tests.faults.harness import FaultStack, register_sleepy, register_stubborn, until
from tests.faults.sleepy import STUBBORN_MINUTES
from webapp.models import ChunkStatus, JobChunk
from webapp.services.dispatch import SCORE_JOBS
from webapp.services.scoring import OVER_TIME

GENTOO = {"island": "Biscoe", "bill_length_mm": 48.6, "flipper_length_mm": 230, "sex": "male"}


def test_a_worker_killed_mid_job_leaves_it_to_another_and_it_ends_once(stack: FaultStack) -> None:
    register_sleepy(stack.models)
    created = stack.submit({"minutes": 5}, model="sleepy").json()
    until(lambda: stack.job(created["id"]).status == "running", "a worker to start the job")

    stack.kill_workers()
    stack.start_worker()

    until(lambda: stack.job(created["id"]).status not in ("queued", "running"), "the job to end")
    job = stack.job(created["id"])
    assert (job.status, job.attempts) == ("succeeded", 2), job.error
    assert job.result == {"predictions": [{"label": "late", "probabilities": {"late": 1.0, "on time": 0.0}}]}


def test_a_worker_killed_mid_csv_leaves_its_chunk_to_another_and_every_row_is_scored_once(stack: FaultStack) -> None:
    register_sleepy(stack.models)
    rows = 100  # five chunks of 20, each a 1.5-second call
    body = "n,minutes\n" + "".join(f"{n},{1 + n % 29}\n" for n in range(rows))
    created = httpx2.post(
        f"{stack.base_url}/api/v1/jobs/csv",
        files={"file": ("late.csv", body.encode(), "text/csv")},
        data={"model": "sleepy"},
        headers=stack.auth,
        timeout=30,
    ).json()
    # Killed only once a later chunk is claimed: between one chunk's end and the next one's claim a kill would
    # interrupt nothing, and every chunk would rightly be scored at its first attempt.
    until(lambda: _later_chunk_running(stack, created["id"]), "a chunk after the first to be claimed")

    stack.kill_workers()  # mid-way through that chunk's 1.5-second call
    stack.start_worker()

    until(lambda: stack.job(created["id"]).status not in ("queued", "running"), "the CSV job to end")
    job = stack.job(created["id"])
    assert (job.status, job.attempts, job.rows_done) == ("succeeded", 2, rows), job.error
    results_url = httpx2.get(created["url"], headers=stack.auth, timeout=10).json()["results_url"]
    results = list(csv.DictReader(io.StringIO(httpx2.get(results_url, headers=stack.auth, timeout=30).text)))
    assert [int(r["n"]) for r in results] == list(range(rows)), "each row once, in order"
    assert {(r["prediction"], r["error"]) for r in results} == {("late", "")}


def _later_chunk_running(stack: FaultStack, job_id: str) -> bool:
    with stack.engine.connect() as connection:
        running = connection.scalar(
            select(func.count())
            .select_from(JobChunk)
            .where(JobChunk.job_id == uuid.UUID(job_id), JobChunk.status == ChunkStatus.RUNNING, JobChunk.first_row > 1)
        )
    return bool(running)


def test_the_same_message_delivered_twice_by_hand_changes_nothing(stack: FaultStack) -> None:
    created = stack.submit(GENTOO).json()
    until(lambda: stack.job(created["id"]).status == "succeeded", "the job to be scored")
    first = stack.job(created["id"])

    from tasks.app import create_celery
    from webapp.config import Settings

    publisher = create_celery(Settings(broker_url=stack.broker.url, queue=stack.env["APOT_QUEUE"]))
    for _ in range(2):
        publisher.send_task(SCORE_JOBS, args=[created["id"]], task_id=first.task_id)
    marker = stack.submit(GENTOO).json()  # one worker, in order: once this one ends, both copies were handled
    until(lambda: stack.job(marker["id"]).status == "succeeded", "the worker to get through the copies")

    again = stack.job(created["id"])
    assert (again.finished_at, again.attempts, again.result) == (first.finished_at, 1, first.result)


def test_apot_worker_starts_celery_again_when_it_dies(stack: FaultStack) -> None:
    def celery_workers() -> list[int]:
        """The scoring node's main process (`apot worker` also runs one for webhooks)."""
        found = []
        for process in stack.pool_children():
            with suppress(psutil.Error):  # a process that just died (a zombie until it is reaped)
                if "celery-worker" in (command := " ".join(process.cmdline())) and "--queues=scoring" in command:
                    found.append(process.pid)
        return found

    (first,) = celery_workers()
    psutil.Process(first).kill()  # as Celery's own "Unrecoverable error" exit would, only harder

    until(lambda: len(celery_workers()) == 1 and celery_workers()[0] != first, "a new Celery worker")
    created = stack.submit(GENTOO).json()
    # A Celery node starting takes a minute or more on a busy machine (two start with each `apot worker`).
    until(lambda: stack.job(created["id"]).status == "succeeded", "the new worker to score a job", timeout=180)


def test_a_model_that_ignores_the_time_limit_fails_its_own_job_once_with_that_reason(stack: FaultStack) -> None:
    register_stubborn(stack.models)
    with ThreadPoolExecutor(4) as pool:  # arriving together: one group at the web
        stubborn = pool.submit(stack.submit, {"minutes": STUBBORN_MINUTES}, "stubborn")
        others = [pool.submit(stack.submit, GENTOO) for _ in range(3)]
    ids = [stubborn.result().json()["id"], *(other.result().json()["id"] for other in others)]

    stack.audit(set(ids), timeout=90)  # the hard limit, then a new pool process, then the others
    ended = [stack.job(job_id) for job_id in ids]
    # Killed at the hard limit, failed then by the worker: not retried as if the worker had vanished.
    assert (ended[0].status, ended[0].error, ended[0].attempts) == ("failed", OVER_TIME, 1)
    assert [job.status for job in ended[1:]] == ["succeeded"] * 3, "other models' jobs are not failed with it"
