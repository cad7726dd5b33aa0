"""Single-row and 1,000-row JSON jobs: apot against the blog-post design and the raw model, in one run.

For each stack (the blog-post baseline, apot embedded, apot on Postgres + Redis) the same closed-loop load at 1, 8,
32 and 64 clients: jobs per second, submit→result percentiles, and CPU per job of the web and worker process trees.
apot's client asks with `Prefer: wait` (one round trip); the baseline's client polls every 10 ms, as the blog post does.
"""

from __future__ import annotations

import functools
import statistics
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

import aiohttp
import pandas as pd

from bench.baseline.stack import PENGUIN, baseline_request
from bench.figures import Figure, ms, times
from bench.load import CpuMeter, LoadResult, make_session, require_loopback, run_load

LEVELS = [(1, 300), (8, 1500), (32, 3000), (64, 4000)]  # clients, requests
MAX_SECONDS = 20.0
WARM_UP = 30
BATCH_ROWS = 1000
BATCH_REPEATS = 20

Request = Callable[[aiohttp.ClientSession], Awaitable[None]]


@dataclass(frozen=True)
class Level:
    clients: int
    load: LoadResult
    cpu_ms: dict[str, float]  # CPU milliseconds per job, by process role


async def sweep(base_url: str, request: Request, pids: dict[str, int]) -> dict[int, Level]:
    require_loopback(base_url)
    levels = {}
    for clients, total in LEVELS:
        async with await make_session(clients) as session:
            for _ in range(WARM_UP):
                await request(session)
            with CpuMeter(pids.values()) as meter:
                load = await run_load(
                    functools.partial(request, session), clients=clients, total=total, max_seconds=MAX_SECONDS
                )
        if load.errors:
            raise RuntimeError(f"{load.errors} requests failed at {clients} clients: {load.error_samples}")
        done = max(len(load.latencies), 1)
        cpu = {role: meter.seconds_by_pid[pid] / done * 1000 for role, pid in pids.items()}
        levels[clients] = Level(clients, load, cpu)
    return levels


def baseline(base_url: str) -> Request:
    return lambda session: baseline_request(session, base_url, PENGUIN)


def apot_prefer_wait(base_url: str, auth: dict[str, str], inputs: object = PENGUIN) -> Request:
    headers = {"Prefer": "wait=30", **auth}

    async def request(session: aiohttp.ClientSession) -> None:
        body = {"model": "penguins", "inputs": inputs}
        async with session.post(f"{base_url}/api/v1/jobs", json=body, headers=headers) as response:
            job = await response.json()
            if response.status != 200 or job["status"] != "succeeded":
                raise RuntimeError(f"{response.status}: {job}")

    return request


def apot_get_wait(base_url: str, auth: dict[str, str]) -> Request:
    async def request(session: aiohttp.ClientSession) -> None:
        body = {"model": "penguins", "inputs": PENGUIN}
        async with session.post(f"{base_url}/api/v1/jobs", json=body, headers=auth) as response:
            url = (await response.json())["url"]
        async with session.get(url, params={"wait": "30"}, headers=auth) as response:
            job = await response.json()
            if job["status"] != "succeeded":
                raise RuntimeError(f"{job}")

    return request


async def one_client_p50(base_url: str, request: Request) -> float:
    async with await make_session(1) as session:
        for _ in range(WARM_UP):
            await request(session)
        load = await run_load(
            functools.partial(request, session), clients=1, total=LEVELS[0][1], max_seconds=MAX_SECONDS
        )
    return load.p50


async def batch_p50(base_url: str, auth: dict[str, str]) -> float:
    rows = [PENGUIN] * BATCH_ROWS
    request = apot_prefer_wait(base_url, auth, rows)
    async with await make_session(1) as session:
        await request(session)
        latencies = []
        for _ in range(BATCH_REPEATS):
            started = time.perf_counter()
            await request(session)
            latencies.append(time.perf_counter() - started)
    return statistics.median(latencies)


def raw_call_seconds(estimator: object, rows: int, repeats: int) -> float:
    """Median seconds of one predict_proba call on a DataFrame of `rows` rows, in this process."""
    frame = pd.DataFrame([PENGUIN] * rows)
    for feature in getattr(estimator, "feature_names_in_", []):
        if feature not in frame:
            frame[feature] = float("nan")
    predict = estimator.predict_proba  # type: ignore[attr-defined]
    predict(frame)
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        predict(frame)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def percentiles(load: LoadResult) -> str:
    return f"{ms(load.p50)} / {ms(load.p95)} / {ms(load.p99)}"


def compare_sweeps(stack: str, apot: dict[int, Level], blog: dict[int, Level]) -> Iterable[Figure]:
    for clients, _ in LEVELS:
        ours, theirs = apot[clients], blog[clients]
        target = "≥ 5x (aim 10x)" if clients == 64 else ""
        yield Figure(
            f"single-row jobs/s, {clients} client{'s' if clients > 1 else ''} — {stack}",
            f"{ours.load.per_second:.0f}",
            f"{theirs.load.per_second:.0f} (blog-post design)",
            times(ours.load.per_second / theirs.load.per_second),
            target,
        )
        yield Figure(
            f"submit→result p50 / p95 / p99, {clients} client{'s' if clients > 1 else ''} — {stack}",
            percentiles(ours.load),
            percentiles(theirs.load),
            f"p50 {times(ours.load.p50 / theirs.load.p50)}",
            "p50 ≤ 0.5x" if clients == 1 else ("apot p99 < blog p50" if clients == 64 else ""),
        )
        yield Figure(
            f"CPU per job web / worker, {clients} client{'s' if clients > 1 else ''} — {stack}",
            f"{ours.cpu_ms['web']:.2f} / {ours.cpu_ms['worker']:.2f} ms",
            f"{theirs.cpu_ms['web']:.2f} / {theirs.cpu_ms['worker']:.2f} ms",
            times(sum(ours.cpu_ms.values()) / sum(theirs.cpu_ms.values())),
        )
    p99, their_p50 = apot[64].load.p99, blog[64].load.p50
    yield Figure(
        f"p99 at 64 clients vs the blog-post design's p50 — {stack}",
        ms(p99),
        ms(their_p50),
        times(p99 / their_p50),
        "< 1x",
    )
