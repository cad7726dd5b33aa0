"""Typed dependencies: what a route may ask for, made once in the lifespan and read from app state.

The getters are async although they only read app state: FastAPI runs a plain function in a worker thread, and
that hop costs more per request than everything they do."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from webapp.config import Settings
from webapp.http.auth import CurrentUser
from webapp.models import Job
from webapp.services.accounts import AccountError, AccountService
from webapp.services.comparison import ComparisonService
from webapp.services.csv_jobs import CsvJobService
from webapp.services.jobs import JobNotFound, JobService
from webapp.services.models import ModelRegistry
from webapp.services.stats import StatsService
from webapp.services.tracking.explanations import ExplanationService
from webapp.services.tracking.service import TrackingService


async def get_job_service(request: Request) -> JobService:
    return request.app.state.jobs


async def get_csv_jobs(request: Request) -> CsvJobService:
    return request.app.state.csv_jobs


async def get_models(request: Request) -> ModelRegistry:
    return request.app.state.models


JobsDep = Annotated[JobService, Depends(get_job_service)]


async def get_comparisons(request: Request) -> ComparisonService:
    return request.app.state.comparisons


ComparisonsDep = Annotated[ComparisonService, Depends(get_comparisons)]
ModelsDep = Annotated[ModelRegistry, Depends(get_models)]


async def get_app_settings(request: Request) -> Settings:
    return request.app.state.settings


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
CsvJobsDep = Annotated[CsvJobService, Depends(get_csv_jobs)]


async def get_accounts(request: Request) -> AccountService:
    return request.app.state.accounts


AccountsDep = Annotated[AccountService, Depends(get_accounts)]


async def get_stats(request: Request) -> StatsService:
    return request.app.state.stats


StatsDep = Annotated[StatsService, Depends(get_stats)]


async def get_tracking(request: Request) -> TrackingService:
    return request.app.state.tracking


TrackingDep = Annotated[TrackingService, Depends(get_tracking)]


async def get_explanations(request: Request) -> ExplanationService:
    return request.app.state.explanations


ExplanationsDep = Annotated[ExplanationService, Depends(get_explanations)]


def get_job_or_404(job_id: uuid.UUID, jobs: JobsDep, user: CurrentUser) -> Job:
    """The job, if it is the user's (an admin's: any job); another user's job is a 404 like a missing one."""
    try:
        return jobs.get(job_id, owner=user.owner_scope)
    except JobNotFound as exc:
        raise HTTPException(404, str(exc)) from exc


JobDep = Annotated[Job, Depends(get_job_or_404)]


def owner_filter(user: CurrentUser, accounts: AccountsDep, user_name: str | None) -> uuid.UUID | None:
    """Whose jobs a list shows: a member's own; for an admin every job, or one user's when `user_name` is given."""
    if not user.is_admin:
        return user.user_id
    if not user_name:
        return None
    try:
        return accounts.get_user(user_name).id
    except AccountError as exc:
        raise HTTPException(404, str(exc)) from exc
