"""Limits the app enforces on what arrives (not on what Content-Length claims): each a JSON 413 or 422, no job."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from tests.html import csrf_token
from webapp.config import Settings
from webapp.models import Job


def no_jobs(engine: Engine) -> bool:
    with Session(engine) as session:
        return session.scalar(select(func.count()).select_from(Job)) == 0


def upload(client: TestClient, content: bytes, **fields: str) -> object:
    files = {"file": ("f.csv", content, "text/csv")}
    return client.post("/api/v1/jobs/csv", files=files, data={"model": "sizes", **fields})


@pytest.fixture
def settings(settings: Settings) -> Settings:
    settings.max_csv_rows = 5
    settings.max_csv_columns = 4
    settings.max_csv_field_bytes = 1024
    settings.max_form_fields = 10
    return settings


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"size,colour\n" + b"1,red\n" * 6, "more than 5 rows"),
        (b"size,colour,a,b,c\n1,red,1,2,3\n", "5 columns; at most 4"),
        (b"size,colour\n1," + b"r" * 2000 + b"\n", "longer than 1,024 characters"),
        (b'size,colour\n1,"' + b"r" * 2000 + b'"\n', "longer than 1,024 characters"),
        (b"size," + b"c" * 2000 + b"\n1,red\n", "longer than 1,024 characters"),
    ],
    ids=["rows", "columns", "field", "quoted field", "header field"],
)
def test_a_csv_over_a_limit_is_422_and_no_job(client: TestClient, engine: Engine, content: bytes, message: str) -> None:
    response = upload(client, content)
    assert response.status_code == 422  # type: ignore[attr-defined]
    assert message in response.json()["detail"][0]["msg"]  # type: ignore[attr-defined]
    assert no_jobs(engine)


def test_a_csv_at_the_limits_is_taken(client: TestClient) -> None:
    assert upload(client, b"size,colour\n" + b"1,red\n" * 5).status_code == 202  # type: ignore[attr-defined]


def test_a_form_of_too_many_parts_is_413_and_no_job(client: TestClient, engine: Engine) -> None:
    extra = {f"field{i}": "x" for i in range(20)}
    response = upload(client, b"size,colour\n1,red\n", **extra)
    assert response.status_code == 413  # type: ignore[attr-defined]
    assert "too many parts" in response.json()["detail"]  # type: ignore[attr-defined]
    files = [("file", ("a.csv", b"size,colour\n1,red\n", "text/csv")), ("file", ("b.csv", b"x", "text/csv"))]
    assert client.post("/api/v1/jobs/csv", files=files, data={"model": "sizes"}).status_code == 413
    assert no_jobs(engine)


def test_the_pages_form_limits_hold_before_the_csrf_check_reads_the_form(client: TestClient, engine: Engine) -> None:
    token = csrf_token(client)
    fields = {"csrf_token": token, "size": "2", "colour": "red", **{f"f{i}": "x" for i in range(20)}}
    assert client.post("/models/sizes/jobs", data=fields).status_code == 413
    assert no_jobs(engine)
