"""POST /api/v1/jobs/csv, results.csv and cancel, on a real database; chunks are scored by calling the worker's
service function in this process (the real worker process is exercised in tests/e2e)."""

from __future__ import annotations

import csv
import io
import uuid
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from ml.predict import Output
from ml.table import ScoredTable
from tests.conftest import RecordingEnqueue, worker_context
from webapp.models import ChunkStatus, Job, JobChunk
from webapp.services.chunk_scoring import score_chunk
from webapp.services.csv_jobs import prediction_cells
from webapp.services.models import ModelRegistry

HEADER = "island;bill_length_mm;flipper_length_mm;sex;note\n"
ROWS = [
    'Biscoe;48.6;230;male;"two\nlines"',
    'Mars;40;190;;=HYPERLINK("http://evil")',
    "Dream;50;196;female;-1.5",
    "Torgersen;abc;190;;ok",
    "Torgersen;36.7;187;;@SUM(A1)",
]
GOOD = (HEADER + "\n".join(ROWS) + "\n").encode()


def upload(client: TestClient, content: bytes, name: str = "penguins.csv", **fields: str) -> Any:
    return client.post(
        "/api/v1/jobs/csv", files={"file": (name, content, "text/csv")}, data={"model": "penguins", **fields}
    )


def count(engine: Engine, model: type[Any]) -> int:
    with Session(engine) as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def results(client: TestClient, job: dict[str, Any]) -> list[dict[str, str]]:
    response = client.get(job["results_url"])
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(response.text)))


def test_an_upload_becomes_a_job_with_chunks_any_worker_can_take(
    client: TestClient, engine: Engine, enqueue: RecordingEnqueue
) -> None:
    response = upload(client, GOOD)

    assert response.status_code == 202, response.text
    job = client.get(response.headers["location"]).json()
    assert (job["kind"], job["status"], job["rows_total"], job["rows_done"]) == ("csv", "queued", 5, 0)
    assert job["results_url"].endswith(f"/api/v1/jobs/{job['id']}/results.csv")
    with Session(engine) as session:
        chunks = session.scalars(select(JobChunk).order_by(JobChunk.position)).all()
        assert [(c.position, c.first_row, c.rows, c.status) for c in chunks] == [
            (0, 1, 3, "queued"),
            (1, 4, 2, "queued"),
        ]
    assert enqueue.published == [str(c.id) for c in chunks]


def test_scored_results_keep_row_order_pass_columns_through_and_explain_bad_rows(
    client: TestClient, engine: Engine, enqueue: RecordingEnqueue, registry: ModelRegistry
) -> None:
    created = upload(client, GOOD).json()
    enqueue.deliver(registry)

    job = client.get(created["url"]).json()
    assert (job["status"], job["rows_done"], job["rows_failed"]) == ("succeeded", 5, 2)
    rows = results(client, job)
    assert [r["island"] for r in rows] == ["Biscoe", "Mars", "Dream", "Torgersen", "Torgersen"]
    assert rows[0]["note"] == "two\nlines"
    assert [r["prediction"] for r in rows] == ["Gentoo", "", "Chinstrap", "", "Adelie"]
    for row in (rows[0], rows[2], rows[4]):
        total = sum(float(row[f"probability_{c}"]) for c in ("Adelie", "Chinstrap", "Gentoo"))
        assert total == pytest.approx(1.0, abs=1e-5)
        assert row["error"] == ""
    assert rows[1]["error"] == "island: 'Mars' is not one of Biscoe, Dream, Torgersen"
    assert rows[3]["error"] == "bill_length_mm: 'abc' is not a number"


def test_cells_that_would_run_as_formulas_are_neutralised(
    client: TestClient, engine: Engine, enqueue: RecordingEnqueue, registry: ModelRegistry
) -> None:
    created = upload(client, GOOD).json()
    enqueue.deliver(registry)
    rows = results(client, client.get(created["url"]).json())
    assert rows[1]["note"] == '\'=HYPERLINK("http://evil")'
    assert rows[4]["note"] == "'@SUM(A1)"
    assert rows[2]["note"] == "-1.5", "numbers stay numbers"


def test_the_download_is_named_after_the_upload(
    client: TestClient, engine: Engine, enqueue: RecordingEnqueue, registry: ModelRegistry
) -> None:
    created = upload(client, GOOD, name="my data (final).csv").json()
    enqueue.deliver(registry)
    response = client.get(f"{created['url']}/results.csv")
    assert response.headers["content-disposition"] == 'attachment; filename="my_data_final_-results.csv"'


