"""A broker that stops, loses its messages or hangs: accepted jobs still end, and the API answers promptly."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx2

from tests.faults.harness import FaultStack, fault_stack, until
from tests.models import Trained

GENTOO = {"island": "Biscoe", "bill_length_mm": 48.6, "flipper_length_mm": 230, "sex": "male"}


def test_redis_restarted_during_100_submissions_loses_none_of_them(stack: FaultStack) -> None:
    def submit(n: int) -> int:
        if n == 30:
            stack.broker.stop()  # every queued message is gone with it
        if n == 60:
            stack.broker.start()
        time.sleep(0.02)
        return stack.submit(GENTOO).status_code

    with ThreadPoolExecutor(4) as pool:
        codes = list(pool.map(submit, range(100)))

    assert codes == [202] * 100, "a broker that is down delays jobs; it does not refuse them"
    assert stack.wait_until_all_ended() == {"succeeded": 100}


def test_jobs_queued_when_redis_is_flushed_are_published_again(stack: FaultStack) -> None:
    stack.kill_workers()  # nobody takes the messages before they are lost
    ids = [stack.submit(GENTOO).json()["id"] for _ in range(10)]
    stack.broker.flushall()
    stack.start_worker()

    assert stack.wait_until_all_ended() == {"succeeded": 10}
    assert {stack.job(job_id).attempts for job_id in ids} == {1}


def test_a_paused_broker_costs_a_submission_under_two_seconds_and_the_job_runs_once_it_is_back(
    stack: FaultStack,
) -> None:
    stack.broker.pause()
    try:
        started = time.monotonic()
        response = stack.submit(GENTOO, timeout=30)
        answered = time.monotonic() - started
    finally:
        stack.broker.resume()

    assert response.status_code == 202
    assert answered < 2.0, f"answered after {answered:.1f} s"
    until(lambda: stack.job(response.json()["id"]).status == "succeeded", "the job to run after the pause")


def test_after_a_publish_that_outlived_its_request_the_web_still_publishes_every_job_itself(
    tmp_path: Path, trained_models: dict[str, Trained]
) -> None:
    # The reconciler republishes a published job only after 10 minutes here: later jobs run only if the web's
    # own publish works. (A job whose publish failed has no `published_at` and is republished within seconds.)
    with fault_stack(tmp_path, trained_models, republish_after_seconds="600") as stack:
        stack.broker.pause()
        try:
            paused = stack.submit(GENTOO, timeout=30)
            time.sleep(3)  # the request stopped waiting at 1.5 s, the publish gives up at 2 s
        finally:
            stack.broker.resume()
        later = [stack.submit(GENTOO) for _ in range(5)]
        ready = httpx2.get(f"{stack.base_url}/readyz", timeout=30)
        stack.audit({response.json()["id"] for response in [paused, *later]})
        assert set(stack.statuses()) == {"succeeded"}

    assert [r.status_code for r in [paused, *later]] == [202] * 6
    assert ready.json()["checks"]["intake"]["ok"], ready.text


def test_the_api_keeps_answering_other_requests_while_the_broker_hangs(stack: FaultStack) -> None:
    stack.broker.pause()
    try:
        with ThreadPoolExecutor(2) as pool:
            hanging = pool.submit(stack.submit, GENTOO, timeout=30)
            time.sleep(0.2)
            started = time.monotonic()
            health = httpx2.get(f"{stack.base_url}/api/v1/models", headers=stack.auth, timeout=10)
            listing = time.monotonic() - started
            assert hanging.result().status_code == 202
    finally:
        stack.broker.resume()
    assert health.status_code == 200
    assert listing < 1.0, "the event loop is not blocked by a publish"
