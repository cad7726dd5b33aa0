"""CSV jobs, web side: turn an upload into a job and its chunks in the database, and stream the results back."""

from __future__ import annotations

import csv
import io
import logging
import uuid
from collections.abc import Iterator
from typing import IO, Any, Literal

import numpy as np
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ml.predict import Output, outputs_from_dict
from ml.store import ModelInfo
from ml.table import ScoredTable
from webapp.csvio import (
    CsvLimits,
    UploadError,
    fixed_decimals,
    neutralise,
    neutralise_column,
    open_upload,
    unpack_frame,
)
from webapp.db import transaction
from webapp.models import Job, JobChunk, JobKind, JobStatus, utcnow
from webapp.services.accounts import Principal
from webapp.services.dispatch import SCORE_CHUNK, Dispatch
from webapp.services.jobs import JobService
from webapp.services.parquet_uploads import ParquetUpload, is_parquet, open_parquet

log = logging.getLogger(__name__)
OnError = Literal["skip", "fail"]
# RFC 4180's line end. Python's writer quotes a cell holding a character of its line terminator: with "\n" alone,
# a cell holding a carriage return went out unquoted, and a spreadsheet began a new row (a formula, unescaped) there.
RESULT_LINE_END = "\r\n"


class CsvJobService:
    """Uploads become a job plus chunks of rows that any worker can take; results are read back chunk by chunk."""

    def __init__(self, jobs: JobService, *, chunk_rows: int, chunks_in_flight: int, limits: CsvLimits) -> None:
        self.jobs = jobs
        self.chunk_rows = chunk_rows
        self.chunks_in_flight = chunks_in_flight  # published at first; see services/chunk_release.py
        self.limits = limits

    def create(
        self,
        binary: IO[bytes],
        *,
        filename: str,
        model: str,
        version: str | None,
        on_error: OnError,
        by: Principal,
        idempotency_key: str | None = None,
        callback_url: str | None = None,
    ) -> Job:
        """Check the file's header against the model, then store the job (of `by`) and its chunks in one
        transaction. With an idempotency key `by` already used, that job is returned and the file is not read."""
        if idempotency_key:
            earlier = self.jobs.find_by_key(idempotency_key, by.user_id)
            if earlier is not None:
                return earlier
        info = self.jobs.models.get(model, version)
        self.jobs.check_callback(callback_url)
        upload = open_parquet(binary, self.limits) if is_parquet(binary) else open_upload(binary, self.limits)
        missing = [f.name for f in info.schema.features if f.required and f.name not in upload.columns]
        if missing:
            raise UploadError(f"The header lacks these required columns of {info.name}: {', '.join(missing)}.")
        facts: dict[str, Any] = {"filename": filename[:255], "columns": upload.columns, "delimiter": upload.delimiter}
        if isinstance(upload, ParquetUpload):
            facts["types"] = upload.types
        job = _csv_job(info, {**facts, "on_error": on_error}, by, rows_total=0)
        job.idempotency_key = idempotency_key
        job.callback_url = callback_url
        dispatches: list[Dispatch] = []
        try:
            with transaction(self.jobs.sessions) as session:
                session.add(job)
                session.flush()
                self._add_chunks(session, job, upload.chunks(self.chunk_rows), dispatches)
        except IntegrityError:
            earlier = self.jobs.find_by_key(idempotency_key, by.user_id) if idempotency_key else None
            if earlier is None:
                raise
            return earlier  # the same submission, stored by a concurrent request
        self._publish(job, dispatches)
        return job

    def _add_chunks(self, session: Session, job: Job, chunks: Iterator[Any], dispatches: list[Dispatch]) -> None:
        for position, packed in enumerate(chunks):
            chunk = JobChunk(
                id=uuid.uuid4(),
                job_id=job.id,
                position=position,
                first_row=job.rows_total + 1,
                task_id=str(uuid.uuid4()),
                rows=packed.rows,
                input=packed.data,
                problems={str(k): v for k, v in packed.problems.items()} or None,
            )
            session.add(chunk)
            session.flush()
            session.expunge(chunk)  # keep at most one chunk's bytes in memory
            if position < self.chunks_in_flight:  # the rest are released one by one as these are scored
                dispatches.append(Dispatch(SCORE_CHUNK, (str(chunk.id),), chunk.task_id))
            job.rows_total += packed.rows
        if job.rows_total == 0:
            raise UploadError("The file has a header but no rows.")

    def _publish(self, job: Job, dispatches: list[Dispatch]) -> None:
        """After the commit, so a worker always finds the chunks; if the broker cannot be reached (or this process
        dies first), the chunks stay unpublished and the reconciler publishes them a couple of seconds later."""
        # task_id names the job's group of chunk tasks; the worker's lines carry each chunk's own task id.
        fields = {"job_id": str(job.id), "task_id": job.task_id}
        log.info("job queued", extra={**fields, "model": job.model_name, "chunks": len(dispatches)})
        try:
            self.jobs.enqueue(dispatches)
        except Exception:
            log.warning("could not publish the chunks of the job; the reconciler will", exc_info=True, extra=fields)
            return
        try:  # if this fails, the reconciler publishes the chunks a second time: harmless
            with transaction(self.jobs.sessions) as session:
                released = [
                    uuid.UUID(dispatch.targets[0]) for dispatch in dispatches
                ]  # the first few; see chunk_release
                session.execute(update(JobChunk).where(JobChunk.id.in_(released)).values(published_at=utcnow()))
        except Exception:
            log.warning("could not mark the chunks of the job as published", exc_info=True, extra=fields)

    def rerun(self, job: Job, version: str, by: Principal, *, compare: bool = False) -> Job:
        """The same file, on another version of its model, as a job of `by`: the chunks are copied, not uploaded
        again."""
        info = self.jobs.models.get(job.model_name, version)
        upload = {key: value for key, value in (job.upload or {}).items() if key != "tally"}  # counted anew
        missing = [f.name for f in info.schema.features if f.required and f.name not in upload["columns"]]
        if missing:
            raise UploadError(f"version {version} needs columns the file does not have: {', '.join(missing)}.")
        new = _csv_job(info, upload, by, rows_total=job.rows_total, compare_to=job.id if compare else None)
        dispatches = []
        with transaction(self.jobs.sessions) as session:
            session.add(new)
            session.flush()
            positions = session.scalars(
                select(JobChunk.position).where(JobChunk.job_id == job.id).order_by(JobChunk.position)
            ).all()
            for position in positions:  # one chunk's bytes in memory at a time
                old = session.scalars(
                    select(JobChunk).where(JobChunk.job_id == job.id, JobChunk.position == position)
                ).one()
                chunk = JobChunk(
                    id=uuid.uuid4(),
                    job_id=new.id,
                    position=position,
                    first_row=old.first_row,
                    task_id=str(uuid.uuid4()),
                    rows=old.rows,
                    input=old.input,
                    problems=old.problems,
                )
                session.add(chunk)
                session.flush()
                session.expunge(chunk)
                session.expunge(old)
                if position < self.chunks_in_flight:
                    dispatches.append(Dispatch(SCORE_CHUNK, (str(chunk.id),), chunk.task_id))
        self._publish(new, dispatches)
        return new

    def result_lines(self, job: Job) -> Iterator[str]:
        """The results as CSV text: the input columns, then the prediction columns and an error column."""
        upload = job.upload or {}
        columns, outputs = upload["columns"], job_outputs(upload)
        yield _line([*columns, *output_columns(columns, outputs)])
        with self.jobs.sessions() as session:
            chunk_ids = session.scalars(
                select(JobChunk.id).where(JobChunk.job_id == job.id).order_by(JobChunk.position)
            ).all()
        for chunk_id in chunk_ids:  # one chunk in memory at a time
            with self.jobs.sessions() as session:
                chunk = session.get(JobChunk, chunk_id)
                assert chunk is not None
                packed, result = chunk.input, chunk.result
            cells = unpack_frame(packed, columns, upload["delimiter"]).apply(neutralise_column)
            scored = ScoredTable.from_bytes(result) if result is not None else None
            table = [cells[c].to_numpy() for c in cells.columns] + prediction_cells(len(cells), scored, outputs)
            buffer = io.StringIO()  # csv's C writer over the columns: faster than DataFrame.to_csv for text
            csv.writer(buffer, lineterminator=RESULT_LINE_END).writerows(zip(*table, strict=True))
            yield buffer.getvalue()


