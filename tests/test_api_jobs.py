"""POST/GET /api/v1/jobs on a real database, with the broker replaced by a recorder (no worker runs here)."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from tests.conftest import RecordingEnqueue
from tests.html import parse
from webapp.api import api_links
from webapp.models import Job, JobStatus, utcnow
from webapp.schemas import job_out
from webapp.services import history
from webapp.services.models import ModelRegistry

PENGUIN = {"island": "Biscoe", "bill_length_mm": 48.6, "flipper_length_mm": 230, "sex": "male"}


def count_jobs(engine: Engine) -> int:
    with Session(engine) as session:
        return session.scalar(select(func.count()).select_from(Job)) or 0


def submit(client: TestClient, inputs: Any, **extra: Any) -> Any:
    return client.post("/api/v1/jobs", json={"model": "penguins", "inputs": inputs, **extra})


def finish(engine: Engine, job_id: str, **values: Any) -> None:
    """Play the worker's part: write an outcome into the row."""
    with Session(engine) as session, session.begin():
        session.execute(update(Job).where(Job.id == uuid.UUID(job_id)).values(finished_at=utcnow(), **values))


def test_a_job_is_stored_queued_and_published_after_commit(
    client: TestClient, engine: Engine, enqueue: RecordingEnqueue
) -> None:
    response = submit(client, PENGUIN)

    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "queued"
    assert response.headers["location"] == body["url"]
    assert body["url"].endswith(f"/api/v1/jobs/{body['id']}")
    assert enqueue.published == [body["id"]]
    with Session(engine) as session:
        job = session.get(Job, uuid.UUID(body["id"]))
        assert job is not None
        assert (job.status, job.kind, job.model_version, job.task_id) == ("queued", "single", "1", body["task_id"])
        assert job.inputs == [{**PENGUIN, "bill_depth_mm": None, "body_mass_g": None}]


def test_a_queued_job_reads_back_with_every_field(client: TestClient) -> None:
    created = submit(client, PENGUIN).json()
    job = client.get(created["url"]).json()
    assert job["id"] == created["id"]
    assert job["status"] == "queued"
    assert (job["model"], job["version"], job["kind"], job["rows_total"]) == ("penguins", "1", "single", 1)
    assert job["task_id"] == created["task_id"]
    assert job["created_at"].endswith("Z") or job["created_at"].endswith("+00:00")
    assert job["started_at"] is None and job["finished_at"] is None
    assert job["result"] is None and job["error"] is None


def test_a_list_of_rows_is_one_batch_job(client: TestClient, engine: Engine) -> None:
    created = submit(client, [PENGUIN, {**PENGUIN, "island": "Dream"}]).json()
    job = client.get(created["url"]).json()
    assert (job["kind"], job["rows_total"]) == ("batch", 2)


def test_a_version_can_be_pinned(client: TestClient) -> None:
    assert submit(client, PENGUIN, version="1").status_code == 202


@pytest.mark.parametrize(
    ("body", "loc", "msg_part"),
    [
        ({"model": "penguins", "inputs": {**PENGUIN, "island": "Mars"}}, ["body", "inputs", "island"], "'Biscoe'"),
        ({"model": "penguins", "inputs": {"island": "Biscoe"}}, ["body", "inputs", "bill_length_mm"], "required"),
        (
            {"model": "penguins", "inputs": {**PENGUIN, "bill_length_mm": "long"}},
            ["body", "inputs", "bill_length_mm"],
            "valid number",
        ),
        ({"model": "penguins", "inputs": {**PENGUIN, "wings": 2}}, ["body", "inputs", "wings"], "Unknown feature"),
        ({"model": "penguins", "inputs": [PENGUIN, {**PENGUIN, "sex": "x"}]}, ["body", "inputs", 1, "sex"], "'female'"),
        ({"model": "penguins", "inputs": [PENGUIN] * 6}, ["body", "inputs"], "between 1 and 5 rows"),
        ({"model": "penguins", "inputs": []}, ["body", "inputs"], "between 1 and 5 rows"),
        ({"model": "penguins"}, ["body", "inputs"], "required"),
        ({"inputs": PENGUIN}, ["body", "model"], "required"),
        ({"model": "penguins", "inputs": PENGUIN, "colour": 1}, ["body", "colour"], "Extra inputs"),
        ({"model": "penguins", "inputs": "Biscoe"}, ["body", "inputs"], "valid"),
    ],
)
def test_bad_input_is_422_naming_the_field_and_nothing_is_created(
    client: TestClient, engine: Engine, enqueue: RecordingEnqueue, body: dict[str, Any], loc: list[Any], msg_part: str
) -> None:
    response = client.post("/api/v1/jobs", json=body)

    assert response.status_code == 422
    errors = response.json()["detail"]
    matching = [e for e in errors if e["loc"][: len(loc)] == loc]
    assert matching, errors
    assert any(msg_part in e["msg"] for e in matching), errors
    assert count_jobs(engine) == 0
    assert enqueue.published == []


