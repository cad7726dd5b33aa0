"""One prediction's whole path on each stack: HTTP → job row → broker → worker process → job row → HTTP."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import httpx2
import pandas as pd
import pytest
from sklearn.linear_model import Ridge
from sklearn.multioutput import MultiOutputRegressor

from tests.accounts import add_account
from tests.faults.harness import register_sleepy
from tests.stacks import Stack
from tests.zoo import diabetes_two_targets
from webapp.services.models import estimator_bytes

GENTOO = {"island": "Biscoe", "bill_length_mm": 48.6, "flipper_length_mm": 230, "sex": "male"}
ADELIE = {"island": "Torgersen", "bill_length_mm": 36.7, "flipper_length_mm": 187, "bill_depth_mm": 19.3}
CHINSTRAP = {"island": "Dream", "bill_length_mm": 50.0, "flipper_length_mm": 196, "body_mass_g": 3900}
BACKLOG = 12


def submit(stack: Stack, inputs: Any, model: str = "penguins") -> dict[str, Any]:
    response = httpx2.post(
        f"{stack.base_url}/api/v1/jobs", json={"model": model, "inputs": inputs}, headers=stack.auth, timeout=10
    )
    assert response.status_code == 202, response.text
    return dict(response.json())


def wait(stack: Stack, job: dict[str, Any]) -> dict[str, Any]:
    response = httpx2.get(job["url"], params={"wait": 30}, headers=stack.auth, timeout=40)
    assert response.status_code == 200
    ended = dict(response.json())
    assert ended["status"] not in ("queued", "running"), (
        f"job did not end; worker log:\n{stack.logs.read_text()[-3000:]}"
    )
    return ended


def test_a_job_is_queued_then_scored_by_a_worker(stack: Stack) -> None:
    created = submit(stack, GENTOO)
    assert created["status"] == "queued"

    job = wait(stack, created)

    assert job["status"] == "succeeded", job["error"]
    (prediction,) = job["result"]["predictions"]
    assert prediction["label"] == "Gentoo"
    assert list(prediction["probabilities"]) == ["Adelie", "Chinstrap", "Gentoo"], "in the order of the classes"
    assert sum(prediction["probabilities"].values()) == pytest.approx(1.0)
    created_at, started_at, finished_at = (
        datetime.fromisoformat(job[k]) for k in ("created_at", "started_at", "finished_at")
    )
    assert created_at <= started_at <= finished_at
    assert job["task_id"] == created["task_id"]


def test_a_batch_is_scored_in_input_order(stack: Stack) -> None:
    job = wait(stack, submit(stack, [ADELIE, GENTOO, CHINSTRAP]))
    assert job["status"] == "succeeded", job["error"]
    assert [p["label"] for p in job["result"]["predictions"]] == ["Adelie", "Gentoo", "Chinstrap"]


def test_many_jobs_submitted_at_once_all_succeed(stack: Stack) -> None:
    with ThreadPoolExecutor(8) as pool:
        created = list(pool.map(lambda _: submit(stack, GENTOO), range(24)))
        ended = list(pool.map(lambda job: wait(stack, job), created))
    assert [job["status"] for job in ended] == ["succeeded"] * 24


def test_prefer_wait_answers_with_the_finished_job_in_one_round_trip(stack: Stack) -> None:
    response = httpx2.post(
        f"{stack.base_url}/api/v1/jobs",
        json={"model": "penguins", "inputs": [ADELIE, GENTOO]},
        headers={"Prefer": "wait=20", **stack.auth},
        timeout=30,
    )

    assert response.status_code == 200, response.text
    assert response.headers["Preference-Applied"] == "wait=20"
    job = response.json()
    assert job["status"] == "succeeded"
    assert [p["label"] for p in job["result"]["predictions"]] == ["Adelie", "Gentoo"]
    assert response.headers["Location"] == job["url"]


def test_jobs_submitted_together_are_scored_together_and_each_ends_once(stack: Stack) -> None:
    def submit_and_wait(inputs: Any) -> dict[str, Any]:
        response = httpx2.post(
            f"{stack.base_url}/api/v1/jobs",
            json={"model": "penguins", "inputs": inputs},
            headers={"Prefer": "wait=20", **stack.auth},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        return dict(response.json())

    rows = [GENTOO, ADELIE, CHINSTRAP] * 20
    with ThreadPoolExecutor(16) as pool:
        ended = list(pool.map(submit_and_wait, rows))

    assert [job["result"]["predictions"][0]["label"] for job in ended] == ["Gentoo", "Adelie", "Chinstrap"] * 20
    assert {job["rows_done"] for job in ended} == {1}
    # Scored together: claimed by one statement, which gives them one start time (whether they travelled in one
    # message or not: with one web process per CPU, each groups only what it received).
    assert len({job["started_at"] for job in ended}) < len(ended), "some jobs were claimed and scored together"


def test_single_jobs_of_two_users_scored_together_on_a_multi_output_model_each_get_their_own_rows(
    stack: Stack,
) -> None:
    features, targets = diabetes_two_targets()
    model = MultiOutputRegressor(Ridge()).fit(features, targets)
    metadata = {"targets": ["progression", "s1"]}
    stack.models.register(estimator_bytes(model), "joblib", "two-targets", training=features, metadata=metadata)
    users = [stack.account, add_account(stack.models.sessions, "otto")]
    rows = features.head(24).to_dict("records")

    def submit_and_wait(index: int) -> dict[str, Any]:
        response = httpx2.post(
            f"{stack.base_url}/api/v1/jobs",
            json={"model": "two-targets", "inputs": rows[index]},
            headers={"Prefer": "wait=40", **users[index % 2].bearer},
            timeout=50,
        )
        assert response.status_code == 200, response.text
        return dict(response.json())

    with ThreadPoolExecutor(16) as pool:
        ended = list(pool.map(submit_and_wait, range(len(rows))))

    # Scored together: claimed by one statement, which gives them one start time (whether they travelled in one
    # message or not: with one web process per CPU, each groups only what it received).
    assert len({job["started_at"] for job in ended}) < len(ended), "some jobs were claimed and scored together"
    for row, job in zip(rows, ended, strict=True):
        assert job["status"] == "succeeded", job["error"]
        (prediction,) = job["result"]["predictions"]
        own = model.predict(pd.DataFrame([row]))[0]
        assert prediction == {
            "targets": {"progression": {"value": pytest.approx(own[0])}, "s1": {"value": pytest.approx(own[1])}}
        }


def test_a_model_file_changed_after_registration_fails_the_job_and_is_not_loaded(stack: Stack) -> None:
    penguins = stack.models.get("penguins")
    tampered = stack.models.register(penguins.path.read_bytes(), "joblib", "tampered", training=None)
    tampered.path.write_bytes(tampered.path.read_bytes() + b"appended later")

    job = wait(stack, submit(stack, GENTOO, model="tampered"))

    assert job["status"] == "failed"
    assert "refusing to load" in job["error"]
    assert job["result"] is None


def test_jobs_queued_behind_a_busy_worker_are_claimed_together(stack: Stack) -> None:
    register_sleepy(stack.models)  # each call takes 1.5 s, however many rows: the worker's one process is busy
    busy = submit(stack, {"minutes": 1}, model="sleepy")
    queued = [submit(stack, {"minutes": 1 + n}, model="sleepy") for n in range(BACKLOG)]
    assert len({job["task_id"] for job in queued}) == BACKLOG, "submitted one by one: a message each"

    ended = [wait(stack, job) for job in [busy, *queued]]

    assert {job["status"] for job in ended} == {"succeeded"}
    claims = {job["started_at"] for job in ended[1:]}
    # Without batching, twelve calls of 1.5 s one after the other; the first message taken claims them all (a
    # busy machine may let the worker start before the last submissions, so a claim or two more).
    assert len(claims) <= 3, f"{len(claims)} claims for {BACKLOG} queued jobs"
