"""Feature summaries: counted by workers as they score, appended in the transaction that stores the results, and
read back per model version and day to compare with the version's reference."""

from __future__ import annotations

import time
from collections import defaultdict
from datetime import date
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session, sessionmaker

from ml.drift import FeatureDrift, Summary, compare, merge, summarise
from ml.store import ModelInfo
from webapp.db import transaction
from webapp.models import utcnow
from webapp.services.tracking.tables import FeatureSummary

if TYPE_CHECKING:  # workers pass the frames they scored; the web server starts without pandas
    import pandas as pd

# Workers append a summary per task; merging a day's every minute keeps reading it a handful of rows.
COMPACT_EVERY_SECONDS = 60.0
# Most rows merged in one transaction (one bound parameter each); a larger backlog takes a few runs.
MOST_MERGED = 10_000


class SummaryBatch:
    """What one task scored, counted per model version, to be written with its results (or not, when off)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._pending: list[dict[str, Any]] = []

    def observe(self, info: ModelInfo, frame: pd.DataFrame) -> None:
        """Count the rows of `frame`, typed as the model took them; only rows that were scored."""
        if not self.enabled or frame.empty or not info.reference.get("features"):
            return
        summary = summarise(info.reference, frame)
        self._pending.append(
            {
                "model_name": info.name,
                "model_version": info.version,
                "day": utcnow().date(),
                "rows": summary["rows"],
                "counts": summary,
            }
        )

    def write(self, session: Session) -> None:
        """Append the summaries, in the caller's transaction: counted once if and only if the results are kept."""
        if self._pending:
            session.execute(insert(FeatureSummary), self._pending)
            self._pending = []


def day_summary(sessions: sessionmaker[Session], name: str, version: str, day: date) -> Summary:
    """Everything a model version's workers counted on one day."""
    with sessions() as session:
        counts = session.scalars(
            select(FeatureSummary.counts).where(
                FeatureSummary.model_name == name, FeatureSummary.model_version == version, FeatureSummary.day == day
            )
        ).all()
    return merge(counts)


def drift_today(sessions: sessionmaker[Session], info: ModelInfo) -> list[FeatureDrift]:
    """Each feature of a model version today against its reference."""
    return compare(info.reference, day_summary(sessions, info.name, info.version, utcnow().date()))


def summaries_of_day(sessions: sessionmaker[Session], day: date) -> dict[tuple[str, str], Summary]:
    """Every model version's summary of one day, for /metrics."""
    with sessions() as session:
        rows = session.execute(
            select(FeatureSummary.model_name, FeatureSummary.model_version, FeatureSummary.counts).where(
                FeatureSummary.day == day
            )
        ).all()
    grouped: dict[tuple[str, str], list[Summary]] = defaultdict(list)
    for name, version, counts in rows:
        grouped[(name, version)].append(counts)
    return {key: merge(parts) for key, parts in grouped.items()}


def compact(sessions: sessionmaker[Session]) -> int:
    """Merge each model version's summaries of a day into one row, so reading a day stays one row whatever the
    traffic. The rows are read and merged outside any write transaction (on SQLite one would hold up every worker
    storing results meanwhile); the write then deletes exactly them and adds their sum, or, if another reconciler
    deleted some first, changes nothing and leaves them to it."""
    with sessions() as session:
        groups = session.execute(
            select(FeatureSummary.model_name, FeatureSummary.model_version, FeatureSummary.day)
            .group_by(FeatureSummary.model_name, FeatureSummary.model_version, FeatureSummary.day)
            .having(func.count() > 1)
        ).all()
    merged = 0
    for name, version, day in groups:
        with sessions() as session:
            rows = session.execute(
                select(FeatureSummary.id, FeatureSummary.counts)
                .where(
                    FeatureSummary.model_name == name,
                    FeatureSummary.model_version == version,
                    FeatureSummary.day == day,
                )
                .order_by(FeatureSummary.id)
                .limit(MOST_MERGED)
            ).all()
        ids, total = [row_id for row_id, _ in rows], merge(counts for _, counts in rows)
        try:
            with transaction(sessions) as session:
                taken = session.scalars(
                    delete(FeatureSummary).where(FeatureSummary.id.in_(ids)).returning(FeatureSummary.id)
                ).all()
                if len(taken) != len(ids):
                    raise _TakenMeanwhile
                session.add(
                    FeatureSummary(model_name=name, model_version=version, day=day, rows=total["rows"], counts=total)
                )
        except _TakenMeanwhile:
            continue
        merged += len(ids)
    return merged


class _TakenMeanwhile(Exception):
    """Another reconciler merged some of the rows first: this one's merge is rolled back."""


class Compactor:
    """Runs `compact` at most every COMPACT_EVERY_SECONDS, from the reconciler's loop."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions
        self._next_run = 0.0

    def compact_if_due(self) -> None:
        if time.monotonic() >= self._next_run:
            self._next_run = time.monotonic() + COMPACT_EVERY_SECONDS
            compact(self.sessions)
