"""CSV jobs, web side: turn an upload into a job and its chunks in the database, and stream the results back."""

from __future__ import annotations

import csv
import io
import itertools
import logging
import uuid
from collections.abc import Iterator
from typing import IO, Literal

import numpy as np
from sqlalchemy import select

from ml.table import ScoredTable
from webapp.csvio import UploadError, neutralise, open_upload, pack_rows, unpack_raw_rows
from webapp.db import transaction
from webapp.models import Job, JobChunk, JobKind, JobStatus
from webapp.services.dispatch import SCORE_CHUNK, Dispatch
from webapp.services.jobs import JobService, QueueUnavailable

log = logging.getLogger(__name__)
OnError = Literal["skip", "fail"]


class CsvJobService:
    """Uploads become a job plus chunks of rows that any worker can take; results are read back chunk by chunk."""

    def __init__(self, jobs: JobService, *, chunk_rows: int) -> None:
        self.jobs = jobs
        self.chunk_rows = chunk_rows

    def create(self, binary: IO[bytes], *, filename: str, model: str, version: str | None, on_error: OnError) -> Job:
        """Check the file's header against the model, then store the job and its chunks in one transaction."""
        info = self.jobs.store.get(model, version)
        upload = open_upload(binary)
        missing = [f.name for f in info.schema.features if f.required and f.name not in upload.columns]
        if missing:
            raise UploadError(f"The header lacks these required columns of {info.name}: {', '.join(missing)}.")
        job = Job(
            id=uuid.uuid4(),
            kind=JobKind.CSV,
            status=JobStatus.QUEUED,
            model_name=info.name,
            model_version=info.version,
            task_id=str(uuid.uuid4()),  # names the job's group of chunk tasks; each chunk has its own task id
            inputs=[],
            rows_total=0,
            upload={
                "filename": filename[:255],
                "columns": upload.columns,
                "delimiter": upload.delimiter,
                "on_error": on_error,
                "classes": info.classes,
            },
        )
        dispatches = []
        with transaction(self.jobs.sessions) as session:
            session.add(job)
            session.flush()
            for position, rows in enumerate(_batches(upload.rows, self.chunk_rows)):
                chunk = JobChunk(
                    id=uuid.uuid4(),
                    job_id=job.id,
                    position=position,
                    first_row=job.rows_total + 1,
                    task_id=str(uuid.uuid4()),
                    rows=len(rows),
                    input=pack_rows(rows),
                )
                session.add(chunk)
                session.flush()
                session.expunge(chunk)  # keep at most one chunk's bytes in memory
                dispatches.append(Dispatch(SCORE_CHUNK, str(chunk.id), chunk.task_id))
                job.rows_total += len(rows)
            if job.rows_total == 0:
                raise UploadError("The file has a header but no rows.")
        try:
            self.jobs.enqueue(dispatches)
        except Exception as exc:
            log.exception("could not publish the chunks of job %s", job.id)
            self.jobs.fail_unpublished(job.id)
            raise QueueUnavailable("the task queue cannot be reached right now; the job was not started") from exc
        return job

    def result_lines(self, job: Job) -> Iterator[str]:
        """The results as CSV text: the input columns, then the prediction columns and an error column."""
        upload = job.upload or {}
        classes = upload.get("classes")
        prediction_columns = ["prediction", *(f"probability_{c}" for c in classes)] if classes else ["prediction"]
        yield _line([*upload["columns"], *prediction_columns, "error"])
        with self.jobs.sessions() as session:
            chunk_ids = session.scalars(
                select(JobChunk.id).where(JobChunk.job_id == job.id).order_by(JobChunk.position)
            ).all()
        for chunk_id in chunk_ids:
            with self.jobs.sessions() as session:
                chunk = session.get(JobChunk, chunk_id)
                assert chunk is not None
                packed, result = chunk.input, chunk.result
            scored = ScoredTable.from_bytes(result) if result is not None else None
            yield _chunk_text(unpack_raw_rows(packed), scored, classes, len(prediction_columns))


def _chunk_text(rows: Iterator[list[str]], scored: ScoredTable | None, classes: list[object] | None, width: int) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    blanks = [""] * width
    labels = None
    if scored is not None and scored.probabilities is not None and classes:
        best = np.nan_to_num(scored.probabilities, nan=-1.0).argmax(axis=1)
        labels = [str(c) for c in classes]
        texts = np.char.mod("%.6g", scored.probabilities)
    for index, row in enumerate(rows):
        cells = [neutralise(cell) for cell in row[:-1]]
        if scored is None:
            writer.writerow([*cells, *blanks, "not scored: the job ended before this row's turn"])
        elif scored.errors[index] is not None:
            writer.writerow([*cells, *blanks, neutralise(str(scored.errors[index]))])
        elif labels is not None:
            writer.writerow([*cells, labels[best[index]], *texts[index], ""])
        else:
            assert scored.values is not None
            writer.writerow([*cells, f"{scored.values[index]:.6g}", ""])
    return buffer.getvalue()


def _line(cells: list[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow([neutralise(c) for c in cells])
    return buffer.getvalue()


def _batches(rows: Iterator[list[str]], size: int) -> Iterator[list[list[str]]]:
    while batch := list(itertools.islice(rows, size)):
        yield batch
