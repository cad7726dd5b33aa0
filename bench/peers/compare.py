"""`make bench PARTS=peers`: apot against the servers a user would pick instead, in interleaved rounds.

Every system is up for the whole part and idle while another is measured. Each round visits 1, 8 and 64 clients
and, for each, every system in turn (the order rotates from round to round, so none is always measured first or
last); then a 1,000-row request on each. The machine's other load changes from minute to minute, so what counts
is the ratio within a round: one table per round, and the median of the per-round ratios.
"""

from __future__ import annotations

import asyncio
import functools
import math
import statistics
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import joblib

from bench.figures import Figure, times
from bench.load import make_session, run_load
from bench.peers import ROW
from bench.peers.cpu import SystemCpu, apot_processes, trees
from bench.peers.servers import Call, running_peer
from bench.stacks import RunningStack, postgres_schema, running_stack
from ml.demo import train_penguins

ROUNDS = 3
LEVELS = (1, 8, 64)
SECONDS = 8.0
MOST_REQUESTS = 3000
WARM_UP = 20
BATCH_ROWS = 1000
BATCH_CALLS = 10
PEERS = ("fastapi", "bentoml", "mlflow")
PG = "apot PG+Redis"
EMBEDDED = "apot embedded"


@dataclass(frozen=True)
class System:
    name: str
    call: Call
    cpu: SystemCpu


@dataclass(frozen=True)
class Run:
    per_second: float
    p50: float
    cpu_ms: float  # server CPU per prediction
    errors: int = 0  # requests that failed (not counted in the figures); shown in the tables


def measure(database: str | None, broker: str | None, root: Path) -> tuple[list[Figure], str]:
    """The goal lines as figures, and the per-round tables as markdown."""
    root.mkdir(parents=True, exist_ok=True)
    model = root / "penguins.joblib"
    joblib.dump(train_penguins()[0], model)
    with ExitStack() as running:
        systems = list(running.enter_context(apot_systems(database, broker, root)))
        for name in PEERS:
            try:
                peer = running.enter_context(running_peer(name, model, root))
            except Exception as exc:  # a peer that cannot be installed or started here is reported, not fatal
                print(f"skipped {name}: {type(exc).__name__}: {exc}")
                continue
            systems.append(System(name, peer.call, SystemCpu(trees(peer.pids))))
        rounds = [asyncio.run(one_round(systems, number)) for number in range(ROUNDS)]
    return goals(rounds), report(rounds, [s.name for s in systems])


@contextmanager
def apot_systems(database: str | None, broker: str | None, root: Path) -> Iterator[list[System]]:
    with ExitStack() as running:
        systems = []
        if database and broker:
            url = running.enter_context(postgres_schema(database))
            stack = running.enter_context(running_stack(url, broker, root / "pg"))
            systems.append(System(PG, apot_call(stack), SystemCpu(apot_processes(stack, url, broker))))
        embedded = running.enter_context(
            running_stack(f"sqlite:///{root / 'embedded' / 'apot.db'}", None, root / "embedded")
        )
        systems.append(System(EMBEDDED, apot_call(embedded), SystemCpu(apot_processes(embedded, None, None))))
        yield systems


def apot_call(stack: RunningStack) -> Call:
    headers = {"Prefer": "wait=30", **stack.auth}
    url = f"{stack.base_url}/api/v1/jobs"

    async def call(session: aiohttp.ClientSession, rows: list[dict[str, Any]]) -> None:
        body = {"model": "penguins", "inputs": rows[0] if len(rows) == 1 else rows}
        async with session.post(url, json=body, headers=headers) as response:
            job = await response.json()
            if response.status != 200 or job["status"] != "succeeded" or job["rows_done"] != len(rows):
                raise RuntimeError(f"{response.status}: {str(job)[:200]}")

    return call


Round = dict[tuple[str, int], Run]  # (system, clients) → run; clients 0 is the 1,000-row request


async def one_round(systems: list[System], number: int) -> Round:
    turn = systems[number % len(systems) :] + systems[: number % len(systems)]
    runs: Round = {}
    for clients in LEVELS:
        for system in turn:
            runs[system.name, clients] = await single_rows(system, clients)
    for system in turn:
        runs[system.name, 0] = await many_rows(system)
    return runs


async def single_rows(system: System, clients: int) -> Run:
    async with await make_session(clients) as session:
        await asyncio.gather(*(system.call(session, [ROW]) for _ in range(max(WARM_UP, clients))))
        system.cpu.start()
        load = await run_load(
            functools.partial(system.call, session, [ROW]), clients=clients, total=MOST_REQUESTS, max_seconds=SECONDS
        )
        cpu = system.cpu.stop()
    if load.errors:
        print(f"{system.name}, {clients} clients: {load.errors} failed, e.g. {load.error_samples[:1]}", flush=True)
    return Run(load.per_second, load.p50, cpu / max(len(load.latencies), 1) * 1000, load.errors)


