"""A Parquet file is taken wherever a CSV file is: read a row group at a time into chunks, scored like the same rows
sent as CSV (chunks scored in this process by the worker's service function)."""

from __future__ import annotations

import csv
import io
import uuid
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from tests.conftest import RecordingEnqueue
from webapp.models import JobChunk
from webapp.services.models import ModelRegistry

ROWS = {
    "island": ["Biscoe", "Mars", "Dream", "Torgersen", None],
    "bill_length_mm": [48.6, 40.0, 50.0, 36.7, 45.0],
    "flipper_length_mm": [230, 190, 196, 187, 200],
    "sex": ["male", None, "female", None, "male"],
    "note": ['say "hi", twice', "=1+1", "", None, "ok"],
}


def parquet_file(table: pa.Table, row_group_size: int) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(table, buffer, row_group_size=row_group_size)
    return buffer.getvalue()


def csv_file(table: pa.Table) -> bytes:
    frame = table.to_pandas()
    return frame.to_csv(index=False).encode()


def same_values(rows: list[dict[str, str]]) -> list[dict[str, object]]:
    return [{**row, "bill_length_mm": float(row["bill_length_mm"])} for row in rows]


def scored(client: TestClient, registry: ModelRegistry, enqueue: RecordingEnqueue, name: str, data: bytes) -> Any:
    response = client.post(
        "/api/v1/jobs/csv", files={"file": (name, data, "application/octet-stream")}, data={"model": "penguins"}
    )
    assert response.status_code == 202, response.text
    enqueue.deliver(registry)
    job = client.get(response.headers["location"]).json()
    download = client.get(job["results_url"])
    return job, list(csv.DictReader(io.StringIO(download.text)))


def test_a_parquet_file_is_scored_as_the_same_rows_in_csv(
    client: TestClient, registry: ModelRegistry, enqueue: RecordingEnqueue, engine: Engine
) -> None:
    table = pa.table({**ROWS, "island": pa.array(ROWS["island"]).dictionary_encode()})  # a pandas category column

    from_parquet, parquet_rows = scored(client, registry, enqueue, "penguins.parquet", parquet_file(table, 2))
    with Session(engine) as session:
        chunks = session.scalars(select(JobChunk).where(JobChunk.job_id == uuid.UUID(from_parquet["id"]))).all()
    from_csv, csv_rows = scored(client, registry, enqueue, "penguins.csv", csv_file(table))

    assert from_parquet["status"] == from_csv["status"] == "succeeded"
    assert from_parquet["rows_total"] == 5 and from_parquet["rows_failed"] == from_csv["rows_failed"] == 2
    assert len(chunks) == 2  # csv_chunk_rows=3 in the tests' settings: chunks of 3 and 2 rows
    assert same_values(parquet_rows) == same_values(csv_rows)  # pandas writes 40.0 where Arrow writes 40
    assert parquet_rows[0]["note"] == 'say "hi", twice' and parquet_rows[1]["note"] == "'=1+1"


def test_a_parquet_file_of_nested_values_is_refused_before_anything_is_stored(
    client: TestClient, engine: Engine
) -> None:
    table = pa.table({**ROWS, "tags": [["a"], [], ["b", "c"], [], []]})

    response = client.post(
        "/api/v1/jobs/csv",
        files={"file": ("nested.parquet", parquet_file(table, 5), "application/octet-stream")},
        data={"model": "penguins"},
    )

    assert response.status_code == 422
    assert "tags" in response.json()["detail"][0]["msg"]
    with Session(engine) as session:
        assert session.scalars(select(JobChunk)).first() is None


def test_results_download_as_parquet_with_the_uploads_column_types(
    client: TestClient, registry: ModelRegistry, enqueue: RecordingEnqueue
) -> None:
    codes = pa.array(["007", "010", "2", "042", "5"])  # text that looks like numbers stays text
    table = pa.table({**ROWS, "code": codes}).cast(pa.schema([*pa.table(ROWS).schema, pa.field("code", pa.string())]))
    job, csv_rows = scored(client, registry, enqueue, "penguins.parquet", parquet_file(table, 2))

    by_query = client.get(job["results_url"], params={"format": "parquet"})
    by_accept = client.get(job["results_url"], headers={"Accept": "application/vnd.apache.parquet"})

    assert by_query.headers["content-type"] == by_accept.headers["content-type"] == "application/vnd.apache.parquet"
    assert by_query.headers["content-disposition"].endswith('penguins-results.parquet"')
    results = pq.read_table(io.BytesIO(by_query.content))
    assert results.schema.field("code").type == pa.string() and results["code"].to_pylist() == codes.to_pylist()
    assert results.schema.field("flipper_length_mm").type == pa.int64()
    assert results.schema.field("probability_Gentoo").type == pa.float64()
    assert results["prediction"].to_pylist() == [row["prediction"] for row in csv_rows]
    assert pq.read_table(io.BytesIO(by_accept.content)).equals(results)
