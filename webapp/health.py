"""Liveness: answers as soon as the process serves requests."""

from fastapi import APIRouter

router = APIRouter(tags=["health"])


@router.get("/healthz", name="healthz")
def healthz() -> dict[str, str]:
    """The process is up and serving."""
    return {"status": "ok"}