async def many_rows(system: System) -> Run:
    rows = [ROW] * BATCH_ROWS
    async with await make_session(1) as session:
        await system.call(session, rows)
        system.cpu.start()
        latencies = []
        for _ in range(BATCH_CALLS):
            started = time.perf_counter()
            await system.call(session, rows)
            latencies.append(time.perf_counter() - started)
        cpu = system.cpu.stop()
    return Run(BATCH_CALLS / sum(latencies), statistics.median(latencies), cpu / BATCH_CALLS * 1000)


def ratio(rounds: list[Round], a: str, b: str, clients: int, field: str) -> tuple[float, list[float]]:
    """The median over rounds of a's figure divided by b's in the same round, and the per-round values."""
    values = [
        getattr(r[a, clients], field) / getattr(r[b, clients], field)
        for r in rounds
        if (a, clients) in r and (b, clients) in r
    ]
    return (statistics.median(values) if values else math.nan), values


def goals(rounds: list[Round]) -> list[Figure]:
    names = {name for r in rounds for name, _ in r}
    apot = PG if PG in names else EMBEDDED
    lines = [
        ("64 clients: jobs/s ÷ BentoML adaptive batching", apot, "bentoml", 64, "per_second", "≥ 1x"),
        ("64 clients: server CPU per prediction ÷ BentoML's", apot, "bentoml", 64, "cpu_ms", "≤ 1x"),
        ("8 clients: jobs/s ÷ plain FastAPI", apot, "fastapi", 8, "per_second", "≥ 1.5x"),
        ("1 client: p50 ÷ plain FastAPI's", apot, "fastapi", 1, "p50", "≤ 1.5x"),
        ("1,000-row request: p50 ÷ plain FastAPI's", apot, "fastapi", 0, "p50", "≤ 1.5x"),
        *(
            (
                f"embedded ÷ Postgres + Redis, jobs/s at {c} client{'s' * (c > 1)}",
                EMBEDDED,
                PG,
                c,
                "per_second",
                "≥ 0.8x",
            )
            for c in LEVELS
        ),
        ("embedded ÷ Postgres + Redis, 1,000-row p50", EMBEDDED, PG, 0, "p50", "≤ 1.25x"),
    ]
    figures = []
    for measure, a, b, clients, field, target in lines:
        median, values = ratio(rounds, a, b, clients, field)
        if values:
            per_round = " / ".join(f"{v:.2f}" for v in values)
            figures.append(Figure(f"{measure} — {a}", times(median), f"per round: {per_round}", "", target))
    return figures


def report(rounds: list[Round], names: list[str]) -> str:
    """One markdown table per round, then the medians."""
    apot = PG if PG in names else EMBEDDED
    parts = []
    for number, r in enumerate(rounds, 1):
        parts.append(f"\nround {number}: jobs/s (p50 ms, server CPU ms per prediction); ratio = {apot} ÷ system\n")
        parts.append(_table(r, names, apot))
    parts.append(f"\nmedian over {len(rounds)} rounds of each figure, and of the per-round ratios {apot} ÷ system\n")
    medians: Round = {
        key: Run(
            statistics.median(r[key].per_second for r in rounds),
            statistics.median(r[key].p50 for r in rounds),
            statistics.median(r[key].cpu_ms for r in rounds),
            sum(r[key].errors for r in rounds),
        )
        for key in rounds[0]
    }
    parts.append(_table(medians, names, apot, rounds))
    return "\n".join(parts)


def _table(r: Round, names: list[str], apot: str, rounds: list[Round] | None = None) -> str:
    levels = [*LEVELS, 0]
    header = "| system | " + " | ".join(f"{c} client{'s' * (c > 1)}" if c else "1,000 rows" for c in levels) + " |"
    lines = [header, "|---" * (len(levels) + 1) + "|"]
    for name in names:
        cells = []
        for c in levels:
            run = r[name, c]
            speed = f"{run.per_second:.1f}/s" if c else f"{run.p50 * 1000:.0f} ms"
            cell = f"{speed} ({run.p50 * 1000:.0f} ms, {run.cpu_ms:.1f})" if c else f"{speed} ({run.cpu_ms:.0f})"
            if run.errors:
                cell += f" {run.errors} errors"
            if name != apot:
                field = "per_second" if c else "p50"
                value = (
                    ratio(rounds, apot, name, c, field)[0]
                    if rounds
                    else getattr(r[apot, c], field) / getattr(run, field)
                )
                cell += f" **{value:.2f}x**"
            cells.append(cell)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
