"""Slowness is a fault too: a database or broker that hangs costs a prompt 503 or a late publish, never a broken
web process. Each test hangs something, then submits again once the fault has ended, where a broken intake shows."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from sqlalchemy import make_url

from tests.faults.harness import FaultStack, fault_stack
from tests.faults.private import PrivatePostgres, TcpProxy
from tests.models import Trained
from tests.services import RABBITMQ, required_url
from tests.stacks import delete_queue
from webapp.migrate import upgrade_to_head

GENTOO = {"island": "Biscoe", "bill_length_mm": 48.6, "flipper_length_mm": 230, "sex": "male"}
MAYBE_CREATED = re.compile(r"may have been created as ([0-9a-f-]{36})")


@pytest.fixture
def proxy(postgres: PrivatePostgres) -> Iterator[TcpProxy]:
    proxy = TcpProxy(postgres.port)
    yield proxy
    proxy.stop()


def submissions(stack: FaultStack, count: int, accepted: set[str], unanswered: set[str]) -> list[int]:
    codes = []
    for _ in range(count):
        response = stack.submit(GENTOO, timeout=30)  # a hang past this fails the test
        codes.append(response.status_code)
        if response.status_code == 202:
            accepted.add(response.json()["id"])
        elif maybe := MAYBE_CREATED.search(response.text):
            unanswered.add(maybe.group(1))
    return codes


def test_a_hung_postgres_then_silently_dropped_connections_cost_503s_and_everything_resumes(
    tmp_path: Path, trained_models: dict[str, Trained], postgres: PrivatePostgres, proxy: TcpProxy
) -> None:
    upgrade_to_head(postgres.url)
    through_proxy = postgres.url.replace(f":{postgres.port}/", f":{proxy.port}/")
    with fault_stack(tmp_path, trained_models, through_proxy) as stack:
        accepted: set[str] = set()
        unanswered: set[str] = set()
        assert submissions(stack, 2, accepted, unanswered) == [202, 202]

        postgres.pause()  # hung: every connection stays open, nothing answers
        try:
            during = submissions(stack, 1, accepted, unanswered)
            read = httpx2.get(f"{stack.base_url}/api/v1/jobs", headers=stack.auth, timeout=30)
            ready = httpx2.get(f"{stack.base_url}/readyz", timeout=30)
        finally:
            postgres.resume()
        after_hang = submissions(stack, 3, accepted, unanswered)
        stack.wait_until_all_ended()  # web, worker and reconciler each hold pooled connections now

        proxy.drop_connections()  # every one of them goes silent; new connections work
        after_drop: list[int] = []
        deadline = time.monotonic() + 120  # each dead pooled connection costs one request its deadline
        while after_drop[-3:] != [202] * 3 and time.monotonic() < deadline:
            after_drop += submissions(stack, 1, accepted, unanswered)
        # The worker and the reconciler get over it too, after their longer deadline.
        stack.audit(accepted, frozenset(unanswered), timeout=120)

    assert during == [503] and read.status_code == 503 and ready.status_code == 503
    assert after_hang == [202] * 3, "the web stores jobs again once the database answers"
    assert after_drop[-3:] == [202] * 3 and set(after_drop) <= {202, 503}, after_drop


def test_a_hung_rabbitmq_costs_submissions_seconds_and_the_web_publishes_every_later_job(
    tmp_path: Path, trained_models: dict[str, Trained]
) -> None:
    rabbitmq = make_url(required_url(RABBITMQ))
    proxy = TcpProxy(rabbitmq.port or 5672)
    # A published job is published again only after 10 minutes here: later jobs run only if the web publishes them.
    through_proxy = f"amqp://{rabbitmq.username}:{rabbitmq.password}@127.0.0.1:{proxy.port}//"
    try:
        with fault_stack(tmp_path, trained_models, broker_url=through_proxy, republish_after_seconds="600") as stack:
            accepted: set[str] = set()
            proxy.freeze()
            try:
                during = submissions(stack, 2, accepted, set())
                time.sleep(3)  # the publish gives up after 2 s; the requests stopped waiting at 1.5 s
            finally:
                proxy.thaw()
            after = submissions(stack, 5, accepted, set())
            stack.audit(accepted)
            delete_queue(required_url(RABBITMQ), stack.env["APOT_QUEUE"])
    finally:
        proxy.stop()

    assert during == [202] * 2 and after == [202] * 5
