"""Worker side of small jobs: claim a message's jobs and those queued behind it, score each model's rows in one call,
record every outcome.

A message carries the jobs that arrived at the web together; its claim takes too the jobs of the same model versions
still waiting for their own messages. Scoring them together is the point: a `predict_proba` call costs about the
same for 1 row as for 100, so one call per model replaces one per job, and the batch grows with the backlog.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from itertools import groupby
from typing import Any

import numpy as np
import pandas as pd
from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session, sessionmaker

from ml.predict import PredictionShapeError, predict_frame
from ml.schema import as_sent, column_of, to_frame
from ml.store import ModelInfo, ModelIntegrityError, ModelLoadError, ModelNotFound
from ml.validation import row_warnings
from webapp.db import pinned_session, retried_transaction
from webapp.models import JobKind, JobStatus, jobs_table, utcnow
from webapp.services.claims import ClaimedJob, claim_jobs
from webapp.services.dispatch import Enqueue
from webapp.services.events import NO_ENDS, Announcer, JobEnd
from webapp.services.models import ModelRegistry
from webapp.services.tracking.explanations import explained
from webapp.services.tracking.summaries import SummaryBatch

log = logging.getLogger(__name__)
MAX_ERROR_LENGTH = 1000
OVER_TIME = "scoring took longer than the task time limit"


@dataclass(frozen=True)
class ScoringContext:
    """A worker process's database, model registry, wake-up channel, name, and how long its claims hold."""

    sessions: sessionmaker[Session]
    models: ModelRegistry
    announcer: Announcer
    worker: str
    lease_seconds: float
    enqueue: Enqueue  # a scored CSV chunk releases the next one of its job
    max_rows: int = 256  # most rows one claim takes, and so one model call (APOT_BATCH_MAX_ROWS)
    tracking: bool = True  # count the scored rows' features for drift (APOT_TRACKING)


@dataclass(frozen=True)
class Outcome:
    job_id: uuid.UUID
    status: JobStatus
    result: dict[str, Any] | None = None
    error: str | None = None
    rows_done: int = 0


def score_jobs(ctx: ScoringContext, job_ids: Sequence[str]) -> dict[str, str]:
    """Score the jobs of one message that are still queued; ids already claimed or ended are skipped. Returns those
    of its own jobs that failed (now or with an earlier message's claim) and why, for its task (tasks/scoring.py)."""
    with pinned_session(ctx.sessions) as session:
        jobs = retried_transaction(session, partial(_claim, session, ctx, [uuid.UUID(i) for i in job_ids]))
        skipped = set(job_ids) - {str(job.id) for job in jobs}
        failed = retried_transaction(session, lambda: _already_failed(session, skipped)) if skipped else {}
        if skipped:  # usually scored already, with the message of a job queued before them
            log.debug("%d of %d jobs were not queued any more; skipped", len(skipped), len(job_ids))
        if not jobs:
            return failed
        outcomes: list[Outcome] = []
        summaries = SummaryBatch(ctx.tracking)
        try:
            for (name, version), group in groupby(sorted(jobs, key=_model_of), key=_model_of):
                outcomes.extend(_score_group(ctx.models, name, version, list(group), summaries))
        except SoftTimeLimitExceeded:
            done = {outcome.job_id for outcome in outcomes}
            outcomes.extend(Outcome(job.id, JobStatus.FAILED, error=OVER_TIME) for job in jobs if job.id not in done)
        started = {job.id: job.started_at for job in jobs}
        retried_transaction(session, partial(_finish, session, ctx, outcomes, started, summaries))
    for outcome in outcomes:  # a line per job, scored alone or with others: a search for its id finds how it ended
        extra = {"job_id": str(outcome.job_id), "rows": outcome.rows_done, "error": outcome.error}
        log.info("job %s", outcome.status.value, extra=extra)
        if outcome.status == JobStatus.FAILED and str(outcome.job_id) in job_ids:
            failed[str(outcome.job_id)] = outcome.error or ""
    return failed


def _claim(session: Session, ctx: ScoringContext, job_ids: list[uuid.UUID]) -> list[ClaimedJob]:
    return claim_jobs(session, job_ids, worker=ctx.worker, lease_seconds=ctx.lease_seconds, max_rows=ctx.max_rows)


def _already_failed(session: Session, job_ids: set[str]) -> dict[str, str]:
    """Of jobs this message names but did not claim, those that have failed (one read, only when some were)."""
    table, ids = jobs_table, [uuid.UUID(i) for i in job_ids]
    query = select(table.c.id, table.c.error).where(table.c.id.in_(ids), table.c.status == JobStatus.FAILED)
    return {str(job_id): error or "" for job_id, error in session.execute(query)} if ids else {}


def fail_over_time(ctx: ScoringContext, job_ids: Sequence[str], limit_seconds: float) -> None:
    """The task scoring these jobs was killed at its hard time limit (the model ignored the soft one): fail those
    still running since before the limit, once, with the real reason, instead of leaving them to run out their
    lease and be tried again as if the worker had vanished."""
    table, now = jobs_table, utcnow()
    with pinned_session(ctx.sessions) as session, session.begin():
        failed = session.connection().execute(
            update(table)
            .where(
                table.c.id.in_([uuid.UUID(job_id) for job_id in job_ids]),
                table.c.status == JobStatus.RUNNING,
                table.c.started_at <= now - timedelta(seconds=limit_seconds),
            )
            .values(status=JobStatus.FAILED, error=OVER_TIME, finished_at=now, lease_until=None)
            .returning(table.c.id)
        )
        ended = [job_id for (job_id,) in failed]
        ctx.announcer.announce(session, ended)
    for job_id in ended:
        log.info("job failed", extra={"job_id": str(job_id), "error": OVER_TIME})


