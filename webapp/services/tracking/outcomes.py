"""Outcomes: the true labels or values of predicted rows, stored once per row (a repeat replaces it), and the
figures of each model version over time that they give."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from ml.scores import BadOutcome, score_row
from ml.table import ScoredTable
from webapp.csvio import unpack_frame
from webapp.db import transaction
from webapp.models import ChunkStatus, Job, JobChunk, JobKind, JobStatus, utcnow
from webapp.services.comparison import job_classes, multi_output
from webapp.services.tracking.tables import Outcome

ROW = "row"  # rows named by their 0-based position (a CSV job: its data rows, the header not counted)


class OutcomesRefused(ValueError):
    """Nothing was stored: each problem names the row (and job) it is about."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems[:5]) + (f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""))
        self.problems = problems


@dataclass(frozen=True)
class Reported:
    """One outcome as a client sends it: the row (0-based, in the job's input order) and its true value."""

    row: int
    outcome: Any


def record(sessions: sessionmaker[Session], job: Job, reported: Sequence[Reported]) -> int:
    """Store the outcomes of rows of one job the caller may see; all of them or, if any is bad, none."""
    values = _scored(sessions, job, reported)
    with transaction(sessions) as session:
        _upsert(session, values)
    return len(values)


def record_file(sessions: sessionmaker[Session], text: str, owner: uuid.UUID | None, *, max_rows: int) -> int:
    """Store a CSV of job_id,row,outcome (jobs of `owner`; None: anyone's) in one transaction, or nothing. In place
    of `row`, the file may name a column of CSV jobs' own files (an id column): each row is found by its value."""
    by_job, column, problems = _read_csv(text, max_rows)
    with sessions() as session:
        jobs = {job.id: job for job in session.scalars(select(Job).where(Job.id.in_(list(by_job))))}
    values: list[dict[str, Any]] = []
    for job_id, lines in by_job.items():
        job = jobs.get(job_id)
        if job is None or (owner is not None and job.owner_id != owner):
            problems.append(f"no job with id {job_id}")  # another user's job reads as one that does not exist
            continue
        try:
            reported = _numbered(lines) if column == ROW else _by_own_id(sessions, job, column, lines)
            values.extend(_scored(sessions, job, reported))
        except OutcomesRefused as exc:
            problems.extend(exc.problems)
    if problems:
        raise OutcomesRefused(problems)
    with transaction(sessions) as session:
        _upsert(session, values)
    return len(values)


# A line of an outcomes file: its number, the row's number or own id as written, and the outcome.
Line = tuple[int, str, str]


def _read_csv(text: str, max_rows: int) -> tuple[dict[uuid.UUID, list[Line]], str, list[str]]:
    try:
        return _parse_csv(text, max_rows)
    except csv.Error as exc:  # a NUL byte, a cell past the csv module's limit
        return {}, ROW, [f"the file is not readable CSV: {exc}"]


def _parse_csv(text: str, max_rows: int) -> tuple[dict[uuid.UUID, list[Line]], str, list[str]]:
    """Each job's lines, and the column rows are named by: `row`, or a column of the jobs' own files."""
    lines = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    header = [cell.strip() for cell in next(lines, [])]
    if len(header) < 3 or [header[0].lower(), header[2].lower()] != ["job_id", "outcome"] or not header[1]:
        return {}, ROW, ["the first line must be the header job_id,row,outcome (or job_id,ID COLUMN,outcome)"]
    column = ROW if header[1].lower() == ROW else header[1]
    by_job: dict[uuid.UUID, list[Line]] = {}
    problems: list[str] = []
    for number, cells in enumerate(lines, start=2):
        if not cells:
            continue
        if number - 1 > max_rows:
            return by_job, column, [*problems, f"more than {max_rows} outcomes in one file: send it in parts"]
        if len(cells) < 3:
            problems.append(f"line {number}: expected job_id,{column},outcome")
            continue
        job_id = _uuid(cells[0])
        if job_id is None:
            problems.append(f"line {number}: {cells[0]!r} is not a job id")
            continue
        by_job.setdefault(job_id, []).append((number, cells[1].strip(), cells[2].strip()))
    return by_job, column, problems


def _numbered(lines: list[Line]) -> list[Reported]:
    reported, problems = [], []
    for number, cell, outcome in lines:
        row = _row(cell)
        if row is None:
            problems.append(f"line {number}: {cell!r} is not a row number (0 is the first data row)")
        else:
            reported.append(Reported(row, outcome))
    if problems:
        raise OutcomesRefused(problems)
    return reported


