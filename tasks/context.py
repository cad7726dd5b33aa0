"""What a worker process needs to score jobs and deliver webhooks, made once per process after the fork."""

from __future__ import annotations

import os
import socket
from functools import lru_cache

from celery import current_app

from ml.store import ModelFiles
from tasks.publish import celery_enqueue
from webapp.config import get_settings
from webapp.db import BACKGROUND_STATEMENT_TIMEOUT_SECONDS, make_engine, make_session_factory
from webapp.metrics.worker import observe_model_load
from webapp.services.models import REGISTRY_CACHE_SECONDS, ModelRegistry
from webapp.services.scoring import ScoringContext
from webapp.services.webhook_delivery import WebhookContext
from webapp.services.webhooks import WebhookSettings, job_end_announcer


@lru_cache
def worker_context() -> ScoringContext:
    # Built lazily in the child process: an engine made before the fork would share sockets between processes.
    settings = get_settings()
    engine = make_engine(settings.database_url, statement_timeout=BACKGROUND_STATEMENT_TIMEOUT_SECONDS)
    sessions = make_session_factory(engine)
    return ScoringContext(
        sessions=sessions,
        models=ModelRegistry(
            sessions,
            ModelFiles(settings.models_dir, cache_size=settings.model_cache_size, on_load=observe_model_load),
            cache_seconds=REGISTRY_CACHE_SECONDS,
        ),
        # Ending a job may publish its webhook, and a scored chunk its job's next: through the app this worker runs.
        announcer=job_end_announcer(settings, celery_enqueue(current_app)),
        worker=f"{socket.gethostname()}:{os.getpid()}",
        lease_seconds=settings.lease_seconds,
        enqueue=celery_enqueue(current_app),
        max_rows=settings.batch_max_rows,
        tracking=settings.tracking,
    )


@lru_cache
def webhook_context() -> WebhookContext:
    from webapp.api import api_links  # the API's routes (FastAPI): imported by the webhook threads only

    settings = get_settings()
    return WebhookContext(
        sessions=worker_context().sessions,
        enqueue=celery_enqueue(current_app),
        settings=WebhookSettings.from_settings(settings),
        # The payload links to the job as GET /api/v1/jobs/{id} would: the API's own routes, at the public URL.
        links=api_links(settings.base_url),
    )
