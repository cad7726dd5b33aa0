"""The logs of real `apot web` and `apot worker` processes: JSON lines, and a job's lines name the job and its task."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from ml.demo import write_sample_csv
from tests.e2e.test_csv import upload
from tests.e2e.test_pipeline import GENTOO, submit, wait
from tests.stacks import Stack

# The worker writes its line about a job just after the commit that ends it, so maybe after the answer.
LOG_WAIT_SECONDS = 10


def log_lines(stack: Stack) -> list[dict[str, Any]]:
    """Every line of the stack's log (web and worker, stdout and stderr, APOT_LOG_FORMAT unset): each must parse."""
    return [json.loads(line) for line in stack.logs.read_text().splitlines() if line.strip()]


def lines_about(stack: Stack, job_id: str, expected: set[str]) -> list[dict[str, Any]]:
    """The lines that name this job, once the loggers in `expected` have all written one."""
    deadline = time.monotonic() + LOG_WAIT_SECONDS
    while True:
        lines = [line for line in log_lines(stack) if line.get("job_id") == job_id]
        if expected <= {line["logger"] for line in lines} or time.monotonic() > deadline:
            return lines


def test_a_jobs_lines_from_web_and_worker_are_json_and_name_the_job_and_its_task(stack: Stack) -> None:
    job = wait(stack, submit(stack, GENTOO))

    lines = lines_about(stack, job["id"], {"webapp.services.intake", "webapp.services.scoring"})

    by_logger = {line["logger"]: line for line in lines}
    assert by_logger["webapp.services.intake"]["message"] == "job queued"
    assert by_logger["webapp.services.scoring"]["message"] == "job succeeded"
    assert {line["task_id"] for line in lines} == {job["task_id"]}
    assert all(line["level"] and line["timestamp"] for line in lines)


def test_a_csv_jobs_worker_lines_name_the_job_and_the_chunks_task(stack: Stack, tmp_path: Path) -> None:
    job = wait(stack, upload(stack, write_sample_csv(tmp_path / "penguins.csv", 10, seed=3)))
    assert job["status"] == "succeeded", job["error"]

    lines = lines_about(stack, job["id"], {"webapp.services.csv_jobs", "webapp.services.chunk_scoring"})

    worker = [line for line in lines if line["logger"] == "webapp.services.chunk_scoring"]
    assert [line["message"] for line in worker] == ["job succeeded"]
    assert worker[0]["task_id"] and worker[0]["chunk_id"], "the chunk's own task"
    (web,) = [line for line in lines if line["logger"] == "webapp.services.csv_jobs"]
    assert web["task_id"] == job["task_id"]
