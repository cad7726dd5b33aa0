"""What job figures add up to: counts, rows and latency histograms per (model, kind, status), merged by addition."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from webapp.models import JobStatus

# Upper bounds of the latency histograms, in seconds: from a single row scored in a batch to a big CSV file.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)
# Jobs that ran to a result; a cancelled job's times say when someone gave up, not how apot performs.
TIMED = (JobStatus.SUCCEEDED, JobStatus.FAILED)
# The three latencies, as (later, earlier) columns: queued→started, started→finished, end to end.
SPANS = {
    "wait": ("started_at", "created_at"),
    "run": ("finished_at", "started_at"),
    "end_to_end": ("finished_at", "created_at"),
}

Key = tuple[str, str, str]  # model, kind, status


@dataclass
class Histogram:
    """Cumulative counts: `at_or_below[i]` jobs took at most BUCKETS[i] seconds, of `count` in all; and their sum.

    Cumulative counts add up bucket by bucket, so histograms of several groups of jobs merge by addition."""

    at_or_below: list[int] = field(default_factory=lambda: [0] * len(BUCKETS))
    count: int = 0
    total: float = 0.0

    def observe(self, bucket: int, jobs: int, total: float) -> None:
        """`jobs` more, in bucket number `bucket` (len(BUCKETS): past every bound), taking `total` seconds."""
        for i in range(bucket, len(BUCKETS)):
            self.at_or_below[i] += jobs
        self.count += jobs
        self.total += total

    def add(self, other: Histogram) -> None:
        self.at_or_below = [a + b for a, b in zip(self.at_or_below, other.at_or_below, strict=True)]
        self.count += other.count
        self.total += other.total

    def buckets(self) -> list[tuple[str, float]]:
        """(le, count) pairs in Prometheus' order, ending with +Inf."""
        pairs = [(str(bound), float(n)) for bound, n in zip(BUCKETS, self.at_or_below, strict=True)]
        return [*pairs, ("+Inf", float(self.count))]


@dataclass
class Tally:
    """What the jobs of one (model, kind, status) add up to."""

    jobs: int = 0
    rows_done: int = 0
    rows_failed: int = 0
    spans: dict[str, Histogram] = field(default_factory=lambda: {name: Histogram() for name in SPANS})

    def add(self, other: Tally) -> None:
        self.jobs += other.jobs
        self.rows_done += other.rows_done
        self.rows_failed += other.rows_failed
        for name, histogram in other.spans.items():
            self.spans[name].add(histogram)


def merge(target: dict[Key, Tally], more: Iterable[tuple[Key, Tally]]) -> None:
    for key, tally in more:
        target.setdefault(key, Tally()).add(tally)


@dataclass(frozen=True)
class JobFigures:
    """One scrape's view: ended jobs (settled and recent together) and jobs still open, by (model, kind, status)."""

    ended: dict[Key, Tally]
    open: dict[Key, Tally]


def copy_of(tally: Tally) -> Tally:
    copy = Tally()
    copy.add(tally)
    return copy


def by_label(figures: dict[Key, Tally], labels: Sequence[int]) -> dict[tuple[str, ...], Tally]:
    """Tallies summed over the parts of the key not named by `labels` (0 model, 1 kind, 2 status)."""
    summed: dict[tuple[str, ...], Tally] = {}
    for key, tally in figures.items():
        summed.setdefault(tuple(key[i] for i in labels), Tally()).add(tally)
    return summed
