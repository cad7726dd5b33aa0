"""Server time of the history page and API with 100,000 jobs in Postgres: the first page and one deep in the past.

Keyset pagination should make both the same; prints a markdown table. Needs APOT_TEST_DATABASE_URL.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import create_engine, insert

from bench.stacks import postgres_schema
from webapp.config import Settings
from webapp.main import create_app
from webapp.migrate import upgrade_to_head
from webapp.models import Job
from webapp.services.pagination import encode_cursor

JOBS = 100_000
DEEP = 90_000  # the page that starts this many jobs back
REPEATS = 50
INPUTS = [{"island": "Biscoe", "bill_length_mm": 48.6, "flipper_length_mm": 230, "sex": "male"}]
RESULT = {"predictions": [{"label": "Gentoo", "probabilities": {"Adelie": 0.01, "Chinstrap": 0.06, "Gentoo": 0.93}}]}


def fill(url: str) -> str:
    """Insert JOBS finished jobs, one second apart; returns the cursor that starts DEEP jobs back."""
    engine = create_engine(url)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    rows, deep_cursor = [], ""
    for i in range(JOBS):
        created = start + timedelta(seconds=i)
        status = "failed" if i % 20 == 0 else "succeeded"
        job_id = uuid.uuid4()
        rows.append(
            {
                "id": job_id,
                "kind": "single",
                "status": status,
                "model_name": "penguins",
                "model_version": "1",
                "task_id": str(uuid.uuid4()),
                "inputs": INPUTS,
                "rows_total": 1,
                "attempts": 1,
                "result": RESULT if status == "succeeded" else None,
                "error": "boom" if status == "failed" else None,
                "created_at": created,
                "started_at": created,
                "finished_at": created + timedelta(milliseconds=20),
            }
        )
        if i == JOBS - DEEP:
            deep_cursor = encode_cursor(created, job_id)
    with engine.begin() as connection:
        for chunk in range(0, JOBS, 5000):
            connection.execute(insert(Job), rows[chunk : chunk + 5000])
        connection.exec_driver_sql("ANALYZE jobs")
    engine.dispose()
    return deep_cursor


def p50_ms(client: TestClient, path: str, params: dict[str, str]) -> float:
    times = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        response = client.get(path, params=params)
        times.append(time.perf_counter() - started)
        assert response.status_code == 200, response.text
    return statistics.median(times) * 1000


def main() -> None:
    database = os.environ.get("APOT_TEST_DATABASE_URL")
    if not database:
        sys.exit("set APOT_TEST_DATABASE_URL to a Postgres database to run this benchmark")
    with tempfile.TemporaryDirectory() as tmp, postgres_schema(database) as url:
        upgrade_to_head(url)
        deep = fill(url)
        settings = Settings(
            database_url=url, models_dir=Path(tmp) / "models", broker_url="", secret_key=SecretStr("bench")
        )
        with TestClient(create_app(settings, enqueue=lambda jobs: None)) as client:
            cases = [
                ("/jobs", "first page", {}),
                ("/jobs", f"{DEEP:,} jobs back", {"cursor": deep}),
                ("/jobs", "first page, status=failed", {"status": "failed"}),
                ("/jobs", f"{DEEP:,} jobs back, status=failed", {"status": "failed", "cursor": deep}),
                ("/api/v1/jobs", "first page", {}),
                ("/api/v1/jobs", f"{DEEP:,} jobs back", {"cursor": deep}),
            ]
            for path, _, params in cases:  # warm-up
                p50_ms(client, path, params)
            print(f"\n{JOBS:,} jobs in Postgres; p50 of {REPEATS} requests, in-process (no network), 50 jobs a page\n")
            print("| endpoint | page | p50 |")
            print("|---|---|---|")
            for path, label, params in cases:
                print(f"| `{path}` | {label} | {p50_ms(client, path, params):.1f} ms |")


if __name__ == "__main__":
    main()
