"""The Celery app, configured from settings; the web side uses it only to publish."""

from __future__ import annotations

from celery import Celery, signals
from kombu import Exchange, Queue

from webapp.config import HARD_LIMIT_MARGIN_SECONDS, Settings, get_settings
from webapp.logs import setup_logging
from webapp.services.dispatch import DELIVER_WEBHOOK, SCORE_CHUNK

# How long one attempt to hand a message to the broker may take before it counts as failed.
PUBLISH_TIMEOUT_SECONDS = 2.0


def create_celery(settings: Settings, *, publisher: bool = False) -> Celery:
    """The app a worker runs, or with `publisher` the one the web and the reconciler send tasks with: a broker
    that hangs (paused, or a network that drops packets) then costs a publish seconds, not forever."""
    if not settings.broker_url:
        raise RuntimeError("APOT_BROKER_URL is empty: run `apot run` (embedded broker) or point it at Redis/RabbitMQ")
    app = Celery("apot", broker=settings.broker_url, include=["tasks.scoring", "tasks.webhooks"])
    app.conf.update(
        # Three queues, so that one user's work never waits behind another's kind of work: a worker's processes
        # take interactive jobs before CSV chunks, and webhooks have threads of their own (see `apot worker`).
        # Each queue on an exchange of its own name and its own routing key: a queue given only a name is bound to
        # the default exchange with the default queue's key, and would get a copy of every interactive message.
        task_queues=[
            Queue(q, Exchange(q), routing_key=q) for q in (settings.queue, settings.bulk_queue, settings.webhook_queue)
        ],
        task_default_queue=settings.queue,
        task_routes={SCORE_CHUNK: {"queue": settings.bulk_queue}, DELIVER_WEBHOOK: {"queue": settings.webhook_queue}},
        task_serializer="json",
        accept_content=["json"],
        # The job row is the result: nothing reads a Celery result backend, so none is configured.
        task_ignore_result=True,
        # Ack after the task ran, so a worker that dies mid-task leaves its message to be delivered again;
        # claims on the job row make that second delivery harmless.
        task_acks_late=True,
        # ...and a child killed by the OS (OOM, SIGKILL) counts as lost, not done.
        task_reject_on_worker_lost=True,
        # One message in hand per process (with late acks, the one it runs): a process that took several would
        # make an interactive job that arrives next wait behind the CSV chunks it holds.
        worker_prefetch_multiplier=1,
        # A stuck prediction must not hold a process forever; the soft limit lets the task fail the job itself.
        task_soft_time_limit=settings.task_time_limit,
        task_time_limit=settings.task_time_limit + HARD_LIMIT_MARGIN_SECONDS,
        # Redis redelivers unacked messages after this; longer than any task may run, so no task runs twice
        # merely for being slow.
        broker_transport_options={
            "visibility_timeout": max(3600, settings.task_time_limit * 4),
            # Redis: a worker asks for its queues in the order given (interactive first), not in turn.
            "queue_order_strategy": "priority",
            **(
                {"socket_timeout": PUBLISH_TIMEOUT_SECONDS, "socket_connect_timeout": PUBLISH_TIMEOUT_SECONDS}
                if publisher
                else {}
            ),
        },
        broker_connection_timeout=PUBLISH_TIMEOUT_SECONDS if publisher else 4,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        # Task events (sent, received, started, succeeded...) for `celery flower` or `celery events` on the same
        # broker: four messages per task whether anyone listens or not, which make bench shows (APOT_TASK_EVENTS).
        worker_send_task_events=settings.task_events,
        task_send_sent_event=settings.task_events,
    )
    return app


@signals.setup_logging.connect
def _log_as_apot(**_options: object) -> None:
    """A worker's logging is apot's (the format APOT_LOG_FORMAT chooses): Celery configures none of its own."""
    setup_logging(get_settings())
