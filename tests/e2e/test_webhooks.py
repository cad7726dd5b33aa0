"""A webhook's whole path through real processes: the API stores the callback, the worker scores the job, publishes
the delivery, and POSTs the signed job to a receiver on 127.0.0.1, retrying once it answered 503."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from tests.html import parse
from tests.models import Trained
from tests.receiver import Receiver, readme_verify, running_receiver
from tests.stacks import STACKS, Stack, running_stack
from webapp.http.auth import SESSION_COOKIE

SECRET = "e2e webhook secret"
GENTOO = {"island": "Biscoe", "bill_length_mm": 48.6, "flipper_length_mm": 230, "sex": "male"}


@pytest.fixture(scope="module", params=STACKS)
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, trained_models: dict[str, Trained]
) -> Iterator[Stack]:
    """Each stack, with receivers on loopback allowed and quick retries."""
    settings = {"webhook_allow_private": "true", "webhook_retry_seconds": "0.5,0.5", "webhook_secret": SECRET}
    root: Path = tmp_path_factory.mktemp(request.param)
    with running_stack(request.param, root, trained_models, **settings) as stack:
        yield stack


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as receiver:
        yield receiver


def test_a_worker_posts_the_ended_job_and_retries_a_failed_delivery(stack: Stack, receiver: Receiver) -> None:
    receiver.answers = [503]
    response = httpx2.post(
        f"{stack.base_url}/api/v1/jobs",
        json={"model": "penguins", "inputs": GENTOO, "callback_url": f"{receiver.url}/apot"},
        headers=stack.auth,
        timeout=10,
    )
    assert response.status_code == 202, response.text
    job_url = response.json()["url"]

    requests = receiver.wait_for(2)
    assert len(requests) == 2, f"worker log:\n{stack.logs.read_text()[-3000:]}"
    first, second = requests
    job = httpx2.get(job_url, headers=stack.auth, timeout=10).json()
    assert job["status"] == "succeeded", stack.logs.read_text()[-3000:]
    verify = readme_verify()
    for request in (first, second):
        assert verify(SECRET, request.headers["Apot-Signature"], request.body)
        payload = json.loads(request.body)
        assert (payload["id"], payload["status"], payload["result"]) == (job["id"], "succeeded", job["result"])
    assert [first.headers["Apot-Attempt"], second.headers["Apot-Attempt"]] == ["1", "2"]
    assert answers_shown(stack, job["id"], 2) == ["HTTP 503 Service Unavailable", "200"]


def answers_shown(stack: Stack, job_id: str, count: int) -> list[str]:
    """The Answer column of the job page's delivery table, once it has `count` rows (the worker records an attempt
    just after the receiver answered it), or as it is after 30 s."""
    deadline = time.monotonic() + 30
    while True:
        signed_in = {SESSION_COOKIE: stack.session_cookie()["value"]}
        page = parse(httpx2.get(f"{stack.base_url}/jobs/{job_id}", cookies=signed_in, timeout=10).text)
        rows = page.select("table.webhook-deliveries tbody tr")
        if len(rows) >= count or time.monotonic() > deadline:
            return [row.select("td")[2].get_text(strip=True) for row in rows]
        time.sleep(0.1)
