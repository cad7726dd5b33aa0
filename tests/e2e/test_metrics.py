"""Metrics on a real stack: the web's /metrics and `apot worker`'s own endpoint move as jobs run."""

from __future__ import annotations

import httpx2

from tests.e2e.test_pipeline import GENTOO, submit, wait
from tests.metrics import Samples, moved, parse, value
from tests.stacks import Stack

JOBS = 3


def scrape(url: str) -> Samples:
    response = httpx2.get(url, timeout=10)
    assert response.status_code == 200, response.text
    return parse(response.text)


def test_web_and_worker_metrics_move_by_what_the_jobs_did(stack: Stack) -> None:
    web_before, worker_before = scrape(f"{stack.base_url}/metrics"), scrape(stack.worker_metrics_url)

    jobs = [wait(stack, submit(stack, GENTOO)) for _ in range(JOBS)]

    assert [job["status"] for job in jobs] == ["succeeded"] * JOBS
    web_after, worker_after = scrape(f"{stack.base_url}/metrics"), scrape(stack.worker_metrics_url)
    changes = moved(web_before, web_after)
    penguins = frozenset({("model", "penguins")})
    assert changes[("apot_jobs_created_total", penguins | {("kind", "single")})] == JOBS
    assert changes[("apot_jobs_finished_total", penguins | {("status", "succeeded")})] == JOBS
    assert changes[("apot_rows_scored_total", penguins)] == JOBS
    for span in ("apot_job_wait_seconds", "apot_job_run_seconds", "apot_job_end_to_end_seconds"):
        assert changes[(f"{span}_count", penguins)] == JOBS
    assert value(web_after, "apot_broker_up") == 1
    assert [key for key in web_after if key[0] == "apot_queue_depth"] != []
    # One worker process: it loaded the model once, for the first of the jobs, and kept it.
    assert value(worker_before, "apot_model_load_seconds_count", model="penguins") == 0
    assert value(worker_after, "apot_model_load_seconds_count", model="penguins") == 1
    assert value(worker_after, "apot_model_load_seconds_sum", model="penguins") > 0
