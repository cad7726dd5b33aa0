"""A 1,000,000-row CSV through apot (Postgres + Redis, 2 worker processes) against the raw limit in one process.

apot: upload → results ready (the job succeeded), then the download; with the peak RSS of every web and
worker process. Raw limit: the same file read with pandas, scored with one predict_proba per 100,000 rows and
written back, in one process.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx2
import joblib
import pandas as pd
import psutil

from bench.figures import Figure, times
from bench.stacks import RunningStack, postgres_schema, running_stack
from ml.demo import write_sample_csv

ROWS = 1_000_000
RAW_CHUNK = 100_000


def raw_limit(sample: Path, models: Path, out: Path) -> float:
    """Read, score and write the file in one process, as fast as pandas and the model allow."""
    estimator = joblib.load(models / "penguins" / "1" / "model.joblib")
    features = list(estimator.feature_names_in_)
    started = time.perf_counter()
    frame = pd.read_csv(sample)
    parts = []
    for start in range(0, len(frame), RAW_CHUNK):
        part = frame.iloc[start : start + RAW_CHUNK].copy()
        probabilities = estimator.predict_proba(part[features])
        part["prediction"] = estimator.classes_[probabilities.argmax(axis=1)]
        for i, label in enumerate(estimator.classes_):
            part[f"probability_{label}"] = probabilities[:, i]
        parts.append(part)
    pd.concat(parts).to_csv(out, index=False)
    return time.perf_counter() - started


@contextmanager
def peak_rss(stack: RunningStack) -> Iterator[dict[str, int]]:
    """Sample the RSS of each web and worker process (prefork children included) every 50 ms."""
    peaks: dict[str, int] = {"web": 0, "worker": 0}
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            for child in stack.supervisor.children:
                if child.name not in peaks:
                    continue
                try:
                    root = psutil.Process(child.process.pid)
                    for process in [root, *root.children(recursive=True)]:
                        peaks[child.name] = max(peaks[child.name], process.memory_info().rss)
                except psutil.NoSuchProcess:
                    pass
            time.sleep(0.05)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield peaks
    finally:
        done.set()
        thread.join()


def through_apot(stack: RunningStack, sample: Path, out: Path) -> dict[str, float]:
    started = time.perf_counter()
    accepted, job = scored(stack, sample)
    ready = time.perf_counter()
    with httpx2.stream("GET", job["results_url"], headers=stack.auth, timeout=600) as download, out.open("wb") as f:
        for block in download.iter_bytes():
            f.write(block)
    downloaded = time.perf_counter()
    return {"upload": accepted - started, "ready": ready - started, "download": downloaded - ready}


def scored(stack: RunningStack, sample: Path) -> tuple[float, dict[str, Any]]:
    """Upload the file and wait for its job to succeed: when the upload was accepted, and the job."""
    with sample.open("rb") as f:
        response = httpx2.post(
            f"{stack.base_url}/api/v1/jobs/csv",
            files={"file": (sample.name, f, "text/csv")},
            data={"model": "penguins"},
            headers=stack.auth,
            timeout=600,
        )
    response.raise_for_status()
    accepted = time.perf_counter()
    job = response.json()
    while job["status"] in ("queued", "running"):
        job = httpx2.get(job["url"], params={"wait": 30}, headers=stack.auth, timeout=40).json()
    if job["status"] != "succeeded":
        raise RuntimeError(f"the job ended {job['status']}: {job['error']}")
    return accepted, job


def measure(database: str, broker: str, root: Path) -> list[Figure]:
    root.mkdir(parents=True, exist_ok=True)
    sample = write_sample_csv(root / "penguins-1m.csv", ROWS, seed=1)
    with (
        postgres_schema(database) as url,
        running_stack(url, broker, root / "stack", worker_concurrency="2") as stack,
    ):
        with peak_rss(stack) as peaks:
            apot = through_apot(stack, sample, root / "apot-results.csv")
        raw = raw_limit(sample, root / "stack" / "models", root / "raw-results.csv")
    mib = 1024 * 1024
    both = apot["ready"] + apot["download"]
    return [
        Figure(
            f"{ROWS:,}-row CSV: upload → results ready — Postgres + Redis, 2 workers",
            f"{apot['ready']:.1f} s ({ROWS / apot['ready']:,.0f} rows/s)",
            f"{raw:.1f} s (raw limit: read + score + write in one process)",
            times(apot["ready"] / raw),
            "≤ 3x (aim 1.5x)",
        ),
        Figure(f"{ROWS:,}-row CSV: of which the upload request", f"{apot['upload']:.1f} s"),
        Figure(
            f"{ROWS:,}-row CSV: upload → results downloaded",
            f"{both:.1f} s",
            f"{raw:.1f} s (raw limit)",
            times(both / raw),
        ),
        Figure(
            f"{ROWS:,}-row CSV: peak RSS web / largest worker process",
            f"{peaks['web'] / mib:.0f} / {peaks['worker'] / mib:.0f} MiB",
        ),
    ]