def test_a_value_outside_the_training_range_is_scored_and_carries_a_warning(
    client: TestClient, enqueue: RecordingEnqueue, registry: ModelRegistry
) -> None:
    rows = [{**PENGUIN, "bill_length_mm": 70}, PENGUIN]
    created = client.post("/api/v1/jobs", json={"model": "penguins", "inputs": rows})
    assert created.status_code == 202, created.text
    enqueue.deliver(registry)
    outside, inside = client.get(created.json()["url"]).json()["result"]["predictions"]
    assert outside["warnings"] == [
        {
            "feature": "bill_length_mm",
            "value": 70,
            "type": "out_of_range",
            "message": "outside the range seen in training (32.1 to 59.6)",
            "min": 32.1,
            "max": 59.6,
        }
    ]
    assert outside["label"] in ("Adelie", "Chinstrap", "Gentoo") and "warnings" not in inside
    page = parse(client.get(f"/jobs/{created.json()['id']}").text)
    assert [li.text for li in page.select("ul.warnings li")] == [
        "bill_length_mm = 70: outside the range seen in training (32.1 to 59.6)"
    ]


def test_malformed_json_is_400_as_documented(client: TestClient, engine: Engine) -> None:
    response = client.post("/api/v1/jobs", content=b'{"model": ', headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"].startswith("the body is not readable JSON")
    assert count_jobs(engine) == 0


@pytest.mark.parametrize(("model", "version"), [("unicorns", None), ("penguins", "99")])
def test_unknown_model_or_version_is_404_and_nothing_is_created(
    client: TestClient, engine: Engine, enqueue: RecordingEnqueue, model: str, version: str | None
) -> None:
    response = client.post("/api/v1/jobs", json={"model": model, "version": version, "inputs": PENGUIN})
    assert response.status_code == 404
    assert count_jobs(engine) == 0 and enqueue.published == []


def test_an_oversized_body_is_413_whatever_content_length_says(client: TestClient, engine: Engine) -> None:
    padding = "x" * (3 * 1024 * 1024)
    declared = client.post("/api/v1/jobs", json={"model": "penguins", "inputs": PENGUIN, "pad": padding})

    def chunks() -> Any:  # no Content-Length: the body arrives chunked and must be counted as it comes
        yield b'{"model": "penguins", "pad": "'
        for _ in range(48):
            yield b"x" * 65536
        yield b'"}'

    streamed = client.post("/api/v1/jobs", content=chunks(), headers={"content-type": "application/json"})

    for response in (declared, streamed):
        assert response.status_code == 413
        assert "larger than" in response.json()["detail"]
    assert count_jobs(engine) == 0


def test_when_the_broker_is_unreachable_the_job_is_accepted_and_its_publish_left_pending(
    client: TestClient, engine: Engine, enqueue: RecordingEnqueue
) -> None:
    enqueue.fail = True
    response = submit(client, PENGUIN)
    assert response.status_code == 202
    with Session(engine) as session:
        (job,) = session.scalars(select(Job))
        assert (job.status, job.published_at) == ("queued", None)


def test_a_database_that_cannot_be_reached_is_a_json_503_not_a_500(
    client: TestClient, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The error the driver raises when the server refuses connections, raised in place (a real Postgres restart is
    # in tests/faults); this checks the mapping on both backends.
    jobs = client.app.state.jobs  # type: ignore[attr-defined]

    def refused(*args: object, **kwargs: object) -> None:
        raise OperationalError("SELECT 1", {}, ConnectionRefusedError("connection refused (simulated)"))

    monkeypatch.setattr(jobs, "get_many", refused)
    monkeypatch.setattr(history, "page", refused)
    response = client.get("/api/v1/jobs")

    assert response.status_code == 503
    assert response.json()["detail"] == "the database cannot be reached right now; try again in a moment"


def test_unknown_job_is_404(client: TestClient) -> None:
    assert client.get(f"/api/v1/jobs/{uuid.uuid4()}").status_code == 404
    assert client.get("/api/v1/jobs/not-a-uuid").status_code == 404


def test_wait_returns_as_soon_as_the_job_ends(client: TestClient, engine: Engine) -> None:
    created = submit(client, PENGUIN).json()
    result = {"predictions": [{"label": "Gentoo", "probabilities": {"Adelie": 0.1, "Chinstrap": 0.1, "Gentoo": 0.8}}]}
    timer = threading.Timer(0.3, finish, (engine, created["id"]), {"status": "succeeded", "result": result})
    timer.start()
    started = time.monotonic()

    job = client.get(created["url"], params={"wait": 10}).json()

    assert time.monotonic() - started < 5, "wait should end when the job ends, not at the timeout"
    assert job["status"] == "succeeded"
    assert job["result"] == result


def test_wait_gives_up_after_the_given_seconds(client: TestClient) -> None:
    created = submit(client, PENGUIN).json()
    assert client.get(created["url"], params={"wait": 0.2}).json()["status"] == "queued"


@pytest.mark.parametrize("wait", [-1, 31, "soon"])
def test_wait_out_of_range_is_422(client: TestClient, wait: int | str) -> None:
    created = submit(client, PENGUIN).json()
    assert client.get(created["url"], params={"wait": wait}).status_code == 422


def test_history_is_newest_first_in_keyset_pages(client: TestClient, engine: Engine) -> None:
    ids = [submit(client, PENGUIN).json()["id"] for _ in range(5)]
    finish(engine, ids[1], status=JobStatus.FAILED, error="boom")

    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get("/api/v1/jobs", params=params).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert seen == ids[::-1]
    failed = client.get("/api/v1/jobs", params={"status": "failed"}).json()
    assert [item["id"] for item in failed["items"]] == [ids[1]]
    assert failed["items"][0]["error"] == "boom"
    nothing: dict[str, object] = {"items": [], "next_cursor": None, "total": None, "total_capped": None}
    assert client.get("/api/v1/jobs", params={"model": "unicorns"}).json() == nothing


@pytest.mark.parametrize("params", [{"cursor": "garbage"}, {"status": "lost"}, {"limit": 0}, {"limit": 201}])
def test_bad_history_queries_are_422(client: TestClient, params: dict[str, str | int]) -> None:
    assert client.get("/api/v1/jobs", params=params).status_code == 422


def test_openapi_describes_the_job_api(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    create = spec["paths"]["/api/v1/jobs"]["post"]
    assert set(create["responses"]) >= {"202", "404", "413", "422", "503"}
    assert "Location" in create["responses"]["202"]["headers"]
    read = spec["paths"]["/api/v1/jobs/{job_id}"]["get"]
    wait = next(p for p in read["parameters"] if p["name"] == "wait")
    assert wait["schema"]["maximum"] == 30
    job = spec["components"]["schemas"]["JobOut"]["properties"]
    assert set(job) >= {
        "id",
        "status",
        "model",
        "version",
        "kind",
        "created_at",
        "started_at",
        "finished_at",
        "task_id",
        "result",
        "error",
    }


def test_a_job_is_answered_exactly_as_its_documented_model_writes_it(
    client: TestClient, engine: Engine, enqueue: RecordingEnqueue, registry: ModelRegistry
) -> None:
    created = submit(client, [PENGUIN, PENGUIN]).json()
    enqueue.deliver(registry)

    answer = client.get(created["url"])

    with Session(engine) as session:
        job = session.get_one(Job, uuid.UUID(created["id"]))
    base = created["url"].removesuffix(f"/api/v1/jobs/{created['id']}")
    documented = job_out(job, api_links(base))
    assert answer.headers["content-type"] == "application/json"
    assert answer.content == documented.model_dump_json().encode()
