"""CSV in and out: reading an upload safely, cutting it into chunks, and writing results a spreadsheet can open."""

from __future__ import annotations

import codecs
import csv
import io
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # imported where a chunk is read (workers): the web server starts without pandas
    import pandas as pd

DELIMITERS = (",", ";", "\t")
SNIFF_BYTES = 64 * 1024
# OWASP's list for CSV injection: a cell a spreadsheet would treat as a formula.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
PLAIN_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


@dataclass(frozen=True)
class CsvLimits:
    """What one upload may hold (APOT_MAX_CSV_*): beyond the byte limit, so a file cannot cost a worker or the
    database more than this whatever its shape."""

    max_rows: int
    max_columns: int
    max_field: int


class UploadError(ValueError):
    """The file cannot be scored as it is; the message says why, in terms its author can act on."""


@dataclass
class PackedChunk:
    """Some consecutive data rows, compressed as the file had them, with the problems found while reading them."""

    data: bytes
    rows: int
    problems: dict[int, str] = field(default_factory=dict)  # row offset in the chunk → what is wrong with it


@dataclass
class CsvUpload:
    """A validated upload: its columns and delimiter, and its data rows still to be read."""

    columns: list[str]
    delimiter: str
    _reader: Iterator[list[str]]
    _consumed: list[str]
    _limits: CsvLimits

    def chunks(self, size: int) -> Iterator[PackedChunk]:
        """The data rows in chunks of `size`. Rows are kept as the lines they came from (no re-writing); a row
        with the wrong number of fields is written again fitted to the header, with its problem noted."""
        width = len(self.columns)
        lines: list[str] = []
        problems: dict[int, str] = {}
        rows = 0
        rows_before = 0  # in the chunks already yielded
        try:
            for row in self._reader:
                if not row:  # a blank line is no row
                    self._consumed.clear()
                    continue
                if len(row) == width:
                    lines.extend(self._consumed)
                else:
                    problems[rows] = f"the row has {len(row)} fields, the header has {width}"
                    lines.append(_format_row((row + [""] * width)[:width], self.delimiter))
                self._consumed.clear()
                rows += 1
                if rows_before + rows > self._limits.max_rows:
                    raise UploadError(
                        f"The file has more than {self._limits.max_rows:,} rows, the most one job may have."
                    )
                if rows == size:
                    yield pack_lines(lines, rows, problems)
                    lines, problems, rows_before, rows = [], {}, rows_before + rows, 0
        except UnicodeDecodeError as exc:
            raise UploadError(f"The file is not UTF-8 text throughout (bad byte near position {exc.start}).") from exc
        except csv.Error as exc:
            raise UploadError(_malformed(exc, self._limits)) from exc
        if rows:
            yield pack_lines(lines, rows, problems)


def open_upload(binary: IO[bytes], limits: CsvLimits) -> CsvUpload:
    """Check what can be checked from the start of the file, and read its header."""
    # The csv module's own check, in C: cheap on every field. Process-wide, but every upload has the same limit.
    csv.field_size_limit(limits.max_field)
    head = binary.read(SNIFF_BYTES)
    binary.seek(0)
    if b"\x00" in head:
        raise UploadError("This looks like a binary file, not CSV text.")
    try:
        # Final only if this is the whole file: the first 64 KiB of a longer one may end inside a character.
        text = codecs.getincrementaldecoder("utf-8-sig")().decode(head, final=len(head) < SNIFF_BYTES)
    except UnicodeDecodeError as exc:
        raise UploadError(f"The file is not UTF-8 text (bad byte at {exc.start}); save it as UTF-8 CSV.") from exc
    if not text.strip():  # nothing, blanks, or only a byte order mark
        raise UploadError("The file is empty.")
    first_line = text.splitlines()[0]
    delimiter = max(DELIMITERS, key=first_line.count)
    consumed: list[str] = []

    def lines() -> Iterator[str]:
        for line in io.TextIOWrapper(binary, encoding="utf-8-sig", newline=""):
            consumed.append(line)  # the raw text of the row being read, kept so it need not be written again
            yield line

    reader = csv.reader(lines(), delimiter=delimiter)
    try:
        columns = [c.strip() for c in next(reader)]
    except csv.Error as exc:
        raise UploadError(_malformed(exc, limits)) from exc
    except UnicodeDecodeError as exc:  # a header line longer than the first 64 KiB, with a bad byte past them
        raise UploadError(f"The file is not UTF-8 text (bad byte near position {exc.start}).") from exc
    consumed.clear()
    if len(columns) > limits.max_columns:
        raise UploadError(f"The header has {len(columns):,} columns; at most {limits.max_columns:,} are accepted.")
    duplicates = sorted({c for c in columns if columns.count(c) > 1})
    if duplicates:
        raise UploadError(f"The header names these columns more than once: {', '.join(duplicates)}.")
    if any(not c for c in columns):
        raise UploadError("The header has an empty column name.")
    return CsvUpload(columns, delimiter, reader, consumed, limits)


def _malformed(error: csv.Error, limits: CsvLimits) -> str:
    if "field larger than field limit" in str(error):
        return f"A field (cell) is longer than {limits.max_field:,} characters, the most one may have."
    return f"The CSV is malformed: {error}."


def _format_row(row: list[str], delimiter: str) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator="\n").writerow(row)
    return buffer.getvalue()


def pack_lines(lines: list[str], rows: int, problems: dict[int, str]) -> PackedChunk:
    text = "".join(lines)
    if not text.endswith("\n"):
        text += "\n"  # the file's last line may lack its newline
    return PackedChunk(zlib.compress(text.encode(), level=1), rows, problems)


def unpack_frame(data: bytes, columns: list[str], delimiter: str, rows: int | None = None) -> pd.DataFrame:
    """A chunk back as a frame of strings ("" for an empty cell), one row per data row (the first `rows` only)."""
    import pandas as pd

    return pd.read_csv(
        io.BytesIO(zlib.decompress(data)),
        sep=delimiter,
        header=None,
        names=columns,
        dtype=str,
        keep_default_na=False,
        na_filter=False,
        encoding="utf-8",
        skip_blank_lines=False,
        nrows=rows,
    )


def neutralise(cell: str) -> str:
    """Prefix a quote to a cell a spreadsheet would run as a formula (OWASP); plain numbers such as -1.5 stay."""
    if cell.startswith(FORMULA_START) and not PLAIN_NUMBER.match(cell):
        return "'" + cell
    return cell


def neutralise_column(cells: pd.Series) -> pd.Series:
    """`neutralise` for a whole column: a vectorised look at the first character, then only the few suspects."""
    text = cells.to_numpy(dtype=object).astype(np.dtypes.StringDType())
    suspect = np.zeros(len(text), dtype=bool)
    for start in FORMULA_START:
        suspect |= np.strings.startswith(text, start)
    if not suspect.any():
        return cells
    out = cells.copy()
    for row in np.flatnonzero(suspect):
        out.iat[row] = neutralise(out.iat[row])
    return out


def fixed_decimals(values: np.ndarray) -> np.ndarray:
    """Numbers in [0, 1] as text with six decimals, built from integers: several times faster than float
    formatting, which dominates writing a large result file."""
    scaled = np.rint(np.nan_to_num(values) * 1_000_000).astype(np.int64)
    digits = np.strings.zfill(scaled.astype(np.dtypes.StringDType()), 7)
    return np.strings.add(np.strings.add(np.strings.slice(digits, 0, -6), "."), np.strings.slice(digits, -6, None))
