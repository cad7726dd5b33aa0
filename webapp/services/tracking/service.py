"""What pages, the API and /metrics ask of tracking, over one database."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy.orm import Session, sessionmaker

from ml.drift import FeatureDrift
from ml.store import ModelInfo
from webapp.models import Job
from webapp.services.tracking import figures, outcomes, summaries
from webapp.services.tracking.figures import VersionFigures
from webapp.services.tracking.outcomes import Reported

# Most outcomes one CSV request may carry; `apot outcomes` sends a longer file in parts of this many.
MAX_OUTCOME_ROWS = 10_000


class TrackingService:
    """Outcomes reported for jobs, the figures they give, and drift of the rows scored."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def record(self, job: Job, reported: Sequence[Reported]) -> int:
        """Outcomes of one job's rows (the caller has checked the job is theirs); all or none."""
        return outcomes.record(self.sessions, job, reported)

    def record_file(self, text: str, owner: uuid.UUID | None) -> int:
        """A CSV of job_id,row,outcome (or job_id,ID COLUMN,outcome), for jobs of `owner` (None: any job); all or
        none."""
        return outcomes.record_file(self.sessions, text, owner, max_rows=MAX_OUTCOME_ROWS)

    def figures(self, model: ModelInfo) -> list[VersionFigures]:
        """Each version's accuracy, log loss and F1, or MAE and RMSE, over the window and per day."""
        return figures.figures(self.sessions, model.name, model.task)

    def drift(self, model: ModelInfo) -> list[FeatureDrift]:
        """Each feature of this version today against its reference."""
        return summaries.drift_today(self.sessions, model)
