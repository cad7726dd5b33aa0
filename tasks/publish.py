"""The real `enqueue`: publish each dispatch as a Celery task message."""

from __future__ import annotations

from collections.abc import Sequence

from celery import Celery

from webapp.services.dispatch import Dispatch, Enqueue

# A broker that is down must not hold a publish for long: one quick retry (a dropped connection), then the caller
# is told, and the job is left for the reconciler.
PUBLISH_RETRY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.5, "interval_max": 0.5}


def celery_enqueue(app: Celery) -> Enqueue:
    def enqueue(dispatches: Sequence[Dispatch]) -> None:
        with app.producer_or_acquire() as producer:  # one connection for the whole batch
            for dispatch in dispatches:
                app.send_task(
                    dispatch.task,
                    args=list(dispatch.targets),
                    task_id=dispatch.task_id,
                    countdown=dispatch.countdown or None,
                    producer=producer,
                    retry=True,
                    retry_policy=PUBLISH_RETRY,
                )

    return enqueue