def _model_of(job: ClaimedJob) -> tuple[str, str]:
    return job.model_name, job.model_version


def _score_group(
    models: ModelRegistry, name: str, version: str, jobs: list[ClaimedJob], summaries: SummaryBatch
) -> list[Outcome]:
    """One call for all the jobs on one model version; if it fails, each job alone, so that one job's bad row
    fails that job and no other. An answer of the wrong shape fails the whole group: it is never split by position."""
    try:
        info = models.get(name, version)
        estimator = models.files.load(info)
    except (ModelNotFound, ModelIntegrityError, ModelLoadError) as exc:
        return [Outcome(job.id, JobStatus.FAILED, error=str(exc)) for job in jobs]
    rows = [row for job in jobs for row in job.inputs]
    try:
        frame = to_frame(rows, info.schema.features)
        predictions = _predict(estimator, info, rows, frame)
    except SoftTimeLimitExceeded:
        raise
    except PredictionShapeError as exc:
        log.error("model %s %s answered %d jobs with the wrong shape: %s", name, version, len(jobs), exc)
        error = f"prediction failed: {exc}; no result was kept"
        return [Outcome(job.id, JobStatus.FAILED, error=error) for job in jobs]
    except Exception:
        if len(jobs) > 1:
            log.warning("scoring %d jobs together failed; scoring them one by one", len(jobs), exc_info=True)
        return [_score_alone(estimator, info, job, summaries) for job in jobs]
    outcomes, start, tracked = [], 0, np.ones(len(frame), dtype=bool)
    for job in jobs:
        end = start + len(job.inputs)
        tracked[start:end] = job.kind != JobKind.EXPLAIN
        outcomes.append(_ended(estimator, info, job, predictions[start:end]))
        start = end
    counted = as_sent(frame, info.schema.features, partial(column_of, rows))
    summaries.observe(info, counted if tracked.all() else counted[tracked])
    return outcomes


def _score_alone(estimator: Any, info: ModelInfo, job: ClaimedJob, summaries: SummaryBatch) -> Outcome:
    """One job whose group failed together: its rows are counted for drift if they are scored."""
    try:
        frame = to_frame(job.inputs, info.schema.features)
        outcome = _ended(estimator, info, job, _predict(estimator, info, job.inputs, frame))
    except SoftTimeLimitExceeded:
        raise
    except Exception as exc:
        # The message is for the user; the traceback stays in the worker's log.
        log.exception("job failed while scoring", extra={"job_id": str(job.id)})
        return Outcome(job.id, JobStatus.FAILED, error=f"prediction failed: {type(exc).__name__}: {exc}")
    if job.kind != JobKind.EXPLAIN:
        summaries.observe(info, as_sent(frame, info.schema.features, partial(column_of, job.inputs)))
    return outcome


def _ended(estimator: Any, info: ModelInfo, job: ClaimedJob, predictions: list[dict[str, Any]]) -> Outcome:
    """A job's outcome from its rows' predictions; an explain job's made-up rows are turned into its explanation."""
    if job.kind == JobKind.EXPLAIN:
        result = explained(estimator, info.schema, job.inputs, predictions)
        return Outcome(job.id, JobStatus.SUCCEEDED, result=result, rows_done=len(predictions))
    return _succeeded(job, predictions)


def _predict(estimator: Any, info: ModelInfo, rows: list[dict[str, Any]], frame: pd.DataFrame) -> list[dict[str, Any]]:
    """A prediction per row of `frame` (`rows` typed), in row order, checked to be one per row sent (predict_frame
    checks the arrays); a row with values never seen in training carries their `warnings`."""
    predictions = predict_frame(estimator, frame, info.outputs)
    if len(predictions) != len(rows):
        raise PredictionShapeError(f"the model answered {len(predictions)} predictions for {len(rows)} rows")
    for prediction, warnings in zip(predictions, row_warnings(info.schema, rows), strict=True):
        if warnings:
            prediction["warnings"] = warnings
    return predictions


def _succeeded(job: ClaimedJob, predictions: list[dict[str, Any]]) -> Outcome:
    return Outcome(job.id, JobStatus.SUCCEEDED, result={"predictions": predictions}, rows_done=len(predictions))


def _finish(
    session: Session,
    ctx: ScoringContext,
    outcomes: list[Outcome],
    started: dict[uuid.UUID, datetime],
    counts: SummaryBatch,
) -> None:
    """Write every outcome in one statement, announced with what was written, and the rows' drift counts."""
    table, now = jobs_table, utcnow()
    statement = (
        update(table)
        .where(table.c.id == bindparam("job_id"), table.c.status == JobStatus.RUNNING, table.c.worker == ctx.worker)
        .values(
            status=bindparam("new_status"),
            result=bindparam("new_result"),
            error=bindparam("new_error"),
            rows_done=bindparam("new_rows_done"),
            finished_at=now,
            lease_until=None,
        )
    )
    ends = {
        o.job_id: JobEnd(
            o.status.value, started[o.job_id], now, o.rows_done, o.error and o.error[:MAX_ERROR_LENGTH], o.result
        )
        for o in outcomes
    }
    # In id order, the order claims lock rows in too: two finishes, or a finish and a claim, never wait on each other
    # in a cycle.
    parameters = [
        dict(job_id=job_id, new_status=e.status, new_result=e.result, new_error=e.error, new_rows_done=e.rows_done)
        for job_id, e in sorted(ends.items())
    ]
    written = session.connection().execute(statement, parameters).rowcount
    # A job cancelled or taken back meanwhile was not written: then the waiters read every row, as the
    # announcement would otherwise say that job was scored.
    ctx.announcer.announce(session, list(ends), ends if written == len(ends) else NO_ENDS)
    counts.write(session)
