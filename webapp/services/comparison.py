"""Compare a job with a re-run of its inputs on another model version: what changed, and by how much."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import select

from ml.table import ScoredTable
from webapp.models import ChunkStatus, Job, JobChunk, JobKind, JobStatus
from webapp.services.accounts import Principal
from webapp.services.csv_jobs import CsvJobService
from webapp.services.jobs import JobService, owned_by

TOP = 10
# What can be run again on another version (an explain job's inputs are another job's).
COMPARABLE = (JobKind.SINGLE, JobKind.BATCH, JobKind.CSV)


class NothingToCompare(LookupError):
    """No finished job of that version to run again on another."""


@dataclass(frozen=True)
class Shift:
    """One row's biggest change: for a classifier, the class whose probability moved most."""

    row: int
    old_label: str
    new_label: str
    what: str  # the class, or "value" for a regressor
    old: float
    new: float

    @property
    def size(self) -> float:
        return abs(self.new - self.old)


@dataclass
class Comparison:
    old: Job
    new: Job
    compared: int = 0  # rows scored by both versions
    changed: int = 0  # rows whose label changed (classifiers)
    label_changes: list[tuple[str, str, int]] = field(default_factory=list)  # old → new, how many rows
    largest: list[Shift] = field(default_factory=list)
    mean_change: float | None = None  # regressors: mean absolute change of the value

    @property
    def ready(self) -> bool:
        return JobStatus(self.new.status).ended and JobStatus(self.old.status).ended


class ComparisonService:
    def __init__(self, jobs: JobService, csv_jobs: CsvJobService) -> None:
        self.jobs = jobs
        self.csv_jobs = csv_jobs

    def start(self, job: Job, version: str, by: Principal) -> Job:
        """Re-run a finished job's inputs on `version` of the same model, as a job of `by`, linked back to it."""
        if job.kind == JobKind.CSV:
            return self.csv_jobs.rerun(job, version, by, compare=True)
        return self.jobs.rerun(job, by, version, compare=True)

    def start_between(self, name: str, old_version: str, new_version: str, by: Principal) -> Job:
        """Compare two versions on real inputs: the newest succeeded job of `old_version` that `by` may see, run
        again on `new_version` (see `start`)."""
        query = select(Job).where(
            Job.model_name == name,
            Job.model_version == old_version,
            Job.status == JobStatus.SUCCEEDED,
            Job.kind.in_(COMPARABLE),
            Job.pruned_at.is_(None),
        )
        with self.jobs.sessions() as session:
            job = session.scalars(owned_by(query, by.owner_scope).order_by(Job.created_at.desc()).limit(1)).first()
        if job is None:
            raise NothingToCompare(
                f"no finished job of {name} {old_version} to run again: predict with that version first "
                "(a CSV upload compares many rows at once)"
            )
        return self.start(job, new_version, by)

    def compare(self, new: Job) -> Comparison:
        """The two jobs side by side; the figures are filled in once both have succeeded."""
        assert new.compare_to is not None
        # Whoever may see the comparison may see what it compares with: they started it from that job's page.
        old = self.jobs.get(new.compare_to, owner=None)
        comparison = Comparison(old, new)
        if new.status != JobStatus.SUCCEEDED or old.status != JobStatus.SUCCEEDED or old.pruned_at or new.pruned_at:
            return comparison  # nothing to compare (yet, or any more: retention deleted the results)
        if multi_output(old) or multi_output(new):
            return comparison  # the figures are those of one target; a multi-output model's jobs show side by side
        pairs = self._csv_pairs(old, new) if new.kind == JobKind.CSV else [(1, _from_result(old), _from_result(new))]
        old_classes, new_classes = job_classes(old), job_classes(new)
        changes: Counter[tuple[str, str]] = Counter()
        shifts: list[Shift] = []
        differences: list[np.ndarray] = []
        for first_row, before, after in pairs:
            if before is None or after is None:
                continue
            good = np.array([a is None and b is None for a, b in zip(before.errors, after.errors, strict=True)])
            comparison.compared += int(good.sum())
            if old_classes is not None and new_classes is not None:
                _compare_classes(first_row, good, before, after, old_classes, new_classes, changes, shifts)
            elif before.values is not None and after.values is not None:
                differences.append((after.values - before.values)[good])
                _compare_values(first_row, good, before.values, after.values, shifts)
        comparison.changed = sum(changes.values())
        comparison.label_changes = [(a, b, n) for (a, b), n in changes.most_common()]
        comparison.largest = sorted(shifts, key=lambda s: -s.size)[:TOP]
        if differences:
            joined = np.concatenate(differences)
            comparison.mean_change = float(np.abs(joined).mean()) if len(joined) else None
        return comparison

    def _csv_pairs(self, old: Job, new: Job) -> Iterator[tuple[int, ScoredTable | None, ScoredTable | None]]:
        """Chunk by chunk (same positions, same rows), so at most two chunks are in memory."""
        with self.jobs.sessions() as session:
            positions = session.execute(
                select(JobChunk.position, JobChunk.first_row)
                .where(JobChunk.job_id == new.id)
                .order_by(JobChunk.position)
            ).all()
        for position, first_row in positions:
            yield first_row, self._scored(old, position), self._scored(new, position)

    def _scored(self, job: Job, position: int) -> ScoredTable | None:
        with self.jobs.sessions() as session:
            result = session.scalar(
                select(JobChunk.result).where(
                    JobChunk.job_id == job.id, JobChunk.position == position, JobChunk.status == ChunkStatus.DONE
                )
            )
        return ScoredTable.from_bytes(result) if result is not None else None


