"""Fair share: another user's 1-row jobs while one user's big CSV runs (Postgres + Redis, 2 worker processes).

The CSV is scored alone first, then again while a second user sends 1-row jobs one after the other (`Prefer: wait`)
until it ends: their latency beside their latency on an idle stack, and the CSV's time beside its time alone.
APOT_BENCH_FAIR_ROWS sets the file's rows (1,000,000 by default; fewer on a small or busy machine).
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from pathlib import Path

import httpx2
import numpy as np

from bench.csv_jobs import scored
from bench.figures import Figure, ms, times
from bench.stacks import RunningStack, postgres_schema, running_stack
from ml.demo import write_sample_csv
from webapp.db import make_engine, make_session_factory
from webapp.models import Role
from webapp.services.accounts import AccountService

GENTOO = {"island": "Biscoe", "bill_length_mm": 48.6, "flipper_length_mm": 230, "sex": "male"}
IDLE_SAMPLES = 50


def rows() -> int:
    return int(os.environ.get("APOT_BENCH_FAIR_ROWS", "1000000"))


def other_user(database_url: str) -> dict[str, str]:
    """A member besides the bench admin, and the header of a key of theirs."""
    engine = make_engine(database_url)
    accounts = AccountService(make_session_factory(engine))
    member = accounts.create_user("bench-member", secrets.token_urlsafe(16), Role.MEMBER)
    key = accounts.create_key(member.user_id, "bench").secret
    engine.dispose()
    return {"Authorization": f"Bearer {key}"}


def csv_seconds(stack: RunningStack, sample: Path) -> float:
    """Upload → the job succeeded."""
    started = time.perf_counter()
    scored(stack, sample)
    return time.perf_counter() - started


def one_row_seconds(client: httpx2.Client, stack: RunningStack, auth: dict[str, str]) -> float:
    started = time.perf_counter()
    response = client.post(
        f"{stack.base_url}/api/v1/jobs",
        json={"model": "penguins", "inputs": GENTOO},
        headers={**auth, "Prefer": "wait=30"},
    )
    if response.status_code != 200:
        raise RuntimeError(f"a 1-row job did not end within 30 s: {response.status_code} {response.text[:200]}")
    return time.perf_counter() - started


def warm_up(client: httpx2.Client, stack: RunningStack, auth: dict[str, str]) -> None:
    """Until a first job has been scored: the worker processes start (and load the model) after the web answers."""
    job = client.post(f"{stack.base_url}/api/v1/jobs", json={"model": "penguins", "inputs": GENTOO}, headers=auth)
    job.raise_for_status()
    deadline = time.monotonic() + 300
    while job.json()["status"] in ("queued", "running") and time.monotonic() < deadline:
        job = client.get(job.json()["url"], params={"wait": 30}, headers=auth)


def measure(database: str, broker: str, root: Path) -> list[Figure]:
    root.mkdir(parents=True, exist_ok=True)
    count = rows()
    sample = write_sample_csv(root / "penguins.csv", count, seed=3)
    with (
        postgres_schema(database) as url,
        running_stack(url, broker, root / "stack", worker_concurrency="2") as stack,
        httpx2.Client(timeout=40) as client,
    ):
        member = other_user(url)
        warm_up(client, stack, member)
        idle = [one_row_seconds(client, stack, member) for _ in range(IDLE_SAMPLES)]
        alone = csv_seconds(stack, sample)
        shared: list[float] = []
        loaded: list[float] = []
        running = threading.Thread(target=lambda: loaded.append(csv_seconds(stack, sample)))
        running.start()
        while running.is_alive():
            shared.append(one_row_seconds(client, stack, member))
        running.join()
    p50, p99 = np.percentile(shared, [50, 99])
    return [
        Figure(
            f"another user's 1-row job p50 / p99 while a {count:,}-row CSV runs — Postgres + Redis, 2 workers",
            f"{ms(p50)} / {ms(p99)} ({len(shared)} jobs)",
            f"{ms(float(np.percentile(idle, 50)))} / {ms(float(np.percentile(idle, 99)))} (idle stack)",
            times(p99 / float(np.percentile(idle, 99))),
            "p99 < 1 s",
        ),
        Figure(
            f"{count:,}-row CSV: upload → succeeded, with another user's 1-row jobs",
            f"{loaded[0]:.1f} s",
            f"{alone:.1f} s (alone)",
            times(loaded[0] / alone),
            "≤ 1.2x",
        ),
    ]
