"""The 1,000,000-row file job again, sent as Parquet, beside the same rows sent as CSV in the same run (Postgres +
Redis, 2 worker processes): upload → results ready, and the upload request alone."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from bench.csv_jobs import ROWS, peak_rss, through_apot
from bench.figures import Figure, times
from bench.stacks import postgres_schema, running_stack
from ml.demo import write_sample_csv

ROW_GROUP = 100_000  # what pandas and Spark write by default is of this order


def measure(database: str, broker: str, root: Path, rows: int = ROWS) -> list[Figure]:
    root.mkdir(parents=True, exist_ok=True)
    csv_file = write_sample_csv(root / "penguins.csv", rows, seed=1)
    parquet_file = root / "penguins.parquet"
    pd.read_csv(csv_file).to_parquet(parquet_file, row_group_size=ROW_GROUP, index=False)
    with (
        postgres_schema(database) as url,
        running_stack(url, broker, root / "stack", worker_concurrency="2") as stack,
    ):
        # Each worker process loads the model on its first chunk: a small file first, so neither path pays for it.
        through_apot(stack, write_sample_csv(root / "warm-up.csv", 5_000, seed=2), root / "warm-up-results.csv")
        from_csv = through_apot(stack, csv_file, root / "csv-results.csv")
        with peak_rss(stack) as peaks:
            from_parquet = through_apot(stack, parquet_file, root / "parquet-results.csv")
    mib = 1024 * 1024
    size = f"{parquet_file.stat().st_size / mib:.1f} MiB against {csv_file.stat().st_size / mib:.1f} MiB"
    return [
        Figure(
            f"{rows:,}-row Parquet: upload → results ready — Postgres + Redis, 2 workers",
            f"{from_parquet['ready']:.1f} s ({rows / from_parquet['ready']:,.0f} rows/s)",
            f"{from_csv['ready']:.1f} s (the same rows as CSV, this run)",
            times(from_parquet["ready"] / from_csv["ready"]),
        ),
        Figure(
            f"{rows:,}-row Parquet: of which the upload request",
            f"{from_parquet['upload']:.1f} s",
            f"{from_csv['upload']:.1f} s (CSV)",
            times(from_parquet["upload"] / from_csv["upload"]),
        ),
        Figure(f"{rows:,}-row Parquet: file size", size),
        Figure(
            f"{rows:,}-row Parquet: peak RSS web / largest worker process",
            f"{peaks['web'] / mib:.0f} / {peaks['worker'] / mib:.0f} MiB",
        ),
    ]
