"""Stacks for benchmarks: real `apot web` and `apot worker` processes on a fresh database."""

from __future__ import annotations

import os
import secrets
import socket
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx2
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.orm import Session, sessionmaker

from ml.store import ModelFiles
from webapp.cli.embedded_broker import EmbeddedRedis
from webapp.cli.supervisor import Supervisor
from webapp.db import make_engine, make_session_factory
from webapp.migrate import upgrade_to_head
from webapp.models import Role
from webapp.services.accounts import AccountService, Principal
from webapp.services.models import ModelRegistry, ensure_demos

WORKER_READY_SECONDS = 180


@dataclass(frozen=True)
class BenchAccount:
    """The admin the benchmarks act as, with an API key."""

    principal: Principal
    key: str

    @property
    def auth(self) -> dict[str, str]:
        """Headers that authenticate an API request."""
        return {"Authorization": f"Bearer {self.key}"}


def add_bench_account(sessions: sessionmaker[Session]) -> BenchAccount:
    """An admin named bench and a key of its own (its random password is never used)."""
    accounts = AccountService(sessions)
    principal = accounts.create_user("bench", secrets.token_urlsafe(16), Role.ADMIN)
    return BenchAccount(principal, accounts.create_key(principal.user_id, "bench").secret)


@dataclass(frozen=True)
class RunningStack:
    base_url: str
    supervisor: Supervisor
    auth: dict[str, str]  # headers for the API as the bench admin


@contextmanager
def postgres_schema(url: str) -> Iterator[str]:
    schema = f"apot_bench_{uuid.uuid4().hex[:8]}"
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield make_url(url).update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(False)
    finally:
        with engine.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


@contextmanager
def running_stack(database_url: str, broker_url: str | None, root: Path, **settings: str) -> Iterator[RunningStack]:
    """Web, worker and reconciler as in production, with the settings a user gets (INFO logs in the default format,
    access log and task events on, the default rate limits); an embedded broker when no broker URL is given."""
    models = root / "models"
    upgrade_to_head(database_url)
    engine = make_engine(database_url)
    sessions = make_session_factory(engine)
    ensure_demos(ModelRegistry(sessions, ModelFiles(models)))
    account = add_bench_account(sessions)
    engine.dispose()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    supervisor = Supervisor()
    try:
        if broker_url is None:
            broker = EmbeddedRedis(root / "broker")
            supervisor.adopt("broker", broker.start())
            broker_url = broker.url
        env = {k: v for k, v in os.environ.items() if not k.startswith("APOT_")}
        env.update(
            APOT_DATABASE_URL=database_url,
            APOT_BROKER_URL=broker_url,
            APOT_MODELS_DIR=str(models),
            APOT_PORT=str(port),
            APOT_QUEUE=f"apot-bench-{uuid.uuid4().hex[:8]}",
            APOT_SECRET_KEY=secrets.token_hex(32),  # not var/secret_key of the folder the bench runs in
        )
        env.update({f"APOT_{k.upper()}": v for k, v in settings.items()})
        # The figures on screen, the banners and logs in a file.
        with (root / "stack.log").open("ab") as log:
            supervisor.spawn("worker", [sys.executable, "-m", "webapp.cli", "worker"], env, log)
            supervisor.spawn("reconciler", [sys.executable, "-m", "webapp.cli", "reconciler"], env, log)
            supervisor.spawn("web", [sys.executable, "-m", "webapp.cli", "web"], env, log)
        base = f"http://127.0.0.1:{port}"
        if not supervisor.wait_until_ready(f"{base}/healthz") or not _scores(base, account.auth):
            raise RuntimeError(f"the stack did not start; see {root / 'stack.log'}")
        yield RunningStack(base, supervisor, account.auth)
    finally:
        supervisor.stop_all()


def _scores(base_url: str, auth: dict[str, str]) -> bool:
    """Whether a job gets scored: the web answers before the worker is up (on a busy machine, half a minute later)."""
    deadline = time.monotonic() + WORKER_READY_SECONDS
    body = {"model": "penguins", "inputs": {"island": "Biscoe", "bill_length_mm": 48.6, "flipper_length_mm": 230}}
    while time.monotonic() < deadline:
        answer = httpx2.post(f"{base_url}/api/v1/jobs", json=body, headers={"Prefer": "wait=10", **auth}, timeout=30)
        if answer.status_code == 200:
            return True
    return False
