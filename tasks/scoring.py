"""The scoring task: re-read the job row, predict through ml/, write the result back."""

from __future__ import annotations

from celery import shared_task

from tasks.context import worker_context
from webapp.services.chunk_scoring import score_chunk as run_chunk_scoring
from webapp.services.dispatch import SCORE_CHUNK, SCORE_JOB
from webapp.services.scoring import score_job as run_scoring


@shared_task(name=SCORE_JOB)
def score_job(job_id: str) -> None:
    """Score one job; a message for a job already claimed or ended does nothing."""
    run_scoring(worker_context(), job_id)


@shared_task(name=SCORE_CHUNK)
def score_chunk(chunk_id: str) -> None:
    """Score one chunk of a CSV job; a message for a chunk already claimed or cancelled does nothing."""
    run_chunk_scoring(worker_context(), chunk_id)
