"""Each stack the same code must run on: embedded (SQLite + embedded Redis), Postgres + Redis, Postgres + RabbitMQ.

A stack here is real processes: `apot worker` and `apot web` as children, talking through a real broker
to a real database, exactly as in production.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from kombu import Connection

from tests.accounts import Account, add_account
from tests.models import Trained, register_all
from tests.processes import apot_env, free_port, start_apot, stop, wait_for_http
from tests.services import POSTGRES, RABBITMQ, REDIS, postgres_schema, required_url
from webapp.cli.embedded_broker import EmbeddedRedis
from webapp.db import make_engine, make_session_factory
from webapp.http.auth import SESSION_COOKIE, session_cookie
from webapp.migrate import upgrade_to_head
from webapp.models import Role
from webapp.services.models import ModelRegistry

STACKS = ["embedded", "postgres-redis", "postgres-rabbitmq"]


@dataclass(frozen=True)
class Stack:
    name: str
    base_url: str
    models: ModelRegistry
    logs: Path
    account: Account  # an admin with a key, made before the server started
    secret: bytes  # the server's APOT_SECRET_KEY, to sign a session cookie for a browser

    @property
    def auth(self) -> dict[str, str]:
        """Headers that authenticate an API request as `account`."""
        return self.account.bearer

    def session_cookie(self) -> dict[str, str]:
        """A signed-in browser's cookie, in the form Playwright's add_cookies takes."""
        value = session_cookie(self.secret, self.account.principal)
        return {"name": SESSION_COOKIE, "value": value, "url": self.base_url}

    worker_metrics_url: str  # `apot worker`'s own metrics endpoint (APOT_WORKER_METRICS_PORT)
    broker_url: str  # where Flower or `celery events` would listen


@contextmanager
def running_stack(name: str, root: Path, trained: dict[str, Trained], **settings: str) -> Iterator[Stack]:
    """Web server and one worker process on a fresh database (the test models registered) and a queue of their own;
    `settings` are more APOT_ settings for both (webhook_allow_private="true")."""
    stack_models = root / "models"
    queue = f"apot-test-{uuid.uuid4().hex[:8]}"
    logs = root / "apot.log"
    port, worker_metrics_port = free_port(), free_port()
    with ExitStack() as cleanup:  # undone in reverse: web, worker, queue, then broker or database
        if name == "embedded":
            database_url = f"sqlite:///{root / 'apot.db'}"
            broker = EmbeddedRedis(root / "broker")
            cleanup.callback(stop, broker.start())
            broker_url = broker.url
        else:
            variable = REDIS if name == "postgres-redis" else RABBITMQ
            broker_url = reachable_broker(required_url(variable), variable)
            database_url = cleanup.enter_context(postgres_schema(required_url(POSTGRES)))
        upgrade_to_head(database_url)
        engine = make_engine(database_url)
        cleanup.callback(engine.dispose)
        models = register_all(make_session_factory(engine), stack_models, trained)
        account = add_account(models.sessions, "stack-admin", Role.ADMIN)
        secret = uuid.uuid4().hex
        cleanup.callback(delete_queue, broker_url, queue)
        env = apot_env(
            database_url=database_url,
            broker_url=broker_url,
            models_dir=str(stack_models),
            queue=queue,
            port=str(port),
            secret_key=secret,
            rate_limit_per_user="",  # the tests submit in bursts; tests/test_rate_limits.py tests the limits
            rate_limit_per_key="",
            worker_metrics_port=str(worker_metrics_port),
            **{"csv_chunk_rows": "2000", **settings},  # a 50,000-row file is 25 tasks spread over the workers
        )
        worker = start_apot(["worker", "--concurrency", "1", "--name", f"{queue}@%h"], env, logs)
        cleanup.callback(stop, worker)
        web = start_apot(["web", "--no-access-log"], env, logs)
        cleanup.callback(stop, web)
        wait_for_http(f"http://127.0.0.1:{port}/healthz", web, logs)
        worker_metrics = f"http://127.0.0.1:{worker_metrics_port}/metrics"
        wait_for_http(worker_metrics, worker, logs)
        # Both Celery nodes of `apot worker` (scoring, webhooks) take their queues: on a busy machine a minute or more
        # after the web answers, longer than a test waits for its first job.
        wait_for_log(logs, [f"{queue}@", f"{queue}-webhooks@"], "ready.", worker)
        yield Stack(
            name, f"http://127.0.0.1:{port}", models, logs, account, secret.encode(), worker_metrics, broker_url
        )


def wait_for_log(
    log: Path, nodes: list[str], word: str, process: subprocess.Popen[bytes], timeout: float = 240
) -> None:
    """Until, for each node, a line of the log names it and says `word` (Celery's "<node> ready.")."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = [line for line in log.read_text(errors="replace").splitlines() if word in line]
        if all(any(node in line for line in lines) for node in nodes):
            return
        if process.poll() is not None:
            raise AssertionError(f"process exited with {process.returncode}:\n{log.read_text()[-4000:]}")
        time.sleep(0.2)
    raise AssertionError(f"{nodes} did not say {word!r} within {timeout} s:\n{log.read_text()[-4000:]}")


def reachable_broker(url: str, variable: str) -> str:
    try:
        with Connection(url, connect_timeout=3) as connection:
            connection.ensure_connection(max_retries=1)
    except Exception as exc:
        pytest.fail(f"{variable}={url} is set but the broker cannot be reached: {exc}")
    return url


def delete_queue(broker_url: str, queue: str) -> None:
    """The stack's queues: interactive, bulk and webhooks (tasks/app.py)."""
    with Connection(broker_url) as connection:
        for name in (queue, f"{queue}.bulk", f"{queue}.webhooks"):
            connection.default_channel.queue_delete(name)
            connection.default_channel.exchange_delete(name)