def _csv_job(
    info: ModelInfo, upload: dict[str, Any], by: Principal, *, rows_total: int, compare_to: uuid.UUID | None = None
) -> Job:
    return Job(
        owner_id=by.user_id,
        api_key_id=by.api_key_id,
        id=uuid.uuid4(),
        kind=JobKind.CSV,
        status=JobStatus.QUEUED,
        model_name=info.name,
        model_version=info.version,
        task_id=str(uuid.uuid4()),  # names the job's group of chunk tasks; each chunk has its own task id
        inputs=[],
        rows_total=rows_total,
        upload={**upload, "classes": info.classes, "targets": [t.to_dict() for t in info.targets or []]},
        compare_to=compare_to,
    )


def output_columns(input_columns: list[str], outputs: list[Output]) -> list[str]:
    """The columns apot appends; prefixed with "apot_" should the file already have columns of those names."""
    names = []
    for output in outputs:
        probability = "probability" if len(outputs) == 1 else f"{output.name}_probability"
        names += [output.name, *(f"{probability}_{c}" for c in output.classes or [])]
    names += ["error", "warnings"]
    if set(names) & set(input_columns):
        return [f"apot_{name}" for name in names]
    return names


def job_outputs(upload: dict[str, Any]) -> list[Output]:
    """The targets a CSV job's results have columns for, as the job recorded them when it was made."""
    if upload.get("targets"):
        return outputs_from_dict(upload["targets"])
    return [Output("prediction", upload.get("classes"))]


