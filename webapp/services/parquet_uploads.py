"""Parquet in and out. Uploads are taken wherever a CSV file is (API, dashboard, `apot predict`): read a row group
at a time and stored as the same compressed CSV chunks, so workers and retention treat both alike. Results can be
downloaded as Parquet, the input columns with the types they had in the upload.

The file is read from the upload's spool (pyarrow seeks to the footer, then reads one row group after another), so
the web process never holds more of it than a row group and one chunk; results are written through a temporary file.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from webapp.csvio import CsvLimits, PackedChunk, UploadError, pack_lines

MAGIC = b"PAR1"  # the first (and last) four bytes of every Parquet file
MEDIA_TYPE = "application/vnd.apache.parquet"
CHUNK_OPTIONS = pa_csv.WriteOptions(include_header=False, delimiter=",")


def is_parquet(binary: IO[bytes]) -> bool:
    head = binary.read(len(MAGIC))
    binary.seek(0)
    return head == MAGIC


@dataclass
class ParquetUpload:
    """A Parquet upload whose footer was read and checked: its columns, and its rows still to be read."""

    columns: list[str]
    file: pq.ParquetFile
    delimiter: str = ","

    @property
    def types(self) -> dict[str, str]:
        """Each column's Arrow type, by name (a category's as its values' type): kept for the results."""
        return {
            f.name: str(f.type.value_type if pa.types.is_dictionary(f.type) else f.type) for f in self.file.schema_arrow
        }

    def chunks(self, size: int) -> Iterator[PackedChunk]:
        """The rows in chunks of `size` (a chunk may span row groups), written as CSV lines, missing values as
        empty cells."""
        pending: list[pa.RecordBatch] = []
        for batch in self.file.iter_batches(batch_size=size):
            pending.append(batch)
            while sum(b.num_rows for b in pending) >= size:
                table = pa.Table.from_batches(pending)
                yield _packed(table.slice(0, size))
                pending = table.slice(size).to_batches()
        if pending:
            yield _packed(pa.Table.from_batches(pending))


def _packed(table: pa.Table) -> PackedChunk:
    # Categories (pandas' category dtype) come as dictionaries: written as their values.
    columns = [c.cast(c.type.value_type) if pa.types.is_dictionary(c.type) else c for c in table.columns]
    text = io.BytesIO()
    pa_csv.write_csv(pa.table(columns, names=table.column_names), text, CHUNK_OPTIONS)
    return pack_lines([text.getvalue().decode()], table.num_rows, {})


def open_parquet(binary: IO[bytes], limits: CsvLimits) -> ParquetUpload:
    """Read the footer: the columns and the row count are checked before any row is."""
    try:
        parquet = pq.ParquetFile(binary)
    except (pa.ArrowException, OSError) as exc:
        raise UploadError(f"The file starts like Parquet but cannot be read as Parquet: {exc}") from exc
    schema = parquet.schema_arrow
    if len(schema.names) > limits.max_columns:
        raise UploadError(f"The file has {len(schema.names):,} columns; at most {limits.max_columns:,} are accepted.")
    if parquet.metadata.num_rows > limits.max_rows:
        raise UploadError(f"The file has more than {limits.max_rows:,} rows, the most one job may have.")
    nested = [f.name for f in schema if pa.types.is_nested(f.type)]
    if nested:
        raise UploadError(f"These columns hold lists or structures, not values: {', '.join(nested)}.")
    duplicates = sorted({c for c in schema.names if schema.names.count(c) > 1})
    if duplicates:
        raise UploadError(f"The file names these columns more than once: {', '.join(duplicates)}.")
    return ParquetUpload(list(schema.names), parquet)


def results_parquet(lines: Iterable[str], types: dict[str, str]) -> Path:
    """The results' CSV text as a Parquet file (a temporary one: the caller deletes it), the input columns typed as
    `types` says and the prediction columns as their values read."""
    handle, text_path = tempfile.mkstemp(suffix=".csv")
    with os.fdopen(handle, "w", encoding="utf-8") as text:
        text.writelines(lines)
    out = Path(tempfile.mkstemp(suffix=".parquet")[1])
    try:
        column_types = {name: pa.type_for_alias(kind) for name, kind in types.items() if _known(kind)}
        reader = pa_csv.open_csv(text_path, convert_options=pa_csv.ConvertOptions(column_types=column_types))
        with pq.ParquetWriter(out, reader.schema) as writer:
            for batch in reader:
                writer.write_batch(batch)
    except BaseException:
        out.unlink()
        raise
    finally:
        os.unlink(text_path)
    return out


def _known(kind: str) -> bool:
    """Whether the CSV reader can be told this type (the plain ones are; others are read as the values look)."""
    try:
        pa.type_for_alias(kind)
    except ValueError:
        return False
    return True
