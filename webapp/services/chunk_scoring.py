"""CSV jobs, worker side: claim one chunk, score its rows in one call, store the result, finish the job last."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta

from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy import exists, select, update
from sqlalchemy.orm import Session

from ml.store import ModelInfo, ModelIntegrityError, ModelLoadError, ModelNotFound
from ml.table import ScoredTable, score_table
from webapp.csvio import unpack_frame
from webapp.db import transaction
from webapp.logs import job_context
from webapp.models import ChunkStatus, Job, JobChunk, JobStatus, utcnow
from webapp.services.chunk_release import release_next
from webapp.services.csv_jobs import job_outputs
from webapp.services.csv_results import merged, tally
from webapp.services.scoring import MAX_ERROR_LENGTH, ScoringContext
from webapp.services.tracking.summaries import SummaryBatch

log = logging.getLogger(__name__)
ERRORS_IN_SUMMARY = 3
CHUNK_OVER_TIME = "scoring a chunk took longer than the task time limit"


@dataclass(frozen=True)
class ClaimedChunk:
    id: uuid.UUID
    job: Job
    first_row: int
    packed: bytes
    problems: dict[str, str]


def score_chunk(ctx: ScoringContext, chunk_id: str) -> str | None:
    """Score one queued chunk of a running job; a chunk already claimed, or of an ended job, is left alone. Returns
    why the job failed if this chunk failed it (what its task reports), else None."""
    claimed = _claim(ctx, uuid.UUID(chunk_id))
    if claimed is None:
        log.info("chunk %s is not waiting any more; message ignored", chunk_id)
        return None
    with job_context(job_id=claimed.job.id):
        return _score_claimed(ctx, claimed)


def _score_claimed(ctx: ScoringContext, claimed: ClaimedChunk) -> str | None:
    chunk_id, job, upload = claimed.id, claimed.job, claimed.job.upload or {}
    try:
        info = ctx.models.get(job.model_name, job.model_version)
        cells = unpack_frame(claimed.packed, upload["columns"], upload["delimiter"])
        known = [claimed.problems.get(str(row), "") for row in range(len(cells))]
        scored = score_table(ctx.models.files.load(info), info.schema, cells, known, info.outputs)
    except SoftTimeLimitExceeded:
        return _fail_job(ctx, job.id, CHUNK_OVER_TIME)
    except (ModelNotFound, ModelIntegrityError, ModelLoadError) as exc:
        return _fail_job(ctx, job.id, str(exc))
    except Exception as exc:
        log.exception("chunk %s of job %s failed while scoring", chunk_id, job.id)
        return _fail_job(ctx, job.id, f"prediction failed: {type(exc).__name__}: {exc}")
    bad_rows = [(claimed.first_row + i, e) for i, e in enumerate(scored.errors) if e is not None]
    if bad_rows and upload.get("on_error") == "fail":
        # Stored with the failure in one transaction, so the job's (partial) results list every bad row with its
        # reason and rows_failed counts them, and no other chunk's end can make the job succeed meanwhile.
        listed = "; ".join(f"row {row}: {error}" for row, error in bad_rows[:ERRORS_IN_SUMMARY])
        more = len(bad_rows) - ERRORS_IN_SUMMARY
        also = f" (and {more} more: the results' error column lists every one)" if more > 0 else ""
        error = f"Bad rows, and the job was set to fail on them: {listed}{also}"
        if not _store(ctx, claimed, scored, len(bad_rows), info, failure=error):
            return None
        log.info("job failed", extra={"job_id": str(job.id), "error": error})
        return f"job {job.id} failed: {error}"
    if _store(ctx, claimed, scored, len(bad_rows), info):
        _finish_if_done(ctx, claimed)
    return None


def _claim(ctx: ScoringContext, chunk_id: uuid.UUID) -> ClaimedChunk | None:
    with transaction(ctx.sessions) as session:
        row = session.execute(
            update(JobChunk)
            .where(JobChunk.id == chunk_id, JobChunk.status == ChunkStatus.QUEUED)
            .values(
                status=ChunkStatus.RUNNING,
                started_at=utcnow(),
                worker=ctx.worker,
                attempts=JobChunk.attempts + 1,
                lease_until=utcnow() + timedelta(seconds=ctx.lease_seconds),
            )
            .returning(JobChunk.job_id, JobChunk.first_row, JobChunk.input, JobChunk.problems, JobChunk.attempts)
        ).one_or_none()
        if row is None:
            return None
        job_id, first_row, packed, problems, attempts = row
        session.execute(
            update(Job)
            .where(Job.id == job_id, Job.status == JobStatus.QUEUED)
            .values(status=JobStatus.RUNNING, started_at=utcnow())
        )
        # A CSV job has been tried as often as its most tried chunk.
        session.execute(update(Job).where(Job.id == job_id, Job.attempts < attempts).values(attempts=attempts))
        job = session.scalars(select(Job).where(Job.id == job_id)).one()
        if job.status != JobStatus.RUNNING:  # cancelled or failed meanwhile: this chunk will not be scored
            session.execute(update(JobChunk).where(JobChunk.id == chunk_id).values(status=ChunkStatus.CANCELLED))
            return None
        return ClaimedChunk(chunk_id, job, first_row, packed, problems or {})


def _store(
    ctx: ScoringContext,
    claimed: ClaimedChunk,
    scored: ScoredTable,
    failed: int,
    info: ModelInfo,
    failure: str | None = None,
) -> bool:
    """Save the chunk's results and count its rows in the job's (and fail the job with `failure`: then its rows are
    not summarised for tracking, as a failed job's are not); False if the chunk was no longer this worker's."""
    rows = len(scored.errors)
    summaries = SummaryBatch(ctx.tracking)
    if scored.scored_rows is not None:
        summaries.observe(info, scored.scored_rows)
    with transaction(ctx.sessions) as session:
        stored = session.execute(
            update(JobChunk)
            .where(JobChunk.id == claimed.id, JobChunk.status == ChunkStatus.RUNNING, JobChunk.worker == ctx.worker)
            .values(
                status=ChunkStatus.DONE,
                result=scored.to_bytes(),
                rows_failed=failed,
                finished_at=utcnow(),
                lease_until=None,
            )
            .returning(JobChunk.id)
        ).first()
        if stored:
            session.execute(
                update(Job)
                .where(Job.id == claimed.job.id)
                .values(rows_done=Job.rows_done + rows, rows_failed=Job.rows_failed + failed)
            )
            # The predictions' spread, for the job page: read again under the row lock the update took (no other
            # chunk's count can land in between), added to and written back.
            upload = session.scalar(select(Job.upload).where(Job.id == claimed.job.id)) or {}
            outputs = job_outputs(upload)
            counts = merged(upload.get("tally"), tally(scored, outputs), outputs)
            session.execute(update(Job).where(Job.id == claimed.job.id).values(upload={**upload, "tally": counts}))
            if failure is None:
                summaries.write(session)
            else:
                _mark_failed(ctx, session, claimed.job.id, failure)
    if stored and failure is None:
        release_next(ctx.sessions, ctx.enqueue, claimed.job.id)
    return stored is not None


def _finish_if_done(ctx: ScoringContext, claimed: ClaimedChunk) -> None:
    """The job succeeds when its last chunk is stored."""
    # In its own statement, after the commit: of two workers finishing the last two chunks at once, the
    # later one sees both done.
    unfinished = exists().where(JobChunk.job_id == claimed.job.id, JobChunk.status != ChunkStatus.DONE)
    with transaction(ctx.sessions) as session:
        ended = session.scalars(
            update(Job)
            .where(Job.id == claimed.job.id, Job.status == JobStatus.RUNNING, ~unfinished)
            .values(status=JobStatus.SUCCEEDED, finished_at=utcnow())
            .returning(Job.id)
        ).all()
        ctx.announcer.announce(session, ended)
    if ended:
        log.info("job succeeded", extra={"rows": claimed.job.rows_total})


def fail_chunk_over_time(ctx: ScoringContext, chunk_id: str) -> None:
    """The task scoring this chunk was killed at its hard time limit: its job fails now, with the real reason."""
    with ctx.sessions() as session:
        job_id = session.scalar(
            select(JobChunk.job_id).where(JobChunk.id == uuid.UUID(chunk_id), JobChunk.status == ChunkStatus.RUNNING)
        )
    if job_id is not None:
        _fail_job(ctx, job_id, CHUNK_OVER_TIME)


def _fail_job(ctx: ScoringContext, job_id: uuid.UUID, error: str) -> str | None:
    """Fail the job; what to report if this did (not if it had ended meanwhile, say cancelled)."""
    with transaction(ctx.sessions) as session:
        if not _mark_failed(ctx, session, job_id, error):
            return None
    log.info("job failed", extra={"job_id": str(job_id), "error": error})
    return f"job {job_id} failed: {error}"


def _mark_failed(ctx: ScoringContext, session: Session, job_id: uuid.UUID, error: str) -> bool:
    """Fail the job unless it has ended, and cancel its chunks not yet scored; True if it failed it."""
    ended = session.scalars(
        update(Job)
        .where(Job.id == job_id, Job.status.in_([JobStatus.QUEUED, JobStatus.RUNNING]))
        .values(status=JobStatus.FAILED, finished_at=utcnow(), error=error[:MAX_ERROR_LENGTH])
        .returning(Job.id)
    ).all()
    ctx.announcer.announce(session, ended)
    session.execute(
        update(JobChunk)
        .where(JobChunk.job_id == job_id, JobChunk.status.in_([ChunkStatus.QUEUED, ChunkStatus.RUNNING]))
        .values(status=ChunkStatus.CANCELLED)
    )
    return bool(ended)
