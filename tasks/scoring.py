"""The scoring task: re-read the job row, predict through ml/, write the result back."""

from __future__ import annotations

from celery import shared_task

from tasks.context import worker_context
from webapp.services.scoring import score_job as run_scoring


@shared_task(name="apot.score_job")
def score_job(job_id: str) -> None:
    """Score one job; a message for a job already claimed or ended does nothing."""
    run_scoring(worker_context(), job_id)