def prediction_cells(rows: int, scored: ScoredTable | None, outputs: list[Output]) -> list[np.ndarray]:
    """The appended columns as text: per target the prediction (and a probability per class), then the error
    and the warnings."""
    width = sum(1 + len(o.classes or []) for o in outputs)
    if scored is None:  # a chunk the job never reached (it was cancelled or failed first)
        blank = np.full(rows, "", dtype=object)
        return [blank] * width + [
            np.full(rows, "not scored: the job ended before this row's turn", dtype=object),
            blank,
        ]
    errors = np.array([neutralise(e) if e else "" for e in scored.errors], dtype=object)
    warnings = np.array([neutralise(w) if w else "" for w in scored.warnings or [None] * rows], dtype=object)
    good = errors == ""
    columns: list[np.ndarray] = []
    start = 0
    for index, output in enumerate(outputs):
        if output.classes and scored.probabilities is not None:
            block = scored.probabilities[:, start : start + len(output.classes)]
            start += len(output.classes)
            labels = np.array([neutralise(str(c)) for c in output.classes], dtype=object)  # from training data
            best = np.nan_to_num(block, nan=-1).argmax(axis=1)
            probabilities = [fixed_decimals(block[:, i]).astype(object) for i in range(len(output.classes))]
            columns += [np.where(good, column, "") for column in [labels[best], *probabilities]]
        else:
            assert scored.values is not None
            values = scored.values if scored.values.ndim == 1 else scored.values[:, index]
            columns.append(np.where(good, np.array([f"{v:.6g}" for v in values], dtype=object), ""))
    return [*columns, errors, warnings]


def _line(cells: list[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator=RESULT_LINE_END).writerow([neutralise(c) for c in cells])
    return buffer.getvalue()
