"""First measure of the job pipeline on each stack: submit→result latency and jobs per second.

Starts real `apot web` and `apot worker` processes per stack (embedded: SQLite + embedded Redis; Postgres + Redis
when APOT_TEST_DATABASE_URL and APOT_TEST_BROKER_URL are set) and prints a markdown table.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx2

from bench.stacks import postgres_schema, running_stack

PENGUIN = {"island": "Biscoe", "bill_length_mm": 48.6, "flipper_length_mm": 230, "sex": "male"}
SEQUENTIAL_JOBS = 200
BURST_JOBS = 500
BURST_CLIENTS = 64


async def submit_and_wait(client: httpx2.AsyncClient, base: str) -> float:
    started = time.perf_counter()
    created = await client.post(f"{base}/api/v1/jobs", json={"model": "penguins", "inputs": PENGUIN})
    job = (await client.get(created.json()["url"], params={"wait": 30})).json()
    if job["status"] != "succeeded":
        raise RuntimeError(f"job ended {job['status']}: {job['error']}")
    return time.perf_counter() - started


async def measure(base: str) -> dict[str, float]:
    limits = httpx2.Limits(max_connections=BURST_CLIENTS)
    async with httpx2.AsyncClient(timeout=60, limits=limits) as client:
        for _ in range(20):  # warm-up: every worker process loads the model
            await submit_and_wait(client, base)
        latencies = sorted([await submit_and_wait(client, base) for _ in range(SEQUENTIAL_JOBS)])
        gate = asyncio.Semaphore(BURST_CLIENTS)

        async def one() -> float:
            async with gate:
                return await submit_and_wait(client, base)

        started = time.perf_counter()
        burst = sorted(await asyncio.gather(*(one() for _ in range(BURST_JOBS))))
        elapsed = time.perf_counter() - started
    return {
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
        "jobs_per_s": BURST_JOBS / elapsed,
        "burst_p50_ms": statistics.median(burst) * 1000,
    }


def main() -> None:
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "embedded"
        with running_stack(f"sqlite:///{root / 'apot.db'}", None, root) as stack:
            results["embedded (SQLite + embedded Redis)"] = asyncio.run(measure(stack.base_url))
        database, broker = os.environ.get("APOT_TEST_DATABASE_URL"), os.environ.get("APOT_TEST_BROKER_URL")
        if database and broker:
            with postgres_schema(database) as url, running_stack(url, broker, Path(tmp) / "production") as stack:
                results["Postgres + Redis"] = asyncio.run(measure(stack.base_url))
        else:
            print("Postgres + Redis skipped: set APOT_TEST_DATABASE_URL and APOT_TEST_BROKER_URL", file=sys.stderr)
    print(
        f"\n{os.cpu_count()} CPUs; one worker process per CPU; {SEQUENTIAL_JOBS} sequential jobs, "
        f"then {BURST_JOBS} jobs from {BURST_CLIENTS} concurrent clients\n"
    )
    print("| stack | submit→result p50, 1 client | p99, 1 client | jobs/s, 500 at once | p50 in the burst |")
    print("|---|---|---|---|---|")
    for name, r in results.items():
        cells = [
            f"{r['p50_ms']:.1f} ms",
            f"{r['p99_ms']:.1f} ms",
            f"{r['jobs_per_s']:.0f}",
            f"{r['burst_p50_ms']:.0f} ms",
        ]
        print(f"| {name} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
