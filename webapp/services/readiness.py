"""Readiness: whether this web process can do its work now, and if not, why.

Ready means the database answers, at the schema revision this code was written for, the broker takes a
connection, and the job intake's threads are alive and not stuck. Each check runs on a thread with a deadline,
so a hung database or broker makes the probe answer "not ready" in a few seconds instead of hanging it; a check
still stuck from an earlier probe is awaited again, not started a second time, so a long outage never piles
threads up.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from kombu import Connection
from sqlalchemy import Engine, inspect, text

from webapp.migrate import head_revisions

log = logging.getLogger(__name__)

CHECK_TIMEOUT_SECONDS = 2.0


@dataclass(frozen=True)
class Check:
    ok: bool
    detail: str


Checks = dict[str, Check]


@dataclass(frozen=True)
class Report:
    checks: Checks

    @property
    def ready(self) -> bool:
        return all(check.ok for check in self.checks.values())

    def as_json(self) -> dict[str, object]:
        return {
            "status": "ready" if self.ready else "unavailable",
            "checks": {name: {"ok": c.ok, "detail": c.detail} for name, c in self.checks.items()},
        }


class Readiness:
    """One per web process: checks the database, its schema revision and the broker on request."""

    def __init__(
        self,
        engine: Engine,
        broker_url: str,
        *,
        timeout: float = CHECK_TIMEOUT_SECONDS,
        intake_problem: Callable[[], str | None] = lambda: None,
    ) -> None:
        self.engine = engine
        self.broker_url = broker_url
        self.timeout = timeout
        self.intake_problem = intake_problem
        self.heads = head_revisions()  # read from the migration scripts once
        self._running: dict[str, asyncio.Future[Checks]] = {}

    async def check(self) -> Report:
        """Every check at once; the answer comes within about `timeout` seconds whatever they do."""
        database, broker = await asyncio.gather(
            self._bounded(self.check_database, ("database", "migrations")),
            self._bounded(self.check_broker, ("broker",)),
        )
        problem = self.intake_problem()
        intake = Check(problem is None, problem or "storing and publishing")
        return Report({**database, **broker, "intake": intake})

    async def _bounded(self, probe: Callable[[], Checks], names: tuple[str, ...]) -> Checks:
        running = self._running.get(names[0])
        if running is None or running.done():
            running = asyncio.get_running_loop().run_in_executor(None, probe)
            self._running[names[0]] = running
        try:
            return await asyncio.wait_for(asyncio.shield(running), self.timeout)
        except TimeoutError:
            log.warning("readiness: %s gave no answer within %g s", " and ".join(names), self.timeout)
            return {name: Check(False, f"no answer within {self.timeout:g} s") for name in names}

    def check_database(self) -> Checks:
        """Blocking: connect, and compare the database's Alembic revision with the code's."""
        try:
            with self.engine.connect() as connection:
                # Read directly: Alembic's MigrationContext would log two INFO lines on every probe.
                current = (
                    set(connection.scalars(text("SELECT version_num FROM alembic_version")))
                    if inspect(connection).has_table("alembic_version")
                    else set()
                )
        except Exception as exc:
            return {
                "database": _failed("database", exc),
                "migrations": Check(False, "not checked: the database did not answer"),
            }
        if current == self.heads:
            migrations = Check(True, f"at {_revisions(current)}")
        else:
            migrations = Check(
                False,
                f"the database is at {_revisions(current)}, the code needs {_revisions(self.heads)}: "
                "run `apot migrate`",
            )
        return {"database": Check(True, "answers"), "migrations": migrations}

    def check_broker(self) -> Checks:
        """Blocking: open a connection to the broker (for Redis, a PING), with short timeouts."""
        if not self.broker_url:
            return {"broker": Check(True, "none configured: tasks are handed to an in-process enqueue")}
        timeouts = {"socket_timeout": self.timeout, "socket_connect_timeout": self.timeout}
        try:
            with Connection(self.broker_url, connect_timeout=self.timeout, transport_options=timeouts) as connection:
                connection.ensure_connection(max_retries=0)
                connection.default_channel  # noqa: B018 (Redis answers a PING here; AMQP opens a channel)
        except Exception as exc:
            return {"broker": _failed("broker", exc)}
        return {"broker": Check(True, "reachable")}


def _failed(name: str, exc: Exception) -> Check:
    # The full message goes to the log only: /readyz is open to anyone, and driver errors name hosts and users.
    log.warning("readiness: the %s cannot be reached: %s", name, exc)
    return Check(False, f"unreachable ({type(exc).__name__}); the web server's log has the details")


def _revisions(revisions: set[str]) -> str:
    return ", ".join(sorted(revisions)) if revisions else "no revision"
