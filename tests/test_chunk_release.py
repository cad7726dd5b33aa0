"""A CSV job's chunks reach the broker a few at a time: the window at first, one more per chunk scored, and the
reconciler tops a broken chain up to the window, never past it."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from tests.conftest import RecordingEnqueue, worker_context
from webapp.background.reconciler import Reconciler, ReconcilerSettings
from webapp.config import Settings
from webapp.models import ChunkStatus, Job, JobChunk
from webapp.services.chunk_scoring import score_chunk
from webapp.services.dispatch import SCORE_CHUNK
from webapp.services.events import SilentAnnouncer
from webapp.services.models import ModelRegistry

WINDOW = 2
ROW = b"Biscoe,48.6,230\n"
FILE = b"island,bill_length_mm,flipper_length_mm\n" + ROW * 20  # 7 chunks of 3 rows (the last of 2)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"csv_chunks_in_flight": WINDOW})


def chunks(engine: Engine, job_id: str) -> list[JobChunk]:
    with Session(engine) as session:
        query = select(JobChunk).where(JobChunk.job_id == uuid.UUID(job_id)).order_by(JobChunk.position)
        return list(session.scalars(query))


def upload(client: TestClient) -> str:
    files = {"file": ("f.csv", FILE, "text/csv")}
    response = client.post("/api/v1/jobs/csv", files=files, data={"model": "penguins"})
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def test_the_window_is_published_first_and_each_scored_chunk_releases_the_next(
    client: TestClient, engine: Engine, enqueue: RecordingEnqueue, registry: ModelRegistry
) -> None:
    job_id = upload(client)
    stored = chunks(engine, job_id)
    assert len(stored) == 7
    assert enqueue.published == [str(chunk.id) for chunk in stored[:WINDOW]]
    assert [chunk.published_at is not None for chunk in stored] == [True] * WINDOW + [False] * 5

    first = enqueue.dispatches.pop(0)
    score_chunk(worker_context(registry, enqueue), *first.targets)
    assert enqueue.published == [str(stored[1].id), str(stored[2].id)], "the next one in file order, one for one"

    enqueue.deliver(registry)
    assert client.get(f"/api/v1/jobs/{job_id}").json()["status"] == "succeeded"
    assert all(chunk.status == ChunkStatus.DONE for chunk in chunks(engine, job_id))


def test_two_files_take_turns(
    client: TestClient, engine: Engine, enqueue: RecordingEnqueue, registry: ModelRegistry
) -> None:
    first, second = upload(client), upload(client)
    context = worker_context(registry, enqueue)
    order = []
    while enqueue.dispatches:  # the broker's queue, first in first out
        (chunk_id,) = enqueue.dispatches.pop(0).targets
        with Session(engine) as session:
            order.append(str(session.get_one(JobChunk, uuid.UUID(chunk_id)).job_id))
        score_chunk(context, chunk_id)
    # All at once, the first file's 7 chunks would all have gone before the second file's first.
    assert order[:8] == [first, first, second, second] * 2


def test_the_reconciler_tops_a_broken_chain_up_to_the_window_only(
    client: TestClient, engine: Engine, enqueue: RecordingEnqueue, registry: ModelRegistry, settings: Settings
) -> None:
    job_id = upload(client)
    stored = chunks(engine, job_id)
    enqueue.dispatches.clear()
    # The worker that scored the first chunk died before releasing the next; the second was lost by the broker.
    with Session(engine) as session, session.begin():
        session.execute(update(JobChunk).where(JobChunk.id == stored[0].id).values(status=ChunkStatus.DONE))
        session.execute(update(Job).where(Job.id == uuid.UUID(job_id)).values(status="running"))
        long_ago = stored[0].published_at - timedelta(hours=1)  # type: ignore[operator]
        session.execute(update(JobChunk).where(JobChunk.job_id == uuid.UUID(job_id)).values(published_at=None))
        session.execute(update(Job).where(Job.id == uuid.UUID(job_id)).values(created_at=long_ago))
    reconciler_settings = ReconcilerSettings(
        max_attempts=3, republish_after_seconds=300, batch_max_rows=4, chunks_in_flight=WINDOW
    )
    reconciler = Reconciler(registry.sessions, enqueue, SilentAnnouncer(), reconciler_settings)

    assert reconciler.run_once().published_chunks == WINDOW
    assert enqueue.published == [str(stored[1].id), str(stored[2].id)]
    assert reconciler.run_once().published_chunks == 0, "the window is full"
    wider = Reconciler(registry.sessions, enqueue, SilentAnnouncer(), replace(reconciler_settings, chunks_in_flight=3))
    assert wider.run_once().published_chunks == 1
    assert [d.task for d in enqueue.dispatches] == [SCORE_CHUNK] * 3
