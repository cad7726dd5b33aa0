"""The real `enqueue`: publish one scoring task per committed job."""

from __future__ import annotations

from collections.abc import Sequence

from celery import Celery

from tasks.app import SCORE_JOB
from webapp.models import Job
from webapp.services.jobs import Enqueue

# A broker that is down must not hold a request for long: two quick retries, then the caller is told.
PUBLISH_RETRY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.5, "interval_max": 1}


def celery_enqueue(app: Celery) -> Enqueue:
    def enqueue(jobs: Sequence[Job]) -> None:
        for job in jobs:
            app.send_task(SCORE_JOB, args=[str(job.id)], task_id=job.task_id, retry=True, retry_policy=PUBLISH_RETRY)

    return enqueue
