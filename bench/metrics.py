"""Server time of GET /metrics with 1,000,000 ended jobs in Postgres, plus a minute of recent traffic.

The first scrape of a web process reads every ended job once; later ones read only what ended since, and what is
still queued or running. In-process (no network), so the figure is the server's own time.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import create_engine, text

from bench.figures import Figure, ms, times
from bench.history import FILL, JOBS, START
from bench.stacks import postgres_schema
from webapp.config import Settings
from webapp.main import create_app
from webapp.migrate import upgrade_to_head

RECENT = 30_000  # the last minute at 500 jobs/s: ended, but not yet settled, so read on every scrape
OPEN = 1_000  # a backlog, read on every scrape too
REPEATS = 20
# Recent jobs: ended over the last minute; then the backlog, queued.
TRAFFIC = f"""
INSERT INTO jobs (id, kind, status, model_name, model_version, task_id, inputs, rows_total, rows_done, rows_failed,
                  attempts, created_at, started_at, finished_at)
SELECT gen_random_uuid(), 'single', CASE WHEN i <= {RECENT} THEN 'succeeded' ELSE 'queued' END, 'penguins', '1',
       md5(i::text), '[]', 1, 1, 0, 1, now() - i * interval '2 milliseconds' - interval '30 milliseconds',
       CASE WHEN i <= {RECENT} THEN now() - i * interval '2 milliseconds' - interval '10 milliseconds' END,
       CASE WHEN i <= {RECENT} THEN now() - i * interval '2 milliseconds' END
FROM generate_series(1, {RECENT + OPEN}) AS i
"""


def fill(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text(FILL), {"start": START})
        connection.exec_driver_sql("ANALYZE jobs")
    with engine.begin() as connection:  # last, so that its minute is still recent when the scrapes start
        connection.execute(text(TRAFFIC))
    engine.dispose()


def scrape_seconds(client: TestClient) -> float:
    started = time.perf_counter()
    response = client.get("/metrics")
    elapsed = time.perf_counter() - started
    assert response.status_code == 200, response.text
    return elapsed


def measure(database: str, root: Path) -> list[Figure]:
    with postgres_schema(database) as url:
        upgrade_to_head(url)
        fill(url)
        settings = Settings(database_url=url, models_dir=root / "models", broker_url="", secret_key=SecretStr("bench"))
        with TestClient(create_app(settings, enqueue=lambda jobs: None)) as client:
            first = scrape_seconds(client)
            later = statistics.median(scrape_seconds(client) for _ in range(REPEATS))
    jobs = f"{JOBS + RECENT + OPEN:,} jobs ({RECENT:,} ended in the last minute, {OPEN:,} queued)"
    return [
        Figure(f"`/metrics` first scrape of a web process, {jobs}", ms(first), "", "", "< 10 s (scrape timeout)"),
        Figure(
            f"`/metrics` later scrapes, {jobs}, server time p50",
            ms(later),
            f"{ms(first)} (first scrape)",
            times(later / first),
            "< 100 ms",
        ),
    ]
