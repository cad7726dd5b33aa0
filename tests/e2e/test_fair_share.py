"""Fair share on a real worker (one scoring process, Postgres + Redis): another user's 1-row job and second file do
not wait for a big CSV to end."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx2
import pytest

from ml.demo import write_sample_csv
from tests.accounts import Account, add_account
from tests.e2e.test_csv import upload
from tests.models import Trained
from tests.stacks import Stack, running_stack

GENTOO = {"island": "Biscoe", "bill_length_mm": 48.6, "flipper_length_mm": 230, "sex": "male"}
BIG_ROWS = 12_000  # 40 chunks of 300 rows: seconds of work for the one process
SMALL_ROWS = 600


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, trained_models: dict[str, Trained]) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("fair")
    with running_stack("postgres-redis", root, trained_models, csv_chunk_rows="300") as stack:
        yield stack


def read(stack: Stack, account: Account, job: dict[str, Any], wait: float = 0) -> dict[str, Any]:
    response = httpx2.get(job["url"], params={"wait": wait}, headers=account.bearer, timeout=wait + 30)
    return dict(response.json())


def at(job: dict[str, Any], moment: str) -> datetime:
    return datetime.fromisoformat(job[moment])


def test_a_big_csv_makes_no_other_user_wait_for_its_end(stack: Stack, tmp_path: Path) -> None:
    alice, bob = add_account(stack.models.sessions, "alice"), add_account(stack.models.sessions, "bob")
    big = upload(stack, write_sample_csv(tmp_path / "big.csv", BIG_ROWS, seed=1), alice.bearer)
    while read(stack, alice, big)["rows_done"] == 0:  # the file is being scored
        time.sleep(0.05)

    answer = httpx2.post(
        f"{stack.base_url}/api/v1/jobs",
        json={"model": "penguins", "inputs": GENTOO},
        headers={**bob.bearer, "Prefer": "wait=30"},
        timeout=40,
    )
    small = upload(stack, write_sample_csv(tmp_path / "small.csv", SMALL_ROWS, seed=2), bob.bearer)
    one_row = answer.json()
    small = read(stack, bob, small, wait=30)
    big = read(stack, alice, big, wait=30)
    while big["status"] == "running":
        big = read(stack, alice, big, wait=30)

    assert (one_row["status"], small["status"], big["status"]) == ("succeeded",) * 3, stack.logs.read_text()[-3000:]
    # In one queue, first in first out, both waited for the big file's every chunk.
    assert at(one_row, "finished_at") < at(big, "finished_at")
    assert at(small, "finished_at") < at(big, "finished_at")
    assert big["rows_done"] == BIG_ROWS
