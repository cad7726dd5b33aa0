"""Outcomes: the true labels or values of predicted rows, stored once per row (a repeat replaces it), and the
figures of each model version over time that they give."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from ml.scores import BadOutcome, score_row
from ml.table import ScoredTable
from webapp.db import transaction
from webapp.models import ChunkStatus, Job, JobChunk, JobKind, JobStatus, utcnow
from webapp.services.comparison import job_classes, multi_output
from webapp.services.tracking.tables import Outcome


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
    """Store a CSV of job_id,row,outcome (jobs of `owner`; None: anyone's) in one transaction, or nothing."""
    by_job, problems = _read_csv(text, max_rows)
    with sessions() as session:
        jobs = {job.id: job for job in session.scalars(select(Job).where(Job.id.in_(list(by_job))))}
    values: list[dict[str, Any]] = []
    for job_id, reported in by_job.items():
        job = jobs.get(job_id)
        if job is None or (owner is not None and job.owner_id != owner):
            problems.append(f"no job with id {job_id}")  # another user's job reads as one that does not exist
            continue
        try:
            values.extend(_scored(sessions, job, reported))
        except OutcomesRefused as exc:
            problems.extend(exc.problems)
    if problems:
        raise OutcomesRefused(problems)
    with transaction(sessions) as session:
        _upsert(session, values)
    return len(values)


def _read_csv(text: str, max_rows: int) -> tuple[dict[uuid.UUID, list[Reported]], list[str]]:
    try:
        return _parse_csv(text, max_rows)
    except csv.Error as exc:  # a NUL byte, a cell past the csv module's limit
        return {}, [f"the file is not readable CSV: {exc}"]


def _parse_csv(text: str, max_rows: int) -> tuple[dict[uuid.UUID, list[Reported]], list[str]]:
    lines = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    header = [cell.strip().lower() for cell in next(lines, [])]
    if header[:3] != ["job_id", "row", "outcome"]:
        return {}, ["the first line must be the header job_id,row,outcome"]
    by_job: dict[uuid.UUID, list[Reported]] = {}
    problems: list[str] = []
    for number, cells in enumerate(lines, start=2):
        if not cells:
            continue
        if number - 1 > max_rows:
            return by_job, [*problems, f"more than {max_rows} outcomes in one file: send it in parts"]
        if len(cells) < 3:
            problems.append(f"line {number}: expected job_id,row,outcome")
            continue
        job_id, row = _uuid(cells[0]), _row(cells[1])
        if job_id is None or row is None:
            problems.append(f"line {number}: {cells[0]!r} is not a job id or {cells[1]!r} not a row number")
            continue
        by_job.setdefault(job_id, []).append(Reported(row, cells[2].strip()))
    return by_job, problems


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
