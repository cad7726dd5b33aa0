"""The baseline's web app: each POST sends one Celery task; the client polls GET /result/{task_id} until done.

Sync routes, as in the typical blog post: FastAPI runs them in its thread pool.
"""

from __future__ import annotations

from typing import Any

from celery.result import AsyncResult
from fastapi import FastAPI

from bench.baseline.worker import app as celery_app
from bench.baseline.worker import predict as predict_task

app = FastAPI(title="baseline")


@app.post("/predict", status_code=202)
def predict(row: dict[str, Any]) -> dict[str, str]:
    return {"task_id": predict_task.delay(row).id}


@app.get("/result/{task_id}")
def result(task_id: str) -> dict[str, Any]:
    outcome = AsyncResult(task_id, app=celery_app)
    status = outcome.status
    if status == "SUCCESS":
        return {"status": status, "result": outcome.result}
    # A failed task's result is the exception, which JSON cannot carry; its text can.
    return {"status": status, "result": repr(outcome.result) if status == "FAILURE" else None}
