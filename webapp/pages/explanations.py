"""The "what moves this prediction" panel of a single-row job's page."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from webapp.http.deps import ExplanationsDep, JobDep
from webapp.http.templating import render
from webapp.services.tracking.explanations import NotExplainable

router = APIRouter()


@router.get("/jobs/{job_id}/explanation", name="explanation_panel")
async def explanation_panel(request: Request, job: JobDep, explanations: ExplanationsDep) -> Response:
    """The job's explanation, started the first time; polls itself while its explain job runs."""
    try:
        explanation = await run_in_threadpool(explanations.explain, job)
    except NotExplainable as exc:
        return render(request, "jobs/_explanation.html", {"job": job, "explanation": None, "refused": str(exc)})
    return render(request, "jobs/_explanation.html", {"job": job, "explanation": explanation, "refused": None})
