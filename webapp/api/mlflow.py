"""MLflow's scoring protocol: POST /invocations as `mlflow models serve` answers it, so scripts written for an MLflow
model server work against apot by changing the URL (and sending a key).

apot serves many models where MLflow's server serves one: `/models/{name}/invocations` names it, and `/invocations`
takes `?model=` or, when only one model is registered, that one. Each invocation is a job (kind `batch`) in the
key's user's history. MLflow documents this protocol itself, so these routes are left out of apot's OpenAPI.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from ml.store import ModelInfo, ModelNotFound
from webapp.api.synchronous import score_now
from webapp.http.auth import CurrentUser, api_principal
from webapp.http.deps import JobsDep, ModelsDep
from webapp.http.ratelimit import limit_submissions
from webapp.models import JobKind
from webapp.services.mlflow_scoring import BadPayload, UnsupportedContentType, parse_invocation, predictions

public = APIRouter(include_in_schema=False)
router = APIRouter(include_in_schema=False, dependencies=[Depends(api_principal), Depends(limit_submissions)])


@public.get("/ping", name="mlflow_ping")
def ping() -> PlainTextResponse:
    """MLflow's liveness probe."""
    return PlainTextResponse("\n")


def named_model(name: str, models: ModelsDep, version: str | None = None) -> ModelInfo:
    try:
        return models.get(name, version)
    except ModelNotFound as exc:
        raise HTTPException(404, str(exc)) from exc


def chosen_model(
    models: ModelsDep,
    model: Annotated[str | None, Query()] = None,
    version: Annotated[str | None, Query()] = None,
) -> ModelInfo:
    """`?model=`, or the only model registered: MLflow's clients call /invocations with no model name."""
    if model is not None:
        return named_model(model, models, version)
    registered = models.all_models()
    if len(registered) != 1:
        raise HTTPException(400, "apot serves several models: POST /models/{name}/invocations or ?model=NAME")
    return registered[0]


async def invoke(info: ModelInfo, request: Request, jobs: JobsDep, user: CurrentUser) -> JSONResponse:
    """Score the invocation's rows as one job and answer {"predictions": [...]} once it has ended."""
    try:
        rows = parse_invocation(await request.body(), request.headers.get("content-type", ""))
    except UnsupportedContentType as exc:
        raise HTTPException(415, str(exc)) from exc
    except BadPayload as exc:
        raise HTTPException(400, str(exc)) from exc
    job, headers = await score_now(request, jobs, user, info, rows, JobKind.BATCH)
    assert job.result is not None
    return JSONResponse(predictions(info.task, job.result), headers=headers)


@router.post("/invocations", name="mlflow_invocations")
async def invocations(
    info: Annotated[ModelInfo, Depends(chosen_model)], request: Request, jobs: JobsDep, user: CurrentUser
) -> JSONResponse:
    return await invoke(info, request, jobs, user)


@router.post("/models/{name}/invocations", name="mlflow_model_invocations")
async def model_invocations(
    info: Annotated[ModelInfo, Depends(named_model)], request: Request, jobs: JobsDep, user: CurrentUser
) -> JSONResponse:
    return await invoke(info, request, jobs, user)
