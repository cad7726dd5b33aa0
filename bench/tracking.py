"""`make bench PARTS=tracking`: what tracking (drift summaries written by the workers) costs the scoring path.

The same stack is started twice, APOT_TRACKING off and on, side by side in one run; in each of APOT_BENCH_ROUNDS
interleaved rounds (3 unless set): single-row jobs at 64 clients (jobs/s) and a CSV file of APOT_BENCH_CSV_ROWS rows
(1,000,000 unless set; upload → results ready) on each. The goal is a cost under 5% of both.
"""

from __future__ import annotations

import asyncio
import functools
import os
import statistics
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import aiohttp

from bench.csv_jobs import through_apot
from bench.figures import Figure
from bench.load import make_session, require_loopback, run_load
from bench.single_jobs import MAX_SECONDS, WARM_UP, Request, apot_prefer_wait
from bench.stacks import RunningStack, postgres_schema, running_stack
from ml.demo import write_sample_csv

CLIENTS, REQUESTS = 64, 4000
STARTING_TRIES = 4  # Prefer: wait=30 each
CSV_ROWS = int(os.environ.get("APOT_BENCH_CSV_ROWS", "1000000"))
ROUNDS = int(os.environ.get("APOT_BENCH_ROUNDS", "3"))


async def jobs_per_second(stack: RunningStack) -> float:
    require_loopback(stack.base_url)
    request = apot_prefer_wait(stack.base_url, stack.auth)
    async with await make_session(CLIENTS) as session:
        await _first_answer(request, session)
        for _ in range(WARM_UP):
            await request(session)
        load = await run_load(
            functools.partial(request, session), clients=CLIENTS, total=REQUESTS, max_seconds=MAX_SECONDS
        )
    if load.errors:
        raise RuntimeError(f"{load.errors} requests failed: {load.error_samples}")
    return load.per_second


async def _first_answer(request: Request, session: aiohttp.ClientSession) -> None:
    """The web answers before the worker has loaded everything: wait (a few tries) for the first result."""
    for attempt in range(STARTING_TRIES):
        try:
            await request(session)
            return
        except RuntimeError:
            if attempt == STARTING_TRIES - 1:
                raise


def measure(database: str | None, broker: str | None, root: Path) -> list[Figure]:
    """Postgres + Redis when both are given, else the embedded stack. Both stacks run side by side and are measured
    in ROUNDS interleaved rounds (off first, then on first), so that the load of a shared machine falls on both; each
    figure is the median of its rounds."""
    root.mkdir(parents=True, exist_ok=True)
    sample = write_sample_csv(root / "penguins.csv", CSV_ROWS, seed=1)
    name = "Postgres + Redis" if database and broker else "embedded"
    found: dict[str, list[tuple[float, float]]] = {"false": [], "true": []}
    with ExitStack() as stacks:
        running = {t: stacks.enter_context(_stack(database, broker, root / f"tracking-{t}", t)) for t in found}
        for number in range(ROUNDS):
            for tracking in ("false", "true") if number % 2 == 0 else ("true", "false"):
                stack = running[tracking]
                per_second = asyncio.run(jobs_per_second(stack))
                ready = through_apot(stack, sample, root / f"tracking-{tracking}" / "results.csv")["ready"]
                found[tracking].append((per_second, ready))
                print(f"round {number + 1}, tracking={tracking}: {per_second:,.0f} jobs/s, CSV {ready:.2f} s")
    off_jobs, off_csv = (statistics.median(f) for f in zip(*found["false"], strict=True))
    on_jobs, on_csv = (statistics.median(f) for f in zip(*found["true"], strict=True))
    rounds = f"median of {ROUNDS} interleaved rounds"
    return [
        Figure(
            f"tracking on vs off: single-row jobs/s at {CLIENTS} clients — {name}, {rounds}",
            f"{on_jobs:,.0f} jobs/s",
            f"{off_jobs:,.0f} jobs/s (APOT_TRACKING=false)",
            f"{on_jobs / off_jobs:.3f}x",
            "≥ 0.95x",
        ),
        Figure(
            f"tracking on vs off: {CSV_ROWS:,}-row CSV upload → results ready — {name}, 2 workers, {rounds}",
            f"{on_csv:.2f} s",
            f"{off_csv:.2f} s (APOT_TRACKING=false)",
            f"{on_csv / off_csv:.3f}x",
            "≤ 1.05x",
        ),
    ]


@contextmanager
def _stack(database: str | None, broker: str | None, root: Path, tracking: str) -> Iterator[RunningStack]:
    settings = {"tracking": tracking, "worker_concurrency": "2"}
    if database and broker:
        with postgres_schema(database) as url, running_stack(url, broker, root, **settings) as stack:
            yield stack
    else:
        with running_stack(f"sqlite:///{root / 'apot.db'}", None, root, **settings) as stack:
            yield stack
