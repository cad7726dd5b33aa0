"""A bounded closed-loop load generator for loopback targets, and CPU accounting of the processes under test.

Closed loop: each client starts its next request only when its previous one has ended, so the offered load adapts
to the system under test instead of piling up unbounded queues. The generator shares the machine's CPUs with the
systems it measures; that is why it refuses anything but loopback targets (figures from across a network would mean
something else) and uses aiohttp, which costs far less CPU per request than httpx.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from types import TracebackType
from urllib.parse import urlsplit

import aiohttp
import psutil

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
KEPT_ERRORS = 5


def require_loopback(url: str) -> None:
    """Refuse a URL whose host is not the loopback interface."""
    host = urlsplit(url).hostname
    if host not in LOOPBACK_HOSTS:
        raise ValueError(f"load is only generated against loopback targets, not {host!r} ({url})")


async def make_session(clients: int) -> aiohttp.ClientSession:
    """A keep-alive session with one connection per client, so that no client waits for another's connection."""
    connector = aiohttp.TCPConnector(limit=clients, limit_per_host=0)
    return aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60))


@dataclass(frozen=True)
class LoadResult:
    latencies: list[float]
    """Seconds per successful request, sorted."""
    elapsed: float
    errors: int
    error_samples: list[str] = field(default_factory=list)
    """The first few failures' messages."""

    @property
    def per_second(self) -> float:
        return len(self.latencies) / self.elapsed if self.elapsed > 0 else math.nan

    @property
    def p50(self) -> float:
        return self.percentile(0.50)

    @property
    def p95(self) -> float:
        return self.percentile(0.95)

    @property
    def p99(self) -> float:
        return self.percentile(0.99)

    def percentile(self, fraction: float) -> float:
        """Nearest-rank percentile: a latency that was actually observed."""
        if not self.latencies:
            return math.nan
        rank = max(1, math.ceil(fraction * len(self.latencies)))
        return self.latencies[rank - 1]


@dataclass
class _Tally:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    started: int = 0

    def fail(self, error: Exception) -> None:
        self.errors += 1
        if len(self.error_samples) < KEPT_ERRORS:
            self.error_samples.append(f"{type(error).__name__}: {error}")


async def run_load(
    request: Callable[[], Awaitable[None]], *, clients: int, total: int, max_seconds: float
) -> LoadResult:
    """`clients` concurrent loops awaiting `request()` until `total` requests have started or `max_seconds` passed.

    Requests in flight at the deadline are awaited, so `request` must bound its own duration.
    """
    tally = _Tally()
    started = time.perf_counter()
    deadline = started + max_seconds

    async def client() -> None:
        while tally.started < total and time.perf_counter() < deadline:
            tally.started += 1
            begun = time.perf_counter()
            try:
                await request()
            except Exception as error:  # a failed request is a figure to report, not a reason to stop the load
                tally.fail(error)
            else:
                tally.latencies.append(time.perf_counter() - begun)

    await asyncio.gather(*(client() for _ in range(clients)))
    return LoadResult(sorted(tally.latencies), time.perf_counter() - started, tally.errors, tally.error_samples)


def _tree_cpu_seconds(pid: int) -> float:
    """User and system CPU seconds of a process and its live descendants, and of the children they have reaped
    (a pool child that exited mid-run would otherwise take its CPU time with it).

    NaN when the root itself is gone: its time can no longer be read, and a figure without it would be wrong.
    """
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.Error:
        return math.nan
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system + times.children_user + times.children_system
    return total


class CpuMeter:
    """CPU seconds each process tree used between entering and leaving the `with` block, by root pid (NaN for a
    root that was not running at both ends)."""

    def __init__(self, pids: Iterable[int]) -> None:
        self.pids = list(pids)
        self._start: dict[int, float] = {}
        self.seconds_by_pid: dict[int, float] = {}

    def __enter__(self) -> CpuMeter:
        self._start = {pid: _tree_cpu_seconds(pid) for pid in self.pids}
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.seconds_by_pid = {pid: _tree_cpu_seconds(pid) - self._start[pid] for pid in self.pids}

    @property
    def total(self) -> float:
        return sum(self.seconds_by_pid.values())
