"""Worker-side metrics: what only a worker process knows (how long its model loads take), exported per machine.

`apot worker` runs Celery's pool as several processes; prometheus_client's multiprocess mode has each of them
write its samples to files in one folder (PROMETHEUS_MULTIPROC_DIR), and `apot worker` itself serves their sum on
APOT_WORKER_METRICS_PORT. Prometheus scrapes that port on every worker machine, as it scrapes each web server's
/metrics for the figures that come from the database.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Histogram, multiprocess, start_http_server

if TYPE_CHECKING:  # `apot worker`, which only starts the Celery processes and serves this, imports no model code
    from ml.store import ModelInfo

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Loading a model reads and checks its file, then unpickles it: from milliseconds to a minute for a big forest.
LOAD_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

MODEL_LOAD_SECONDS = Histogram(
    "apot_model_load_seconds",
    "Time a worker process took to read, check and load a model file, by model.",
    ["model"],
    buckets=LOAD_BUCKETS,
)


def observe_model_load(info: ModelInfo, seconds: float) -> None:
    """ModelFiles' on_load hook in worker processes."""
    MODEL_LOAD_SECONDS.labels(model=info.name).observe(seconds)


@contextmanager
def exporting(port: int, env: dict[str, str]) -> Iterator[None]:
    """Serve the metrics of the worker processes started with `env` on `port` (all interfaces: Prometheus scrapes
    from elsewhere) until the block ends; port 0 exports nothing."""
    if not port:
        yield
        return
    # A fresh folder per `apot worker`: files left by an earlier run would add its counts to this one's.
    folder = Path(tempfile.mkdtemp(prefix="apot-metrics-"))
    env[MULTIPROC_ENV] = str(folder)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(folder))
    server, thread = start_http_server(port, registry=registry)
    try:
        yield
    finally:
        server.shutdown()
        thread.join()
        shutil.rmtree(folder, ignore_errors=True)
