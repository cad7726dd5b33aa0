"""A CSV job's chunks reach the broker a few at a time: APOT_CSV_CHUNKS_IN_FLIGHT when it is stored, and one more
each time one of them is scored.

Publishing all of a large file's chunks at once put hundreds of tasks in the queue ahead of every other user's
file; with a few per job in the queue, the chunks of every running CSV job take turns, so a second user's file
starts long before the first one ends. A chunk not yet released has no `published_at`; the reconciler tops up
a job whose chain broke (a worker that died between storing a chunk and releasing the next) to the same window.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from webapp.db import transaction
from webapp.models import ChunkStatus, JobChunk, utcnow
from webapp.services.dispatch import SCORE_CHUNK, Dispatch, Enqueue

log = logging.getLogger(__name__)
# Two workers may race for the same next chunk; the loser tries the one after, this many times.
RELEASE_TRIES = 3


def release_next(sessions: sessionmaker[Session], enqueue: Enqueue, job_id: uuid.UUID) -> None:
    """After one of the job's chunks is scored: publish its next chunk not yet released, if any."""
    for _ in range(RELEASE_TRIES):
        with transaction(sessions) as session:
            next_id = session.scalar(
                select(JobChunk.id)
                .where(
                    JobChunk.job_id == job_id, JobChunk.status == ChunkStatus.QUEUED, JobChunk.published_at.is_(None)
                )
                .order_by(JobChunk.position)
                .limit(1)
            )
            if next_id is None:
                return
            released = session.execute(
                update(JobChunk)
                .where(JobChunk.id == next_id, JobChunk.published_at.is_(None))
                .values(published_at=utcnow())
                .returning(JobChunk.task_id)
            ).first()
        if released is not None:
            try:
                enqueue([Dispatch(SCORE_CHUNK, (str(next_id),), released.task_id)])
            except Exception:
                log.warning("could not publish the next chunk; the reconciler will", exc_info=True)
                with transaction(sessions) as session:
                    session.execute(update(JobChunk).where(JobChunk.id == next_id).values(published_at=None))
            return


def within_window(session: Session, waiting: Any, window: int, limit: int) -> list[uuid.UUID]:
    """Of the chunks that meet `waiting` (queued, not published), in file order, those that keep each job's chunks
    in flight (running, or published and not yet started) at `window` at most; `limit` at most in all."""
    position = func.row_number().over(partition_by=JobChunk.job_id, order_by=JobChunk.position)
    ranked = select(JobChunk.id, JobChunk.job_id, position.label("rank")).where(waiting).subquery()
    first_of_each_job = (
        select(ranked.c.id, ranked.c.job_id)
        .where(ranked.c.rank <= window)
        .order_by(ranked.c.job_id, ranked.c.rank)
        .limit(limit)
    )
    candidates = [(chunk_id, job_id) for chunk_id, job_id in session.execute(first_of_each_job)]
    jobs = {job_id for _, job_id in candidates}
    if not jobs:
        return []
    waiting_ids = {chunk_id for chunk_id, _ in candidates}
    in_flight = Counter(
        job_id
        for chunk_id, job_id, status, published_at in session.execute(
            select(JobChunk.id, JobChunk.job_id, JobChunk.status, JobChunk.published_at).where(
                JobChunk.job_id.in_(jobs), JobChunk.status.in_([ChunkStatus.QUEUED, ChunkStatus.RUNNING])
            )
        )
        if chunk_id not in waiting_ids and (status == ChunkStatus.RUNNING or published_at is not None)
    )
    chosen: list[uuid.UUID] = []
    for chunk_id, job_id in candidates:
        if in_flight[job_id] < window:
            chosen.append(chunk_id)
            in_flight[job_id] += 1
    return chosen
