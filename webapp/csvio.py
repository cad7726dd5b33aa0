"""CSV in and out: reading an upload safely, packing rows into chunks, and writing results a spreadsheet can open."""

from __future__ import annotations

import codecs
import csv
import io
import re
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import IO

import pandas as pd

DELIMITERS = (",", ";", "\t")
SNIFF_BYTES = 64 * 1024
PARSE_ERROR = "__apot_parse_error"
# OWASP's list for CSV injection: a cell a spreadsheet would treat as a formula.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
PLAIN_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")

csv.field_size_limit(16 * 1024 * 1024)  # one quoted field may hold long text; the upload limit bounds it anyway


class UploadError(ValueError):
    """The file cannot be scored as it is; the message says why, in terms its author can act on."""


@dataclass
class CsvUpload:
    """A validated upload: its columns and delimiter, and an iterator over its data rows."""

    columns: list[str]
    delimiter: str
    rows: Iterator[list[str]]


def open_upload(binary: IO[bytes]) -> CsvUpload:
    """Check what can be checked from the start of the file, and read its header."""
    head = binary.read(SNIFF_BYTES)
    binary.seek(0)
    if not head.strip():
        raise UploadError("The file is empty.")
    if b"\x00" in head:
        raise UploadError("This looks like a binary file, not CSV text.")
    try:
        codecs.getincrementaldecoder("utf-8-sig")().decode(head, final=False)
    except UnicodeDecodeError as exc:
        raise UploadError(
            f"The file is not UTF-8 text (bad byte at position {exc.start}); save it as UTF-8 CSV."
        ) from exc
    text = io.TextIOWrapper(binary, encoding="utf-8-sig", newline="")
    first_line = head.decode("utf-8-sig", errors="ignore").splitlines()[0]
    delimiter = max(DELIMITERS, key=first_line.count)
    reader = csv.reader(text, delimiter=delimiter)
    columns = [c.strip() for c in next(reader)]
    duplicates = sorted({c for c in columns if columns.count(c) > 1})
    if duplicates:
        raise UploadError(f"The header names these columns more than once: {', '.join(duplicates)}.")
    if any(not c for c in columns):
        raise UploadError("The header has an empty column name.")
    return CsvUpload(columns, delimiter, _data_rows(reader, len(columns)))


def _data_rows(reader: Iterator[list[str]], width: int) -> Iterator[list[str]]:
    """Rows padded or cut to the header's width, each ending with a parse error ("" when fine)."""
    try:
        for row in reader:
            if not row:
                continue  # blank line
            if len(row) == width:
                yield [*row, ""]
            else:
                fitted = (row + [""] * width)[:width]
                yield [*fitted, f"the row has {len(row)} fields, the header has {width}"]
    except UnicodeDecodeError as exc:
        raise UploadError(f"The file is not UTF-8 text throughout (bad byte near position {exc.start}).") from exc
    except csv.Error as exc:
        raise UploadError(f"The CSV is malformed near line {reader.line_num}: {exc}.") from exc  # type: ignore[attr-defined]


def pack_rows(rows: Sequence[list[str]]) -> bytes:
    """A chunk's rows as compressed CSV (comma-delimited, whatever the upload used)."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return zlib.compress(buffer.getvalue().encode(), level=1)


def unpack_rows(packed: bytes, columns: Sequence[str]) -> pd.DataFrame:
    """A chunk back as a frame of strings, with the parse-error column last."""
    return pd.read_csv(
        io.BytesIO(zlib.decompress(packed)),
        header=None,
        names=[*columns, PARSE_ERROR],
        dtype=str,
        keep_default_na=False,
        na_filter=False,
        encoding="utf-8",
    )


def unpack_raw_rows(packed: bytes) -> Iterator[list[str]]:
    """A chunk's rows as the lists of strings they were packed from."""
    return csv.reader(io.StringIO(zlib.decompress(packed).decode()))


def neutralise(cell: str) -> str:
    """Prefix a quote to a cell a spreadsheet would run as a formula (OWASP); plain numbers such as -1.5 stay."""
    if cell.startswith(FORMULA_START) and not PLAIN_NUMBER.match(cell):
        return "'" + cell
    return cell
