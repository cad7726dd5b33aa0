"""Liveness (the process serves requests) and readiness (it can do its work: database, schema, broker)."""

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from webapp.services.readiness import Readiness

router = APIRouter(tags=["health"])


def get_readiness(request: Request) -> Readiness:
    return request.app.state.readiness


@router.get("/healthz", name="healthz")
def healthz() -> dict[str, str]:
    """The process is up and serving."""
    return {"status": "ok"}


@router.get("/readyz", name="readyz", responses={503: {"description": "Not ready; the body says which check failed"}})
async def readyz(readiness: Annotated[Readiness, Depends(get_readiness)]) -> JSONResponse:
    """200 when the database answers at the code's schema revision and the broker is reachable; else 503."""
    report = await readiness.check()
    return JSONResponse(report.as_json(), status_code=200 if report.ready else 503)
