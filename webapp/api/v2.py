"""/v2: the Open Inference Protocol (KServe V2) over REST, so clients written for KServe, MLServer or Triton work.

Each inference request is a job like any other (kind `v2`): validated against the model's schema, stored, batched
with the jobs that arrive with it, scored by a worker, listed in the key's user's history; the route waits for its
end and answers in the protocol's shape. The protocol has its own OpenAPI document, so these routes are left out
of apot's.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse

from ml.store import ModelInfo, ModelNotFound
from ml.validation import InvalidInputs
from webapp.api.health import get_readiness
from webapp.api.synchronous import bad_values, score_now
from webapp.http.auth import CurrentUser, api_principal
from webapp.http.deps import JobsDep, ModelsDep
from webapp.http.ratelimit import limit_submissions
from webapp.models import JobKind
from webapp.services.open_inference import BadTensors, infer_response, model_metadata, parse_request
from webapp.services.readiness import Readiness

public = APIRouter(prefix="/v2", include_in_schema=False)
router = APIRouter(prefix="/v2", include_in_schema=False, dependencies=[Depends(api_principal)])


@public.get("", name="v2_server_metadata")
def server_metadata() -> dict[str, Any]:
    return {"name": "apot", "version": "0.1.0", "extensions": ["binary_tensor_data"]}


@public.get("/health/live", name="v2_live")
def live() -> dict[str, bool]:
    return {"live": True}


@public.get("/health/ready", name="v2_ready")
async def ready(readiness: Annotated[Readiness, Depends(get_readiness)]) -> JSONResponse:
    """The protocol's readiness: 200 when /readyz would be, else a 4xx as the protocol asks."""
    report = await readiness.check()
    return JSONResponse({"ready": report.ready}, status_code=200 if report.ready else 400)


def versioned_model(name: str, models: ModelsDep, version: str | None = None) -> ModelInfo:
    try:
        return models.get(name, version)
    except ModelNotFound as exc:
        raise HTTPException(404, str(exc)) from exc


ModelDep = Annotated[ModelInfo, Depends(versioned_model)]


@router.get("/models/{name}", name="v2_model_metadata")
@router.get("/models/{name}/versions/{version}", name="v2_model_version_metadata")
def metadata(info: ModelDep, models: ModelsDep) -> dict[str, Any]:
    """The model's inputs, one typed tensor per feature, and its outputs."""
    return model_metadata(info, [v.version for v in models.versions(info.name)])


@router.get("/models/{name}/ready", name="v2_model_ready")
@router.get("/models/{name}/versions/{version}/ready", name="v2_model_version_ready")
def model_ready(info: ModelDep) -> dict[str, Any]:
    return {"name": info.name, "ready": True}


@router.post("/models/{name}/infer", name="v2_infer", dependencies=[Depends(limit_submissions)])
@router.post(
    "/models/{name}/versions/{version}/infer", name="v2_version_infer", dependencies=[Depends(limit_submissions)]
)
async def infer(info: ModelDep, request: Request, jobs: JobsDep, user: CurrentUser) -> JSONResponse:
    """Score the request's rows as one job and answer with its output tensors once it has ended."""
    try:
        parsed = parse_request(await request.body(), request.headers.get("inference-header-content-length"), info)
    except BadTensors as exc:
        raise HTTPException(400, str(exc)) from exc
    except InvalidInputs as exc:
        raise bad_values(exc) from exc
    job, headers = await score_now(request, jobs, user, info, parsed.rows, JobKind.V2)
    assert job.result is not None
    return JSONResponse(infer_response(info, parsed.id, job.result, parsed.outputs), headers=headers)
