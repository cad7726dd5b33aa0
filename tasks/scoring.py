"""The scoring tasks: re-read the rows by id, predict through ml/, write the results back."""

from __future__ import annotations

from celery import shared_task

from tasks.context import worker_context
from webapp.services.chunk_scoring import score_chunk as run_chunk_scoring
from webapp.services.dispatch import SCORE_CHUNK, SCORE_JOBS
from webapp.services.scoring import score_jobs as run_scoring


@shared_task(name=SCORE_JOBS)
def score_jobs(*job_ids: str) -> None:
    """Score the small jobs that were submitted together; ids already claimed or ended are skipped."""
    run_scoring(worker_context(), job_ids)


@shared_task(name=SCORE_CHUNK)
def score_chunk(chunk_id: str) -> None:
    """Score one chunk of a CSV job; a message for a chunk already claimed or cancelled does nothing."""
    run_chunk_scoring(worker_context(), chunk_id)
