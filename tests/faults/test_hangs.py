"""Slowness is a fault too: a database or broker that hangs costs a prompt 503 or a late publish, never a broken
web process. Each test hangs something, then submits again once the fault has ended, where a broken intake shows."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from tests.faults.harness import FaultStack, fault_stack
from tests.faults.private import PrivatePostgres, TcpProxy
from tests.models import Trained
from webapp.migrate import upgrade_to_head

GENTOO = {"island": "Biscoe", "bill_length_mm": 48.6, "flipper_length_mm": 230, "sex": "male"}
MAYBE_CREATED = re.compile(r"may have been created as ([0-9a-f-]{36})")


@pytest.fixture
def postgres() -> Iterator[PrivatePostgres]:
    server = PrivatePostgres()
    try:
        server.start()
        yield server
    finally:
        server.stop()


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


def test_a_hung_postgres_is_a_503_and_every_submission_after_it_is_stored(
    tmp_path: Path, trained_models: dict[str, Trained], postgres: PrivatePostgres
) -> None:
    upgrade_to_head(postgres.url)
    with fault_stack(tmp_path, trained_models, postgres.url) as stack:
        accepted: set[str] = set()
        unanswered: set[str] = set()
        assert submissions(stack, 2, accepted, unanswered) == [202, 202]
        postgres.pause()
        try:
            during = submissions(stack, 1, accepted, unanswered)
            read = httpx2.get(f"{stack.base_url}/api/v1/jobs", headers=stack.auth, timeout=30)
            ready = httpx2.get(f"{stack.base_url}/readyz", timeout=30)
        finally:
            postgres.resume()
        after = submissions(stack, 5, accepted, unanswered)
        stack.audit(accepted, frozenset(unanswered))

    assert during == [503] and read.status_code == 503 and ready.status_code == 503
    assert after == [202] * 5, "the web stores jobs again once the database answers"


def test_connections_dropped_silently_are_given_up_and_everything_resumes(
    tmp_path: Path, trained_models: dict[str, Trained], postgres: PrivatePostgres, proxy: TcpProxy
) -> None:
    upgrade_to_head(postgres.url)
    through_proxy = postgres.url.replace(f":{postgres.port}/", f":{proxy.port}/")
    with fault_stack(tmp_path, trained_models, through_proxy) as stack:
        accepted: set[str] = set()
        unanswered: set[str] = set()
        assert submissions(stack, 3, accepted, unanswered) == [202] * 3
        stack.wait_until_all_ended()  # web, worker and reconciler each hold pooled connections now
        proxy.drop_connections()
        codes: list[int] = []
        deadline = time.monotonic() + 60
        while codes[-3:] != [202] * 3 and time.monotonic() < deadline:
            codes += submissions(stack, 1, accepted, unanswered)
        stack.audit(accepted, frozenset(unanswered))

    assert codes[-3:] == [202] * 3, codes
    assert set(codes) <= {202, 503}, codes
