"""A job whose inputs and results retention deleted: its page, its JSON and its download say so."""

from __future__ import annotations

import uuid
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.factories import add_job
from tests.html import one, parse
from webapp.models import utcnow

MESSAGE = "The inputs and results of this job were deleted after 31 days (the server keeps them that long)."


def pruned_job(engine: Engine, kind: str = "single") -> uuid.UUID:
    job_id = uuid.uuid4()
    finished = utcnow() - timedelta(days=40)
    upload = {"filename": "a.csv", "columns": ["a"], "delimiter": ",", "on_error": "skip"} if kind == "csv" else None
    add_job(
        engine,
        id=job_id,
        kind=kind,
        model_name="penguins",
        inputs=[],
        result=None,
        upload=upload,
        created_at=finished - timedelta(seconds=1),
        finished_at=finished,
        pruned_at=finished + timedelta(days=31, hours=2),
    )
    return job_id


def test_the_job_page_says_the_inputs_were_deleted(admin_client: TestClient, engine: Engine) -> None:
    job_id = pruned_job(engine)

    response = admin_client.get(f"/jobs/{job_id}")

    assert response.status_code == 200
    page = parse(response.text)
    assert [p.text for p in page.select("p.pruned")] == [MESSAGE, MESSAGE]  # status card and inputs
    assert page.select("form[action$=rerun]") == []
    assert one(page, ".status-card .badge").text == "succeeded"


def test_the_api_says_why_inputs_and_result_are_missing(admin_client: TestClient, engine: Engine) -> None:
    job_id = pruned_job(engine)

    body = admin_client.get(f"/api/v1/jobs/{job_id}").json()

    assert body["result"] is None and body["status"] == "succeeded"
    assert body["pruned"] == MESSAGE and body["pruned_at"] is not None
    listed = admin_client.get("/api/v1/jobs").json()["items"]
    assert [item["pruned"] for item in listed] == [MESSAGE]


def test_a_pruned_csv_jobs_download_is_gone(admin_client: TestClient, engine: Engine) -> None:
    job_id = pruned_job(engine, kind="csv")

    response = admin_client.get(f"/api/v1/jobs/{job_id}/results.csv")

    assert response.status_code == 410
    assert response.json()["detail"] == MESSAGE
    page = parse(admin_client.get(f"/jobs/{job_id}").text)
    assert page.select("a[download]") == []
    assert [p.text for p in page.select("p.pruned")] == [MESSAGE]


def test_a_job_that_was_not_pruned_says_nothing_of_it(admin_client: TestClient, engine: Engine) -> None:
    job_id = uuid.uuid4()
    add_job(engine, id=job_id, model_name="penguins", inputs=[{"island": "Biscoe"}], result={"predictions": []})

    body = admin_client.get(f"/api/v1/jobs/{job_id}").json()

    assert body["pruned"] is None and body["pruned_at"] is None
    assert parse(admin_client.get(f"/jobs/{job_id}").text).select("p.pruned") == []
