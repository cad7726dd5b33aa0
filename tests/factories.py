"""Small factories for rows a test needs to exist."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from webapp.models import Job, utcnow


def add_job(engine: Engine, *, took: timedelta | None = None, **values: Any) -> Job:
    """A job of "sizes" 1, succeeded after `took` unless told otherwise."""
    now = utcnow()
    fields: dict[str, Any] = {
        "kind": "single",
        "status": "succeeded",
        "model_name": "sizes",
        "model_version": "1",
        "task_id": "t",
        "inputs": [],
        "rows_total": 1,
    }
    if took is not None:
        fields.update(created_at=now - took, finished_at=now)
    job = Job(**{**fields, **values})
    with Session(engine) as session, session.begin():
        session.add(job)
    return job
