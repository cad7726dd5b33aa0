"""Why a single-row job's prediction came out as it did: an `explain` job scores the row with each feature swept
over its range (one batched call on a worker), and its result is read back as one curve per feature.

The explain job is made once per job, the first time its explanation is asked for, and found again by an
idempotency key of its own: every later request reads the same result.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ml.explain import Curve, curves, grid, grid_rows, linear_contributions
from ml.schema import InputSchema
from ml.store import ModelNotFound
from webapp.models import Job, JobKind, JobStatus, utcnow
from webapp.services.jobs import JobService
from webapp.services.models import ModelRegistry


class NotExplainable(ValueError):
    """Only a single-row job that succeeded, with its inputs still kept, can be explained."""


@dataclass(frozen=True)
class Explanation:
    """An explain job and, once it has succeeded, what it found."""

    job: Job
    label: str | None = None  # a classifier's curves show the probability of this class
    curves: list[Curve] | None = None
    contributions: dict[str, Any] | None = None

    @property
    def ready(self) -> bool:
        return self.curves is not None


def explained(
    estimator: Any, schema: InputSchema, rows: Sequence[Mapping[str, Any]], predictions: list[dict[str, Any]]
) -> dict[str, Any]:
    """What an explain job stores (worker side): its predictions, and for a linear model the exact contributions
    of the row it explains (its first)."""
    result: dict[str, Any] = {"predictions": predictions}
    contributions = linear_contributions(estimator, schema, rows[0], predictions[0].get("label"))
    if contributions is not None:
        result["contributions"] = contributions
    return result


class ExplanationService:
    def __init__(self, jobs: JobService, models: ModelRegistry) -> None:
        self.jobs = jobs
        self.models = models

    def explain(self, job: Job) -> Explanation:
        """The job's explanation: started the first time it is asked for, read back afterwards."""
        if job.kind != JobKind.SINGLE or job.status != JobStatus.SUCCEEDED or job.pruned_at is not None:
            raise NotExplainable("only a single-row job that succeeded (and whose inputs are kept) can be explained")
        key = f"explain:{job.id}"
        found = self.jobs.find_by_key(key, job.owner_id) or self._start(job, key)
        if found.status != JobStatus.SUCCEEDED or not found.result:
            return Explanation(found)
        values = (found.upload or {})["grid"]
        label, lines = curves(job.inputs[0], values, found.result["predictions"])
        return Explanation(found, label, lines, found.result.get("contributions"))

    def _start(self, job: Job, key: str) -> Job:
        try:
            info = self.models.get(job.model_name, job.model_version)
        except ModelNotFound as exc:
            raise NotExplainable(f"{exc}: the model that made this prediction is gone") from exc
        if len(info.outputs) > 1:
            # A curve shows one output against each feature; which of several targets to draw is not asked yet.
            raise NotExplainable("a multi-output model's prediction cannot be explained yet: it has several targets")
        values = grid(info.schema, info.reference, job.inputs[0])
        rows = grid_rows(job.inputs[0], values)
        explain = Job(
            id=uuid.uuid4(),
            kind=JobKind.EXPLAIN,
            status=JobStatus.QUEUED,
            model_name=job.model_name,
            model_version=job.model_version,
            task_id="",
            inputs=rows,
            rows_total=len(rows),
            upload={"explains": str(job.id), "grid": values},
            idempotency_key=key,
            owner_id=job.owner_id,
            webhook_attempts=0,
            rows_done=0,
            rows_failed=0,
            attempts=0,
            created_at=utcnow(),
        )
        return self.jobs.create(explain)
