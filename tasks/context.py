"""What a worker process needs to score jobs, made once per process after the fork."""

from __future__ import annotations

import os
import socket
from functools import lru_cache

from ml.store import ModelFiles
from webapp.config import get_settings
from webapp.db import make_engine, make_session_factory
from webapp.metrics.worker import observe_model_load
from webapp.services.events import choose_announcer
from webapp.services.models import REGISTRY_CACHE_SECONDS, ModelRegistry
from webapp.services.scoring import ScoringContext


@lru_cache
def worker_context() -> ScoringContext:
    # Built lazily in the child process: an engine made before the fork would share sockets between processes.
    settings = get_settings()
    sessions = make_session_factory(make_engine(settings.database_url))
    return ScoringContext(
        sessions=sessions,
        models=ModelRegistry(
            sessions,
            ModelFiles(settings.models_dir, cache_size=settings.model_cache_size, on_load=observe_model_load),
            cache_seconds=REGISTRY_CACHE_SECONDS,
        ),
        announcer=choose_announcer(settings.database_url, settings.broker_url, settings.queue),
        worker=f"{socket.gethostname()}:{os.getpid()}",
        lease_seconds=settings.lease_seconds,
    )
