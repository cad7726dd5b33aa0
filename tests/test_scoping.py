"""Each member sees only their own jobs: on every page, fragment, API route and download another user's job is a
404, exactly like a job that does not exist. Admins see every job and can narrow the lists to one user."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from tests.accounts import Account, add_account, sign_in
from tests.conftest import RecordingEnqueue
from tests.html import csrf_token, parse
from webapp.models import Job
from webapp.services.models import ModelRegistry

SIZES = {"model": "sizes", "inputs": {"size": 2, "colour": "red"}}
CSV = b"size,colour\n1,red\n2,blue\n"

# (method, path under the job, sent with the CSRF token) for every route that takes a job id.
JOB_ROUTES = [
    ("GET", "/api/v1/jobs/{id}"),
    ("GET", "/api/v1/jobs/{id}?wait=1"),
    ("POST", "/api/v1/jobs/{id}/cancel"),
    ("GET", "/api/v1/jobs/{id}/results.csv"),
    ("GET", "/jobs/{id}"),
    ("GET", "/jobs/{id}/status"),
    ("GET", "/jobs/{id}/row"),
    ("GET", "/jobs/{id}/compare"),
    ("POST", "/jobs/{id}/rerun"),
    ("POST", "/jobs/{id}/cancel"),
    ("POST", "/jobs/{id}/compare"),
]


@pytest.fixture
def bob(app: FastAPI, registry: ModelRegistry) -> Account:
    return add_account(registry.sessions, "bob")


@pytest.fixture
def bobs_client(app: FastAPI, bob: Account) -> Any:
    with TestClient(app) as client:
        yield sign_in(client, bob)


@pytest.fixture
def mias_jobs(client: TestClient, enqueue: RecordingEnqueue, registry: ModelRegistry) -> dict[str, str]:
    """A single-row job and a CSV job of Mia's, both scored."""
    single = client.post("/api/v1/jobs", json=SIZES).json()["id"]
    files = {"file": ("mine.csv", CSV, "text/csv")}
    table = client.post("/api/v1/jobs/csv", files=files, data={"model": "sizes"}).json()["id"]
    enqueue.deliver(registry)
    return {"single": single, "csv": table}


def count_jobs(engine: Engine) -> int:
    with Session(engine) as session:
        return session.scalar(select(func.count()).select_from(Job)) or 0


@pytest.mark.parametrize(("method", "path"), JOB_ROUTES)
@pytest.mark.parametrize("kind", ["single", "csv"])
def test_another_members_job_is_not_found_anywhere(
    bobs_client: TestClient, mias_jobs: dict[str, str], engine: Engine, method: str, path: str, kind: str
) -> None:
    token = csrf_token(bobs_client)
    before = count_jobs(engine)
    url = path.format(id=mias_jobs[kind])
    response = bobs_client.request(
        method, url, data={"csrf_token": token, "version": "1"} if method == "POST" else None, follow_redirects=False
    )
    assert response.status_code == 404, response.text
    assert mias_jobs[kind] not in response.text.replace(f"no job with id {mias_jobs[kind]}", "")
    assert count_jobs(engine) == before, "nothing was made from someone else's job"


def test_the_owner_reaches_the_same_routes(client: TestClient, mias_jobs: dict[str, str]) -> None:
    for path in ("/api/v1/jobs/{id}", "/jobs/{id}", "/jobs/{id}/status", "/jobs/{id}/row"):
        assert client.get(path.format(id=mias_jobs["single"])).status_code == 200
    assert client.get(f"/api/v1/jobs/{mias_jobs['csv']}/results.csv").status_code == 200


def test_lists_show_only_your_own_jobs(client: TestClient, bobs_client: TestClient, mias_jobs: dict[str, str]) -> None:
    bobs = bobs_client.post("/api/v1/jobs", json=SIZES).json()["id"]
    assert [j["id"] for j in bobs_client.get("/api/v1/jobs").json()["items"]] == [bobs]
    assert {j["id"] for j in client.get("/api/v1/jobs").json()["items"]} == set(mias_jobs.values())
    for page in ("/jobs", "/"):
        html = bobs_client.get(page).text
        assert bobs in html and not any(job in html for job in mias_jobs.values())
    # Finding a job by id is a way in too.
    found = bobs_client.get("/jobs", params={"find": mias_jobs["single"]}, follow_redirects=False)
    assert found.status_code == 200 and "There is no job with id" in found.text
    # A member's ?user= is ignored: it is always their own jobs.
    assert [j["id"] for j in bobs_client.get("/api/v1/jobs", params={"user": "mia"}).json()["items"]] == [bobs]


def test_an_admin_sees_every_job_and_can_narrow_to_one_user(
    admin_client: TestClient, bobs_client: TestClient, mias_jobs: dict[str, str]
) -> None:
    bobs = bobs_client.post("/api/v1/jobs", json=SIZES).json()["id"]
    everyone = {j["id"] for j in admin_client.get("/api/v1/jobs").json()["items"]}
    assert everyone == {bobs, *mias_jobs.values()}
    assert [j["id"] for j in admin_client.get("/api/v1/jobs", params={"user": "bob"}).json()["items"]] == [bobs]
    assert admin_client.get("/api/v1/jobs", params={"user": "nobody"}).status_code == 404
    assert admin_client.get(f"/api/v1/jobs/{mias_jobs['single']}").status_code == 200
    assert admin_client.get(f"/api/v1/jobs/{mias_jobs['csv']}/results.csv").status_code == 200
    page = parse(admin_client.get("/jobs", params={"user": "bob"}).text)
    assert [str(a["href"]).rsplit("/", 1)[-1] for a in page.select("table.jobs tbody a[href*='/jobs/']")] == [bobs]


def test_a_job_records_who_made_it_and_with_which_key(client: TestClient, member: Account, engine: Engine) -> None:
    created = client.post("/api/v1/jobs", json=SIZES).json()["id"]
    token = csrf_token(client, "/models/sizes")
    client.post("/models/sizes/jobs", data={"csrf_token": token, "size": "3", "colour": "red"})
    with Session(engine) as session:
        jobs = {str(j.id): j for j in session.scalars(select(Job))}
    assert {(j.owner_id, j.api_key_id) for j in jobs.values()} == {
        (member.principal.user_id, member.principal.api_key_id),  # through the API, with her key
        (member.principal.user_id, None),  # from the dashboard
    }
    assert jobs[created].api_key_id == member.principal.api_key_id