def test_on_error_fail_fails_the_job_naming_the_rows(
    client: TestClient, engine: Engine, enqueue: RecordingEnqueue, registry: ModelRegistry
) -> None:
    created = upload(client, GOOD, on_error="fail").json()
    enqueue.deliver(registry)
    job = client.get(created["url"]).json()
    assert job["status"] == "failed"
    assert "row 2: island: 'Mars'" in job["error"]
    assert job["rows_failed"] == 1, "the bad row it failed on is counted"
    # Its partial results are there: the part that failed, every bad row with its reason; the rest not reached.
    rows = results(client, job)
    assert [r["prediction"] for r in rows] == ["Gentoo", "", "Chinstrap", "", ""]
    assert rows[1]["error"].startswith("island") and rows[3]["error"].startswith("not scored")


def test_the_chunk_that_fails_its_job_reports_it_for_its_task_state_and_no_other_does(
    client: TestClient, enqueue: RecordingEnqueue, registry: ModelRegistry
) -> None:
    created = upload(client, GOOD, on_error="fail").json()
    context = worker_context(registry)
    first, second = enqueue.published

    reported = score_chunk(context, first)  # its row 2 is bad: the job fails, and so does this chunk's task

    job = client.get(created["url"]).json()
    assert job["status"] == "failed"
    assert reported == f"job {job['id']} failed: {job['error']}"
    assert score_chunk(context, second) is None, "a chunk the failure cancelled did nothing: its task succeeds"
    assert score_chunk(context, first) is None, "delivered again: nothing scored, nothing reported twice"


def test_cancel_stops_unstarted_chunks_and_keeps_what_was_scored(
    client: TestClient, engine: Engine, enqueue: RecordingEnqueue, registry: ModelRegistry
) -> None:
    created = upload(client, GOOD).json()
    context = worker_context(registry)
    score_chunk(context, enqueue.published[0])  # the first chunk is scored, then the user cancels

    cancelled = client.post(f"{created['url']}/cancel")
    score_chunk(context, enqueue.published[1])  # its message arrives late: nothing happens

    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    job = client.get(created["url"]).json()
    assert (job["status"], job["rows_done"]) == ("cancelled", 3)
    with Session(engine) as session:
        assert session.scalars(select(JobChunk.status).order_by(JobChunk.position)).all() == [
            ChunkStatus.DONE,
            ChunkStatus.CANCELLED,
        ]
    rows = results(client, job)
    assert [r["prediction"] for r in rows] == ["Gentoo", "", "Chinstrap", "", ""]
    assert rows[3]["error"].startswith("not scored")
    assert client.post(f"{created['url']}/cancel").status_code == 409


def test_results_are_not_offered_before_the_end(client: TestClient) -> None:
    created = upload(client, GOOD).json()
    response = client.get(f"{created['url']}/results.csv")
    assert response.status_code == 409 and "queued" in response.json()["detail"]


def test_only_csv_jobs_have_a_results_file(client: TestClient) -> None:
    created = client.post(
        "/api/v1/jobs",
        json={"model": "penguins", "inputs": {"island": "Dream", "bill_length_mm": 40, "flipper_length_mm": 190}},
    ).json()
    assert client.get(f"{created['url']}/results.csv").status_code == 404


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        (HEADER.encode(), "header but no rows"),
        (b"\x00\x01\x02\x03PK\x03\x04", "binary"),
        ("island,bill_length_mm,flipper_length_mm\nDr\xe9am,40,190\n".encode("latin-1"), "not UTF-8"),
        (b"island,sex\nDream,male\n", "lacks these required columns of penguins: bill_length_mm, flipper_length_mm"),
    ],
)
def test_bad_files_get_a_clear_422_and_no_job(
    client: TestClient, engine: Engine, enqueue: RecordingEnqueue, content: bytes, message: str
) -> None:
    response = upload(client, content)
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "file"] and message in error["msg"]
    assert count(engine, Job) == 0 and count(engine, JobChunk) == 0 and enqueue.published == []


