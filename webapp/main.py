"""Assembles the app: resources made in the lifespan, routers, static files."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from ml.store import ModelFiles
from tasks.app import create_celery
from tasks.publish import celery_enqueue
from webapp import api, pages
from webapp.api import health, mlflow, v2
from webapp.api.openapi import install_openapi, operation_id
from webapp.config import Settings, get_settings
from webapp.csvio import CsvLimits
from webapp.db import make_engine, make_session_factory
from webapp.http.errors import AnswerUnexpectedErrors, install_error_pages
from webapp.http.limits import BodySizeLimit, NulRefused
from webapp.http.ratelimit import SignInLimits, SubmissionLimits
from webapp.http.security import server_secret
from webapp.http.security_headers import SecurityHeaders
from webapp.http.templating import STATIC_DIR
from webapp.metrics import route as metrics_route
from webapp.metrics.exposition import MetricsService
from webapp.pages.docs import SWAGGER_UI_DIR
from webapp.services.accounts import AccountService
from webapp.services.comparison import ComparisonService
from webapp.services.csv_jobs import CsvJobService
from webapp.services.dispatch import Enqueue
from webapp.services.events import choose_wakeups
from webapp.services.intake import JobIntake
from webapp.services.jobs import SUBMIT_TIMEOUT_SECONDS, JobService
from webapp.services.models import REGISTRY_CACHE_SECONDS, ModelRegistry
from webapp.services.readiness import Readiness
from webapp.services.stats import STATS_CACHE_SECONDS, StatsService
from webapp.services.tracking.explanations import ExplanationService
from webapp.services.tracking.service import TrackingService
from webapp.services.webhooks import job_end_announcer

# Routes that take a file (CSV or model): their bodies stream, counted against APOT_MAX_UPLOAD_MB, not buffered.
UPLOAD_PATHS = ("/api/v1/jobs/csv", "/upload", "/upload-model")


def create_app(settings: Settings | None = None, enqueue: Enqueue | None = None) -> FastAPI:
    """The web app; tests pass their own settings and an `enqueue` that records instead of publishing."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.database_url)
        sessions = make_session_factory(engine)
        models = ModelRegistry(
            sessions,
            ModelFiles(settings.models_dir, cache_size=settings.model_cache_size),
            cache_seconds=REGISTRY_CACHE_SECONDS,
        )
        publish = enqueue or celery_enqueue(create_celery(settings, publisher=True))
        wakeups = choose_wakeups(settings.database_url, settings.broker_url, settings.queue)
        intake = JobIntake(
            sessions,
            publish,
            max_rows=settings.batch_max_rows,
            wait_seconds=settings.batch_wait_ms / 1000,
            on_stuck=_exit_for_a_restart,
        )
        announcer = job_end_announcer(settings, publish)
        app.state.settings = settings
        app.state.secret = server_secret(settings)
        app.state.models = models
        app.state.jobs = JobService(
            sessions,
            models,
            intake,
            publish,
            announcer,
            wakeups,
            max_rows=settings.max_json_rows,
            allow_private_callbacks=settings.webhook_allow_private,
        )
        csv_limits = CsvLimits(settings.max_csv_rows, settings.max_csv_columns, settings.max_csv_field_bytes)
        app.state.csv_jobs = CsvJobService(
            app.state.jobs,
            chunk_rows=settings.csv_chunk_rows,
            chunks_in_flight=settings.csv_chunks_in_flight,
            limits=csv_limits,
        )
        app.state.accounts = AccountService(sessions)
        app.state.submission_limits = SubmissionLimits(settings.rate_limit_per_user, settings.rate_limit_per_key)
        app.state.sign_in_limits = SignInLimits()
        app.state.comparisons = ComparisonService(app.state.jobs, app.state.csv_jobs)
        app.state.metrics = MetricsService.for_app(engine, settings)
        app.state.stats = StatsService(sessions, cache_seconds=STATS_CACHE_SECONDS)
        app.state.tracking = TrackingService(sessions)
        app.state.explanations = ExplanationService(app.state.jobs, models)
        app.state.readiness = Readiness(engine, settings.broker_url, intake_problem=intake.problem)
        intake.start()
        listener = asyncio.create_task(wakeups.listen(), name="apot-wakeups")
        try:
            yield
        finally:
            listener.cancel()
            await anyio.to_thread.run_sync(intake.stop, SUBMIT_TIMEOUT_SECONDS)
            engine.dispose()

    app = FastAPI(
        title="apot",
        summary="Submit and track scikit-learn predictions.",
        version="0.1.0",
        lifespan=lifespan,
        generate_unique_id_function=operation_id,
        # FastAPI's own pages load Swagger UI and ReDoc from a CDN with inline script, which the CSP refuses (and
        # many servers have no internet): pages/docs.py serves Swagger UI from our static files instead.
        docs_url=None,
        redoc_url=None,
    )
    app.add_middleware(
        BodySizeLimit,
        max_bytes=settings.max_body_bytes,
        max_upload_bytes=settings.max_upload_mb * 1024 * 1024,
        upload_paths=UPLOAD_PATHS,
    )
    app.add_middleware(NulRefused)
    app.add_middleware(AnswerUnexpectedErrors)
    app.add_middleware(SecurityHeaders)
    install_error_pages(app)
    install_openapi(app)
    app.include_router(api.router)
    app.include_router(v2.public)
    app.include_router(v2.router)
    app.include_router(mlflow.public)
    app.include_router(mlflow.router)
    app.include_router(pages.router)
    app.include_router(health.router)
    app.include_router(metrics_route.router)
    app.mount("/static/swagger-ui", StaticFiles(directory=SWAGGER_UI_DIR), name="swagger_ui")
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


def _exit_for_a_restart(_problem: str) -> None:
    """A stuck intake thread cannot be stopped from inside: shut the server down (as SIGTERM does) so that
    whatever runs it (`apot run`, systemd, the container runtime) starts a fresh one."""
    os.kill(os.getpid(), signal.SIGTERM)
