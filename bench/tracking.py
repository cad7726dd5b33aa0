"""`make bench PARTS=tracking`: what tracking (drift summaries written by the workers) costs the scoring path.

The same stack is started twice, APOT_TRACKING off and on, side by side in one run; in each of APOT_BENCH_ROUNDS
interleaved rounds (3 unless set): single-row jobs at 64 clients (jobs/s) and a CSV file of APOT_BENCH_CSV_ROWS rows
(1,000,000 unless set; upload → results ready) on each, with the server CPU each took. The goal is a cost under 5%
of both.
"""

from __future__ import annotations

import asyncio
import functools
import os
import statistics
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from bench.csv_jobs import through_apot
from bench.figures import Figure
from bench.load import LoadResult, make_session, require_loopback, run_load
from bench.peers.cpu import SystemCpu, apot_processes
from bench.single_jobs import MAX_SECONDS, WARM_UP, Request, apot_prefer_wait
from bench.stacks import RunningStack, postgres_schema, running_stack
from ml.demo import write_sample_csv

CLIENTS, REQUESTS = 64, 4000
STARTING_TRIES = 4  # Prefer: wait=30 each
CSV_ROWS = int(os.environ.get("APOT_BENCH_CSV_ROWS", "1000000"))
ROUNDS = int(os.environ.get("APOT_BENCH_ROUNDS", "3"))


async def jobs_per_second(stack: RunningStack) -> LoadResult:
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
    return load


async def _first_answer(request: Request, session: aiohttp.ClientSession) -> None:
    """The web answers before the worker has loaded everything: wait (a few tries) for the first result."""
    for attempt in range(STARTING_TRIES):
        try:
            await request(session)
            return
        except RuntimeError:
            if attempt == STARTING_TRIES - 1:
                raise


@dataclass(frozen=True)
class Round:
    """One stack's figures in one round: throughput and time, and the server CPU each cost."""

    jobs_per_second: float
    cpu_ms_per_job: float
    csv_seconds: float
    csv_cpu_seconds: float


def measure(database: str | None, broker: str | None, root: Path) -> list[Figure]:
    """Postgres + Redis when both are given, else the embedded stack. Both stacks run side by side and are measured
    in ROUNDS interleaved rounds (off first, then on first), so that the load of a shared machine falls on both.
    Each figure is the median of the per-round ratios (on ÷ off in the same round): wall-clock figures swing with
    the machine's other load, so the server CPU per job (every process of the stack, its database backends and
    broker included) is reported beside them: it is what tracking adds, and it swings far less."""
    root.mkdir(parents=True, exist_ok=True)
    sample = write_sample_csv(root / "penguins.csv", CSV_ROWS, seed=1)
    name = "Postgres + Redis" if database and broker else "embedded"
    found: dict[str, list[Round]] = {"false": [], "true": []}
    with ExitStack() as stacks:
        running = {t: stacks.enter_context(_stack(database, broker, root / f"tracking-{t}", t)) for t in found}
        for number in range(ROUNDS):
            for tracking in ("false", "true") if number % 2 == 0 else ("true", "false"):
                measured = _one_round(running[tracking], sample, root / f"tracking-{tracking}" / "results.csv")
                found[tracking].append(measured)
                print(
                    f"round {number + 1}, tracking={tracking}: {measured.jobs_per_second:,.0f} jobs/s "
                    f"({measured.cpu_ms_per_job:.2f} ms CPU each), CSV {measured.csv_seconds:.2f} s "
                    f"({measured.csv_cpu_seconds:.1f} s CPU)",
                    flush=True,
                )
    rounds = f"median of {ROUNDS} interleaved rounds' ratios"

    def figure(measure: str, field: str, unit: str, target: str) -> Figure:
        on, off = ([getattr(r, field) for r in found[t]] for t in ("true", "false"))
        ratios = [a / b for a, b in zip(on, off, strict=True)]
        per_round = " / ".join(f"{r:.3f}" for r in ratios)
        return Figure(
            f"tracking on ÷ off: {measure} — {name}, {rounds} ({per_round})",
            f"{statistics.median(on):,.2f} {unit}",
            f"{statistics.median(off):,.2f} {unit} (APOT_TRACKING=false)",
            f"{statistics.median(ratios):.3f}x",
            target,
        )

    return [
        figure(f"single-row jobs/s at {CLIENTS} clients", "jobs_per_second", "jobs/s", "≥ 0.95x"),
        figure("server CPU per single-row job", "cpu_ms_per_job", "ms", "≤ 1.05x"),
        figure(f"{CSV_ROWS:,}-row CSV upload → results ready, 2 workers", "csv_seconds", "s", "≤ 1.05x"),
        figure(f"server CPU for the {CSV_ROWS:,}-row CSV", "csv_cpu_seconds", "s", "≤ 1.05x"),
    ]


def _one_round(stack: Running, sample: Path, out: Path) -> Round:
    stack.cpu.start()
    load = asyncio.run(jobs_per_second(stack.stack))
    jobs_cpu = stack.cpu.stop()
    stack.cpu.start()
    ready = through_apot(stack.stack, sample, out)["ready"]
    csv_cpu = stack.cpu.stop()
    return Round(load.per_second, jobs_cpu / max(len(load.latencies), 1) * 1000, ready, csv_cpu)


@dataclass(frozen=True)
class Running:
    stack: RunningStack
    cpu: SystemCpu


@contextmanager
def _stack(database: str | None, broker: str | None, root: Path, tracking: str) -> Iterator[Running]:
    settings = {"tracking": tracking, "worker_concurrency": "2"}
    if database and broker:
        with postgres_schema(database) as url, running_stack(url, broker, root, **settings) as stack:
            yield Running(stack, SystemCpu(apot_processes(stack, url, broker)))
    else:
        with running_stack(f"sqlite:///{root / 'apot.db'}", None, root, **settings) as stack:
            yield Running(stack, SystemCpu(apot_processes(stack, None, None)))
