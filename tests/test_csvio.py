"""Reading uploads: the dialects people save, and the files that must be refused with a reason."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from webapp.csvio import (
    SNIFF_BYTES,
    CsvLimits,
    UploadError,
    fixed_decimals,
    neutralise,
    neutralise_column,
    open_upload,
    unpack_frame,
)

LIMITS = CsvLimits(max_rows=1_000_000, max_columns=100, max_field=64 * 1024)


def read(content: bytes, chunk_rows: int = 1000) -> tuple[list[str], str, list[list[str]]]:
    """Columns, delimiter, and every data row as the worker will see it (with its problem, or "")."""
    upload = open_upload(io.BytesIO(content), LIMITS)
    rows: list[list[str]] = []
    for chunk in upload.chunks(chunk_rows):
        frame = unpack_frame(chunk.data, upload.columns, upload.delimiter)
        assert len(frame) == chunk.rows
        rows += [[*cells, chunk.problems.get(i, "")] for i, cells in enumerate(frame.values.tolist())]
    return upload.columns, upload.delimiter, rows


@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_each_delimiter_is_recognised(delimiter: str) -> None:
    content = delimiter.join(["a", "b"]) + "\n" + delimiter.join(["1", "2"]) + "\n"
    assert read(content.encode()) == (["a", "b"], delimiter, [["1", "2", ""]])


def test_a_byte_order_mark_is_not_part_of_the_first_column() -> None:
    columns, _, _ = read("\ufeffisland,x\nDream,1\n".encode())
    assert columns == ["island", "x"]


def test_quoted_fields_keep_their_newlines_and_delimiters() -> None:
    _, _, rows = read(b'a,b\n"line one\nline two","x, y"\r\n')
    assert rows == [["line one\nline two", "x, y", ""]]


def test_rows_of_the_wrong_width_are_kept_with_a_reason() -> None:
    _, _, rows = read(b"a,b,c\n1,2\n1,2,3,4\n\n5,6,7\n")
    assert rows == [
        ["1", "2", "", "the row has 2 fields, the header has 3"],
        ["1", "2", "3", "the row has 4 fields, the header has 3"],
        ["5", "6", "7", ""],
    ]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "empty"),
        (b"  \n\n", "empty"),
        (b"\xef\xbb\xbf", "empty"),  # only a byte order mark
        (b"99P\xf3", "not UTF-8"),  # the whole file ends inside a character
        (b"island,bill\xc3", "not UTF-8"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary"),
        ("island,x\nDr\xe9am,1\n".encode("latin-1"), "not UTF-8"),
        (b"a,a,b\n1,2,3\n", "more than once: a"),
        (b"a,,b\n1,2,3\n", "empty column name"),
    ],
)
def test_unreadable_files_are_refused_with_a_reason(content: bytes, reason: str) -> None:
    with pytest.raises(UploadError, match=reason):
        read(content)


def test_bad_utf8_after_the_first_block_is_caught_while_reading() -> None:
    content = b"a,b\n" + b"x,y\n" * 20_000 + b"\xff\xfe,1\n"
    upload = open_upload(io.BytesIO(content), LIMITS)
    with pytest.raises(UploadError, match="not UTF-8 text throughout"):
        list(upload.chunks(1000))


def test_a_character_split_by_the_end_of_the_first_block_is_read_whole() -> None:
    header = b"a,b\n"
    filler = b"x" * (SNIFF_BYTES - len(header) - 1)
    content = header + filler + "é,1\n".encode()  # é's two bytes straddle the first block's end
    _, _, rows = read(content)
    assert rows == [[filler.decode() + "é", "1", ""]]


def test_a_header_with_a_bad_byte_past_the_first_block_is_refused() -> None:
    content = b"a" * (SNIFF_BYTES - 6) + b",b" + b"c" * 10 + b"\xff\n1,2\n"
    with pytest.raises(UploadError, match="not UTF-8"):
        read(content)


def test_rows_split_into_chunks_in_order_whatever_their_line_endings() -> None:
    content = b"a;b\r\n" + b"".join(f'{i};"x\r\ny"\r\n'.encode() for i in range(7)) + b"7;last"
    _, _, rows = read(content, chunk_rows=3)
    assert [r[0] for r in rows] == [str(i) for i in range(8)]
    assert rows[0][1] == "x\r\ny" and rows[-1] == ["7", "last", ""]


@pytest.mark.parametrize(
    ("cell", "safe"),
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+1+2", "'+1+2"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tcmd", "'\tcmd"),
        ("\rcmd", "'\rcmd"),
        ("-1.5", "-1.5"),
        ("+3", "+3"),
        ("-2e5", "-2e5"),
        ("Biscoe", "Biscoe"),
        ("", ""),
    ],
)
def test_formula_cells_are_neutralised_and_numbers_left_alone(cell: str, safe: str) -> None:
    assert neutralise(cell) == safe
    assert neutralise_column(pd.Series([cell, "x"], dtype=str)).tolist() == [safe, "x"]


def test_probabilities_are_written_with_six_decimals() -> None:
    values = np.array([0.0, 1.0, 0.5, 0.123456789, 0.9999996, np.nan])
    assert fixed_decimals(values).tolist() == ["0.000000", "1.000000", "0.500000", "0.123457", "1.000000", "0.000000"]
