"""/healthz says the process is up; /readyz says whether it can work, and names what is missing when not."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from fastapi.testclient import TestClient
from pydantic import SecretStr

from tests.conftest import RecordingEnqueue
from tests.processes import free_port, stop
from webapp.cli.embedded_broker import EmbeddedRedis
from webapp.config import Settings
from webapp.main import create_app
from webapp.migrate import alembic_config, head_revisions, upgrade_to_head


@pytest.fixture
def broker_url(tmp_path: Path) -> Iterator[str]:
    """A real Redis of this test's own (the embedded broker), so stopping it disturbs nobody."""
    broker = EmbeddedRedis(tmp_path / "broker")
    process = broker.start()
    yield broker.url
    stop(process)


def app_client(database_url: str, broker_url: str, models_dir: Path) -> TestClient:
    settings = Settings(
        database_url=database_url, broker_url=broker_url, models_dir=models_dir, secret_key=SecretStr("test")
    )
    return TestClient(create_app(settings, enqueue=RecordingEnqueue()))


def test_healthz_answers_while_the_process_runs(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}


def test_ready_when_database_schema_and_broker_are_all_there(
    database_url: str, broker_url: str, models_dir: Path
) -> None:
    with app_client(database_url, broker_url, models_dir) as client:
        response = client.get("/readyz")

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ready"
    assert {name: check["ok"] for name, check in body["checks"].items()} == {
        "database": True,
        "migrations": True,
        "broker": True,
        "intake": True,
    }
    assert body["checks"]["migrations"]["detail"] == f"at {', '.join(sorted(head_revisions()))}"


def test_not_ready_when_nothing_listens_at_the_broker_url(database_url: str, models_dir: Path) -> None:
    closed = f"redis://127.0.0.1:{free_port()}/0"
    with app_client(database_url, closed, models_dir) as client:
        response = client.get("/readyz")

    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["broker"]["ok"] is False
    assert checks["broker"]["detail"].startswith("unreachable (")
    assert "127.0.0.1" not in checks["broker"]["detail"], "connection details stay in the log"
    assert checks["database"]["ok"] and checks["migrations"]["ok"], "only the broker is named"


def test_a_broker_that_accepts_connections_but_never_answers_is_not_ready(database_url: str, models_dir: Path) -> None:
    with socket.socket() as hung:  # the kernel completes connections to it; nothing ever reads or replies
        hung.bind(("127.0.0.1", 0))
        hung.listen()
        with app_client(database_url, f"redis://127.0.0.1:{hung.getsockname()[1]}/0", models_dir) as client:
            response = client.get("/readyz")

    assert response.status_code == 503
    assert response.json()["checks"]["broker"]["ok"] is False


def test_not_ready_while_the_database_is_behind_the_code_and_ready_once_migrated(
    database_url: str, broker_url: str, models_dir: Path
) -> None:
    with app_client(database_url, broker_url, models_dir) as client:
        command.downgrade(alembic_config(database_url), "-1")
        behind = client.get("/readyz")
        upgrade_to_head(database_url)
        migrated = client.get("/readyz")

    assert behind.status_code == 503
    checks = behind.json()["checks"]
    assert checks["migrations"]["ok"] is False
    assert "apot migrate" in checks["migrations"]["detail"]
    assert checks["database"]["ok"] and checks["broker"]["ok"]
    assert migrated.status_code == 200
