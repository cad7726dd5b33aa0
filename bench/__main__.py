"""`make bench`: apot against the blog-post design and the raw model, every figure with its comparison point measured
in the same run, printed as one markdown table.

Parts: `single` (single-row and 1,000-row JSON jobs on each stack), `csv` (1,000,000-row CSV), `parquet` (the same
rows as Parquet beside CSV), `fair` (another user's 1-row jobs while a 1,000,000-row CSV runs), `history` (`/jobs`
with 1,000,000 jobs), `metrics` (`/metrics` with as many), `charts` (`/` and a model's page with as many), `peers`
(apot against plain FastAPI, BentoML and MLflow in interleaved rounds, bench/peers/), `tracking` (jobs/s at 64 clients
and the CSV, APOT_TRACKING off and on in APOT_BENCH_ROUNDS interleaved rounds; APOT_BENCH_CSV_ROWS shrinks the file),
`start` (a warm `apot run`, until a job is scored); all by default (`python -m bench single csv`). The Postgres +
Redis parts run when APOT_TEST_DATABASE_URL and APOT_TEST_BROKER_URL are set; the others say they were skipped.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench import csv_jobs, fair_share, history, metrics, parquet_jobs, start, tracking
from bench.baseline.stack import running_baseline
from bench.figures import Figure, ms, table, times
from bench.peers import compare
from bench.single_jobs import (
    BATCH_ROWS,
    apot_get_wait,
    apot_prefer_wait,
    baseline,
    batch_p50,
    compare_sweeps,
    one_client_p50,
    raw_call_seconds,
    sweep,
)
from bench.stacks import RunningStack, postgres_schema, running_stack
from ml.demo import train_penguins
from webapp.cli.embedded_broker import EmbeddedRedis

PARTS = ("single", "csv", "parquet", "fair", "history", "metrics", "charts", "peers", "tracking", "start")


def main() -> None:
    parts = sys.argv[1:] or list(PARTS)
    unknown = set(parts) - set(PARTS)
    if unknown:
        sys.exit(f"unknown part(s) {', '.join(sorted(unknown))}; choose from {', '.join(PARTS)}")
    database, broker = os.environ.get("APOT_TEST_DATABASE_URL"), os.environ.get("APOT_TEST_BROKER_URL")
    figures: list[Figure] = []
    skipped: list[str] = []
    tables: list[str] = []
    try:
        measure_parts(parts, database, broker, figures, skipped, tables)
    finally:  # a part that failed still leaves the figures of those before it on screen
        print(f"\n{os.cpu_count()} CPUs; one worker process per CPU unless said; load from this process, on loopback\n")
        print(table(figures))
        for text in tables:
            print(text)
        for part in skipped:
            print(f"\nskipped: {part}")


def measure_parts(
    parts: list[str],
    database: str | None,
    broker: str | None,
    figures: list[Figure],
    skipped: list[str],
    tables: list[str],
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if "single" in parts:
            figures += single_jobs(root, database, broker, skipped)
        if "csv" in parts:
            if database and broker:
                figures += csv_jobs.measure(database, broker, root / "csv")
            else:
                skipped.append("the 1,000,000-row CSV (needs APOT_TEST_DATABASE_URL and APOT_TEST_BROKER_URL)")
        if "parquet" in parts:
            if database and broker:
                figures += parquet_jobs.measure(database, broker, root / "parquet")
            else:
                skipped.append("the 1,000,000-row Parquet (needs APOT_TEST_DATABASE_URL and APOT_TEST_BROKER_URL)")
        if "fair" in parts:
            if database and broker:
                figures += fair_share.measure(database, broker, root / "fair")
            else:
                skipped.append("1-row jobs beside a CSV (needs APOT_TEST_DATABASE_URL and APOT_TEST_BROKER_URL)")
        if "history" in parts:
            if database:
                figures += history.measure(database, root / "history")
            else:
                skipped.append("/jobs with 1,000,000 jobs (needs APOT_TEST_DATABASE_URL)")
        if "metrics" in parts:
            if database:
                figures += metrics.measure(database, root / "metrics")
            else:
                skipped.append("/metrics with 1,000,000 jobs (needs APOT_TEST_DATABASE_URL)")
        if "peers" in parts:
            if not (database and broker):
                skipped.append(
                    "apot on Postgres + Redis among the peers (needs APOT_TEST_DATABASE_URL and APOT_TEST_BROKER_URL)"
                )
            goal_lines, rounds = compare.measure(database, broker, root / "peers")
            figures += goal_lines
            tables.append(rounds)
        if "start" in parts:
            figures += start.measure(root / "start")
        if "charts" in parts:
            if database:
                figures += history.measure_charts(database, root / "charts")
            else:
                skipped.append("/ and /models/penguins with 1,000,000 jobs (needs APOT_TEST_DATABASE_URL)")
        if "tracking" in parts:
            figures += tracking.measure(database, broker, root / "tracking")


def single_jobs(root: Path, database: str | None, broker: str | None, skipped: list[str]) -> list[Figure]:
    estimator = train_penguins()[0]
    one_row = raw_call_seconds(estimator, 1, 300)
    figures = [
        Figure("raw limit: one predict_proba call on 1 row", ms(one_row), f"{1 / one_row:,.0f} rows/s"),
        *(
            Figure(f"raw limit: predict_proba on {rows:,}-row batches", f"{rows / seconds:,.0f} rows/s")
            for rows, seconds in ((n, raw_call_seconds(estimator, n, 30)) for n in (100, 10_000))
        ),
    ]
    raw_batch = raw_call_seconds(estimator, BATCH_ROWS, 30)
    with (
        baseline_broker(broker, root / "baseline-broker") as redis_url,
        running_baseline(redis_url, root / "baseline") as blog_stack,
    ):
        blog = asyncio.run(sweep(blog_stack.base_url, baseline(blog_stack.base_url), blog_stack.pids))
    stacks: dict[str, tuple[str, str | None]] = {"embedded": (f"sqlite:///{root / 'embedded' / 'apot.db'}", None)}
    if database and broker:
        stacks["Postgres + Redis"] = (database, broker)
    else:
        skipped.append("apot on Postgres + Redis (needs APOT_TEST_DATABASE_URL and APOT_TEST_BROKER_URL)")
    for name, (database_url, broker_url) in stacks.items():
        with apot_stack(database_url, broker_url, root / name) as stack:
            base = stack.base_url
            pids = {c.name: c.process.pid for c in stack.supervisor.children if c.name in ("web", "worker")}
            apot = asyncio.run(sweep(base, apot_prefer_wait(base, stack.auth), pids))
            get_wait = asyncio.run(one_client_p50(base, apot_get_wait(base, stack.auth)))
            batch = asyncio.run(batch_p50(base, stack.auth))
        figures += compare_sweeps(name, apot, blog)
        figures.append(
            Figure(
                f"submit→result p50, 1 client, POST then GET ?wait — {name}",
                ms(get_wait),
                f"{ms(blog[1].load.p50)} (blog-post design)",
                times(get_wait / blog[1].load.p50),
                "≤ 0.5x",
            )
        )
        figures.append(
            Figure(
                f"JSON job of {BATCH_ROWS:,} rows, submit→result p50 — {name}",
                ms(batch),
                f"{ms(raw_batch)} (raw: one predict_proba call)",
                times(batch / raw_batch),
            )
        )
    return figures


@contextmanager
def baseline_broker(broker: str | None, data_dir: Path) -> Iterator[str]:
    """The baseline's Redis: database 5 of the test Redis when there is one, else an embedded Redis of its own."""
    if broker and broker.startswith("redis://"):
        yield broker.rsplit("/", 1)[0] + "/5"
        return
    embedded = EmbeddedRedis(data_dir)
    process = embedded.start()
    try:
        yield embedded.url
    finally:
        process.terminate()
        process.wait()


@contextmanager
def apot_stack(database_url: str, broker_url: str | None, root: Path) -> Iterator[RunningStack]:
    if database_url.startswith("postgresql"):
        with postgres_schema(database_url) as url, running_stack(url, broker_url, root) as stack:
            yield stack
    else:
        with running_stack(database_url, broker_url, root) as stack:
            yield stack


if __name__ == "__main__":
    main()
