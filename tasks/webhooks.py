"""The webhook task: re-read the job by id and let the webhook service make its due delivery attempt."""

from __future__ import annotations

import uuid

from celery import shared_task

from tasks.context import webhook_context
from webapp.services.dispatch import DELIVER_WEBHOOK
from webapp.services.webhook_delivery import deliver_webhook as run_delivery


@shared_task(name=DELIVER_WEBHOOK)
def deliver_webhook(job_id: str) -> None:
    """POST an ended job to its callback_url; a message for a webhook that is not due does nothing."""
    run_delivery(webhook_context(), uuid.UUID(job_id))
