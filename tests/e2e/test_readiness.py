"""A real `apot web` on a real broker: /readyz goes 503 when the broker stops and back to 200 when it returns."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx2

from tests.processes import apot_env, free_port, start_apot, stop, wait_for_http
from webapp.cli.embedded_broker import EmbeddedRedis
from webapp.migrate import upgrade_to_head


def test_readiness_follows_the_broker_down_and_up(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'apot.db'}"
    upgrade_to_head(database_url)
    broker = EmbeddedRedis(tmp_path / "broker")  # this test's own Redis: stopping it disturbs nobody
    broker_process = broker.start()
    port, logs = free_port(), tmp_path / "apot.log"
    env = apot_env(
        database_url=database_url,
        broker_url=broker.url,
        models_dir=str(tmp_path / "models"),
        port=str(port),
        secret_key=uuid.uuid4().hex,
    )
    web = start_apot(["web", "--no-access-log"], env, logs)
    readyz = f"http://127.0.0.1:{port}/readyz"
    try:
        wait_for_http(f"http://127.0.0.1:{port}/healthz", web, logs)
        up = httpx2.get(readyz, timeout=10)

        stop(broker_process)
        down = httpx2.get(readyz, timeout=10)
        alive = httpx2.get(f"http://127.0.0.1:{port}/healthz", timeout=10)

        broker_process = broker.start()
        back = httpx2.get(readyz, timeout=10)
    finally:
        stop(web)
        stop(broker_process)

    assert up.status_code == 200, up.text
    assert down.status_code == 503
    checks = down.json()["checks"]
    assert checks["broker"]["ok"] is False
    assert checks["database"]["ok"] and checks["migrations"]["ok"]
    assert alive.status_code == 200, "the process is still alive: only readiness changes"
    assert back.status_code == 200, back.text
