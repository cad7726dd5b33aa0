"""The scoring tasks: re-read the rows by id, predict through ml/, write the results back."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from billiard.einfo import ExceptionInfo
from celery import Task, current_app, shared_task
from celery.exceptions import TimeLimitExceeded

from ml.store import ModelFiles
from tasks.context import worker_context
from tasks.publish import celery_enqueue
from webapp.config import get_settings
from webapp.db import BACKGROUND_STATEMENT_TIMEOUT_SECONDS, make_engine, make_session_factory
from webapp.logs import job_context
from webapp.services.chunk_scoring import fail_chunk_over_time
from webapp.services.chunk_scoring import score_chunk as run_chunk_scoring
from webapp.services.dispatch import SCORE_CHUNK, SCORE_JOBS
from webapp.services.models import ModelRegistry
from webapp.services.scoring import ScoringContext, fail_over_time
from webapp.services.scoring import score_jobs as run_scoring
from webapp.services.webhooks import job_end_announcer


class TimeLimited(Task):
    """A scoring task whose hard time limit (the model ignored the soft one) fails its work at once, with that
    reason: Celery calls on_failure in the worker's main process after it killed the pool process."""

    def on_failure(self, exc: Exception, task_id: str, args: Any, kwargs: Any, einfo: ExceptionInfo) -> None:
        if not isinstance(exc, TimeLimitExceeded):
            return
        with _main_process_context() as ctx:
            if self.name == SCORE_CHUNK:
                fail_chunk_over_time(ctx, *args)
            else:
                fail_over_time(ctx, args, get_settings().task_time_limit)


class JobFailed(Exception):
    """Raised by a scoring task after it wrote its jobs' failures, so that the task ends in FAILURE for Flower and
    `celery events` (which see only task states; the job row is the truth apot reads). Nothing is retried: no
    task retries, and a late-acked message is acked whether its task succeeds or raises. Declared in the tasks'
    `throws`, so the worker logs it as an expected failure, without a traceback (the service logged the job's)."""


@contextmanager
def _main_process_context() -> Iterator[ScoringContext]:
    # Not worker_context(): the main process forks new pool processes, which must not inherit its connections.
    settings = get_settings()
    engine = make_engine(settings.database_url, statement_timeout=BACKGROUND_STATEMENT_TIMEOUT_SECONDS)
    sessions = make_session_factory(engine)
    try:
        enqueue = celery_enqueue(current_app)
        announcer = job_end_announcer(settings, enqueue)
        models = ModelRegistry(sessions, ModelFiles(settings.models_dir))  # not used: nothing is scored here
        yield ScoringContext(sessions, models, announcer, "main", settings.lease_seconds, enqueue)
    finally:
        engine.dispose()


@shared_task(name=SCORE_JOBS, bind=True, base=TimeLimited, throws=(JobFailed,))
def score_jobs(task: Task, *job_ids: str) -> None:
    """Score the small jobs that were submitted together; ids already claimed or ended are skipped. Fails (after
    the rows are written) if any job the message names failed, naming those: its other jobs succeeded."""
    # Every line logged while they are scored names the task and its job (or jobs, for a message of several).
    jobs = {"job_id": job_ids[0]} if len(job_ids) == 1 else {"job_ids": job_ids}
    with job_context(task_id=task.request.id, **jobs):
        failed = run_scoring(worker_context(), job_ids)
    if failed:
        ok = f"; the other {len(job_ids) - len(failed)} of its jobs did not fail" if len(job_ids) > len(failed) else ""
        raise JobFailed("; ".join(f"job {job_id} failed: {error}" for job_id, error in failed.items()) + ok)


@shared_task(name=SCORE_CHUNK, bind=True, base=TimeLimited, throws=(JobFailed,))
def score_chunk(task: Task, chunk_id: str) -> None:
    """Score one chunk of a CSV job; a message for a chunk already claimed or cancelled does nothing. Fails (after
    the job is marked failed) if this chunk failed its job."""
    with job_context(task_id=task.request.id, chunk_id=chunk_id):
        error = run_chunk_scoring(worker_context(), chunk_id)
    if error is not None:
        raise JobFailed(error)
