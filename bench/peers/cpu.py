"""Server CPU per prediction: every process of a system, and for apot on Postgres + Redis the database backends
serving its connections and the Redis server (shared with whatever else uses it: its figure is an upper bound)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

import psutil
from sqlalchemy import create_engine, make_url, text

from bench.load import _tree_cpu_seconds
from bench.stacks import RunningStack

Pids = Callable[[], set[int]]


class SystemCpu:
    """CPU seconds used between `start()` and `stop()` by the process trees `pids()` names at either end; a
    process born in between counts from zero (a database backend opened by a growing connection pool)."""

    def __init__(self, pids: Pids) -> None:
        self.pids = pids
        self._start: dict[int, float] = {}

    def start(self) -> None:
        self._start = {pid: _tree_cpu_seconds(pid) for pid in self.pids()}

    def stop(self) -> float:
        total = 0.0
        for pid in self._start.keys() | self.pids():
            now = _tree_cpu_seconds(pid)
            if not math.isnan(now):
                total += now - self._start.get(pid, 0.0)
        return total


def apot_processes(stack: RunningStack, database_url: str | None, broker_url: str | None) -> Pids:
    """A running apot stack's processes, and on Postgres + Redis the database backends and broker serving them."""
    roots = [child.process.pid for child in stack.supervisor.children]
    if database_url and broker_url:
        return with_database_and_broker(roots, database_url, broker_url)
    return trees(roots)


def trees(roots: Iterable[int]) -> Pids:
    fixed = set(roots)
    return lambda: fixed


def with_database_and_broker(roots: Iterable[int], database_url: str, broker_url: str) -> Pids:
    """The roots, the Postgres backends of their open connections, and the Redis server of the broker URL."""
    fixed = set(roots)
    database = make_url(database_url)
    engine = create_engine(database_url, poolclass=None)
    broker_port = urlsplit(broker_url).port or 6379

    def pids() -> set[int]:
        ports = _client_ports(fixed, database.port or 5432)
        with engine.connect() as connection:
            backends = connection.execute(
                text("SELECT pid FROM pg_stat_activity WHERE client_port = ANY(:ports)"), {"ports": list(ports)}
            ).scalars()
            found = set(backends)
        return fixed | found | _listening(broker_port)

    return pids


def _client_ports(roots: set[int], server_port: int) -> set[int]:
    ports = set()
    for root in roots:
        try:
            processes = [psutil.Process(root), *psutil.Process(root).children(recursive=True)]
        except psutil.Error:
            continue
        for process in processes:
            try:
                connections = process.net_connections(kind="tcp")
            except psutil.Error:
                continue
            ports |= {c.laddr.port for c in connections if c.raddr and c.raddr.port == server_port}
    return ports


def _listening(port: int) -> set[int]:
    return {
        c.pid
        for c in psutil.net_connections(kind="tcp")
        if c.status == psutil.CONN_LISTEN and c.laddr.port == port and c.pid is not None
    }
