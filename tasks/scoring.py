"""The scoring tasks: re-read the rows by id, predict through ml/, write the results back."""

from __future__ import annotations

from celery import Task, shared_task

from tasks.context import worker_context
from webapp.logs import job_context
from webapp.services.chunk_scoring import score_chunk as run_chunk_scoring
from webapp.services.dispatch import SCORE_CHUNK, SCORE_JOBS
from webapp.services.scoring import score_jobs as run_scoring


@shared_task(name=SCORE_JOBS, bind=True)
def score_jobs(task: Task, *job_ids: str) -> None:
    """Score the small jobs that were submitted together; ids already claimed or ended are skipped."""
    # Every line logged while they are scored names the task and its job (or jobs, for a message of several).
    jobs = {"job_id": job_ids[0]} if len(job_ids) == 1 else {"job_ids": job_ids}
    with job_context(task_id=task.request.id, **jobs):
        run_scoring(worker_context(), job_ids)


@shared_task(name=SCORE_CHUNK, bind=True)
def score_chunk(task: Task, chunk_id: str) -> None:
    """Score one chunk of a CSV job; a message for a chunk already claimed or cancelled does nothing."""
    with job_context(task_id=task.request.id, chunk_id=chunk_id):
        run_chunk_scoring(worker_context(), chunk_id)
