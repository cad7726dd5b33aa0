"""A CSV job's results as its page shows them: the first rows, the spread of the predictions, the bad rows a page at a
time; each read bounded whatever the file's size.

The spread is counted by the workers as they store each chunk (`tally`, added into the job's `upload["tally"]` in
the chunk's transaction), so the page reads a few hundred numbers however many rows were scored, and it grows while
the job runs. The first rows come from the first chunk, the bad rows from the chunks that hold them: the chunks
record how many bad rows each has, so a page of bad rows opens only the one or two chunks it lists.
"""

from __future__ import annotations

import math
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from ml.predict import Output
from ml.table import ScoredTable
from webapp.csvio import unpack_frame
from webapp.models import ChunkStatus, Job, JobChunk
from webapp.services.csv_jobs import job_outputs, output_columns, prediction_cells

PREVIEW_ROWS = 20
BAD_ROWS_PER_PAGE = 50
MAX_VALUE_KEYS = 300  # a regressor's counts kept per job: values rounded to 2 significant digits, else 1
HISTOGRAM_BARS = 12  # a regressor's values, shown as this many bars of equal width (or one per value, if fewer)


@dataclass(frozen=True)
class Distribution:
    """One target's predictions: a count per class, or per range of values (from values rounded to 2 digits)."""

    name: str
    labels: list[str]
    counts: list[int]
    approximate: bool


@dataclass(frozen=True)
class CsvResults:
    columns: list[str]
    preview: list[list[str]]  # the first rows, as the results file has them (empty until the first chunk is scored)
    distributions: list[Distribution]
    bad_rows: list[tuple[int, str]]  # (row number in the file, why), this page's
    bad_total: int
    page: int
    pages: int


def tally(scored: ScoredTable, outputs: list[Output]) -> dict[str, dict[str, int]]:
    """Per target, how many of a chunk's scored rows got each class, or each value rounded to 2 significant
    digits (a few hundred keys at most in practice, and they add up across chunks)."""
    good = np.array([error is None for error in scored.errors], dtype=bool)
    counts: dict[str, dict[str, int]] = {}
    start = 0
    for index, output in enumerate(outputs):
        if output.classes and scored.probabilities is not None:
            block = scored.probabilities[good, start : start + len(output.classes)]
            start += len(output.classes)
            best = np.nan_to_num(block, nan=-1).argmax(axis=1)
            keys = [str(output.classes[i]) for i in best]
        else:
            assert scored.values is not None
            values = scored.values if scored.values.ndim == 1 else scored.values[:, index]
            keys = [f"{v:.2g}" for v in values[good]]
        counts[output.name] = dict(Counter(keys))
    return counts


def merged(
    total: dict[str, dict[str, int]] | None, more: dict[str, dict[str, int]], outputs: list[Output]
) -> dict[str, dict[str, int]]:
    """Two tallies added up. A regressor's that would pass MAX_VALUE_KEYS (values over many orders of magnitude)
    is counted by one significant digit instead: the job row, which every list of jobs reads, stays small."""
    out = {name: dict(counts) for name, counts in (total or {}).items()}
    for name, counts in more.items():
        target = out.setdefault(name, {})
        for key, count in counts.items():
            target[key] = target.get(key, 0) + count
    for output in outputs:
        if not output.classes and len(out.get(output.name, {})) > MAX_VALUE_KEYS:
            coarse: Counter[str] = Counter()
            for key, count in out[output.name].items():
                coarse[f"{float(key):.1g}"] += count
            out[output.name] = dict(coarse)
    return out


def csv_results(sessions: sessionmaker[Session], job: Job, page: int) -> CsvResults:
    """What the job page shows of a CSV job's results now (running or ended), with page `page` of its bad rows."""
    upload = job.upload or {}
    outputs = job_outputs(upload)
    with sessions() as session:
        preview = _preview(session, job.id, upload, outputs)
        bad_rows, total, page = _bad_rows(session, job.id, page)
    return CsvResults(
        columns=[*upload["columns"], *output_columns(upload["columns"], outputs)],
        preview=preview,
        distributions=[_distribution(o, (upload.get("tally") or {}).get(o.name, {})) for o in outputs],
        bad_rows=bad_rows,
        bad_total=total,
        page=page,
        pages=max(1, math.ceil(total / BAD_ROWS_PER_PAGE)),
    )


def _preview(session: Session, job_id: uuid.UUID, upload: dict[str, Any], outputs: list[Output]) -> list[list[str]]:
    """The first PREVIEW_ROWS rows with their predictions, from the first chunks, up to the first not yet scored."""
    rows: list[list[str]] = []
    for position in range(PREVIEW_ROWS):  # a chunk has a row at least: never more chunks than rows shown
        chunk = session.scalars(select(JobChunk).filter_by(job_id=job_id, position=position)).first()
        if chunk is None or chunk.status != ChunkStatus.DONE or chunk.result is None or len(rows) >= PREVIEW_ROWS:
            break
        cells = unpack_frame(chunk.input, upload["columns"], upload["delimiter"], rows=PREVIEW_ROWS - len(rows))
        scored = ScoredTable.from_bytes(chunk.result).head(len(cells))
        table = [cells[c].to_numpy() for c in cells.columns] + prediction_cells(len(cells), scored, outputs)
        rows += [[str(cell) for cell in row] for row in zip(*table, strict=True)]
    return rows


def _bad_rows(session: Session, job_id: uuid.UUID, page: int) -> tuple[list[tuple[int, str]], int, int]:
    """Page `page` (clamped to those there are) of the job's bad rows, the number of them, and the page shown."""
    counts = session.execute(
        select(JobChunk.id, JobChunk.first_row, JobChunk.rows_failed)
        .where(JobChunk.job_id == job_id, JobChunk.rows_failed > 0)
        .order_by(JobChunk.position)
    ).all()
    total = sum(failed for _, _, failed in counts)
    page = min(max(page, 1), max(1, math.ceil(total / BAD_ROWS_PER_PAGE)))
    start, end, seen, rows = (page - 1) * BAD_ROWS_PER_PAGE, page * BAD_ROWS_PER_PAGE, 0, []
    for chunk_id, first_row, failed in counts:
        if seen + failed > start and seen < end:  # this chunk holds some of the page's rows: only these are read
            result = session.scalar(select(JobChunk.result).where(JobChunk.id == chunk_id))
            errors = ScoredTable.from_bytes(result).errors if result is not None else []
            bad = [(first_row + i, error) for i, error in enumerate(errors) if error is not None]
            rows += bad[max(start - seen, 0) : end - seen]
        seen += failed
    return rows, total, page


def _distribution(output: Output, counts: dict[str, int]) -> Distribution:
    if output.classes:
        labels = [str(c) for c in output.classes]
        return Distribution(output.name, labels, [counts.get(label, 0) for label in labels], approximate=False)
    values = sorted((float(key), count) for key, count in counts.items())
    if len(values) <= HISTOGRAM_BARS:
        return Distribution(output.name, [f"{v:.3g}" for v, _ in values], [c for _, c in values], approximate=True)
    low, high = values[0][0], values[-1][0]
    width = (high - low) / HISTOGRAM_BARS
    bars = [0] * HISTOGRAM_BARS
    for value, count in values:
        bars[min(int((value - low) / width), HISTOGRAM_BARS - 1)] += count
    labels = [f"{low + i * width:.3g}" for i in range(HISTOGRAM_BARS)]
    return Distribution(output.name, labels, bars, approximate=True)