def _by_own_id(sessions: sessionmaker[Session], job: Job, column: str, lines: list[Line]) -> list[Reported]:
    """The rows of a CSV job named by their value in one of its file's columns, which must name one row each."""
    upload = job.upload or {}
    if job.kind != JobKind.CSV or column not in upload.get("columns", []):
        raise OutcomesRefused([f"job {job.id} has no column {column!r}: name its rows by row, 0 for the first"])
    wanted = {cell for _, cell, _ in lines}
    found: dict[str, list[int]] = {}
    with sessions() as session:
        chunks = session.scalars(select(JobChunk.id).where(JobChunk.job_id == job.id)).all()
        for chunk_id in chunks:  # one chunk's cells in memory at a time
            first_row, packed = session.execute(
                select(JobChunk.first_row, JobChunk.input).where(JobChunk.id == chunk_id)
            ).one()
            cells = unpack_frame(packed, upload["columns"], upload["delimiter"])[column].str.strip()
            for offset in np.flatnonzero(cells.isin(wanted).to_numpy()):
                found.setdefault(cells.iat[offset], []).append(first_row - 1 + int(offset))
    reported, problems = [], []
    for number, cell, outcome in lines:
        rows = found.get(cell, [])
        if len(rows) == 1:
            reported.append(Reported(rows[0], outcome))
        else:
            many = f"{len(rows)} rows have it: name them by row" if rows else "no row has it"
            problems.append(f"line {number}: job {job.id} {column} {cell!r}: {many}")
    if problems:
        raise OutcomesRefused(problems)
    return reported


def _scored(sessions: sessionmaker[Session], job: Job, reported: Sequence[Reported]) -> list[dict[str, Any]]:
    if job.kind == JobKind.EXPLAIN:
        raise OutcomesRefused([f"job {job.id} explains another job: its rows are made up, they have no outcomes"])
    if job.status != JobStatus.SUCCEEDED:
        raise OutcomesRefused([f"job {job.id} has not succeeded (it is {job.status}): it has no predictions"])
    if job.pruned_at is not None:
        raise OutcomesRefused([f"the results of job {job.id} were deleted by retention"])
    if multi_output(job):
        # One outcome per row has no single target to score against; per-target outcomes are not tracked yet.
        raise OutcomesRefused([f"job {job.id} is of a multi-output model: outcomes are tracked for one target only"])
    predictions = _predictions(sessions, job, {r.row for r in reported})
    classes = job_classes(job)
    day = (job.finished_at or job.created_at).date()
    values: dict[int, dict[str, Any]] = {}
    problems: list[str] = []
    for item in reported:
        prediction = predictions.get(item.row)
        if prediction is None:
            problems.append(f"job {job.id} row {item.row}: no such row, or it has no prediction")
            continue
        try:
            scored = score_row(classes, prediction, item.outcome)
        except BadOutcome as exc:
            problems.append(f"job {job.id} row {item.row}: {exc}")
            continue
        values[item.row] = {
            "job_id": job.id,
            "row": item.row,
            "model_name": job.model_name,
            "model_version": job.model_version,
            "day": day,
            "actual": scored.actual,
            "label_true": scored.label_true,
            "label_predicted": scored.label_predicted,
            "loss": scored.loss,
            "error": scored.error,
            "recorded_at": utcnow(),
        }
    if problems:
        raise OutcomesRefused(problems)
    return list(values.values())


def _upsert(session: Session, values: list[dict[str, Any]]) -> None:
    """Insert, or replace the outcome a row already had: sending the same file twice changes nothing."""
    if not values:
        return
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = dialect.insert(Outcome)
    replaced = ("actual", "label_true", "label_predicted", "loss", "error", "recorded_at")
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["job_id", "row"], set_={name: statement.excluded[name] for name in replaced}
        ),
        values,
    )


def _predictions(sessions: sessionmaker[Session], job: Job, rows: set[int]) -> dict[int, dict[str, Any]]:
    """The stored predictions of these rows, as the API shows them; rows without one are left out."""
    if job.kind != JobKind.CSV:
        stored = (job.result or {}).get("predictions", [])
        return {row: stored[row] for row in rows if 0 <= row < len(stored)}
    classes = job_classes(job)
    found: dict[int, dict[str, Any]] = {}
    with sessions() as session:
        chunks = session.execute(
            select(JobChunk.first_row, JobChunk.rows, JobChunk.id).where(
                JobChunk.job_id == job.id, JobChunk.status == ChunkStatus.DONE
            )
        ).all()
        for first_row, count, chunk_id in chunks:
            start = first_row - 1
            wanted = [row for row in rows if start <= row < start + count]
            if not wanted:
                continue
            scored = ScoredTable.from_bytes(session.scalar(select(JobChunk.result).where(JobChunk.id == chunk_id)))
            for row in wanted:
                if scored.errors[row - start] is None:
                    found[row] = _prediction_of(scored, row - start, classes)
    return found


def _prediction_of(scored: ScoredTable, offset: int, classes: list[str] | None) -> dict[str, Any]:
    if scored.probabilities is not None and classes is not None:
        probabilities = scored.probabilities[offset]
        return {
            "label": classes[int(probabilities.argmax())],
            "probabilities": dict(zip(classes, map(float, probabilities), strict=True)),
        }
    assert scored.values is not None
    return {"value": float(scored.values[offset])}


def _uuid(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text.strip())
    except ValueError:
        return None


def _row(text: str) -> int | None:
    try:
        row = int(text.strip())
    except ValueError:
        return None
    return row if row >= 0 else None