def multi_output(job: Job) -> bool:
    """Whether the job's predictions are per target (a multi-output model's)."""
    if job.kind == JobKind.CSV:
        return bool((job.upload or {}).get("targets"))
    return "targets" in ((job.result or {}).get("predictions") or [{}])[0]


def job_classes(job: Job) -> list[str] | None:
    """A classifier job's class names, in the order of its probabilities; None for a regressor's."""
    if job.kind == JobKind.CSV:
        classes = (job.upload or {}).get("classes")
        return [str(c) for c in classes] if classes else None
    first = (job.result or {}).get("predictions", [{}])[0]
    return list(first["probabilities"]) if "probabilities" in first else None


def _from_result(job: Job) -> ScoredTable:
    """A single or batch job's predictions in the shape a CSV chunk's results have."""
    predictions: list[dict[str, Any]] = (job.result or {}).get("predictions", [])
    errors: list[str | None] = [None] * len(predictions)
    if predictions and "probabilities" in predictions[0]:
        classes = list(predictions[0]["probabilities"])
        matrix = np.array([[p["probabilities"][c] for c in classes] for p in predictions], dtype=float)
        return ScoredTable(errors=errors, probabilities=matrix)
    return ScoredTable(errors=errors, values=np.array([p["value"] for p in predictions], dtype=float))


def _compare_classes(
    first_row: int,
    good: np.ndarray,
    before: ScoredTable,
    after: ScoredTable,
    old_classes: list[str],
    new_classes: list[str],
    changes: Counter[tuple[str, str]],
    shifts: list[Shift],
) -> None:
    assert before.probabilities is not None and after.probabilities is not None
    union = list(dict.fromkeys([*old_classes, *new_classes]))
    old_p = _aligned(before.probabilities, old_classes, union)
    new_p = _aligned(after.probabilities, new_classes, union)
    labels = np.array(union, dtype=object)
    old_labels, new_labels = labels[old_p.argmax(axis=1)], labels[new_p.argmax(axis=1)]
    moved = np.abs(new_p - old_p)
    for row in np.flatnonzero(good & (old_labels != new_labels)):
        changes[(old_labels[row], new_labels[row])] += 1
    biggest = moved.max(axis=1)
    candidates = np.flatnonzero(good)
    for row in candidates[np.argsort(-biggest[candidates])[:TOP]]:
        k = int(moved[row].argmax())
        shifts.append(
            Shift(first_row + int(row), old_labels[row], new_labels[row], union[k], old_p[row, k], new_p[row, k])
        )


def _aligned(probabilities: np.ndarray, classes: list[str], union: list[str]) -> np.ndarray:
    """Probabilities in the order of `union`; a class this version does not know has probability 0."""
    out = np.zeros((len(probabilities), len(union)))
    for i, label in enumerate(classes):
        out[:, union.index(label)] = probabilities[:, i]
    return np.nan_to_num(out)


def _compare_values(first_row: int, good: np.ndarray, old: np.ndarray, new: np.ndarray, shifts: list[Shift]) -> None:
    candidates = np.flatnonzero(good)
    for row in candidates[np.argsort(-np.abs(new - old)[candidates])[:TOP]]:
        shifts.append(Shift(first_row + int(row), "", "", "value", float(old[row]), float(new[row])))
