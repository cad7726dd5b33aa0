"""What GET /metrics answers: the job figures and the broker's queue, as Prometheus metric families."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine

from webapp.config import Settings
from webapp.db import make_session_factory
from webapp.metrics.broker import QueueProbe, queue_probe
from webapp.metrics.jobs import JobFigureSource
from webapp.metrics.tally import TIMED, JobFigures, by_label
from webapp.metrics.tracking import TrackingCollector

SPAN_METRICS = {
    "wait": ("apot_job_wait_seconds", "Seconds from a job's creation to its start (queued→started), by model."),
    "run": ("apot_job_run_seconds", "Seconds from a job's start to its end (started→finished), by model."),
    "end_to_end": ("apot_job_end_to_end_seconds", "Seconds from a job's creation to its end, by model."),
}


class ApotCollector(Collector):
    """Reads everything afresh on each scrape; nothing is counted in this process's memory alone."""

    def __init__(self, jobs: JobFigureSource, queue: QueueProbe) -> None:
        self.jobs = jobs
        self.queue = queue

    def collect(self) -> Iterator[Metric]:
        figures = self.jobs.read()
        yield from job_counters(figures)
        yield from latency_histograms(figures)
        yield from queue_gauges(figures, self.queue())


def job_counters(figures: JobFigures) -> Iterator[Metric]:
    created = CounterMetricFamily("apot_jobs_created", "Jobs submitted, by model and kind.", labels=["model", "kind"])
    # Every job is either still open or ended, so together they are every job ever created.
    for (model, kind), tally in by_label({**figures.ended, **figures.open}, (0, 1)).items():
        created.add_metric([model, kind], tally.jobs)
    yield created
    ended = by_label(figures.ended, (0, 2))
    finished = CounterMetricFamily(
        "apot_jobs_finished",
        "Jobs ended, by model and status (succeeded, failed, cancelled).",
        labels=["model", "status"],
    )
    for labels, tally in ended.items():
        finished.add_metric(list(labels), tally.jobs)
    yield finished
    rows = by_label(figures.ended, (0,))
    scored = CounterMetricFamily(
        "apot_rows_scored", "Rows done by jobs that ended (rows failed included), by model.", labels=["model"]
    )
    failed = CounterMetricFamily("apot_rows_failed", "Rows that failed in jobs that ended, by model.", labels=["model"])
    for labels, tally in rows.items():
        scored.add_metric(list(labels), tally.rows_done)
        failed.add_metric(list(labels), tally.rows_failed)
    yield scored
    yield failed


def latency_histograms(figures: JobFigures) -> Iterator[Metric]:
    timed = by_label({key: tally for key, tally in figures.ended.items() if key[2] in TIMED}, (0,))
    for span, (name, documentation) in SPAN_METRICS.items():
        family = HistogramMetricFamily(name, documentation, labels=["model"])
        for labels, tally in timed.items():
            histogram = tally.spans[span]
            family.add_metric(list(labels), histogram.buckets(), histogram.total)
        yield family


def queue_gauges(figures: JobFigures, queue: tuple[str, int | None] | None) -> Iterator[Metric]:
    open_jobs = GaugeMetricFamily(
        "apot_jobs_open",
        "Jobs queued or running now, by model and status (from the database).",
        labels=["model", "status"],
    )
    for labels, tally in by_label(figures.open, (0, 2)).items():
        open_jobs.add_metric(list(labels), tally.jobs)
    yield open_jobs
    if queue is None:  # no broker configured
        return
    name, depth = queue
    reachable = GaugeMetricFamily("apot_broker_up", "1 if the broker answered this scrape, else 0.")
    reachable.add_metric([], 0 if depth is None else 1)
    yield reachable
    if depth is not None:  # absent, not made up, when the broker cannot be asked
        waiting = GaugeMetricFamily(
            "apot_queue_depth", "Task messages waiting in the broker's queue, by queue.", labels=["queue"]
        )
        waiting.add_metric([name], depth)
        yield waiting


class MetricsService:
    """Renders the Prometheus text exposition of apot's metrics."""

    def __init__(self, jobs: JobFigureSource, queue: QueueProbe, tracking: Collector | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(ApotCollector(jobs, queue))
        if tracking is not None:
            self.registry.register(tracking)

    @classmethod
    def for_app(cls, engine: Engine, settings: Settings) -> MetricsService:
        """The service a web process serves: its database, and the broker queue its jobs are published to."""
        return cls(
            JobFigureSource(engine),
            queue_probe(settings.broker_url, settings.queue),
            TrackingCollector(make_session_factory(engine)),
        )

    def render(self) -> bytes:
        """The text format, version 0.0.4."""
        return generate_latest(self.registry)
