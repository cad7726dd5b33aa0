"""Reading uploads: the dialects people save, and the files that must be refused with a reason."""

from __future__ import annotations

import io

import pytest

from webapp.csvio import UploadError, neutralise, open_upload, pack_rows, unpack_raw_rows, unpack_rows


def read(content: bytes) -> tuple[list[str], str, list[list[str]]]:
    upload = open_upload(io.BytesIO(content))
    return upload.columns, upload.delimiter, list(upload.rows)


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
    upload = open_upload(io.BytesIO(content))
    with pytest.raises(UploadError, match="not UTF-8 text throughout"):
        list(upload.rows)


def test_chunks_round_trip_as_text() -> None:
    rows = [["Biscoe", "=1+1", "multi\nline", ""], ["Dream", "", "x,y", "the row has 2 fields"]]
    packed = pack_rows(rows)
    assert list(unpack_raw_rows(packed)) == rows
    frame = unpack_rows(packed, ["island", "formula", "note"])
    assert frame.values.tolist() == rows


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
