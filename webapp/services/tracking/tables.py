"""The tables of tracking: outcomes reported for predicted rows, and the feature counts drift is read from.

Kept beside the service that owns them; `webapp.models` holds the job tables, and migrations/env.py imports this
module too, so that Alembic sees every table.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Date, Float, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from webapp.models import Base, UTCDateTime, utcnow


class Outcome(Base):
    """The true label or value of one predicted row, reduced on arrival to what it says of the prediction
    (ml.scores.score_row): a version's figures are sums the database groups, not a re-read of results."""

    __tablename__ = "outcomes"

    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    row: Mapped[int] = mapped_column(primary_key=True)  # 0-based, in the job's input order
    model_name: Mapped[str] = mapped_column(String(64))
    model_version: Mapped[str] = mapped_column(String(64))
    day: Mapped[date] = mapped_column(Date)  # the UTC day the prediction was made
    actual: Mapped[Any] = mapped_column(JSON)
    label_true: Mapped[str | None] = mapped_column(String(255), default=None)
    label_predicted: Mapped[str | None] = mapped_column(String(255), default=None)
    loss: Mapped[float | None] = mapped_column(Float, default=None)  # classifiers: -log p(true class)
    error: Mapped[float | None] = mapped_column(Float, default=None)  # regressors: predicted - actual
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    __table_args__ = (Index(None, "model_name", "model_version", "day"),)


class FeatureSummary(Base):
    """Per-feature counts (ml.drift.summarise) of rows a model version scored on a day, never the rows: appended by
    workers with their results, merged per day by the reconciler (services/tracking/summaries.py)."""

    __tablename__ = "feature_summaries"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    model_name: Mapped[str] = mapped_column(String(64))
    model_version: Mapped[str] = mapped_column(String(64))
    day: Mapped[date] = mapped_column(Date)
    rows: Mapped[int]
    counts: Mapped[dict[str, Any]] = mapped_column(JSON)
    __table_args__ = (Index(None, "model_name", "model_version", "day"),)