def test_a_file_over_the_upload_limit_is_413_and_no_job(client: TestClient, engine: Engine) -> None:
    big = HEADER.encode() + b"Biscoe;48.6;230;male;x\n" * 60_000  # ~1.4 MB against a 1 MiB limit
    declared = upload(client, big)

    def chunks() -> Any:  # no Content-Length: the limit must hold on the bytes that arrive
        body = (
            b'--b\r\nContent-Disposition: form-data; name="model"\r\n\r\npenguins\r\n'
            b'--b\r\nContent-Disposition: form-data; name="file"; filename="x.csv"\r\n\r\n'
        )
        yield body + HEADER.encode()
        for _ in range(60):
            yield b"Biscoe;48.6;230;male;x\n" * 1000
        yield b"\r\n--b--\r\n"

    streamed = client.post(
        "/api/v1/jobs/csv", content=chunks(), headers={"content-type": "multipart/form-data; boundary=b"}
    )
    for response in (declared, streamed):
        assert response.status_code == 413
        assert "larger than 1048576 bytes" in response.json()["detail"]
    assert count(engine, Job) == 0


@pytest.mark.parametrize(
    ("files", "data", "field"),
    [
        (None, {"model": "penguins"}, "file"),
        ({"file": ("x.csv", GOOD, "text/csv")}, {}, "model"),
        ({"file": ("x.csv", GOOD, "text/csv")}, {"model": "penguins", "on_error": "ignore"}, "on_error"),
    ],
)
def test_missing_or_wrong_form_fields_are_422(
    client: TestClient, files: dict[str, Any] | None, data: dict[str, str], field: str
) -> None:
    response = client.post("/api/v1/jobs/csv", files=files, data=data)
    assert response.status_code == 422
    assert [e["loc"] for e in response.json()["detail"]] == [["body", field]]


def test_an_unknown_model_is_404(client: TestClient, engine: Engine) -> None:
    response = upload(client, GOOD, model="unicorns")
    assert response.status_code == 404 and count(engine, Job) == 0


def test_cancelling_an_unknown_job_is_404(client: TestClient) -> None:
    assert client.post(f"/api/v1/jobs/{uuid.uuid4()}/cancel").status_code == 404


def test_an_unreachable_broker_leaves_the_chunks_queued_for_the_reconciler(
    client: TestClient, engine: Engine, enqueue: RecordingEnqueue
) -> None:
    enqueue.fail = True
    response = upload(client, GOOD)
    assert response.status_code == 202
    with Session(engine) as session:
        (job,) = session.scalars(select(Job))
        assert job.status == "queued"
        assert {c.published_at for c in session.scalars(select(JobChunk))} == {None}, "publish pending"


def test_a_regressors_results_have_a_predicted_value(
    client: TestClient, engine: Engine, enqueue: RecordingEnqueue, registry: ModelRegistry
) -> None:
    created = upload(client, b"size,colour\n2,red\n3,green\n", model="sizes").json()
    enqueue.deliver(registry)
    rows = results(client, client.get(created["url"]).json())
    assert list(rows[0]) == ["size", "colour", "prediction", "error", "warnings"]
    assert float(rows[0]["prediction"]) == pytest.approx(20.0)
    assert rows[1]["prediction"] == "" and "'green' is not one of blue, red" in rows[1]["error"]


def test_input_columns_named_like_the_outputs_are_not_overwritten(
    client: TestClient, engine: Engine, enqueue: RecordingEnqueue, registry: ModelRegistry
) -> None:
    created = upload(client, b"size,colour,prediction\n2,red,my own\n", model="sizes").json()
    enqueue.deliver(registry)
    (row,) = results(client, client.get(created["url"]).json())
    assert row["prediction"] == "my own"
    assert float(row["apot_prediction"]) == pytest.approx(20.0) and row["apot_error"] == ""


def test_a_carriage_return_inside_a_cell_is_quoted_so_no_formula_starts_a_row(
    client: TestClient, enqueue: RecordingEnqueue, registry: ModelRegistry
) -> None:
    content = (
        b'island,bill_length_mm,flipper_length_mm,note\r\nBiscoe,48.6,230,"Totals\r=1+1"\r\nDream,40,190,"\r-2+3"\r\n'
    )
    created = upload(client, content).json()
    enqueue.deliver(registry)
    text = client.get(f"{created['url']}/results.csv").text

    assert '"Totals\r=1+1"' in text and '"\'\r-2+3"' in text
    rows = list(csv.reader(io.StringIO(text, newline="")))  # Python's reader refused the file before
    assert [row[3] for row in rows[1:]] == ["Totals\r=1+1", "'\r-2+3"]


def test_class_labels_that_would_run_as_formulas_are_neutralised() -> None:
    scored = ScoredTable(errors=[None, None], probabilities=np.array([[0.9, 0.1], [0.2, 0.8]]))
    label, *_ = prediction_cells(2, scored, [Output("prediction", ["=1+1", "-2+3+cmd|' /C calc'!A0"])])
    assert list(label) == ["'=1+1", "'-2+3+cmd|' /C calc'!A0"]
