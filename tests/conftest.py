"""Shared fixtures: registered models, migrated databases, and the app with a recording enqueue."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Engine

from tests.accounts import Account, add_account, sign_in
from tests.models import Trained, register_all, train_test_models
from tests.services import POSTGRES, SKIPPED_FOR, postgres_schema, required_url
from webapp.config import Settings
from webapp.db import BACKGROUND_STATEMENT_TIMEOUT_SECONDS, make_engine, make_session_factory
from webapp.main import create_app
from webapp.migrate import upgrade_to_head
from webapp.models import Role
from webapp.services.chunk_scoring import score_chunk
from webapp.services.dispatch import SCORE_CHUNK, Dispatch, Enqueue
from webapp.services.events import SilentAnnouncer
from webapp.services.models import ModelRegistry
from webapp.services.scoring import ScoringContext, score_jobs


@pytest.fixture(scope="session")
def trained_models() -> dict[str, Trained]:
    """The demo classifier and a small regressor, trained once per test session."""
    return train_test_models()


@pytest.fixture
def models_dir(tmp_path: Path) -> Path:
    return tmp_path / "models"


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database at the newest schema, built by the migrations, on each backend."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'apot.db'}"
        upgrade_to_head(url)
        yield url
        return
    with postgres_schema(required_url(POSTGRES)) as url:
        upgrade_to_head(url)
        yield url


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    # The services tested on it (reconciler, scoring) run in the background, with the background's deadlines.
    engine = make_engine(database_url, statement_timeout=BACKGROUND_STATEMENT_TIMEOUT_SECONDS)
    yield engine
    engine.dispose()


@pytest.fixture
def registry(engine: Engine, models_dir: Path, trained_models: dict[str, Trained]) -> ModelRegistry:
    """penguins and sizes, registered in this test's database."""
    return register_all(make_session_factory(engine), models_dir, trained_models)


class RecordingEnqueue:
    """Stands in for the broker in API tests (no worker runs there): records what would have been published."""

    def __init__(self) -> None:
        self.dispatches: list[Dispatch] = []
        self.fail = False

    def __call__(self, dispatches: Sequence[Dispatch]) -> None:
        if self.fail:
            raise ConnectionError("broker unreachable (simulated)")
        self.dispatches.extend(dispatches)

    @property
    def published(self) -> list[str]:
        return [target for d in self.dispatches for target in d.targets]

    def deliver(self, registry: ModelRegistry) -> None:
        """Play the worker: run every task published so far, in this process (tests/e2e run the real one)."""
        context = worker_context(registry, self)
        for dispatch in self.dispatches:  # scoring a chunk appends the next one's dispatch: taken in this loop too
            if dispatch.task == SCORE_CHUNK:
                score_chunk(context, *dispatch.targets)
            else:
                score_jobs(context, dispatch.targets)
        self.dispatches.clear()


def worker_context(registry: ModelRegistry, enqueue: Enqueue | None = None) -> ScoringContext:
    """What a worker process scores with, in this process: the real scoring services on the test's database."""
    return ScoringContext(
        registry.sessions,
        registry,
        SilentAnnouncer(),
        "test-worker",
        lease_seconds=60,
        enqueue=enqueue or RecordingEnqueue(),
    )


@pytest.fixture
def enqueue() -> RecordingEnqueue:
    return RecordingEnqueue()


@pytest.fixture
def settings(database_url: str, models_dir: Path) -> Settings:
    return Settings(
        database_url=database_url,
        models_dir=models_dir,
        broker_url="",
        max_json_rows=5,
        max_upload_mb=1,
        csv_chunk_rows=3,
        secret_key=SecretStr("test"),
    )


@pytest.fixture
def member(registry: ModelRegistry) -> Account:
    """A member, with an API key."""
    return add_account(registry.sessions, "mia")


@pytest.fixture
def admin(registry: ModelRegistry) -> Account:
    """An admin, with an API key."""
    return add_account(registry.sessions, "ada", Role.ADMIN)


@pytest.fixture
def app(settings: Settings, enqueue: RecordingEnqueue, registry: ModelRegistry) -> Iterator[FastAPI]:
    """The app, its lifespan started, with no client signed in."""
    app = create_app(settings, enqueue=enqueue)
    with TestClient(app):
        yield app


@pytest.fixture
def client(app: FastAPI, member: Account) -> Iterator[TestClient]:
    """A client signed in as the member `mia`: session cookie for the pages, her key for the API."""
    with TestClient(app) as client:
        yield sign_in(client, member)


@pytest.fixture
def admin_client(app: FastAPI, admin: Account) -> Iterator[TestClient]:
    """A client signed in as the admin `ada`."""
    with TestClient(app) as client:
        yield sign_in(client, admin)


@pytest.fixture
def anonymous(app: FastAPI) -> Iterator[TestClient]:
    """A client that has not signed in and sends no key."""
    with TestClient(app) as client:
        yield client


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say once, plainly, which services this run did not test against."""
    if SKIPPED_FOR:
        terminalreporter.section("not tested here")
        for variable, count in sorted(SKIPPED_FOR.items()):
            terminalreporter.write_line(f"{count} tests skipped: {variable} is not set (see README, 'Test it')")
