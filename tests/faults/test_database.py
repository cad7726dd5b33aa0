"""The database: Postgres restarting under load, and SQLite taking many writers at once."""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx2
import pytest

from tests.faults.harness import FaultStack, fault_stack, until
from tests.faults.private import PrivatePostgres
from tests.models import Trained
from tests.stacks import running_stack

GENTOO = {"island": "Biscoe", "bill_length_mm": 48.6, "flipper_length_mm": 230, "sex": "male"}


def test_a_postgres_restart_under_load_is_503s_then_recovery_never_a_500(
    tmp_path: Path, trained_models: dict[str, Trained], postgres: PrivatePostgres
) -> None:
    with fault_stack(tmp_path, trained_models, postgres.url) as stack:
        restart_under_load(stack, postgres)


def restart_under_load(stack: FaultStack, postgres: PrivatePostgres) -> None:
    codes: Counter[int] = Counter()
    accepted: list[str] = []
    stop = threading.Event()

    def keep_submitting() -> None:
        while not stop.is_set():
            try:
                response = stack.submit(GENTOO)
            except httpx2.TransportError:
                codes[0] += 1
                continue
            codes[response.status_code] += 1
            if response.status_code == 202:
                accepted.append(response.json()["id"])

    with ThreadPoolExecutor(4) as pool:
        for _ in range(4):
            pool.submit(keep_submitting)
        time.sleep(1)
        postgres.restart()
        time.sleep(3)
        stop.set()

    assert set(codes) <= {202, 503}, codes
    assert codes[503] > 0, "the restart was seen by the submissions"
    until(lambda: stack.submit(GENTOO).status_code == 202, "the web server to recover by itself")
    assert set(stack.wait_until_all_ended()) == {"succeeded"}
    assert len(set(accepted)) == len(accepted)


@pytest.mark.parametrize("writers", [20])
def test_sqlite_takes_many_parallel_submissions_without_database_is_locked(
    writers: int, tmp_path: Path, trained_models: dict[str, Trained]
) -> None:
    with running_stack("embedded", tmp_path, trained_models) as stack:
        barrier = threading.Barrier(writers)

        def submit(_: int) -> httpx2.Response:
            barrier.wait()
            return httpx2.post(
                f"{stack.base_url}/api/v1/jobs",
                json={"model": "penguins", "inputs": [GENTOO] * 5},
                headers={"Prefer": "wait=30", **stack.auth},
                timeout=60,
            )

        with ThreadPoolExecutor(writers) as pool:
            responses = list(pool.map(submit, range(writers)))

    assert [r.status_code for r in responses] == [200] * writers, [r.text for r in responses if r.status_code != 200]
    assert {r.json()["status"] for r in responses} == {"succeeded"}
    assert "database is locked" not in stack.logs.read_text()
