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
from webapp.http.auth import CurrentUser, api_principal
from webapp.http.deps import JobsDep, ModelsDep
from webapp.http.ratelimit import limit_submissions
from webapp.models import JobKind, JobStatus
from webapp.services.jobs import JobRequest, Unavailable
from webapp.services.open_inference import BadTensors, infer_response, model_metadata, parse_request
from webapp.services.readiness import Readiness

# How long an inference request waits for its job; past it the answer is 504, naming the job to read later.
INFER_WAIT_SECONDS = 60

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
    body = await request.body()
    try:
        parsed = parse_request(body, request.headers.get("inference-header-content-length"), info)
        job = await jobs.create_async(
            JobRequest(
                info.name,
                info.version,
                parsed.rows,
                owner_id=user.user_id,
                api_key_id=user.api_key_id,
                kind=JobKind.V2,
            ),
            wait=INFER_WAIT_SECONDS,
        )
    except BadTensors as exc:
        raise HTTPException(400, str(exc)) from exc
    except InvalidInputs as exc:
        errors = [{"loc": ["inputs", *e.loc], "msg": e.msg, "type": e.type} for e in exc.errors]
        raise HTTPException(400, errors) from exc
    except ModelNotFound as exc:
        raise HTTPException(404, str(exc)) from exc
    except Unavailable as exc:
        raise HTTPException(503, str(exc)) from exc
    location = {"Apot-Job": str(request.url_for("api_get_job", job_id=job.id))}  # the job in apot's API
    if job.status == JobStatus.SUCCEEDED and job.result is not None:
        answer = infer_response(info, parsed.id, job.result, parsed.outputs)
        return JSONResponse(answer, headers=location)
    if not JobStatus(job.status).ended:
        raise HTTPException(504, f"job {job.id} is still {job.status}; read it later at its Apot-Job URL", location)
    raise HTTPException(400, f"job {job.id} {job.status}: {job.error or 'no result'}", location)
