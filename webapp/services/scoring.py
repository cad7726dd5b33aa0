"""Worker side of a job: claim the row, score its rows in one call, record the outcome."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from ml.predict import predict_frame
from ml.schema import to_frame
from ml.store import ModelIntegrityError, ModelNotFound
from webapp.db import transaction
from webapp.models import Job, JobStatus, utcnow
from webapp.services.models import ModelRegistry

log = logging.getLogger(__name__)
MAX_ERROR_LENGTH = 1000


@dataclass(frozen=True)
class ScoringContext:
    """A worker process's database, model registry and name."""

    sessions: sessionmaker[Session]
    models: ModelRegistry
    worker: str


def score_job(ctx: ScoringContext, job_id: str) -> None:
    """Score a queued job and record its result or a readable error; do nothing for any other state."""
    job = claim_job(ctx, uuid.UUID(job_id))
    if job is None:
        log.info("job %s is not queued any more; message ignored", job_id)
        return
    try:
        predictions = _predict(ctx.models, job)
    except SoftTimeLimitExceeded:
        _finish(ctx, job.id, JobStatus.FAILED, error="scoring took longer than the task time limit")
    except (ModelNotFound, ModelIntegrityError) as exc:
        _finish(ctx, job.id, JobStatus.FAILED, error=str(exc))
    except Exception as exc:
        # The message is for the user; the traceback stays in the worker's log.
        log.exception("job %s failed while scoring", job.id)
        _finish(ctx, job.id, JobStatus.FAILED, error=f"prediction failed: {type(exc).__name__}: {exc}")
    else:
        _finish(ctx, job.id, JobStatus.SUCCEEDED, result={"predictions": predictions}, rows_done=job.rows_total)


def claim_job(ctx: ScoringContext, job_id: uuid.UUID) -> Job | None:
    """Move the job from queued to running for this worker; None when another delivery got there first."""
    with transaction(ctx.sessions) as session:
        claimed = session.execute(
            update(Job)
            .where(Job.id == job_id, Job.status == JobStatus.QUEUED)
            .values(
                status=JobStatus.RUNNING,
                started_at=utcnow(),
                attempts=Job.attempts + 1,
                worker=ctx.worker,
            )
            .returning(Job)
        ).scalar_one_or_none()
        return claimed


def _predict(models: ModelRegistry, job: Job) -> list[dict[str, Any]]:
    info = models.get(job.model_name, job.model_version)
    return predict_frame(models.files.load(info), to_frame(job.inputs, info.schema.features))


def _finish(ctx: ScoringContext, job_id: uuid.UUID, status: JobStatus, **values: Any) -> None:
    if "error" in values:
        values["error"] = values["error"][:MAX_ERROR_LENGTH]
    with transaction(ctx.sessions) as session:
        # Only a job this worker still runs: a cancelled job stays cancelled.
        session.execute(
            update(Job)
            .where(Job.id == job_id, Job.status == JobStatus.RUNNING, Job.worker == ctx.worker)
            .values(status=status, finished_at=utcnow(), **values)
        )
    log.info("job %s %s", job_id, status.value)
